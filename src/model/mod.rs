//! The shared language of Steward: domain types and API payloads. No I/O lives here.

pub mod api;
pub mod audit;
pub mod domain;
pub mod permissions;
pub mod review;
pub mod text;
pub mod tokens;

pub use audit::{Actor, ActorKind, AuditEvent};
pub use domain::*;
