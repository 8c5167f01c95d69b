//! `GET /v1/audit/timeline` over a real registry: who may read it (the abuse paths first), its
//! order and paging, its filters, and `steward audit list --agent ID` reading it.

use crate::support;

use serde_json::Value;
use support::Registry;

fn entries(v: &Value) -> Vec<Value> {
    v["entries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn only_audit_readers_read_everything_and_owners_read_only_their_agents() {
    let r = Registry::start().await;
    let mine = r
        .register("owned-bot", Some("owner@example.com"), &[])
        .await;
    let theirs = r
        .register("someone-elses", Some("other@example.com"), &[])
        .await;
    r.post(
        &format!("/v1/agents/{mine}/revoke"),
        &r.admin,
        serde_json::json!({"reason": "drill"}),
    )
    .await
    .expect(200);

    // Admins, auditors and responders read the whole timeline.
    for who in [&r.admin, &r.auditor, &r.responder] {
        let page = r.get("/v1/audit/timeline", who).await;
        let body = page.expect(200);
        assert!(
            entries(body).iter().any(|e| e["action"] == "agent.revoke"),
            "{} sees the revoke: {body}",
            who.email
        );
    }
    // A person without a role may not read everything…
    let refused = r.get("/v1/audit/timeline", &r.owner).await;
    refused.expect(403);
    // …reads their own agent's events…
    let own = r
        .get(&format!("/v1/audit/timeline?agent={mine}"), &r.owner)
        .await;
    let own = own.expect(200).clone();
    assert!(!entries(&own).is_empty());
    assert!(
        entries(&own).iter().all(|e| e["target"] == mine.as_str()),
        "only events about their agent: {own}"
    );
    // …and learns nothing about another person's agent: the same 404 as for no agent at all.
    let other = r
        .get(&format!("/v1/audit/timeline?agent={theirs}"), &r.owner)
        .await;
    other.expect(404);
    let missing = r.get("/v1/audit/timeline?agent=ag_nope", &r.owner).await;
    missing.expect(404);
    // No token: 401.
    let anonymous = r.call("GET", "/v1/audit/timeline", None, None).await;
    anonymous.expect(401);
}

#[tokio::test]
async fn the_timeline_is_newest_first_pages_without_gaps_and_filters() {
    let r = Registry::start().await;
    let a = r
        .register("pager-one", Some("owner@example.com"), &[])
        .await;
    let b = r.register("pager-two", None, &[]).await;
    r.post(
        &format!("/v1/agents/{a}/revoke"),
        &r.admin,
        serde_json::json!({"reason": "incident 7"}),
    )
    .await
    .expect(200);
    r.post(
        &format!("/v1/agents/{b}/revoke"),
        &r.responder,
        serde_json::json!({}),
    )
    .await
    .expect(200);

    // The whole log, one entry per page, compared with one big page.
    let all = r.get("/v1/audit/timeline?limit=500", &r.auditor).await;
    let all = entries(all.expect(200));
    assert!(all.len() >= 6, "{all:?}");
    let times: Vec<&str> = all.iter().map(|e| e["time"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(times, sorted, "newest first");
    let mut walked = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let path = match &before {
            None => "/v1/audit/timeline?limit=1".to_string(),
            Some(c) => format!("/v1/audit/timeline?limit=1&before={}", urlencode(c)),
        };
        let page = r.get(&path, &r.auditor).await;
        let page = page.expect(200).clone();
        walked.extend(entries(&page));
        match page["next"].as_str() {
            Some(n) => before = Some(n.to_string()),
            None => break,
        }
        assert!(walked.len() <= all.len(), "paging runs past the end");
    }
    assert_eq!(
        walked, all,
        "one entry a page gives the same timeline, no gap, no repeat"
    );

    // Actor kinds are words, and filter.
    let humans = r
        .get("/v1/audit/timeline?actor_kind=human", &r.auditor)
        .await;
    let humans = entries(humans.expect(200));
    assert!(!humans.is_empty());
    assert!(humans.iter().all(|e| e["actor_kind"] == "human"));
    let systems = r
        .get("/v1/audit/timeline?actor_kind=system", &r.auditor)
        .await;
    assert!(
        entries(systems.expect(200))
            .iter()
            .all(|e| e["actor_kind"] == "system")
    );
    // Text: the reason, and an agent's name reaching events about it by id.
    let incident = r.get("/v1/audit/timeline?q=INCIDENT%207", &r.auditor).await;
    let incident = entries(incident.expect(200));
    assert_eq!(incident.len(), 1, "{incident:?}");
    assert_eq!(incident[0]["target"], a.as_str());
    assert_eq!(incident[0]["what"], "0 tokens killed");
    let by_name = r.get("/v1/audit/timeline?q=pager-two", &r.auditor).await;
    let by_name = entries(by_name.expect(200));
    assert!(
        by_name
            .iter()
            .any(|e| e["target"] == b.as_str() && e["action"] == "agent.revoke")
    );
    assert!(by_name.iter().all(|e| e["target"] == b.as_str()));

    // Bad input: a clear 422 each, never a 500.
    for bad in [
        "actor_kind=robot",
        "limit=0",
        "limit=501",
        "before=yesterday",
        "before=2026-01-01T00:00:00Z~a~notanumber",
    ] {
        let reply = r
            .get(&format!("/v1/audit/timeline?{bad}"), &r.auditor)
            .await;
        assert_eq!(reply.status, 422, "{bad}: {:?}", reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_lists_an_agents_timeline_as_json() {
    let r = Registry::start().await;
    let id = r.register("cli-bot", Some("owner@example.com"), &[]).await;
    r.post(
        &format!("/v1/agents/{id}/revoke"),
        &r.admin,
        serde_json::json!({"reason": "cli check"}),
    )
    .await
    .expect(200);
    let out = steward_as(
        &r,
        &r.owner,
        &[
            "audit",
            "list",
            "--agent",
            &id,
            "--include-exchanges",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let actions: Vec<&str> = listed
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.first(),
        Some(&"agent.revoke"),
        "newest first: {actions:?}"
    );
    assert!(actions.contains(&"agent.register"), "{actions:?}");
    assert_eq!(listed[0]["reason"], "cli check");
    assert_eq!(listed[0]["actor_kind"], "human");
    // The same person without --agent: the registry refuses, and the command says so.
    let refused = steward_as(&r, &r.owner, &["audit", "list", "--include-exchanges"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("audit"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// `steward ARGS` against the registry as `who`, isolated from this machine's config.
fn steward_as(r: &Registry, who: &support::Member, args: &[&str]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    std::process::Command::new(support::steward_exe())
        .env_remove("STEWARD_NO_KEYRING")
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("STEWARD_SERVER", &r.url)
        .env("STEWARD_TOKEN", &who.token)
        .stdin(std::process::Stdio::null())
        .args(args)
        .output()
        .unwrap()
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
