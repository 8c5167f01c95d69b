//! The demo enterprise: reproducible, shaped like a real estate of agents, and usable through the
//! real registry (personas' tokens, the audit chain, `steward server --demo`).

use crate::support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sha2::{Digest, Sha256};
use steward::client::{Client, Secret};
use steward::model::api::{AgentQuery, AuditQuery, PeopleQuery};
use steward::model::{
    AgentDetail, AgentKind, AgentSource, AgentStatus, CredentialKind, Person, Role,
};
use steward::registry::demo::{self, Personas};
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::store::{SqliteStore, Visibility};

/// A fixed "now" for the data, so that two seeds compare to the byte.
fn anchor() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

fn fresh_store(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
    SqliteStore::open(&dir.path().join(name), OpenMode::CreateIfMissing).unwrap()
}

fn seeded(dir: &tempfile::TempDir, name: &str, seed: u64, agents: u32) -> (SqliteStore, Personas) {
    let store = fresh_store(dir, name);
    let personas = demo::seed_at(&store, seed, agents, anchor()).unwrap();
    (store, personas)
}

fn all_agents(store: &dyn Store) -> Vec<steward::model::Agent> {
    let mut agents = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_agents(
                &AgentQuery {
                    limit: Some(1000),
                    after: after.clone(),
                    ..Default::default()
                },
                &Visibility::All,
            )
            .unwrap();
        agents.extend(page.agents);
        match page.next {
            Some(next) => after = Some(next),
            None => return agents,
        }
    }
}

fn all_people(store: &dyn Store) -> Vec<Person> {
    let mut people = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_people(&PeopleQuery {
                limit: Some(1000),
                after: after.clone(),
                ..Default::default()
            })
            .unwrap();
        people.extend(page.people);
        match page.next {
            Some(next) => after = Some(next),
            None => return people,
        }
    }
}

fn all_details(store: &dyn Store) -> Vec<AgentDetail> {
    all_agents(store)
        .iter()
        .map(|a| store.agent_detail(&a.id).unwrap().unwrap())
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_enterprise() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = seeded(&dir, "a.db", 42, 3_000);
    let (b, _) = seeded(&dir, "b.db", 42, 3_000);

    // Pending requests carry ids and times of their own making: compare what they ask for.
    let strip = |mut details: Vec<AgentDetail>| {
        let mut asked = Vec::new();
        for d in &mut details {
            for r in d.requests.drain(..) {
                asked.push((r.agent_id, r.kind, r.scope, r.status, r.requester));
            }
        }
        (details, asked)
    };
    let (agents_a, asked_a) = strip(all_details(&a));
    let (agents_b, asked_b) = strip(all_details(&b));
    assert_eq!(asked_a, asked_b);
    assert!(!asked_a.is_empty(), "the demo has pending requests");
    assert_eq!(agents_a.len(), 3_000);
    // Everything: ids, names, kinds, parents, owners, teams, statuses, grants with their
    // times, credentials and their fingerprints.
    assert_eq!(agents_a, agents_b);

    // People too, except the personas' API tokens, which are real secrets.
    assert_eq!(all_people(&a), all_people(&b));
}

#[test]
fn a_different_seed_gives_a_different_enterprise() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = seeded(&dir, "a.db", 1, 1_000);
    let (b, _) = seeded(&dir, "b.db", 2, 1_000);
    let agents_a = all_agents(&a);
    let agents_b = all_agents(&b);
    let ids_a: HashSet<_> = agents_a.iter().map(|x| x.id.clone()).collect();
    let ids_b: HashSet<_> = agents_b.iter().map(|x| x.id.clone()).collect();
    assert!(ids_a.is_disjoint(&ids_b), "the two seeds share agent ids");
    let names_a: Vec<_> = agents_a.iter().map(|x| x.name.clone()).collect();
    let names_b: Vec<_> = agents_b.iter().map(|x| x.name.clone()).collect();
    assert_ne!(names_a, names_b);
    let owners_a: Vec<_> = agents_a.iter().map(|x| x.owner.clone()).collect();
    let owners_b: Vec<_> = agents_b.iter().map(|x| x.owner.clone()).collect();
    assert_ne!(owners_a, owners_b);
    // The personas are the same people whatever the seed.
    for email in [
        "ada.admin@example.com",
        "omar.owner@example.com",
        "rosa.responder@example.com",
        "aubrey.auditor@example.com",
    ] {
        assert!(a.person(email).unwrap().is_some());
        assert!(b.person(email).unwrap().is_some());
    }
}

#[test]
fn the_default_enterprise_has_the_shape_of_a_real_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = seeded(&dir, "demo.db", 7, 3_000);
    let details = all_details(&store);
    let agents: Vec<_> = details.iter().map(|d| &d.agent).collect();
    let people = all_people(&store);
    let now = anchor();
    let month_ago = now - TimeDelta::days(30);

    assert_eq!(agents.len(), 3_000);
    assert_eq!(people.len(), 800);

    // About 20% unowned, many of them discovered by scans.
    let unowned: Vec<_> = agents.iter().filter(|a| a.owner.is_none()).collect();
    let share = unowned.len() as f64 / agents.len() as f64;
    assert!((0.15..=0.25).contains(&share), "unowned share {share}");
    let discovered = unowned
        .iter()
        .filter(|a| a.source == AgentSource::Discovered)
        .count();
    assert!(
        discovered * 3 >= unowned.len(),
        "only {discovered} of {} unowned agents were discovered",
        unowned.len()
    );

    // Sub-agents and instances hang under an agent of the same enterprise, with its owner.
    let by_id: HashMap<&str, _> = agents.iter().map(|a| (a.id.as_str(), *a)).collect();
    for kind in [AgentKind::SubAgent, AgentKind::Instance] {
        let children: Vec<_> = agents.iter().filter(|a| a.kind == kind).collect();
        assert!(children.len() > 50, "only {} {kind:?}", children.len());
        for child in children {
            let parent_id = child.parent_id.as_deref().expect("a child has a parent");
            let parent = by_id.get(parent_id).expect("the parent exists");
            assert_eq!(parent.kind, AgentKind::Agent);
            assert_eq!(parent.owner, child.owner);
            assert_eq!(parent.team, child.team);
        }
    }
    assert!(
        agents
            .iter()
            .filter(|a| a.kind == AgentKind::Agent)
            .all(|a| a.parent_id.is_none())
    );

    // Statuses.
    let count = |status| agents.iter().filter(|a| a.status == status).count();
    assert!(count(AgentStatus::Suspended) >= 30);
    assert!(count(AgentStatus::Decommissioned) >= 30);
    assert!(count(AgentStatus::Active) >= 2_400);
    // Decommissioned agents keep their record but hold nothing alive.
    for d in details
        .iter()
        .filter(|d| d.agent.status == AgentStatus::Decommissioned)
    {
        assert!(d.agent.grants.is_empty(), "{} keeps grants", d.agent.id);
        assert!(d.credentials.iter().all(|c| c.disabled_at.is_some()));
    }
    for d in details
        .iter()
        .filter(|d| d.agent.status == AgentStatus::Suspended)
    {
        assert!(d.credentials.iter().all(|c| c.disabled_at.is_some()));
    }
    // Children of a decommissioned agent are decommissioned too.
    for a in &agents {
        if let Some(parent) = a.parent_id.as_deref()
            && by_id[parent].status == AgentStatus::Decommissioned
        {
            assert_eq!(a.status, AgentStatus::Decommissioned);
        }
    }

    // A few legacy agents on static secrets; most on public keys.
    let static_agents = agents.iter().filter(|a| a.static_secret).count();
    assert!(
        (30..=300).contains(&static_agents),
        "{static_agents} agents on static secrets"
    );
    let with_key = details
        .iter()
        .filter(|d| {
            d.credentials
                .iter()
                .any(|c| c.kind == CredentialKind::PublicKey)
        })
        .count();
    assert!(with_key * 10 >= agents.len() * 7, "{with_key} with a key");

    // People who left still own agents; everyone but the CEO has a manager.
    let left: HashSet<&str> = people
        .iter()
        .filter(|p| !p.active)
        .map(|p| p.email.as_str())
        .collect();
    assert!(left.len() >= 20, "{} people left", left.len());
    let orphaned = agents
        .iter()
        .filter(|a| a.owner.as_deref().is_some_and(|o| left.contains(o)))
        .count();
    assert!(orphaned >= 20, "{orphaned} agents owned by people who left");
    // They are orphaned (unowned work) everywhere: the record says when the owner left, no
    // earlier than the owner joined, and every leaver's leave is dated.
    for a in agents
        .iter()
        .filter(|a| a.owner.as_deref().is_some_and(|o| left.contains(o)))
    {
        assert!(
            a.orphaned(),
            "{} is owned by a leaver but not orphaned",
            a.id
        );
    }
    assert!(
        agents
            .iter()
            .filter(|a| a.owner_left_at.is_some())
            .all(|a| a.owner.as_deref().is_some_and(|o| left.contains(o))),
        "only leavers' agents are orphaned"
    );
    for p in people.iter().filter(|p| !p.active) {
        let at = p
            .left_at
            .unwrap_or_else(|| panic!("{} left with no date", p.email));
        assert!(at >= p.created_at, "{} left before joining", p.email);
    }
    assert!(
        people
            .iter()
            .filter(|p| p.active)
            .all(|p| p.left_at.is_none())
    );
    let emails: HashSet<&str> = people.iter().map(|p| p.email.as_str()).collect();
    assert_eq!(emails.len(), people.len(), "emails are unique");
    let without_manager = people.iter().filter(|p| p.manager.is_none()).count();
    assert_eq!(without_manager, 1, "only the CEO has no manager");
    for p in &people {
        if let Some(m) = &p.manager {
            assert!(emails.contains(m.as_str()));
        }
    }
    let holders = |role| people.iter().filter(|p| p.has_role(role)).count();
    assert!((2..=8).contains(&holders(Role::Admin)));
    assert!((2..=10).contains(&holders(Role::Responder)));
    assert!((2..=8).contains(&holders(Role::Auditor)));

    // Teams and environments.
    let teams: HashSet<&str> = agents.iter().map(|a| a.team.as_str()).collect();
    assert!(teams.len() >= 30, "{} teams", teams.len());
    let environments: HashSet<&str> = agents.iter().map(|a| a.environment.as_str()).collect();
    assert_eq!(
        environments,
        HashSet::from(["production", "staging", "dev"])
    );

    // Names are unique and descriptions are one sentence.
    let names: HashSet<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names.len(), agents.len(), "agent names are unique");
    for a in &agents {
        assert!(a.description.ends_with('.'), "{:?}", a.description);
        assert!(a.id.starts_with("ag_") && a.id.len() == 19, "{}", a.id);
        assert!(a.created_at <= now);
        assert!(a.last_seen_at.is_none_or(|t| t <= now && t >= a.created_at));
    }

    // Usage over 120 days: most scopes used lately, a good share unused for 30+ days.
    let grants: Vec<_> = agents.iter().flat_map(|a| a.grants.iter()).collect();
    assert!(grants.len() >= 5_000, "{} grants", grants.len());
    let unused = grants
        .iter()
        .filter(|g| g.last_used_at.is_none_or(|t| t < month_ago))
        .count();
    let never = grants.iter().filter(|g| g.last_used_at.is_none()).count();
    assert!(unused * 10 >= grants.len(), "{unused} unused grants");
    assert!(unused * 2 <= grants.len(), "{unused} unused grants");
    assert!(never > 0);
    for g in &grants {
        steward::model::text::check_scope(&g.scope).unwrap();
        assert!(g.granted_at <= now);
        if let Some(used) = g.last_used_at {
            assert!(used >= g.granted_at && used <= now && used >= now - TimeDelta::days(121));
        }
        if let Some(certified) = g.last_certified_at {
            assert!(certified >= g.granted_at && certified <= now);
        }
    }
    assert!(grants.iter().any(|g| g.last_certified_at.is_some()));
    assert!(grants.iter().any(|g| g.last_certified_at.is_none()));
    let systems: HashSet<&str> = grants
        .iter()
        .filter_map(|g| g.scope.split('.').next())
        .collect();
    for system in [
        "crm",
        "github",
        "jira",
        "s3",
        "hrdb",
        "payments",
        "slack",
        "snowflake",
        "salesforce",
        "zendesk",
        "pagerduty",
    ] {
        assert!(systems.contains(system), "no grants on {system}");
    }
}

#[test]
fn credentials_hold_public_keys_and_only_hashes_of_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = seeded(&dir, "demo.db", 7, 1_500);
    let path = store.sqlite_path().expect("a SQLite store").to_path_buf();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn
        .prepare("SELECT kind, fingerprint, material FROM credentials")
        .unwrap();
    let rows: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut kinds = HashMap::new();
    for (kind, fingerprint, material) in rows {
        *kinds.entry(kind.clone()).or_insert(0) += 1;
        match kind.as_str() {
            "public-key" => {
                let jwk: serde_json::Value = serde_json::from_str(&material).unwrap();
                assert_eq!(jwk["kty"], "OKP");
                assert_eq!(jwk["crv"], "Ed25519");
                let x = jwk["x"].as_str().unwrap();
                assert_eq!(x.len(), 43, "32 bytes in base64url");
                assert!(
                    x.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                );
                // The fingerprint is the RFC 7638 thumbprint of the key.
                let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
                let digest = Sha256::digest(canonical.as_bytes());
                assert_eq!(fingerprint, base64url(&digest));
                assert_eq!(jwk["kid"], fingerprint.as_str());
            }
            "static-secret" => {
                // Only a SHA-256 (hex) is stored, never the secret.
                assert_eq!(material.len(), 64);
                assert!(material.chars().all(|c| c.is_ascii_hexdigit()));
                assert_eq!(fingerprint, format!("sha256:{}", &material[..16]));
            }
            other => panic!("unexpected credential kind {other}"),
        }
    }
    assert!(kinds["public-key"] > 1_000);
    assert!(kinds["static-secret"] > 10);
}

/// RFC 4648 base64url without padding, independent of the implementation under test.
fn base64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = String::new();
    for &b in bytes {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(A[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(A[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

#[test]
fn agents_scale_exactly_and_people_follow() {
    let dir = tempfile::tempdir().unwrap();
    for (i, n) in [0u32, 1, 17, 250].into_iter().enumerate() {
        let (store, personas) = seeded(&dir, &format!("s{i}.db"), 5, n);
        assert_eq!(all_agents(&store).len(), n as usize, "--agents {n}");
        assert_eq!(
            all_people(&store).len() as u64,
            demo::people_for(n),
            "people for {n} agents"
        );
        assert_eq!(personas.len(), 4);
        assert!(store.audit_verify().unwrap().ok);
    }
}

#[test]
fn seeding_refuses_a_store_that_holds_data() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = seeded(&dir, "demo.db", 7, 100);
    let err = demo::seed_at(&store, 7, 100, anchor()).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    assert_eq!(all_agents(&store).len(), 100);
}

#[test]
fn the_audit_chain_verifies_and_records_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = seeded(&dir, "demo.db", 7, 3_000);
    let verification = store.audit_verify().unwrap();
    assert!(verification.ok, "{:?}", verification.first_broken);
    let events = store.audit_page(&AuditQuery::default()).unwrap().events;
    let seeded: Vec<_> = events.iter().filter(|e| e.action == "demo.seed").collect();
    assert_eq!(seeded.len(), 1);
    let details = &seeded[0].details;
    assert_eq!(details["seed"], 7);
    assert_eq!(details["agents"], 3_000);
    assert_eq!(details["people"], 800);
    assert!(details["unowned"].as_u64().unwrap() > 0);
    assert_eq!(seeded[0].actor.id, "steward-demo");
    // One token per persona, each in the log.
    let issued = events.iter().filter(|e| e.action.contains("token")).count();
    assert_eq!(issued, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personas_sign_in_to_a_real_registry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.db");
    let (store, personas) = tokio::task::spawn_blocking(move || {
        let store = SqliteStore::open(&path, OpenMode::CreateIfMissing).unwrap();
        let personas = demo::seed_at(&store, 7, 3_000, anchor()).unwrap();
        (Arc::new(store), personas)
    })
    .await
    .unwrap();
    let served = support::Launch::prepared(store.clone())
        .in_dir(dir)
        .serve()
        .await;
    let url = served.url.clone();

    let expected: [(&str, &str, Option<Role>); 4] = [
        ("admin", "ada.admin@example.com", Some(Role::Admin)),
        ("owner", "omar.owner@example.com", None),
        (
            "responder",
            "rosa.responder@example.com",
            Some(Role::Responder),
        ),
        ("auditor", "aubrey.auditor@example.com", Some(Role::Auditor)),
    ];
    assert_eq!(
        personas.keys().map(String::as_str).collect::<Vec<_>>(),
        ["admin", "auditor", "owner", "responder"]
    );
    for (key, email, role) in expected {
        let credential = &personas[key];
        assert_eq!(credential.email, email);
        let client = Client::new(&url, Some(Secret::new(credential.token.clone()))).unwrap();
        let me = client.me().await.unwrap();
        assert_eq!(me.person.email, email);
        assert!(me.person.active);
        assert_eq!(me.person.roles, role.into_iter().collect::<Vec<_>>());
    }
    // A wrong token is refused, so the check above is meaningful.
    let stranger = Client::new(&url, Some(Secret::new("stw_0000"))).unwrap();
    assert_eq!(stranger.me().await.unwrap_err().status(), Some(401));

    // The owner sees their own 8 to 15 agents: one suspended, some with unused scopes.
    let owner = Client::new(&url, Some(Secret::new(personas["owner"].token.clone()))).unwrap();
    let mine = owner
        .list_agents(&AgentQuery {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap()
        .agents;
    assert!((8..=15).contains(&mine.len()), "owner has {}", mine.len());
    assert!(
        mine.iter()
            .all(|a| a.owner.as_deref() == Some("omar.owner@example.com"))
    );
    assert_eq!(
        mine.iter()
            .filter(|a| a.status == AgentStatus::Suspended)
            .count(),
        1
    );
    let month_ago = anchor() - TimeDelta::days(30);
    let with_unused = mine
        .iter()
        .filter(|a| {
            a.grants
                .iter()
                .any(|g| g.last_used_at.is_none_or(|t| t < month_ago))
        })
        .count();
    assert!(with_unused >= 3, "{with_unused} of the owner's agents");
    // They are spread through the inventory, not bunched at its start.
    let all = all_agents(store.as_ref());
    let first_page: Vec<_> = all.iter().take(20).collect();
    assert!(
        first_page
            .iter()
            .filter(|a| a.owner.as_deref() == Some("omar.owner@example.com"))
            .count()
            < 5
    );

    drop(store);
    served.stop().await;
}

#[test]
fn steward_server_demo_writes_a_private_credentials_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let credentials = dir.path().join("personas.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["server", "--demo", "--seed", "3", "--agents", "500"])
        .arg("--demo-credentials")
        .arg(&credentials)
        .arg("--db")
        .arg(&db)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let ready = first_line
        .trim()
        .strip_prefix("listening on ")
        .map(str::to_string);

    let result = std::panic::catch_unwind(|| {
        let url = ready.expect("the server announces where it listens");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&credentials)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "mode {:o}", mode & 0o777);
        }
        let personas: Personas =
            serde_json::from_slice(&std::fs::read(&credentials).unwrap()).unwrap();
        assert_eq!(
            personas.keys().map(String::as_str).collect::<Vec<_>>(),
            ["admin", "auditor", "owner", "responder"]
        );
        for credential in personas.values() {
            assert!(credential.email.ends_with("@example.com"));
            assert!(credential.token.starts_with("stw_"));
        }
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let client =
                Client::new(&url, Some(Secret::new(personas["auditor"].token.clone()))).unwrap();
            let me = client.me().await.unwrap();
            assert_eq!(me.person.email, "aubrey.auditor@example.com");
            let page = client
                .list_agents(&AgentQuery {
                    limit: Some(1000),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(page.agents.len(), 500);
        });
    });
    child.kill().unwrap();
    child.wait().unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }

    // Seeding again into the same file is refused: the demo seeds only an empty store.
    let again = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["server", "--demo", "--agents", "10"])
        .arg("--demo-credentials")
        .arg(dir.path().join("again.json"))
        .arg("--db")
        .arg(&db)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already holds data"), "{stderr}");
    assert!(!dir.path().join("again.json").exists());
}

#[test]
fn a_storage_failure_mid_seed_stops_the_generator_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // 100,000 agents are five agent batches after the people: fail on the third batch, while
    // the generator still has batches to send.
    let store = fresh_store(&dir, "full.db");
    // A real SQLite store whose batches fail from the third on, as a full disk would.
    let batches = std::sync::atomic::AtomicUsize::new(0);
    let write_batch = |batch: &steward::registry::store::SeedBatch| {
        let n = batches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n + 1 >= 3 {
            return Err(steward::registry::store::StoreError::Internal(
                "the disk holding the database is full".into(),
            ));
        }
        store.seed(batch)
    };
    let err = demo::seed_with(&store, &write_batch, 7, 100_000, anchor()).unwrap_err();
    assert!(err.to_string().contains("disk"), "{err}");
    // No personas were issued and no seed was recorded for the half-written enterprise.
    let events = store.audit_page(&AuditQuery::default()).unwrap().events;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        batches.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "seeding stopped at the first failure"
    );
}

/// Every seeded agent has its registration event, dated when it was created; the chain still
/// verifies with history dated in the past.
#[test]
fn every_seeded_agent_has_its_registration_event_dated_at_its_creation() {
    use steward::registry::store::timeline::{TimelineFilter, TimelineStore};
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = seeded(&dir, "demo.db", 5, 600);
    let agents = all_agents(&store);
    let mut registered = HashMap::new();
    let mut after = None;
    loop {
        let page = store
            .audit_page(&AuditQuery {
                after,
                limit: Some(5000),
                action: Some("agent.register".into()),
                ..Default::default()
            })
            .unwrap();
        for e in &page.events {
            registered.insert(e.target.clone().unwrap(), e.time.clone());
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(registered.len(), agents.len(), "one registration per agent");
    for a in &agents {
        let time = &registered[&a.id];
        assert_eq!(
            DateTime::parse_from_rfc3339(time).unwrap(),
            a.created_at,
            "{} registered when it was created",
            a.name
        );
    }
    assert!(store.audit_verify().unwrap().ok);
    // A second backfill finds nothing left to do.
    assert_eq!(
        store
            .backfill_registrations(&steward::model::Actor::system("again"))
            .unwrap(),
        0
    );
    // The timeline of one agent ends (oldest) with its registration.
    let page = store
        .timeline(&TimelineFilter {
            agent: Some(agents[0].id.clone()),
            limit: 500,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.entries.last().unwrap().action, "agent.register");
}

/// The whole demo (as `steward demo` seeds it): review decisions are dated when they were made,
/// and exchanges — expired and live — give the activity view and a revoke real numbers.
#[test]
fn the_demo_has_dated_decisions_and_an_exchange_history() {
    use steward::registry::store::timeline::{TimelineFilter, TimelineStore};
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(&dir, "demo.db");
    let (_, campaign) = demo::seed_with_campaign(&store, 11, 600).unwrap();
    assert!(campaign.unwrap().decided > 0);
    let today = Utc::now().date_naive();
    let mut decisions = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .audit_page(&AuditQuery {
                after,
                limit: Some(5000),
                action: Some("review.decide".into()),
                ..Default::default()
            })
            .unwrap();
        decisions.extend(page.events);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert!(!decisions.is_empty());
    let days: HashSet<_> = decisions
        .iter()
        .map(|e| DateTime::parse_from_rfc3339(&e.time).unwrap().date_naive())
        .collect();
    assert!(!days.contains(&today), "no decision is dated today");
    assert!(
        days.len() > 5,
        "decisions spread over the campaign: {days:?}"
    );
    assert!(store.audit_verify().unwrap().ok);

    // Exchanges, newest first, each with a person and the agents that acted.
    let page = store
        .timeline(&TimelineFilter {
            include_exchanges: true,
            actor_kind: Some(steward::model::ActorKind::Agent),
            limit: 500,
            ..Default::default()
        })
        .unwrap();
    let exchanges: Vec<_> = page
        .entries
        .iter()
        .filter(|e| e.action == "token.exchange")
        .collect();
    assert!(exchanges.len() > 20, "{}", exchanges.len());
    assert!(
        exchanges
            .iter()
            .all(|e| e.chain.len() >= 2 && e.chain[0].contains('@'))
    );
    // Some tokens are live: revoking their agent kills them.
    let live = store.live_tokens();
    let now = Utc::now().timestamp();
    let agent = all_agents(&store)
        .into_iter()
        .find(|a| !live.issued_to(&a.id, now).is_empty())
        .expect("an agent with a live token");
    let revoked = store
        .revoke_agent(
            &steward::model::Actor::human("rita@example.com"),
            &agent.id,
            Some("drill"),
            &|_| Ok(()),
        )
        .unwrap();
    assert!(revoked.tokens_revoked >= 1, "{revoked:?}");
    assert!(revoked.latest_token_expiry.unwrap() > Utc::now());
}

/// The demo's flags tell a true story: the seeder stores history and feeds today's planted
/// events through the real engine; every open flag then comes from a detector, carries its
/// evidence (observed, baseline, window, the events), is about an agent of the story, and
/// every planted story raised its flag. The random FLAGS labels are gone.
#[test]
fn every_demo_flag_is_explainable_from_its_evidence() {
    use steward::model::flag::{FlagKind, FlagQuery, FlagState};
    use steward::registry::behaviour::{Behaviour, BehaviourSettings};
    use steward::registry::demo_activity::{plant_story, seed_history};
    use steward::registry::store::{CatalogueStore, FlagStore};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(fresh_store(&dir, "story.db"));
    demo::seed(store.as_ref(), 7, 600).unwrap();
    let now = Utc::now();
    let plan = seed_history(store.as_ref(), 7, now).unwrap();
    // No agent carries a made-up label.
    assert!(
        all_agents(store.as_ref())
            .iter()
            .all(|a| a.flags.is_empty()),
        "the demo draws no random flag labels"
    );
    assert!(
        !plan.spikes.is_empty()
            && plan.prober.is_some()
            && plan.new_audience.is_some()
            && plan.admin_scope.is_some(),
        "the story has every part: {plan:?}"
    );
    let store_dyn: Arc<dyn Store> = store.clone();
    let behaviour = Behaviour::start(store_dyn, BehaviourSettings::default());
    plant_story(&behaviour, &plan);

    let flags = store
        .list_flags(&FlagQuery::default(), &Visibility::All)
        .unwrap();
    assert!(!flags.is_empty());
    let mut story_agents: HashSet<&str> = plan.spikes.iter().map(|u| u.agent_id.as_str()).collect();
    let prober = plan.prober.as_ref().unwrap();
    let (fresh_aud, fresh_scope, audience) = plan.new_audience.as_ref().unwrap();
    let (admin_user, admin_scope, admin_audience) = plan.admin_scope.as_ref().unwrap();
    // Every planted exchange is one the registry would accept: a granted scope, addressed to
    // the audience of the resource that owns it; the admin scope's history never used it.
    for (u, scope, aud) in [
        (fresh_aud, fresh_scope, audience),
        (admin_user, admin_scope, admin_audience),
    ] {
        let agent = store.agent_detail(&u.agent_id).unwrap().unwrap().agent;
        assert_eq!(agent.status, steward::model::AgentStatus::Active);
        assert!(
            agent.grants.iter().any(|g| &g.scope == scope),
            "{} is granted {scope}: {:?}",
            u.agent_id,
            agent.grants
        );
        let info = store.scope_catalogue(std::slice::from_ref(scope)).unwrap();
        assert!(info[0].audiences.contains(aud), "{scope} is for {aud}");
        assert_ne!(&u.scope, scope, "its history never used {scope}");
        assert_ne!(
            scope.as_str(),
            steward::registry::demo_catalogue::PER_USE_SCOPE,
            "a per-use scope's exchange waits for approval"
        );
    }
    let tier = store
        .scope_catalogue(std::slice::from_ref(admin_scope))
        .unwrap()[0]
        .tier;
    assert!(
        matches!(
            tier,
            steward::model::catalogue::Tier::High | steward::model::catalogue::Tier::Critical
        ),
        "{admin_scope} is an admin scope: {tier:?}"
    );
    story_agents.extend([
        prober.agent_id.as_str(),
        fresh_aud.agent_id.as_str(),
        admin_user.agent_id.as_str(),
    ]);
    for f in &flags {
        assert_eq!(f.state, FlagState::Open, "{f:?}");
        assert!(
            FlagKind::ALL.contains(&f.kind),
            "a detector's kind: {:?}",
            f.kind
        );
        assert!(
            !f.evidence.observed.is_empty() && !f.evidence.baseline.is_empty(),
            "observed vs baseline: {f:?}"
        );
        assert!(
            !f.evidence.events.is_empty(),
            "the triggering events: {f:?}"
        );
        assert!(f.evidence.window_from <= f.evidence.window_to, "{f:?}");
        assert!(!f.summary.is_empty());
        assert!(
            f.evidence.events.iter().all(|e| e.agent_id == f.agent_id),
            "evidence about the flagged agent: {f:?}"
        );
        assert!(
            story_agents.contains(f.agent_id.as_str()),
            "a flag outside the planted story (an ordinary morning must stay quiet): {f:?}"
        );
    }
    let has =
        |agent: &str, kind: FlagKind| flags.iter().any(|f| f.agent_id == agent && f.kind == kind);
    for u in &plan.spikes {
        assert!(
            has(&u.agent_id, FlagKind::RateSpike),
            "3 AM spike of {}",
            u.agent_id
        );
        let spike = flags
            .iter()
            .find(|f| f.agent_id == u.agent_id && f.kind == FlagKind::RateSpike)
            .unwrap();
        assert!(
            spike
                .evidence
                .events
                .iter()
                .all(|e| e.at.format("%H").to_string() == "03"),
            "the spike's events are at 3 AM: {spike:?}"
        );
    }
    assert!(has(&prober.agent_id, FlagKind::RefusedBurst));
    let burst = flags
        .iter()
        .find(|f| f.kind == FlagKind::RefusedBurst)
        .unwrap();
    assert!(
        burst.refused_only,
        "probing never counts against the agent's own acts"
    );
    assert!(has(&fresh_aud.agent_id, FlagKind::NewAudience));
    assert!(
        flags
            .iter()
            .any(|f| f.kind == FlagKind::NewAudience && f.summary.contains(audience.as_str())),
        "the new audience is named"
    );
    assert!(has(&admin_user.agent_id, FlagKind::FirstScope));
    let first = flags
        .iter()
        .find(|f| f.kind == FlagKind::FirstScope && f.summary.contains(admin_scope.as_str()))
        .expect("the admin scope is named");
    assert!(
        first.severity >= steward::model::flag::Severity::High,
        "as severe as the scope's tier: {first:?}"
    );
    // Print the story (agent, detector, evidence) for the record.
    for f in &flags {
        eprintln!(
            "{} {} {}: {} | observed: {} | baseline: {}",
            f.agent_id,
            f.kind.as_str(),
            f.severity.as_str(),
            f.summary,
            f.evidence.observed,
            f.evidence.baseline
        );
    }
}

/// The demo builds the trigram text index once after its last batch: search finds seeded
/// agents by a piece of their name, agents registered afterwards are indexed by the trigger
/// again, and a seed cut short (the trigger still dropped) is repaired when the store opens.
#[test]
fn search_finds_seeded_agents_and_a_cut_short_seed_is_repaired_at_open() {
    use steward::registry::store::Visibility;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = seeded(&dir, "search.db", 7, 300);
    let find = |store: &SqliteStore, q: &str| -> Vec<String> {
        store
            .list_agents(
                &AgentQuery {
                    q: Some(q.to_string()),
                    limit: Some(1000),
                    ..Default::default()
                },
                &Visibility::All,
            )
            .unwrap()
            .agents
            .into_iter()
            .map(|a| a.id)
            .collect()
    };
    let agents = all_agents(&store);
    let some = &agents[agents.len() / 2];
    let piece: String = some.name.chars().skip(1).take(6).collect();
    assert!(
        find(&store, &piece).contains(&some.id),
        "{piece} finds {}",
        some.id
    );
    let trigger = |path: &std::path::Path| -> bool {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'trigger'
                                AND name = 'agents_text_insert')",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let path = store.sqlite_path().expect("a SQLite store").to_path_buf();
    assert!(trigger(&path), "the insert trigger is back after seeding");
    drop(store);
    // A seed cut short: the trigger dropped, the index emptied.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP TRIGGER agents_text_insert;
             INSERT INTO agents_text(agents_text) VALUES ('delete-all');",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, OpenMode::MustExist).unwrap();
    assert!(trigger(&path), "repaired at open");
    assert!(find(&store, &piece).contains(&some.id), "reindexed at open");
}
