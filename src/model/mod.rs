//! The shared language of Steward: domain types and API payloads. No I/O lives here.

pub mod activity;
pub mod api;
pub mod approvals;
pub mod audit;
pub mod brake;
pub mod catalogue;
pub mod catalogue_file;
pub mod delegation;
pub mod domain;
pub mod flag;
pub mod ownership;
pub mod permissions;
pub mod review;
pub mod signals;
pub mod text;
pub mod timeline;
pub mod tokens;
pub mod witness;

pub use audit::{Actor, ActorKind, AuditEvent};
pub use domain::*;
