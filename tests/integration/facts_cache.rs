//! The token facts' in-memory copy (store/sqlite_facts.rs) never answers stale: against a real
//! registry, each write that changes what an exchange reads is seen by the very next exchange
//! (the first exchange of each test fills the copy). The refusals asserted are the ones the
//! facts produce (not the live index's, which would also refuse some of these).

use crate::support;

use serde_json::json;
use support::Registry;

use steward::registry::store::prelude::*;

use support::exchange::*;

#[tokio::test]
async fn a_revoke_is_refused_by_the_very_next_exchange() {
    let reg = Registry::start().await;
    let bot = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;
    let person = person_token(&reg, &reg.owner).await;
    exchanged(&reg, &person, &bot, "crm.orders:read").await;
    exchanged(&reg, &person, &bot, "crm.orders:read").await;
    reg.post(
        &format!("/v1/agents/{}/revoke", bot.id),
        &reg.responder,
        json!({"reason": "facts cache test"}),
    )
    .await
    .expect(200);
    let (status, error, description) =
        error_of(&exchange(&reg, &person, &bot, "crm.orders:read").await);
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_client"),
        "{description}"
    );
    // The agent's status as read with its facts, not the live index's block.
    assert!(
        description.contains("cannot obtain or use tokens"),
        "{description}"
    );
}

#[tokio::test]
async fn a_removed_grant_is_refused_by_the_very_next_exchange() {
    let reg = Registry::start().await;
    let bot = agent(
        &reg,
        &reg.owner.email,
        &["crm.orders:read", "crm.orders:write"],
        None,
    )
    .await;
    let person = person_token(&reg, &reg.owner).await;
    exchanged(&reg, &person, &bot, "crm.orders:read").await;
    reg.call(
        "DELETE",
        &format!("/v1/agents/{}/grants/crm.orders:read", bot.id),
        Some(&reg.owner.token),
        None,
    )
    .await
    .expect(200);
    let (status, error, description) =
        error_of(&exchange(&reg, &person, &bot, "crm.orders:read").await);
    assert_eq!(
        (status, error.as_str()),
        (400, "invalid_scope"),
        "{description}"
    );
    assert!(description.contains("is not granted"), "{description}");
    // The other grant is untouched; granted again, the scope passes at once.
    exchanged(&reg, &person, &bot, "crm.orders:write").await;
    reg.post(
        &format!("/v1/agents/{}/grants", bot.id),
        &reg.admin,
        json!({"scope": "crm.orders:read"}),
    )
    .await
    .expect(201);
    exchanged(&reg, &person, &bot, "crm.orders:read").await;
}

#[tokio::test]
async fn a_removed_delegation_is_refused_by_the_very_next_exchange() {
    let reg = Registry::start().await;
    let bot = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;
    let id = delegate(&reg, &reg.other, &bot.id, &["crm.orders:read"], 3600)
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let others = person_token(&reg, &reg.other).await;
    exchanged(&reg, &others, &bot, "crm.orders:read").await;
    reg.call(
        "DELETE",
        &format!("/v1/me/delegations/{id}"),
        Some(&reg.other.token),
        None,
    )
    .await;
    let (status, error, description) =
        error_of(&exchange(&reg, &others, &bot, "crm.orders:read").await);
    assert_eq!(
        (status, error.as_str()),
        (400, "invalid_grant"),
        "{description}"
    );
    assert!(description.contains("may not act for"), "{description}");
}

#[tokio::test]
async fn an_owner_change_moves_the_owners_consent_at_once() {
    let reg = Registry::start().await;
    let bot = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;
    let owners = person_token(&reg, &reg.owner).await;
    let others = person_token(&reg, &reg.other).await;
    exchanged(&reg, &owners, &bot, "crm.orders:read").await;
    assert_eq!(
        error_of(&exchange(&reg, &others, &bot, "crm.orders:read").await).1,
        "invalid_grant"
    );
    reg.call(
        "PUT",
        &format!("/v1/agents/{}/owner", bot.id),
        Some(&reg.admin.token),
        Some(&json!({"owner": reg.other.email})),
    )
    .await
    .expect(200);
    exchanged(&reg, &others, &bot, "crm.orders:read").await;
    let (_, error, description) = error_of(&exchange(&reg, &owners, &bot, "crm.orders:read").await);
    assert_eq!(error, "invalid_grant", "{description}");
    assert!(description.contains("may not act for"), "{description}");
}

#[tokio::test]
async fn a_disabled_key_is_refused_by_the_very_next_exchange() {
    let reg = Registry::start().await;
    let bot = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;
    let person = person_token(&reg, &reg.owner).await;
    exchanged(&reg, &person, &bot, "crm.orders:read").await;
    reg.post(
        &format!(
            "/v1/agents/{}/credentials/{}/disable",
            bot.id, bot.credential
        ),
        &reg.admin,
        json!({}),
    )
    .await
    .expect(200);
    let (status, error, description) =
        error_of(&exchange(&reg, &person, &bot, "crm.orders:read").await);
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_client"),
        "{description}"
    );
    assert!(description.contains("disabled"), "{description}");
}

#[tokio::test]
async fn a_catalogue_change_moves_the_audience_binding_at_once() {
    let reg = Registry::start().await;
    let bot = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;
    let person = person_token(&reg, &reg.owner).await;
    exchanged(&reg, &person, &bot, "crm.orders:read").await;
    let import = |audience: &str| {
        json!({"resources": [{"id": "crm", "name": "crm", "owner": null,
            "audiences": [audience],
            "scopes": [{"name": "crm.orders:read", "tier": "low"}]}]})
    };
    reg.call(
        "PUT",
        "/v1/resources",
        Some(&reg.admin.token),
        Some(&import("https://crm2.example.com")),
    )
    .await
    .expect(200);
    let (status, error, description) =
        error_of(&exchange(&reg, &person, &bot, "crm.orders:read").await);
    assert_eq!(
        (status, error.as_str()),
        (400, "invalid_target"),
        "{description}"
    );
    let reply = exchange_to(
        &reg,
        &person,
        &bot,
        "crm.orders:read",
        "https://crm2.example.com",
    )
    .await;
    reply.expect(200);
}

/// The store's answers themselves, write by write: each read right after a write is the
/// database's, though the copy held the earlier answer.
#[tokio::test]
async fn each_write_is_seen_by_the_next_facts_read() {
    let reg = Registry::start().await;
    let store = reg.store.clone();
    let bot = agent(
        &reg,
        &reg.owner.email,
        &["crm.orders:read", "mail:send"],
        None,
    )
    .await;
    let facts = |s: &steward::registry::store::sqlite::SqliteStore| {
        s.agent_token_facts(&bot.id).unwrap().unwrap()
    };
    // Twice: the second answer comes from the copy.
    assert_eq!(facts(&store).scopes, vec!["crm.orders:read", "mail:send"]);
    assert_eq!(facts(&store).scopes, vec!["crm.orders:read", "mail:send"]);
    assert!(store.facts_cache_usage().agents >= 1);

    reg.call(
        "DELETE",
        &format!("/v1/agents/{}/grants/mail:send", bot.id),
        Some(&reg.owner.token),
        None,
    )
    .await
    .expect(200);
    assert_eq!(facts(&store).scopes, vec!["crm.orders:read"]);

    reg.post(
        &format!(
            "/v1/agents/{}/credentials/{}/disable",
            bot.id, bot.credential
        ),
        &reg.admin,
        json!({}),
    )
    .await
    .expect(200);
    assert!(facts(&store).credentials.iter().all(|c| c.disabled));

    // A leaver: the subject person read by exchanges.
    let leaver = reg.add_person("leaver@example.com", &[]).await;
    assert!(store.person(&leaver.email).unwrap().unwrap().active);
    assert!(store.person(&leaver.email).unwrap().unwrap().active);
    reg.call(
        "PATCH",
        "/v1/people/leaver@example.com",
        Some(&reg.admin.token),
        Some(&json!({"active": false})),
    )
    .await
    .expect(200);
    assert!(!store.person(&leaver.email).unwrap().unwrap().active);

    reg.post(
        &format!("/v1/agents/{}/revoke", bot.id),
        &reg.responder,
        json!({"reason": "facts cache test"}),
    )
    .await
    .expect(200);
    assert_ne!(facts(&store).status, steward::model::AgentStatus::Active);
}

/// A grant's end is checked against the clock at each read: it is gone at that instant from
/// the copy too, before any sweep removes it (and without any write).
#[tokio::test]
async fn a_grant_ends_at_its_expiry_before_any_sweep() {
    let reg = Registry::start().await;
    let bot = agent(
        &reg,
        &reg.owner.email,
        &["crm.orders:read", "mail:send"],
        None,
    )
    .await;
    let person = person_token(&reg, &reg.owner).await;
    let end = reg.clock.now() + chrono::Duration::seconds(2);
    reg.sql()
        .execute(
            "UPDATE grants SET expires_at = ?1 WHERE agent_id = ?2 AND scope = 'crm.orders:read'",
            rusqlite::params![steward::model::audit::audit_time(end), bot.id],
        )
        .unwrap();
    // Read (and kept) while the grant holds.
    exchanged(&reg, &person, &bot, "crm.orders:read").await;
    let kept = reg.store.facts_cache_usage().agents;
    assert!(kept >= 1);
    // The registry's clock passes the grant's end (no sleep: see registry/clock.rs).
    reg.clock.advance(chrono::Duration::milliseconds(2200));
    let (_, error, description) = error_of(&exchange(&reg, &person, &bot, "crm.orders:read").await);
    assert_eq!(error, "invalid_scope", "{description}");
    assert!(description.contains("is not granted"), "{description}");
}
