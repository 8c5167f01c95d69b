//! `steward server migrate --from sqlite:PATH --to postgres://…`: copies a registry from its
//! SQLite file into an empty PostgreSQL database, row for row, and proves the copy by its audit
//! chain: verified on the source before, on the target after, with the same head.
//!
//! The source is read in one read transaction (a consistent snapshot; stop the registry first so
//! that nothing is written after it). The target is written in one transaction: a failed copy
//! leaves it as empty as it was. Tables go in the order SQLite created them (a table comes after
//! those it references); a column that references its own table (a manager, a parent agent) is
//! filled in a second pass, once every row exists. Ids PostgreSQL generates (identities) keep the
//! source's values and their sequences are moved past them.

use std::path::Path;

use rusqlite::types::Value;

use super::sql::{Params, Tx};
use super::sqlite::OpenMode;
use super::{AuditStore, SqliteStore, StoreError, StoreResult};
use crate::registry::clock::Clock;

/// What a copy did, for the operator.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// (table, rows) in the order copied.
    pub tables: Vec<(String, u64)>,
    pub audit_events: u64,
    pub head_seq: i64,
    pub head_hash: String,
}

/// Rows per INSERT statement (a round trip carries many rows).
const BATCH: usize = 200;

/// Copies the SQLite store at `from` into the empty PostgreSQL database at `to`.
pub fn copy_sqlite_to_postgres(from: &Path, to: &str) -> StoreResult<CopyReport> {
    // Opening brings the source to this build's schema, which the PostgreSQL schema equals.
    let source = SqliteStore::open(from, OpenMode::MustExist)?;
    let before = source.audit_verify()?;
    if !before.ok {
        return Err(StoreError::Invalid {
            code: "audit_chain_broken",
            message: format!(
                "the audit chain of {} does not verify ({}): not copying a damaged log",
                from.display(),
                before
                    .first_broken
                    .as_ref()
                    .map(|b| format!("event #{}: {}", b.seq, b.problem))
                    .unwrap_or_default()
            ),
        });
    }
    let target = SqliteStore::connect_postgres(to, Clock::system())?;
    let mut report = CopyReport {
        tables: Vec::new(),
        audit_events: before.events_checked,
        head_seq: before.head_seq,
        head_hash: before.head_hash.clone(),
    };
    source.read(|src| {
        target.write(|dst| {
            let stored: i64 = dst.query_row(
                "SELECT (SELECT count(*) FROM people) + (SELECT count(*) FROM agents)
                        + (SELECT count(*) FROM audit_events)",
                [],
                |r| r.get(0),
            )?;
            if stored > 0 {
                return Err(StoreError::Conflict(format!(
                    "{} already holds a registry; migrate copies into an empty database only",
                    super::postgres::redact(to)
                )));
            }
            // The target's own first rows (the change counter) give way to the source's.
            dst.execute("DELETE FROM counters", [])?;
            for table in tables(src)? {
                let rows = copy_table(src, dst, &table)?;
                report.tables.push((table, rows));
            }
            move_identities(dst)?;
            Ok(())
        })
    })?;
    // The store's in-memory parts (live tokens, catalogue) were read before the copy: check the
    // copy through a fresh connection.
    drop(target);
    let copied = SqliteStore::connect_postgres(to, Clock::system())?;
    let after = copied.audit_verify()?;
    if !after.ok || after.head_seq != before.head_seq || after.head_hash != before.head_hash {
        return Err(StoreError::Internal(format!(
            "the copy's audit chain does not match the source's (source head #{} {}, copy head \
             #{} {}, intact: {})",
            before.head_seq, before.head_hash, after.head_seq, after.head_hash, after.ok
        )));
    }
    Ok(report)
}

/// The source's tables in creation order, without SQLite's own and the text index's.
fn tables(src: &Tx<'_>) -> StoreResult<Vec<String>> {
    let mut stmt = src.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'agents_text%'
         ORDER BY rowid",
    )?;
    Ok(stmt
        .query_map([], |r| r.get(0))?
        .collect::<super::sql::Result<Vec<String>>>()?)
}

fn copy_table(src: &Tx<'_>, dst: &Tx<'_>, table: &str) -> StoreResult<u64> {
    let sqlite = src
        .as_sqlite()
        .ok_or_else(|| StoreError::Internal("the source must be SQLite".into()))?;
    // The columns in order, and the primary key's (by their position in it).
    let mut columns: Vec<String> = Vec::new();
    let mut key_columns: Vec<(i64, String)> = Vec::new();
    {
        let mut info = sqlite.prepare(&format!("PRAGMA table_info(\"{table}\")"))?;
        let mut rows = info.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(1)?;
            let pk: i64 = row.get(5)?;
            if pk > 0 {
                key_columns.push((pk, name.clone()));
            }
            columns.push(name);
        }
    }
    key_columns.sort();
    // Columns that reference this same table: filled once every row exists.
    let mut self_refs: Vec<String> = Vec::new();
    {
        let mut fks = sqlite.prepare(&format!("PRAGMA foreign_key_list(\"{table}\")"))?;
        let mut rows = fks.query([])?;
        while let Some(row) = rows.next()? {
            let referenced: String = row.get(2)?;
            if referenced == table {
                self_refs.push(row.get(3)?);
            }
        }
    }
    // campaigns' creation order is SQLite's hidden rowid; PostgreSQL keeps it in a column.
    let with_rowid = table == "campaigns";
    let mut copied_columns = columns.clone();
    if with_rowid {
        copied_columns.push("rowid".into());
    }
    let select = format!(
        "SELECT {}{} FROM \"{table}\"",
        quoted(&columns),
        if with_rowid { ", rowid" } else { "" }
    );
    if !self_refs.is_empty() && key_columns.is_empty() {
        return Err(StoreError::Internal(format!(
            "the table {table} has no primary key to copy by"
        )));
    }
    let keys: Vec<String> = key_columns.into_iter().map(|(_, c)| c).collect();
    let mut stmt = sqlite.prepare(&select)?;
    let mut rows = stmt.query([])?;
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH);
    let mut later: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    let mut count = 0u64;
    let self_ref_at: Vec<usize> = self_refs
        .iter()
        .filter_map(|c| columns.iter().position(|x| x == c))
        .collect();
    let key_at: Vec<usize> = keys
        .iter()
        .filter_map(|c| columns.iter().position(|x| x == c))
        .collect();
    while let Some(row) = rows.next()? {
        let mut values: Vec<Value> = (0..copied_columns.len())
            .map(|i| row.get::<_, Value>(i))
            .collect::<rusqlite::Result<_>>()?;
        if !self_ref_at.is_empty() {
            let refs: Vec<Value> = self_ref_at
                .iter()
                .map(|&i| std::mem::replace(&mut values[i], Value::Null))
                .collect();
            if refs.iter().any(|v| *v != Value::Null) {
                later.push((key_at.iter().map(|&i| values[i].clone()).collect(), refs));
            }
        }
        batch.push(values);
        count += 1;
        if batch.len() == BATCH {
            insert(dst, table, &copied_columns, &batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        insert(dst, table, &copied_columns, &batch)?;
    }
    if !later.is_empty() {
        let sets: Vec<String> = self_refs
            .iter()
            .enumerate()
            .map(|(i, c)| format!("\"{c}\" = ?{}", i + 1))
            .collect();
        let wheres: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, c)| format!("\"{c}\" = ?{}", self_refs.len() + i + 1))
            .collect();
        let update = format!(
            "UPDATE \"{table}\" SET {} WHERE {}",
            sets.join(", "),
            wheres.join(" AND ")
        );
        let mut stmt = dst.prepare(&update)?;
        for (key, refs) in later {
            let values: Vec<Value> = refs.into_iter().chain(key).collect();
            stmt.execute(ValueParams(&values))?;
        }
    }
    Ok(count)
}

fn insert(dst: &Tx<'_>, table: &str, columns: &[String], rows: &[Vec<Value>]) -> StoreResult<()> {
    let width = columns.len();
    let tuples: Vec<String> = (0..rows.len())
        .map(|r| {
            let marks: Vec<String> = (0..width)
                .map(|c| format!("?{}", r * width + c + 1))
                .collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    // An identity "ALWAYS" would refuse the source's ids; the schema's are BY DEFAULT.
    let sql = format!(
        "INSERT INTO \"{table}\" ({}) VALUES {}",
        quoted(columns),
        tuples.join(", ")
    );
    let values: Vec<Value> = rows.iter().flatten().cloned().collect();
    dst.execute(&sql, ValueParams(&values))?;
    Ok(())
}

/// Moves every identity's sequence past the ids copied into its table.
fn move_identities(dst: &Tx<'_>) -> StoreResult<()> {
    let mut stmt = dst.prepare(
        "SELECT table_name, column_name FROM information_schema.columns
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )?;
    let identities = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<super::sql::Result<Vec<_>>>()?;
    for (table, column) in identities {
        dst.query_row(
            &format!(
                "SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'),
                               coalesce(max(\"{column}\"), 1), max(\"{column}\") IS NOT NULL)
                 FROM \"{table}\""
            ),
            [],
            |r| r.get::<_, i64>(0),
        )?;
    }
    Ok(())
}

/// A row's values as parameters.
struct ValueParams<'v>(&'v [Value]);

impl Params for ValueParams<'_> {
    fn refs(&self) -> Vec<&dyn rusqlite::ToSql> {
        self.0.iter().map(|v| v as &dyn rusqlite::ToSql).collect()
    }
}

/// Column names quoted and separated by commas, as a column list.
fn quoted(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
