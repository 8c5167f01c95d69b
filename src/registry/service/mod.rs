//! The rules of the registry that are more than one route's check: who may approve what, and
//! for how long. Store implementations call these inside the transaction that acts, so that a
//! decision and the state it was made on are one.

pub mod agents;
pub mod api_tokens;
pub mod approvals;
pub mod flags;
pub mod ownership;
pub mod succession;
