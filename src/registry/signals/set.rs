//! Security Event Tokens (RFC 8417) as SSF 1.0 profiles them: one event per SET, `sub_id` at
//! the top (RFC 9493), `txn` shared by the SETs of one action, signed with the registry's key
//! under `typ: secevent+jwt`. A SET has no `exp`, no `scope` and no `client_id`: nothing in it
//! reads as an access token.

use serde_json::{Map, Value, json};

use crate::model::ActorKind;
use crate::model::signals::{
    CREDENTIAL_CHANGE, SESSION_REVOKED, TOKEN_CLAIMS_CHANGE, VERIFICATION, txn_of,
};
use crate::registry::store::streams::OutboxEvent;

/// The event type URI of an outbox event kind.
pub fn event_type(kind: &str) -> &'static str {
    match kind {
        "credential-change" => CREDENTIAL_CHANGE,
        "token-claims-change" => TOKEN_CLAIMS_CHANGE,
        _ => SESSION_REVOKED,
    }
}

/// The RFC 9493 subject of one SET: the agent (as `iss_sub`, the registry being its issuer),
/// the person (`email`) and the revoked token (`opaque` session), as a `complex` subject when
/// more than one is involved.
pub fn subject(
    issuer: &str,
    agent: Option<&str>,
    person: Option<&str>,
    jti: Option<&str>,
) -> Value {
    let mut members = Map::new();
    if let Some(a) = agent {
        members.insert(
            "application".into(),
            json!({"format": "iss_sub", "iss": issuer, "sub": a}),
        );
    }
    if let Some(p) = person {
        members.insert("user".into(), json!({"format": "email", "email": p}));
    }
    if let Some(j) = jti {
        members.insert("session".into(), json!({"format": "opaque", "id": j}));
    }
    if members.len() == 1 {
        return members
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or(Value::Null);
    }
    let mut out = Map::new();
    out.insert("format".into(), json!("complex"));
    out.extend(members);
    Value::Object(out)
}

/// The event body (CAEP 1.0) of one outbox event.
pub fn event_body(event: &OutboxEvent) -> Value {
    let mut body = Map::new();
    body.insert("event_timestamp".into(), json!(event.time));
    match event.actor.kind {
        ActorKind::Human => {
            body.insert("initiating_entity".into(), json!("admin"));
        }
        ActorKind::System => {
            body.insert("initiating_entity".into(), json!("policy"));
        }
        ActorKind::Agent => {
            body.insert("initiating_entity".into(), json!("user"));
        }
    }
    let reason = match (&event.reason, event.actor.kind) {
        (Some(r), _) => Some(r.clone()),
        (None, ActorKind::Human) => {
            Some(format!("{} by {}", describe(&event.action), event.actor.id))
        }
        (None, _) => None,
    };
    if let Some(r) = reason {
        body.insert("reason_admin".into(), json!({"en": r}));
    }
    match event.kind.as_str() {
        "credential-change" => {
            let kind = match event.credential_kind {
                Some(crate::model::CredentialKind::StaticSecret) => "password",
                _ => "x509",
            };
            body.insert("credential_type".into(), json!(kind));
            body.insert(
                "change_type".into(),
                json!(event.change_type.as_deref().unwrap_or("update")),
            );
            if let Some(label) = &event.credential_label {
                body.insert("friendly_name".into(), json!(label));
            }
        }
        "token-claims-change" => {
            body.insert(
                "claims".into(),
                json!({
                    "scope": event.remaining_scopes.join(" "),
                    "scope_removed": event.scope,
                }),
            );
        }
        _ => {}
    }
    Value::Object(body)
}

fn describe(action: &str) -> &'static str {
    match action {
        "agent.revoke" => "agent revoked",
        "agent.decommission" => "agent decommissioned",
        "token.revoke" => "token revoked",
        "person.deactivate" => "person left",
        "delegation.revoke" => "delegation removed",
        "grant.remove" => "grant removed",
        "credential.add" => "credential added",
        "credential.disable" => "credential disabled",
        "credential.enable" => "credential enabled",
        "credential.remove" => "credential removed",
        _ => "access changed",
    }
}

/// The claims of one SET, issued at `iat` (Unix seconds, by the registry's clock).
#[allow(clippy::too_many_arguments)] // the claims themselves; a struct would only rename them
pub fn claims(
    iat: i64,
    issuer: &str,
    aud: &str,
    jti: &str,
    audit_seq: i64,
    sub_id: Value,
    event_type: &str,
    body: Value,
) -> Value {
    json!({
        "iss": issuer,
        "aud": aud,
        "iat": iat,
        "jti": jti,
        "txn": txn_of(audit_seq),
        "sub_id": sub_id,
        "events": {event_type: body},
    })
}

/// The claims of a verification event (SSF 1.0 §8.1.4.1), issued at `iat`.
pub fn verification_claims(
    iat: i64,
    issuer: &str,
    aud: &str,
    jti: &str,
    stream_id: &str,
    state: Option<&str>,
) -> Value {
    let mut body = Map::new();
    if let Some(s) = state {
        body.insert("state".into(), json!(s));
    }
    json!({
        "iss": issuer,
        "aud": aud,
        "iat": iat,
        "jti": jti,
        "sub_id": {"format": "opaque", "id": stream_id},
        "events": {VERIFICATION: Value::Object(body)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_member_is_a_simple_subject_more_are_complex() {
        let s = subject("https://r", Some("ag_1"), None, None);
        assert_eq!(
            s,
            json!({"format": "iss_sub", "iss": "https://r", "sub": "ag_1"})
        );
        let s = subject(
            "https://r",
            Some("ag_1"),
            Some("ada@example.com"),
            Some("j1"),
        );
        assert_eq!(s["format"], "complex");
        assert_eq!(
            s["user"],
            json!({"format": "email", "email": "ada@example.com"})
        );
        assert_eq!(s["session"], json!({"format": "opaque", "id": "j1"}));
    }
}
