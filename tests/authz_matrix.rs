//! The authorisation matrix: every route × every kind of caller, against a real registry.
//!
//! Each row names one operation on one route and the status each authenticated caller must get,
//! read from the policy (`src/registry/policy.rs`): admin everything; responder reads all and
//! revokes/reinstates; auditor reads all including audit and writes nothing; a person manages
//! the agents they own (read, grant/ungrant, revoke, decommission, register their own), while
//! reinstating takes admin or responder and changing an owner takes admin. Callers who cannot
//! be authenticated (no token, unknown, expired, revoked, a person who has left) get 401 on
//! every route but `/healthz`.
//!
//! Every cell gets fresh fixtures (a new agent, person or token), so cells cannot interfere.
//! After a refused call the whole database is compared with its state before the call: nothing
//! may change, not even an audit event. After an allowed write, a new audit event by the caller
//! must exist. `every_route_has_a_row` ties the table to the OpenAPI document, which is built
//! from the router's own route list, so a new route without a row fails.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use support::{Member, Registry};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    NoToken,
    UnknownToken,
    ExpiredToken,
    RevokedToken,
    PersonWhoLeft,
    Admin,
    Responder,
    Auditor,
    /// The owner of the agent the cell acts on.
    Owner,
    /// A person with no role who does not own that agent.
    OtherOwner,
}

const CALLERS: [Who; 10] = [
    Who::NoToken,
    Who::UnknownToken,
    Who::ExpiredToken,
    Who::RevokedToken,
    Who::PersonWhoLeft,
    Who::Admin,
    Who::Responder,
    Who::Auditor,
    Who::Owner,
    Who::OtherOwner,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Health,
    Me,
    IssueMyToken,
    RevokeMyToken,
    RevokeSomeoneElsesToken,
    ListPeople,
    CreatePerson,
    ShowPerson,
    UpdatePerson,
    IssueTokenForSomeoneElse,
    ListAgents,
    RegisterOwnAgent,
    RegisterAgentForSomeoneElse,
    RegisterUnownedAgent,
    RegisterDiscoveredAgent,
    RegisterSubAgentOfOwnersAgent,
    ShowAgent,
    ShowUnownedAgent,
    AgentAudit,
    AddGrant,
    RemoveGrant,
    SetOwner,
    Revoke,
    Reinstate,
    DecommissionPlan,
    Decommission,
    ListAudit,
    VerifyAudit,
    NoteOnOwnEvent,
    NoteOnOwnersEvent,
    Changes,
}

struct Row {
    op: Op,
    method: &'static str,
    /// The route as the OpenAPI document spells it.
    route: &'static str,
    /// Expected status for admin, responder, auditor, owner, other owner.
    expect: [u16; 5],
    /// Whether a successful call changes something (and so must write an audit event).
    write: bool,
}

const fn row(op: Op, method: &'static str, route: &'static str, expect: [u16; 5]) -> Row {
    Row {
        op,
        method,
        route,
        expect,
        write: false,
    }
}

const fn write(op: Op, method: &'static str, route: &'static str, expect: [u16; 5]) -> Row {
    Row {
        op,
        method,
        route,
        expect,
        write: true,
    }
}

//                                                        admin resp audit owner other
const ROWS: &[Row] = &[
    row(Op::Health, "GET", "/healthz", [200, 200, 200, 200, 200]),
    row(Op::Me, "GET", "/v1/me", [200, 200, 200, 200, 200]),
    write(
        Op::IssueMyToken,
        "POST",
        "/v1/me/tokens",
        [201, 201, 201, 201, 201],
    ),
    write(
        Op::RevokeMyToken,
        "DELETE",
        "/v1/me/tokens/{id}",
        [204, 204, 204, 204, 204],
    ),
    row(
        Op::RevokeSomeoneElsesToken,
        "DELETE",
        "/v1/me/tokens/{id}",
        [404, 404, 404, 404, 404],
    ),
    row(
        Op::ListPeople,
        "GET",
        "/v1/people",
        [200, 200, 200, 200, 200],
    ),
    write(
        Op::CreatePerson,
        "POST",
        "/v1/people",
        [201, 403, 403, 403, 403],
    ),
    row(
        Op::ShowPerson,
        "GET",
        "/v1/people/{email}",
        [200, 200, 200, 200, 200],
    ),
    write(
        Op::UpdatePerson,
        "PATCH",
        "/v1/people/{email}",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::IssueTokenForSomeoneElse,
        "POST",
        "/v1/people/{email}/tokens",
        [201, 403, 403, 403, 403],
    ),
    row(
        Op::ListAgents,
        "GET",
        "/v1/agents",
        [200, 200, 200, 200, 200],
    ),
    write(
        Op::RegisterOwnAgent,
        "POST",
        "/v1/agents",
        [201, 201, 201, 201, 201],
    ),
    write(
        Op::RegisterAgentForSomeoneElse,
        "POST",
        "/v1/agents",
        [201, 403, 403, 403, 403],
    ),
    write(
        Op::RegisterUnownedAgent,
        "POST",
        "/v1/agents",
        [201, 403, 403, 403, 403],
    ),
    write(
        Op::RegisterDiscoveredAgent,
        "POST",
        "/v1/agents",
        [201, 403, 403, 403, 403],
    ),
    write(
        Op::RegisterSubAgentOfOwnersAgent,
        "POST",
        "/v1/agents",
        [201, 403, 403, 201, 403],
    ),
    row(
        Op::ShowAgent,
        "GET",
        "/v1/agents/{id}",
        [200, 200, 200, 200, 403],
    ),
    row(
        Op::ShowUnownedAgent,
        "GET",
        "/v1/agents/{id}",
        [200, 200, 200, 403, 403],
    ),
    row(
        Op::AgentAudit,
        "GET",
        "/v1/agents/{id}/audit",
        [200, 200, 200, 200, 403],
    ),
    write(
        Op::AddGrant,
        "POST",
        "/v1/agents/{id}/grants",
        [201, 403, 403, 201, 403],
    ),
    write(
        Op::RemoveGrant,
        "DELETE",
        "/v1/agents/{id}/grants/{scope}",
        [200, 403, 403, 200, 403],
    ),
    write(
        Op::SetOwner,
        "PUT",
        "/v1/agents/{id}/owner",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::Revoke,
        "POST",
        "/v1/agents/{id}/revoke",
        [200, 200, 403, 200, 403],
    ),
    write(
        Op::Reinstate,
        "POST",
        "/v1/agents/{id}/reinstate",
        [200, 200, 403, 403, 403],
    ),
    row(
        Op::DecommissionPlan,
        "GET",
        "/v1/agents/{id}/decommission",
        [200, 403, 403, 200, 403],
    ),
    write(
        Op::Decommission,
        "POST",
        "/v1/agents/{id}/decommission",
        [200, 403, 403, 200, 403],
    ),
    row(Op::ListAudit, "GET", "/v1/audit", [200, 200, 200, 403, 403]),
    row(
        Op::VerifyAudit,
        "GET",
        "/v1/audit/verify",
        [200, 200, 200, 403, 403],
    ),
    write(
        Op::NoteOnOwnEvent,
        "POST",
        "/v1/audit/{seq}/notes",
        [201, 201, 201, 201, 201],
    ),
    write(
        Op::NoteOnOwnersEvent,
        "POST",
        "/v1/audit/{seq}/notes",
        [201, 201, 403, 201, 403],
    ),
    row(Op::Changes, "GET", "/v1/changes", [200, 200, 200, 200, 200]),
];

/// The routes anyone may call without a token.
const PUBLIC: &[Op] = &[Op::Health];

/// The registry plus the callers that cannot be authenticated and a bystander to point at.
struct Matrix {
    reg: Registry,
    /// A person with no role who is never a caller (a target for "someone else").
    bystander: Member,
    unknown_token: String,
    /// The admin's own tokens, made unusable: the refusal can only come from the token.
    expired_token: String,
    revoked_token: String,
    /// An admin who has left: refused only because they left.
    leaver: Member,
    counter: AtomicU32,
}

impl Matrix {
    async fn new() -> Matrix {
        let reg = Registry::start().await;
        let bystander = reg.add_person("bystander@example.com", &[]).await;

        let expired = reg
            .post("/v1/me/tokens", &reg.admin, json!({"name": "to-expire"}))
            .await
            .expect(201)
            .clone();
        let changed = reg
            .sql()
            .execute(
                "UPDATE api_tokens SET expires_at = '2020-01-01T00:00:00.000000Z' WHERE id = ?1",
                [expired["id"].as_str().unwrap()],
            )
            .unwrap();
        assert_eq!(changed, 1, "the expired token's row exists");

        let revoked = reg
            .post("/v1/me/tokens", &reg.admin, json!({"name": "to-revoke"}))
            .await
            .expect(201)
            .clone();
        reg.call(
            "DELETE",
            &format!("/v1/me/tokens/{}", revoked["id"].as_str().unwrap()),
            Some(&reg.admin.token),
            None,
        )
        .await
        .expect(204);

        let leaver = reg.add_person("leaver@example.com", &["admin"]).await;
        reg.call(
            "PATCH",
            "/v1/people/leaver@example.com",
            Some(&reg.admin.token),
            Some(&json!({"active": false})),
        )
        .await
        .expect(200);

        Matrix {
            reg,
            bystander,
            unknown_token: format!("stw_{}", "0".repeat(64)),
            expired_token: expired["token"].as_str().unwrap().to_string(),
            revoked_token: revoked["token"].as_str().unwrap().to_string(),
            leaver,
            counter: AtomicU32::new(0),
        }
    }

    fn token(&self, who: Who) -> Option<String> {
        let r = &self.reg;
        match who {
            Who::NoToken => None,
            Who::UnknownToken => Some(self.unknown_token.clone()),
            Who::ExpiredToken => Some(self.expired_token.clone()),
            Who::RevokedToken => Some(self.revoked_token.clone()),
            Who::PersonWhoLeft => Some(self.leaver.token.clone()),
            Who::Admin => Some(r.admin.token.clone()),
            Who::Responder => Some(r.responder.token.clone()),
            Who::Auditor => Some(r.auditor.token.clone()),
            Who::Owner => Some(r.owner.token.clone()),
            Who::OtherOwner => Some(r.other.token.clone()),
        }
    }

    /// The person a cell acts as. Callers who cannot sign in act as the owner would, so that
    /// only their credentials can explain a refusal.
    fn member(&self, who: Who) -> &Member {
        let r = &self.reg;
        match who {
            Who::Admin => &r.admin,
            Who::Responder => &r.responder,
            Who::Auditor => &r.auditor,
            Who::OtherOwner => &r.other,
            _ => &r.owner,
        }
    }

    fn fresh(&self, what: &str) -> String {
        format!("{what}-{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// A new agent owned by the standard owner (or unowned), registered by the admin.
    async fn owners_agent(&self, scopes: &[&str]) -> String {
        let name = self.fresh("matrix-agent");
        self.reg
            .register(&name, Some(&self.reg.owner.email), scopes)
            .await
    }

    /// Sets up what the cell needs and returns the concrete path and body.
    async fn prepare(&self, op: Op, who: Who) -> (String, Option<Value>) {
        let r = &self.reg;
        let me = self.member(who).email.clone();
        match op {
            Op::Health => ("/healthz".into(), None),
            Op::Me => ("/v1/me".into(), None),
            Op::IssueMyToken => ("/v1/me/tokens".into(), Some(json!({"name": "matrix"}))),
            Op::RevokeMyToken | Op::RevokeSomeoneElsesToken => {
                let holder = if op == Op::RevokeMyToken {
                    me
                } else {
                    self.bystander.email.clone()
                };
                let issued = r
                    .post(&format!("/v1/people/{holder}/tokens"), &r.admin, json!({}))
                    .await;
                let id = issued.expect(201)["id"].as_str().unwrap().to_string();
                (format!("/v1/me/tokens/{id}"), None)
            }
            Op::ListPeople => ("/v1/people".into(), None),
            Op::CreatePerson => {
                let email = format!("{}@example.com", self.fresh("new-person"));
                (
                    "/v1/people".into(),
                    Some(json!({"email": email, "display_name": "New Person"})),
                )
            }
            Op::ShowPerson => (format!("/v1/people/{}", self.bystander.email), None),
            Op::UpdatePerson => {
                let email = format!("{}@example.com", self.fresh("to-update"));
                r.post(
                    "/v1/people",
                    &r.admin,
                    json!({"email": email, "display_name": "To Update"}),
                )
                .await
                .expect(201);
                (
                    format!("/v1/people/{email}"),
                    Some(json!({"team": "moved", "roles": ["admin"]})),
                )
            }
            Op::IssueTokenForSomeoneElse => (
                format!("/v1/people/{}/tokens", self.bystander.email),
                Some(json!({"name": "matrix"})),
            ),
            Op::ListAgents => ("/v1/agents".into(), None),
            Op::RegisterOwnAgent => (
                "/v1/agents".into(),
                Some(json!({"name": self.fresh("own"), "owner": me})),
            ),
            Op::RegisterAgentForSomeoneElse => (
                "/v1/agents".into(),
                Some(json!({"name": self.fresh("for-else"), "owner": self.bystander.email})),
            ),
            Op::RegisterUnownedAgent => (
                "/v1/agents".into(),
                Some(json!({"name": self.fresh("unowned")})),
            ),
            Op::RegisterDiscoveredAgent => (
                "/v1/agents".into(),
                Some(json!({"name": self.fresh("found"), "owner": me, "source": "discovered"})),
            ),
            Op::RegisterSubAgentOfOwnersAgent => {
                let parent = self.owners_agent(&[]).await;
                (
                    "/v1/agents".into(),
                    Some(json!({"name": self.fresh("child"), "kind": "sub-agent",
                                "parent_id": parent, "owner": me})),
                )
            }
            Op::ShowAgent => (format!("/v1/agents/{}", self.owners_agent(&[]).await), None),
            Op::ShowUnownedAgent => {
                let id = r.register(&self.fresh("nobodys"), None, &[]).await;
                (format!("/v1/agents/{id}"), None)
            }
            Op::AgentAudit => (
                format!("/v1/agents/{}/audit", self.owners_agent(&[]).await),
                None,
            ),
            Op::AddGrant => (
                format!("/v1/agents/{}/grants", self.owners_agent(&[]).await),
                Some(json!({"scope": "jira.issues:write", "justification": "matrix"})),
            ),
            Op::RemoveGrant => (
                format!(
                    "/v1/agents/{}/grants/crm.orders:read",
                    self.owners_agent(&["crm.orders:read"]).await
                ),
                None,
            ),
            Op::SetOwner => (
                format!("/v1/agents/{}/owner", self.owners_agent(&[]).await),
                Some(json!({"owner": self.bystander.email, "reason": "matrix"})),
            ),
            Op::Revoke => (
                format!("/v1/agents/{}/revoke", self.owners_agent(&[]).await),
                Some(json!({"reason": "matrix"})),
            ),
            Op::Reinstate => {
                let id = self.owners_agent(&[]).await;
                r.post(&format!("/v1/agents/{id}/revoke"), &r.admin, json!({}))
                    .await
                    .expect(200);
                (
                    format!("/v1/agents/{id}/reinstate"),
                    Some(json!({"reason": "matrix"})),
                )
            }
            Op::DecommissionPlan => (
                format!("/v1/agents/{}/decommission", self.owners_agent(&[]).await),
                None,
            ),
            Op::Decommission => (
                format!(
                    "/v1/agents/{}/decommission",
                    self.owners_agent(&["crm.orders:read"]).await
                ),
                Some(json!({"reason": "matrix"})),
            ),
            Op::ListAudit => ("/v1/audit".into(), None),
            Op::VerifyAudit => ("/v1/audit/verify".into(), None),
            Op::NoteOnOwnEvent => {
                // The acting person writes an event of their own: issuing themselves a token.
                let acting = self.member(who);
                r.post("/v1/me/tokens", acting, json!({})).await.expect(201);
                let seq = self.last_event()["seq"].as_i64().unwrap();
                assert_eq!(self.last_event()["actor"]["id"], json!(acting.email));
                (
                    format!("/v1/audit/{seq}/notes"),
                    Some(json!({"text": "INC-1"})),
                )
            }
            Op::NoteOnOwnersEvent => {
                let id = self.owners_agent(&[]).await;
                let revoked = r
                    .post(&format!("/v1/agents/{id}/revoke"), &r.owner, json!({}))
                    .await;
                let seq = revoked.expect(200)["audit_seq"].as_i64().unwrap();
                (
                    format!("/v1/audit/{seq}/notes"),
                    Some(json!({"text": "INC-2"})),
                )
            }
            Op::Changes => ("/v1/changes".into(), None),
        }
    }

    /// The newest audit event, read straight from the database.
    fn last_event(&self) -> Value {
        let conn = self.reg.sql();
        conn.query_row(
            "SELECT seq, actor FROM audit_events ORDER BY seq DESC LIMIT 1",
            [],
            |r| {
                let actor: String = r.get(1)?;
                Ok(json!({"seq": r.get::<_, i64>(0)?,
                          "actor": serde_json::from_str::<Value>(&actor).unwrap()}))
            },
        )
        .unwrap()
    }
}

fn expected(row: &Row, who: Who) -> (u16, &'static str) {
    let authenticated = |status: u16| {
        let code = match status {
            403 => "forbidden",
            404 => "not_found",
            _ => "",
        };
        (status, code)
    };
    let unauthenticated = |code: &'static str| {
        if PUBLIC.contains(&row.op) {
            (row.expect[0], "")
        } else {
            (401, code)
        }
    };
    match who {
        Who::NoToken => unauthenticated("unauthenticated"),
        Who::UnknownToken => unauthenticated("invalid_token"),
        Who::ExpiredToken => unauthenticated("token_expired"),
        Who::RevokedToken => unauthenticated("token_revoked"),
        Who::PersonWhoLeft => unauthenticated("person_inactive"),
        Who::Admin => authenticated(row.expect[0]),
        Who::Responder => authenticated(row.expect[1]),
        Who::Auditor => authenticated(row.expect[2]),
        Who::Owner => authenticated(row.expect[3]),
        Who::OtherOwner => authenticated(row.expect[4]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_with_every_caller() {
    let m = Matrix::new().await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for row in ROWS {
        for who in CALLERS {
            cells += 1;
            let (path, body) = m.prepare(row.op, who).await;
            let before = m.reg.snapshot();
            let audit_before = m.reg.audit_count();
            let token = m.token(who);
            let reply = m
                .reg
                .call(row.method, &path, token.as_deref(), body.as_ref())
                .await;
            let (want, want_code) = expected(row, who);
            let cell = format!("{:?} {} {path} as {who:?}", row.op, row.method);
            if reply.status != want || (!want_code.is_empty() && reply.code() != want_code) {
                failures.push(format!(
                    "{cell}: got {} {}, want {want} {want_code}",
                    reply.status, reply.body
                ));
                continue;
            }
            let succeeded = (200..300).contains(&reply.status);
            if succeeded && row.write {
                let last = m.last_event();
                if m.reg.audit_count() <= audit_before {
                    failures.push(format!("{cell}: succeeded without an audit event"));
                } else if last["actor"]["id"] != json!(m.member(who).email) {
                    failures.push(format!(
                        "{cell}: the newest audit event's actor is {}, not the caller",
                        last["actor"]
                    ));
                }
            } else if m.reg.snapshot() != before {
                failures.push(format!(
                    "{cell}: the database changed although the call {}",
                    if succeeded {
                        "only read"
                    } else {
                        "was refused"
                    }
                ));
            }
        }
    }
    assert_eq!(cells, ROWS.len() * CALLERS.len());
    assert!(
        failures.is_empty(),
        "{} of {cells} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The table covers exactly the routes the registry serves: the OpenAPI document is built from
/// the router's route list, so a new route without a row here fails this test.
#[tokio::test]
async fn every_route_has_a_row() {
    let reg = Registry::start().await;
    let doc = reg.call("GET", "/openapi.json", None, None).await;
    let paths = doc.expect(200)["paths"]
        .as_object()
        .expect("the document lists paths")
        .clone();
    let served: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| {
                    ["get", "post", "put", "patch", "delete", "head", "options"]
                        .contains(&k.as_str())
                })
                .map(|method| (method.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let tested: BTreeSet<(String, String)> = ROWS
        .iter()
        .map(|r| (r.method.to_string(), r.route.to_string()))
        .collect();
    let untested: Vec<_> = served.difference(&tested).collect();
    let unknown: Vec<_> = tested.difference(&served).collect();
    assert!(
        untested.is_empty(),
        "routes without a row in the matrix: {untested:?}"
    );
    assert!(
        unknown.is_empty(),
        "matrix rows for routes the registry does not serve: {unknown:?}"
    );
    assert!(served.len() >= 22, "the document lists the whole API");
    // Every route under /v1/ needs a token: only the public rows may skip authentication.
    for row in ROWS {
        assert_eq!(
            PUBLIC.contains(&row.op),
            !row.route.starts_with("/v1/"),
            "{:?}",
            row.op
        );
    }
}
