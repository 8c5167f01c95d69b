//! Bad input gets a precise error, never a panic, never a half-written record: malformed and
//! oversized bodies, unknown fields, wrong types, unknown ids, hostile text, bad scopes, a
//! locked database, and database files that cannot be opened (checked through the real binary).

use crate::support;

use serde_json::{Value, json};
use support::{Registry, Sql, open_sql, run_steward, snapshot};

/// One refused call: sends it, checks status and error code, and checks that the database is
/// exactly as it was (data and audit log).
async fn refused(
    reg: &Registry,
    method: &str,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
    want: (u16, &str),
) {
    let before = reg.snapshot();
    let reply = reg
        .call_raw(method, path, Some(token), content_type, body.clone())
        .await;
    let shown: String = body
        .map(|b| String::from_utf8_lossy(&b).chars().take(80).collect())
        .unwrap_or_default();
    assert_eq!(
        (reply.status, reply.code()),
        want,
        "{method} {path} {shown}: {reply:?}"
    );
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{method} {path}: an error says what is wrong: {reply:?}"
    );
    assert_eq!(
        reg.snapshot(),
        before,
        "{method} {path} {shown}: a refused call changed the database"
    );
}

async fn refused_json(
    reg: &Registry,
    method: &str,
    path: &str,
    token: &str,
    body: &Value,
    want: (u16, &str),
) {
    refused(
        reg,
        method,
        path,
        token,
        Some("application/json"),
        Some(serde_json::to_vec(body).unwrap()),
        want,
    )
    .await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let reg = Registry::start().await;
    let id = reg.register("target", Some(&reg.owner.email), &[]).await;
    let admin = reg.admin.token.clone();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: [&[u8]; 5] = [
        b"{\"name\": ",
        b"{\"name\": \"x\"} trailing",
        b"",
        b"{'name': 'x'}",
        b"\xff\xfe{}",
    ];
    for body in bodies {
        refused(
            &reg,
            "POST",
            "/v1/agents",
            &admin,
            Some("application/json"),
            Some(body.to_vec()),
            (400, "malformed_json"),
        )
        .await;
    }
    // Deep nesting is refused at the first wrong type, without recursing (no stack overflow).
    refused(
        &reg,
        "POST",
        "/v1/agents",
        &admin,
        Some("application/json"),
        Some(deep.into_bytes()),
        (422, "invalid_body"),
    )
    .await;
    // The routes whose body is optional (a reason) refuse broken JSON the same way.
    for path in [
        format!("/v1/agents/{id}/revoke"),
        format!("/v1/agents/{id}/decommission"),
        format!("/v1/agents/{id}/reinstate"),
        "/v1/me/tokens".to_string(),
    ] {
        refused(
            &reg,
            "POST",
            &path,
            &admin,
            Some("application/json"),
            Some(b"{\"rea".to_vec()),
            (400, "malformed_json"),
        )
        .await;
    }
}

#[tokio::test]
async fn unknown_fields_and_wrong_types_are_422() {
    let reg = Registry::start().await;
    let id = reg
        .register("target", Some(&reg.owner.email), &["crm.orders:read"])
        .await;
    let admin = reg.admin.token.clone();
    let agent = format!("/v1/agents/{id}");
    let cases: Vec<(&str, String, Value)> = vec![
        // Unknown fields: a typo in a governance call fails loudly.
        (
            "POST",
            "/v1/agents".into(),
            json!({"name": "x", "onwer": "owner@example.com"}),
        ),
        (
            "POST",
            format!("{agent}/grants"),
            json!({"scope": "a:b", "expires": "2030-01-01T00:00:00Z"}),
        ),
        (
            "PUT",
            format!("{agent}/owner"),
            json!({"owner": "other@example.com", "why": "x"}),
        ),
        ("POST", format!("{agent}/revoke"), json!({"reasn": "typo"})),
        (
            "POST",
            format!("{agent}/decommission"),
            json!({"reason": "x", "force": true}),
        ),
        (
            "PATCH",
            "/v1/people/owner@example.com".into(),
            json!({"admin": true}),
        ),
        (
            "POST",
            "/v1/people".into(),
            json!({"email": "n@example.com", "display_name": "N", "role": "admin"}),
        ),
        ("POST", "/v1/me/tokens".into(), json!({"ttl": 5})),
        ("POST", "/v1/audit/1/notes".into(), json!({"txt": "x"})),
        // Wrong types and missing fields.
        ("POST", "/v1/agents".into(), json!({"name": 5})),
        (
            "POST",
            "/v1/agents".into(),
            json!({"description": "no name"}),
        ),
        (
            "POST",
            "/v1/agents".into(),
            json!({"name": "x", "scopes": "crm.orders:read"}),
        ),
        (
            "POST",
            "/v1/agents".into(),
            json!({"name": "x", "kind": "robot"}),
        ),
        (
            "POST",
            "/v1/agents".into(),
            json!({"name": "x", "source": "imagined"}),
        ),
        ("POST", "/v1/agents".into(), json!(["name", "x"])),
        ("POST", "/v1/agents".into(), json!(null)),
        (
            "POST",
            format!("{agent}/grants"),
            json!({"scope": "a:b", "expires_at": "tomorrow"}),
        ),
        ("POST", format!("{agent}/revoke"), json!({"reason": 5})),
        ("POST", format!("{agent}/revoke"), json!("just a string")),
        (
            "PATCH",
            "/v1/people/owner@example.com".into(),
            json!({"active": "no"}),
        ),
        (
            "PATCH",
            "/v1/people/owner@example.com".into(),
            json!({"roles": ["superuser"]}),
        ),
        ("POST", "/v1/me/tokens".into(), json!({"ttl_days": -1})),
        (
            "POST",
            "/v1/me/tokens".into(),
            json!({"ttl_days": 99_999_999_999u64}),
        ),
    ];
    for (method, path, body) in &cases {
        refused_json(&reg, method, path, &admin, body, (422, "invalid_body")).await;
    }
    // Values of the right type that make no sense have their own codes.
    let past = "2001-01-01T00:00:00Z";
    let more: Vec<(&str, String, Value, &str)> = vec![
        (
            "POST",
            "/v1/me/tokens".into(),
            json!({"ttl_days": 0}),
            "invalid_ttl",
        ),
        (
            "POST",
            "/v1/me/tokens".into(),
            json!({"ttl_days": 366}),
            "invalid_ttl",
        ),
        (
            "POST",
            format!("{agent}/grants"),
            json!({"scope": "a:b", "expires_at": past}),
            "invalid_expiry",
        ),
        (
            "PATCH",
            "/v1/people/owner@example.com".into(),
            json!({"manager": "owner@example.com"}),
            "invalid_manager",
        ),
        (
            "PUT",
            format!("{agent}/owner"),
            json!({"owner": "nobody@example.com"}),
            "unknown_owner",
        ),
    ];
    for (method, path, body, code) in &more {
        refused_json(&reg, method, path, &admin, body, (422, code)).await;
    }
    // Query parameters of the wrong type are refused too.
    for query in [
        "/v1/agents?limit=many",
        "/v1/agents?unowned=perhaps",
        "/v1/agents?kind=robot",
        "/v1/changes?after=yesterday",
        "/v1/audit?after=-",
        "/v1/people?active=2",
    ] {
        refused(
            &reg,
            "GET",
            query,
            &admin,
            None,
            None,
            (400, "invalid_query"),
        )
        .await;
    }
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let reg = Registry::start().await;
    let id = reg.register("target", Some(&reg.owner.email), &[]).await;
    let admin = reg.admin.token.clone();
    let big = "x".repeat(70 * 1024);
    for (path, body) in [
        (
            "/v1/agents".to_string(),
            json!({"name": "big", "description": big}),
        ),
        (format!("/v1/agents/{id}/revoke"), json!({"reason": big})),
        (
            format!("/v1/agents/{id}/grants"),
            json!({"scope": "a:b", "justification": big}),
        ),
        (
            "/v1/people".to_string(),
            json!({"email": "big@example.com", "display_name": big}),
        ),
    ] {
        refused_json(&reg, "POST", &path, &admin, &body, (413, "body_too_large")).await;
    }
    // Not JSON at all, and far too large: still a precise 413, not a parse error.
    refused(
        &reg,
        "POST",
        "/v1/agents",
        &admin,
        Some("application/json"),
        Some(vec![b'{'; 1024 * 1024]),
        (413, "body_too_large"),
    )
    .await;
}

#[tokio::test]
async fn missing_or_wrong_content_type_is_415() {
    let reg = Registry::start().await;
    let id = reg.register("target", Some(&reg.owner.email), &[]).await;
    let admin = reg.admin.token.clone();
    let body = br#"{"name": "typed"}"#.to_vec();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        refused(
            &reg,
            "POST",
            "/v1/agents",
            &admin,
            content_type,
            Some(body.clone()),
            (415, "unsupported_media_type"),
        )
        .await;
        refused(
            &reg,
            "POST",
            &format!("/v1/agents/{id}/grants"),
            &admin,
            content_type,
            Some(br#"{"scope": "a:b"}"#.to_vec()),
            (415, "unsupported_media_type"),
        )
        .await;
        // Where the body is optional, a body that is there must still be JSON.
        refused(
            &reg,
            "POST",
            &format!("/v1/agents/{id}/revoke"),
            &admin,
            content_type,
            Some(br#"{"reason": "typed"}"#.to_vec()),
            (415, "unsupported_media_type"),
        )
        .await;
    }
    // No body at all needs no Content-Type; a JSON subtype is JSON.
    reg.call_raw(
        "POST",
        &format!("/v1/agents/{id}/revoke"),
        Some(&admin),
        None,
        None,
    )
    .await
    .expect(200);
    reg.call_raw(
        "POST",
        &format!("/v1/agents/{id}/reinstate"),
        Some(&admin),
        Some("application/merge-patch+json; charset=utf-8"),
        Some(br#"{"reason": "typed"}"#.to_vec()),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn malformed_authorization_headers_are_401() {
    let reg = Registry::start().await;
    let token = reg.admin.token.clone();
    let headers = [
        format!("Basic {token}"),
        format!("Bearer{token}"),
        "Bearer ".to_string(),
        "Bearer    ".to_string(),
        format!("Bearer {token}x"),
        format!("Bearer {}", &token[..token.len() - 1]),
        token.clone(),
    ];
    for value in headers {
        let reply = reg
            .http
            .get(format!("{}/v1/me", reg.url))
            .header("authorization", value.as_bytes())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 401, "{value:?}");
        assert_eq!(
            reply.headers()["www-authenticate"],
            "Bearer realm=\"steward\"",
            "{value:?}"
        );
        let body: serde_json::Value = reply.json().await.unwrap();
        assert!(
            ["unauthenticated", "invalid_token"].contains(&body["error"].as_str().unwrap()),
            "{value:?}: {body}"
        );
        assert!(
            !body["message"].as_str().unwrap().contains(&token[4..]),
            "the token never comes back in an error"
        );
    }
}

#[tokio::test]
async fn unknown_ids_routes_and_methods() {
    let reg = Registry::start().await;
    let id = reg
        .register("target", Some(&reg.owner.email), &["crm.orders:read"])
        .await;
    let admin = reg.admin.token.clone();
    let not_found: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/agents/ag_nope".into(), None),
        ("GET", "/v1/agents/ag_nope/audit".into(), None),
        ("GET", "/v1/agents/ag_nope/decommission".into(), None),
        (
            "POST",
            "/v1/agents/ag_nope/grants".into(),
            Some(json!({"scope": "a:b"})),
        ),
        ("DELETE", "/v1/agents/ag_nope/grants/a:b".into(), None),
        (
            "DELETE",
            format!("/v1/agents/{id}/grants/never.granted:read"),
            None,
        ),
        (
            "PUT",
            "/v1/agents/ag_nope/owner".into(),
            Some(json!({"owner": "owner@example.com"})),
        ),
        ("POST", "/v1/agents/ag_nope/revoke".into(), None),
        ("POST", "/v1/agents/ag_nope/reinstate".into(), None),
        ("POST", "/v1/agents/ag_nope/decommission".into(), None),
        ("GET", "/v1/people/nobody@example.com".into(), None),
        (
            "PATCH",
            "/v1/people/nobody@example.com".into(),
            Some(json!({"team": "x"})),
        ),
        (
            "POST",
            "/v1/people/nobody@example.com/tokens".into(),
            Some(json!({})),
        ),
        ("DELETE", "/v1/me/tokens/tok_nope".into(), None),
        (
            "POST",
            "/v1/audit/424242/notes".into(),
            Some(json!({"text": "x"})),
        ),
        ("GET", "/v1/no-such-route".into(), None),
        ("GET", "/v2/agents".into(), None),
    ];
    for (method, path, body) in &not_found {
        let bytes = body.as_ref().map(|b| serde_json::to_vec(b).unwrap());
        let ct = body.as_ref().map(|_| "application/json");
        refused(&reg, method, path, &admin, ct, bytes, (404, "not_found")).await;
    }
    // A manager who does not exist is named as such.
    refused_json(
        &reg,
        "PATCH",
        "/v1/people/owner@example.com",
        &admin,
        &json!({"manager": "ghost@example.com"}),
        (404, "not_found"),
    )
    .await;
    // Wrong methods are 405 with a JSON error, not an empty answer.
    for (method, path) in [
        ("PUT", "/v1/agents"),
        ("DELETE", "/v1/audit"),
        ("POST", "/v1/me"),
    ] {
        refused(
            &reg,
            method,
            path,
            &admin,
            None,
            None,
            (405, "method_not_allowed"),
        )
        .await;
    }
    // A path parameter of the wrong type.
    refused_json(
        &reg,
        "POST",
        "/v1/audit/first/notes",
        &admin,
        &json!({"text": "x"}),
        (400, "invalid_path"),
    )
    .await;
}

#[tokio::test]
async fn extreme_sequence_numbers_in_paths_are_not_found() {
    let reg = Registry::start().await;
    // People without a role go through the "is it your event?" check, which must not overflow.
    for seq in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX] {
        for who in [&reg.owner, &reg.admin] {
            refused_json(
                &reg,
                "POST",
                &format!("/v1/audit/{seq}/notes"),
                &who.token,
                &json!({"text": "x"}),
                (404, "not_found"),
            )
            .await;
        }
    }
    for after in [i64::MIN, i64::MAX] {
        for path in [
            format!("/v1/audit?after={after}"),
            format!("/v1/changes?after={after}"),
        ] {
            let reply = reg.get(&path, &reg.admin).await;
            assert_eq!(reply.status, 200, "{path}: {reply:?}");
        }
    }
}

/// Text that could hide or reorder what a person reads: control characters, terminal escape
/// sequences, bidirectional overrides, zero-width characters.
const HOSTILE: [&str; 7] = [
    "evil\u{1b}[31mred",
    "bell\u{7}",
    "null\u{0}byte",
    "admin\u{202e}txt.exe",
    "zero\u{200b}width",
    "isolate\u{2066}x",
    "del\u{7f}",
];

#[tokio::test]
async fn hostile_text_is_refused_with_invalid_text() {
    let reg = Registry::start().await;
    let id = reg.register("target", Some(&reg.owner.email), &[]).await;
    let admin = reg.admin.token.clone();
    let agent = format!("/v1/agents/{id}");
    for bad in HOSTILE {
        let cases: Vec<(&str, String, Value)> = vec![
            ("POST", "/v1/agents".into(), json!({"name": bad})),
            (
                "POST",
                "/v1/agents".into(),
                json!({"name": "ok", "description": bad}),
            ),
            (
                "POST",
                "/v1/agents".into(),
                json!({"name": "ok", "team": bad}),
            ),
            (
                "POST",
                "/v1/agents".into(),
                json!({"name": "ok", "environment": bad}),
            ),
            (
                "POST",
                format!("{agent}/grants"),
                json!({"scope": "a:b", "justification": bad}),
            ),
            ("POST", format!("{agent}/revoke"), json!({"reason": bad})),
            (
                "POST",
                format!("{agent}/decommission"),
                json!({"reason": bad}),
            ),
            (
                "PUT",
                format!("{agent}/owner"),
                json!({"owner": "other@example.com", "reason": bad}),
            ),
            (
                "POST",
                "/v1/people".into(),
                json!({"email": "n@example.com", "display_name": bad}),
            ),
            (
                "POST",
                "/v1/people".into(),
                json!({"email": format!("n{bad}@example.com"), "display_name": "N"}),
            ),
            (
                "PATCH",
                "/v1/people/owner@example.com".into(),
                json!({"display_name": bad}),
            ),
            ("POST", "/v1/me/tokens".into(), json!({"name": bad})),
            ("POST", "/v1/audit/1/notes".into(), json!({"text": bad})),
        ];
        for (method, path, body) in &cases {
            refused_json(&reg, method, path, &admin, body, (422, "invalid_text")).await;
        }
        let query = format!(
            "/v1/agents?q={}",
            bad.bytes().map(|b| format!("%{b:02X}")).collect::<String>()
        );
        refused(
            &reg,
            "GET",
            &query,
            &admin,
            None,
            None,
            (422, "invalid_text"),
        )
        .await;
    }
    // One-line fields refuse line breaks and blank values; free text keeps its newlines.
    for name in ["two\nlines", "   ", ""] {
        refused_json(
            &reg,
            "POST",
            "/v1/agents",
            &admin,
            &json!({"name": name}),
            (422, "invalid_text"),
        )
        .await;
    }
    reg.post(
        "/v1/agents",
        &reg.admin,
        json!({"name": "multi-line description", "description": "line one\nline two\tand a tab"}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn bad_scopes_are_refused() {
    let reg = Registry::start().await;
    let id = reg.register("target", Some(&reg.owner.email), &[]).await;
    let admin = reg.admin.token.clone();
    let long = format!("a{}", "b".repeat(128));
    let scopes = [
        "",
        "has space:read",
        "ünïcode:read",
        "-leading:read",
        "*:read",
        "crm;drop:read",
        "crm\u{1b}[0m:read",
        long.as_str(),
    ];
    for scope in scopes {
        refused_json(
            &reg,
            "POST",
            &format!("/v1/agents/{id}/grants"),
            &admin,
            &json!({"scope": scope}),
            (422, "invalid_text"),
        )
        .await;
        refused_json(
            &reg,
            "POST",
            "/v1/agents",
            &admin,
            &json!({"name": "scoped", "scopes": ["crm.orders:read", scope]}),
            (422, "invalid_text"),
        )
        .await;
    }
    let many: Vec<String> = (0..201).map(|i| format!("svc{i}:read")).collect();
    refused_json(
        &reg,
        "POST",
        "/v1/agents",
        &admin,
        &json!({"name": "greedy", "scopes": many}),
        (422, "too_many_scopes"),
    )
    .await;
    // A scope the agent already holds is a conflict, not a second grant.
    reg.post(
        &format!("/v1/agents/{id}/grants"),
        &reg.admin,
        json!({"scope": "crm.orders:read"}),
    )
    .await
    .expect(201);
    refused_json(
        &reg,
        "POST",
        &format!("/v1/agents/{id}/grants"),
        &admin,
        &json!({"scope": "crm.orders:read"}),
        (409, "conflict"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_answers_503_busy_and_writes_nothing() {
    let reg = Registry::launch(support::Launch::new().sqlite_only()).await;
    let id = reg.register("target", Some(&reg.owner.email), &[]).await;
    let before = reg.snapshot();

    let locker = reg.sql();
    locker
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");
    // Reads go on (write-ahead log): the console stays usable during the lock.
    reg.get(&format!("/v1/agents/{id}"), &reg.admin)
        .await
        .expect(200);
    // A write waits for the busy timeout, then says the database is busy.
    let reply = reg
        .post(
            &format!("/v1/agents/{id}/revoke"),
            &reg.responder,
            json!({"reason": "during the lock"}),
        )
        .await;
    locker.execute_batch("ROLLBACK").expect("release the lock");
    drop(locker);
    assert_eq!((reply.status, reply.code()), (503, "busy"), "{reply:?}");
    assert!(
        reply.body["message"].as_str().unwrap().contains("locked"),
        "{reply:?}"
    );
    assert_eq!(reg.snapshot(), before, "the refused write left a trace");

    // Once the lock is gone the same write goes through.
    let done = reg
        .post(
            &format!("/v1/agents/{id}/revoke"),
            &reg.responder,
            json!({}),
        )
        .await;
    assert_eq!(done.expect(200)["changed"], json!(true));
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `steward server` on `db`, expecting it to refuse to start; returns its stderr.
fn server_refuses(db: &std::path::Path) -> String {
    let out = run_steward(&[
        "server",
        "--listen",
        "127.0.0.1:0",
        "--db",
        db.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "it never said it was listening");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_database_in_a_missing_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("no-such-folder").join("steward.db");
    let stderr = server_refuses(&db);
    assert!(
        stderr.contains("no-such-folder") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(files_in(dir.path()).is_empty(), "nothing was created");
}

#[test]
fn a_database_from_a_newer_schema_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("steward.db");
    drop(
        steward::registry::open_store(
            &db,
            steward::registry::store::sqlite::OpenMode::CreateIfMissing,
        )
        .unwrap(),
    );
    open_sql(&db)
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let before = snapshot(&Sql::File(open_sql(&db)));
    let stderr = server_refuses(&db);
    assert!(
        stderr.contains("schema version 99")
            && stderr.contains(&format!("({})", steward::registry::SCHEMA_VERSION)),
        "{stderr}"
    );
    assert!(stderr.contains("upgrade steward"), "{stderr}");
    let conn = open_sql(&db);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99, "the newer store was not touched");
    assert_eq!(snapshot(&Sql::File(conn)), before);
}

#[test]
fn a_sqlite_file_that_is_not_a_steward_store_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("inventory.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE parts (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO parts (name) VALUES ('bolt'), ('nut');",
        )
        .unwrap();
    }
    let bytes = std::fs::read(&db).unwrap();
    let stderr = server_refuses(&db);
    assert!(
        stderr.contains("inventory.db") && stderr.contains("not a Steward store"),
        "{stderr}"
    );
    assert!(
        std::fs::read(&db).unwrap() == bytes,
        "someone else's database must not be modified"
    );
    assert_eq!(files_in(dir.path()), vec!["inventory.db".to_string()]);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.txt");
    let text = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&db, &text).unwrap();
    let stderr = server_refuses(&db);
    assert!(
        stderr.contains("notes.txt") && stderr.contains("not a SQLite database"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&db).unwrap(), text);
    assert_eq!(files_in(dir.path()), vec!["notes.txt".to_string()]);
}
