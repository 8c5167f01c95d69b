//! Steward: governance for AI agents as non-human identities.
//!
//! `model` is the shared language, `registry` the server, `client` its typed HTTP client,
//! `console` the terminal UI, `cli` the scripting commands. The registry and the console never
//! import each other.

pub mod cli;
pub mod client;
pub mod console;
pub mod model;
pub mod registry;
