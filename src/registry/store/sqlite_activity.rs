//! The SQLite bodies of [`ActivityStore`]. A child module of `sqlite`.

use crate::registry::store::sql::{self, Row};
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::SqliteStore;
use crate::model::activity::{ActivityEvent, ActivityKind, HourlyPoint};
use crate::registry::store::StoreResult;
use crate::registry::store::flags::{ActivityStore, HistoryHour, HourDelta};

fn event_from_row(r: &Row<'_>) -> sql::Result<ActivityEvent> {
    let split = |t: String| -> Vec<String> {
        t.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let kind: String = r.get(2)?;
    Ok(ActivityEvent {
        at: DateTime::from_timestamp(r.get(0)?, 0).unwrap_or_default(),
        agent_id: r.get(1)?,
        kind: ActivityKind::parse(&kind).unwrap_or(ActivityKind::Exchange),
        accepted: r.get(3)?,
        reason: r.get(4)?,
        subject: r.get(5)?,
        depth: r.get(6)?,
        scopes: split(r.get(7)?),
        audience: split(r.get(8)?),
        client_auth: r.get(9)?,
    })
}

impl ActivityStore for SqliteStore {
    fn record_activity(&self, events: &[ActivityEvent], hours: &[HourDelta]) -> StoreResult<()> {
        if events.is_empty() && hours.is_empty() {
            return Ok(());
        }
        self.write_keeping_facts(|tx| {
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO activity_events (at, agent_id, kind, accepted, reason, subject, depth, scopes, audience, client_auth)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?;
                for e in events {
                    ins.execute(params![
                        e.at.timestamp(),
                        e.agent_id,
                        e.kind.as_str(),
                        e.accepted,
                        e.reason,
                        e.subject,
                        e.depth,
                        e.scopes.join(" "),
                        e.audience.join(" "),
                        e.client_auth,
                    ])?;
                }
            }
            let mut hour = tx.prepare_cached(
                "INSERT INTO activity_hours (agent_id, hour, accepted, refused)
                 SELECT ?1, CAST(?2 AS BIGINT), CAST(?3 AS BIGINT), CAST(?4 AS BIGINT)
                 WHERE EXISTS (SELECT 1 FROM agents WHERE id = ?1)
                 ON CONFLICT (agent_id, hour) DO UPDATE SET
                   accepted = activity_hours.accepted + excluded.accepted,
                   refused = activity_hours.refused + excluded.refused",
            )?;
            let mut item = tx.prepare_cached(
                "INSERT INTO activity_hour_items (agent_id, hour, item, count)
                 SELECT ?1, CAST(?2 AS BIGINT), ?3, CAST(?4 AS BIGINT)
                 WHERE EXISTS (SELECT 1 FROM agents WHERE id = ?1)
                 ON CONFLICT (agent_id, hour, item)
                 DO UPDATE SET count = activity_hour_items.count + excluded.count",
            )?;
            for h in hours {
                hour.execute(params![h.agent_id, h.hour, h.accepted, h.refused])?;
                for (name, n) in &h.items {
                    item.execute(params![h.agent_id, h.hour, name, n])?;
                }
            }
            Ok(())
        })
    }

    fn activity(
        &self,
        agent_id: &str,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> StoreResult<Vec<ActivityEvent>> {
        let since = since.map(|t| t.timestamp()).unwrap_or(i64::MIN);
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT at, agent_id, kind, accepted, reason, subject, depth, scopes, audience, client_auth
                 FROM activity_events WHERE agent_id = ?1 AND at >= ?2
                 ORDER BY at DESC, id DESC LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![agent_id, since, limit], event_from_row)?
                .collect::<sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn activity_hours(&self, agent_id: &str, from: i64, to: i64) -> StoreResult<Vec<HourlyPoint>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT hour, accepted, refused FROM activity_hours
                 WHERE agent_id = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour",
            )?;
            let rows = stmt
                .query_map(params![agent_id, from, to], |r| {
                    Ok(HourlyPoint {
                        hour: DateTime::from_timestamp(r.get(0)?, 0).unwrap_or_default(),
                        accepted: r.get(1)?,
                        refused: r.get(2)?,
                    })
                })?
                .collect::<sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn activity_items(
        &self,
        agent_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(String, u32)>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT item, SUM(count) FROM activity_hour_items
                 WHERE agent_id = ?1 AND hour >= ?2 AND hour < ?3 GROUP BY item ORDER BY item",
            )?;
            let rows = stmt
                .query_map(params![agent_id, from, to], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn history_since(
        &self,
        from: i64,
        visit: &mut dyn FnMut(&[HistoryHour]),
        items: &mut dyn FnMut(&str, &str, i64),
    ) -> StoreResult<()> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT agent_id, hour, accepted, refused FROM activity_hours WHERE hour >= ?1",
            )?;
            let mut rows = stmt.query(params![from])?;
            let mut batch = Vec::with_capacity(4096);
            while let Some(r) = rows.next()? {
                batch.push(HistoryHour {
                    agent_id: r.get(0)?,
                    hour: r.get(1)?,
                    accepted: r.get(2)?,
                    refused: r.get(3)?,
                });
                if batch.len() == 4096 {
                    visit(&batch);
                    batch.clear();
                }
            }
            visit(&batch);
            let mut stmt = tx.prepare(
                "SELECT agent_id, item, MIN(hour) FROM activity_hour_items WHERE hour >= ?1
                 GROUP BY agent_id, item",
            )?;
            let mut rows = stmt.query(params![from])?;
            while let Some(r) = rows.next()? {
                let agent: String = r.get(0)?;
                let item: String = r.get(1)?;
                items(&agent, &item, r.get(2)?);
            }
            // Subjects and depths from the raw events still kept.
            let mut stmt = tx.prepare(
                "SELECT agent_id, subject, MAX(depth), MIN(at) FROM activity_events
                 WHERE accepted = 1 AND at >= ?1 GROUP BY agent_id, subject",
            )?;
            let mut rows = stmt.query(params![from])?;
            while let Some(r) = rows.next()? {
                let agent: String = r.get(0)?;
                let subject: Option<String> = r.get(1)?;
                let depth: i64 = r.get(2)?;
                let at: i64 = r.get(3)?;
                if let Some(s) = subject {
                    items(&agent, &format!("p:{s}"), at);
                }
                items(&agent, &format!("d:{depth}"), at);
            }
            Ok(())
        })
    }

    fn prune_activity(&self, raw_before: i64, hours_before: i64) -> StoreResult<u64> {
        self.write_keeping_facts(|tx| {
            let a = tx.execute(
                "DELETE FROM activity_events WHERE at < ?1",
                params![raw_before],
            )?;
            let b = tx.execute(
                "DELETE FROM activity_hours WHERE hour < ?1",
                params![hours_before],
            )?;
            let c = tx.execute(
                "DELETE FROM activity_hour_items WHERE hour < ?1",
                params![hours_before],
            )?;
            Ok((a + b + c) as u64)
        })
    }
}
