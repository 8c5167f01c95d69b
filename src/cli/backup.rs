//! `steward server backup|restore`: an online copy of the SQLite store, and putting one back
//! safely (see `registry::store::sqlite::backup`). For PostgreSQL deployments use `pg_dump`.

use super::args::ServerCommand;
use crate::model::Actor;
use crate::registry::store::sqlite::backup::{backup, restore};

/// Runs `backup` and `restore`; false for every other server subcommand.
pub fn run(command: &ServerCommand) -> anyhow::Result<bool> {
    match command {
        ServerCommand::Backup { db, to } => {
            let db = &crate::registry::Database::sqlite_file(db, "steward server backup")?;
            let report = backup(db, to).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "backed up {} to {}: audit head #{}, {} bytes, chain intact",
                db.display(),
                report.file.display(),
                report.head_seq,
                report.bytes
            );
        }
        ServerCommand::Restore { db, from } => {
            let db = &crate::registry::Database::sqlite_file(db, "steward server restore")?;
            let report = restore(db, from, &Actor::system("steward-server-restore"))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "restored {} from {}: audit head #{} (event #{} records the restore)",
                db.display(),
                from.display(),
                report.restored_to,
                report.audit_seq
            );
            println!(
                "  tokens refused         {} (agents exchange again)",
                report.tokens_refused
            );
            println!(
                "  API tokens revoked     {} (get a new one: steward server create-admin \
                 --db PATH --email EMAIL --name NAME)",
                report.api_tokens_revoked
            );
            println!("  new signing key        {}", report.new_kid);
            println!(
                "  brakes re-applied      {} (from the old log after #{})",
                report.brakes_reapplied.len(),
                report.restored_to
            );
            for (action, target) in &report.brakes_reapplied {
                println!("    {action} {target}");
            }
            if let Some(previous) = &report.previous {
                println!("  the replaced database  {}", previous.display());
            }
        }
        ServerCommand::Migrate { from, to } => {
            let from = crate::registry::Database::sqlite_file(from, "--from")?;
            if !matches!(
                crate::registry::Database::parse(std::path::Path::new(to)),
                crate::registry::Database::Postgres(_)
            ) {
                anyhow::bail!("--to must be a PostgreSQL URL (postgres://USER@HOST/DB)");
            }
            let report = crate::registry::store::copy::copy_sqlite_to_postgres(&from, to)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let rows: u64 = report.tables.iter().map(|(_, n)| n).sum();
            println!(
                "copied {} to {}: {} tables, {rows} rows; audit chain intact on both sides, \
                 {} events, head #{} {}",
                from.display(),
                crate::registry::store::postgres::redact(to),
                report.tables.len(),
                report.audit_events,
                report.head_seq,
                report.head_hash
            );
            for (table, n) in &report.tables {
                println!("  {table:<28} {n}");
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}
