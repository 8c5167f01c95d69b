//! Introspection (RFC 7662) gives claims only to those entitled to them — admins, responders,
//! the token's subject and the agents in its chain — and `{"active": false}` to everyone else,
//! the very answer a token that does not exist gets. Revocation (RFC 7009) likewise answers a
//! caller who may not revoke a live token exactly as it answers for an unknown one.

use crate::support;

use serde_json::{Value, json};
use support::{Member, Registry, Reply};

async fn form(reg: &Registry, path: &str, bearer: &str, params: &[(&str, &str)]) -> Reply {
    support::exchange::form(reg, path, Some(bearer), params).await
}

async fn introspect(reg: &Registry, who: &Member, token: &str) -> Value {
    form(reg, "/oauth/introspect", &who.token, &[("token", token)])
        .await
        .expect(200)
        .clone()
}

#[tokio::test]
async fn only_the_entitled_read_a_tokens_claims() {
    let reg = Registry::start().await;
    // The owner's person access token: its subject is the owner.
    let minted = reg
        .post(
            "/v1/me/access-token",
            &reg.owner,
            json!({"ttl_seconds": 600}),
        )
        .await;
    let token = minted.expect(201)["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    for who in [&reg.admin, &reg.responder, &reg.owner] {
        let answer = introspect(&reg, who, &token).await;
        assert_eq!(answer["active"], json!(true), "{}: {answer}", who.email);
        assert_eq!(answer["sub"], json!(reg.owner.email));
    }
    // An auditor and an unrelated person learn nothing: the answer is byte for byte the one a
    // token that never existed gets.
    for who in [&reg.auditor, &reg.other] {
        let live = form(&reg, "/oauth/introspect", &who.token, &[("token", &token)]).await;
        let unknown = form(
            &reg,
            "/oauth/introspect",
            &who.token,
            &[("token", "no.such.token")],
        )
        .await;
        assert_eq!(live.expect(200), &json!({"active": false}), "{}", who.email);
        assert_eq!(live.body, unknown.body);
    }
}

#[tokio::test]
async fn revocation_answers_the_same_for_unknown_and_live_tokens() {
    let reg = Registry::start().await;
    let minted = reg
        .post(
            "/v1/me/access-token",
            &reg.owner,
            json!({"ttl_seconds": 600}),
        )
        .await;
    let token = minted.expect(201)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let events = reg.audit_count();
    let live = form(
        &reg,
        "/oauth/revoke",
        &reg.other.token,
        &[("token", &token)],
    )
    .await;
    let unknown = form(
        &reg,
        "/oauth/revoke",
        &reg.other.token,
        &[("token", "no.such.token")],
    )
    .await;
    assert_eq!((live.status, &live.body), (unknown.status, &unknown.body));
    assert_eq!(live.status, 200);
    // And nothing happened: the token is live, no event was written.
    assert_eq!(
        introspect(&reg, &reg.admin, &token).await["active"],
        json!(true)
    );
    assert_eq!(reg.audit_count(), events);
    // Its subject may revoke it.
    form(
        &reg,
        "/oauth/revoke",
        &reg.owner.token,
        &[("token", &token)],
    )
    .await
    .expect(200);
    assert_eq!(
        introspect(&reg, &reg.admin, &token).await,
        json!({"active": false})
    );
}
