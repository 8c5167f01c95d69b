//! The integration tests: one binary, one module per area. They talk to real parts: a registry on a
//! loopback port, a SQLite file, the `steward` binary in a pseudo-terminal, stock Python clients.

mod console_support;
mod support;

mod audit_tamper;
mod audit_witness;
mod authority;
mod authz_matrix;
mod backup_restore;
mod bad_input;
mod behaviour;
mod brake;
mod cli;
mod clock;
mod consent;
mod console;
mod console_approvals;
mod console_audit;
mod console_config;
mod console_e2e;
mod console_keymap;
mod console_owners;
mod console_queues;
mod console_render;
mod console_reviews;
mod console_streams;
mod demo_seed;
mod durability;
mod engines;
mod facts_cache;
mod introspection_access;
mod migrate;
mod ownership;
mod perimeter;
mod registry_api;
mod replicas;
mod reviews;
mod signals;
mod standards;
mod timeline;
mod tokens;
