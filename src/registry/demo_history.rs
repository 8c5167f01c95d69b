//! The demo's history: a registration event for every seeded agent (dated when it was created),
//! and token exchanges — a week of expired ones and some still live — so that the activity view
//! and a revoke's "tokens killed" show real numbers.
//!
//! The exchanges are records of tokens nobody holds (their digests hash no JWT that was ever
//! sent): they can be revoked, listed and introspected by id, never presented.

use anyhow::anyhow;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::model::api::AgentQuery;
use crate::model::{Actor, AgentKind, AgentStatus};
use crate::registry::store::{Store, Visibility};
use crate::registry::tokens::live::{TokenKind, TokenRecord};

/// The audit actor of the backfilled registrations.
const DEMO_ACTOR: &str = "steward-demo";

/// Agents sampled for exchange history: every `STRIDE`th active agent of the first page.
const SAMPLE_PAGE: u32 = 2000;
const STRIDE: usize = 7;

/// Appends an `agent.register` event for every seeded agent, dated at its creation.
pub fn seed_registrations(store: &dyn Store) -> anyhow::Result<u64> {
    store
        .backfill_registrations(&Actor::system(DEMO_ACTOR))
        .map_err(|e| anyhow!("{e}"))
}

fn hash(text: &str) -> u64 {
    let d = Sha256::digest(text.as_bytes());
    u64::from_le_bytes(d[..8].try_into().unwrap_or_default())
}

/// What the demo's exchange history holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenHistory {
    pub agents: u64,
    pub exchanges: u64,
    pub live: u64,
}

/// Seeds exchanges for a sample of active, owned agents with grants: one to four in the last
/// week (expired), and for a third of them one live token issued in the last 40 minutes. A
/// sub-agent acts under its parent (`person → parent → sub-agent`).
pub fn seed_token_history(
    store: &dyn Store,
    seed: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<TokenHistory> {
    let page = store
        .list_agents(
            &AgentQuery {
                status: Some(AgentStatus::Active),
                limit: Some(SAMPLE_PAGE),
                ..Default::default()
            },
            &Visibility::All,
        )
        .map_err(|e| anyhow!("{e}"))?;
    let mut tokens = Vec::new();
    let mut stats = TokenHistory::default();
    for agent in page.agents.iter().step_by(STRIDE) {
        let Some(owner) = &agent.owner else { continue };
        let scopes: Vec<String> = agent
            .grants
            .iter()
            .take(2)
            .map(|g| g.scope.clone())
            .collect();
        if scopes.is_empty() {
            continue;
        }
        let actors = match (&agent.parent_id, agent.kind) {
            (Some(parent), AgentKind::SubAgent) => vec![agent.id.clone(), parent.clone()],
            _ => vec![agent.id.clone()],
        };
        let audience: Vec<String> = scopes
            .iter()
            .filter_map(|s| s.split(':').next())
            .map(|r| format!("https://{}.example.com", r.replace('.', "-")))
            .take(1)
            .collect();
        let h = hash(&format!("{seed}:{}", agent.id));
        let record = |n: u64, issued: DateTime<Utc>, ttl_min: i64| {
            let jti = format!("demo-{:016x}", hash(&format!("{seed}:{}:{n}", agent.id)));
            TokenRecord {
                digest: Sha256::digest(jti.as_bytes()).into(),
                jti,
                kind: TokenKind::Exchange,
                kid: "demo-history".into(),
                subject: owner.clone(),
                client_id: Some(agent.id.clone()),
                actors: actors.clone(),
                parent_jti: None,
                scopes: scopes.clone(),
                audience: audience.clone(),
                may_act: None,
                subject_source: "person-token".into(),
                client_auth: Some("private_key_jwt".into()),
                credential_id: None,
                issued_at: issued.timestamp(),
                expires_at: (issued + Duration::minutes(ttl_min)).timestamp(),
                api_token_id: None,
                delegation_id: None,
            }
        };
        for n in 0..(1 + h % 4) {
            let ago = Duration::minutes(90 + ((h >> (8 * n)) % (7 * 24 * 60 - 90) as u64) as i64);
            tokens.push(record(n, now - ago, 15));
            stats.exchanges += 1;
        }
        if h.is_multiple_of(3) {
            let ago = Duration::minutes(((h >> 40) % 40) as i64);
            tokens.push(record(99, now - ago, 60));
            stats.exchanges += 1;
            stats.live += 1;
        }
        stats.agents += 1;
    }
    store
        .import_token_history(&tokens)
        .map_err(|e| anyhow!("{e}"))?;
    Ok(stats)
}
