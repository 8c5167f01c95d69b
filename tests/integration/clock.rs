//! The registry's injectable clock (registry/clock.rs): a registry on a manual clock dates its
//! records by that clock and decides expiry by it — token lifetimes, introspection, API tokens
//! and invitations — so that tests move time instead of sleeping. The clock is reachable only
//! through the Rust API.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};
use steward::registry::clock::Clock;

use crate::support::{Launch, Served, call};

/// A moment far from the machine's time, so that any record or decision still read from the
/// system clock shows.
fn start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 4, 10, 0, 0).unwrap()
}

async fn manual() -> Served {
    Launch::new().clock(Clock::manual(start())).serve().await
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT payload");
    serde_json::from_slice(&B64.decode(payload).expect("base64url")).expect("JSON claims")
}

async fn introspect(r: &Served, token: &str) -> Value {
    let reply = r
        .http
        .post(format!("{}/oauth/introspect", r.url))
        .bearer_auth(&r.admin.token)
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect");
    assert_eq!(reply.status().as_u16(), 200);
    reply.json().await.expect("a JSON answer")
}

#[tokio::test]
async fn records_are_dated_by_the_registry_clock() {
    let r = manual().await;
    let reply = call(
        &r.http,
        &r.url,
        "POST",
        "/v1/agents",
        Some(&r.admin.token),
        Some(&json!({"name": "dated", "owner": null, "scopes": []})),
    )
    .await;
    let agent = reply.expect(201).clone();
    assert!(
        agent["created_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2031-05-04T10:00:00")),
        "{agent}"
    );
    let conn = crate::support::sql_at(&r.db);
    let time: String = conn
        .query_row(
            "SELECT time FROM audit_events ORDER BY seq DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(time.starts_with("2031-05-04T10:00:00"), "{time}");
    // Moved: the next record carries the new time.
    r.clock.advance(Duration::days(3));
    call(
        &r.http,
        &r.url,
        "POST",
        &format!("/v1/agents/{}/revoke", agent["id"].as_str().unwrap()),
        Some(&r.admin.token),
        Some(&json!({"reason": "clock test"})),
    )
    .await
    .expect(200);
    let time: String = conn
        .query_row(
            "SELECT time FROM audit_events ORDER BY seq DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(time.starts_with("2031-05-07T10:00:00"), "{time}");
}

/// A person token's `iat`/`exp` come from the registry clock, and it turns inactive at
/// introspection exactly when that clock passes `exp` — not a second before.
#[tokio::test]
async fn a_token_expires_when_the_registry_clock_passes_its_exp() {
    let r = manual().await;
    let minted = call(
        &r.http,
        &r.url,
        "POST",
        "/v1/me/access-token",
        Some(&r.admin.token),
        Some(&json!({})),
    )
    .await;
    let token = minted.expect(201)["access_token"]
        .as_str()
        .expect("an access token")
        .to_string();
    let c = claims(&token);
    assert_eq!(c["iat"].as_i64(), Some(start().timestamp()), "{c}");
    let exp = c["exp"].as_i64().expect("an exp");
    assert!(exp > start().timestamp(), "{c}");
    assert_eq!(introspect(&r, &token).await["active"], true);
    // One second before exp: still active.
    r.clock
        .advance(Duration::seconds(exp - start().timestamp() - 1));
    assert_eq!(introspect(&r, &token).await["active"], true);
    // At exp: inactive (no sleep: the clock moved).
    r.clock.advance(Duration::seconds(1));
    assert_eq!(introspect(&r, &token).await, json!({"active": false}));
}

/// An invitation lives 24 hours by the registry clock: redeemable before, refused after.
#[tokio::test]
async fn an_invitation_expires_by_the_registry_clock() {
    let r = manual().await;
    call(
        &r.http,
        &r.url,
        "POST",
        "/v1/people",
        Some(&r.admin.token),
        Some(&json!({"email": "late@example.com", "display_name": "Late", "roles": []})),
    )
    .await
    .expect(201);
    let invite = || async {
        call(
            &r.http,
            &r.url,
            "POST",
            "/v1/people/late@example.com/tokens",
            Some(&r.admin.token),
            Some(&json!({"name": "invitation"})),
        )
        .await
        .expect(201)["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let r = &r;
    let redeem = |invitation: String| async move {
        call(
            &r.http,
            &r.url,
            "POST",
            "/v1/me/tokens",
            Some(&invitation),
            Some(&json!({"name": "mine"})),
        )
        .await
    };
    // In time: redeemed.
    let early = invite().await;
    r.clock.advance(Duration::hours(23));
    redeem(early).await.expect(201);
    // Too late: refused, by the registry's clock (the machine's time has not moved).
    let late = invite().await;
    r.clock.advance(Duration::hours(24));
    let refused = redeem(late).await;
    assert_eq!(
        (refused.status, refused.code()),
        (401, "token_expired"),
        "{refused:?}"
    );
}
