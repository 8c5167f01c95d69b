//! The responder's and the auditor's jobs in the console against a real registry: what a revoke
//! stopped (one agent and a bulk order), and the activity and audit view (`t`, `:audit`).

use crate::console_support;

use console_support::*;
use steward::console::app::Overlay;
use steward::console::{Action, Console};
use steward::model::api::AuditQuery;
use steward::model::{ActorKind, AgentStatus};

fn render_text(c: &mut Console, w: u16, h: u16) -> String {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    c.dispatch(Action::Resize {
        width: w,
        height: h,
    });
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal
        .draw(|f| steward::console::views::draw(f, &c.app))
        .unwrap();
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revoke_result_lists_the_tree_it_stopped_and_what_stays_valid_offline() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    select(&mut c, "orchestrator").await;
    key(&mut c, "X");
    c.settle().await.unwrap();
    let Some(Overlay::RevokeResult(res)) = &c.app.overlay else {
        panic!("expected the revocation result, got {:?}", c.app.overlay);
    };
    assert_eq!(res.outcome.stopped.len(), 2, "{:?}", res.outcome.stopped);
    let screen = render_text(&mut c, 120, 40);
    for want in [
        "REVOKED",
        "1 agent, 0 instances, 1 sub-agent",
        "▸ orchestrator (agent) suspended · 0 tokens killed",
        "▸ orchestrator-worker (sub-agent) suspended",
        "tokens killed",
        "wall-clock",
        "offline JWTs",
        "Incident reference",
    ] {
        assert!(screen.contains(want), "{want:?} missing from\n{screen}");
    }
    key(&mut c, "esc");
    assert!(c.app.overlay.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_revoke_reports_the_counts_and_takes_the_incident_reference() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    key(&mut c, "2"); // unowned: crawler, invoice-reader, night-runner, …
    c.settle().await.unwrap();
    key(&mut c, "space");
    key(&mut c, "space");
    let marked: Vec<String> = c
        .app
        .marks
        .iter()
        .map(|&i| c.app.inventory.text(c.app.inventory.row(i).id).to_string())
        .collect();
    assert_eq!(marked.len(), 2);
    key(&mut c, "X");
    type_text(&mut c, "revoke 2");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    let Some(Overlay::RevokeResult(res)) = &c.app.overlay else {
        panic!("expected the bulk result, got {:?}", c.app.overlay);
    };
    assert!(res.bulk);
    assert_eq!(res.audit_seqs().len(), 2, "one audit event per revoke");
    let screen = render_text(&mut c, 120, 40);
    assert!(
        screen.contains("2 agents") && screen.contains("2 revoked, 0 already suspended"),
        "{screen}"
    );
    assert!(screen.contains("Incident reference"), "{screen}");
    type_text(&mut c, "INC-77");
    key(&mut c, "enter");
    assert!(c.app.overlay.is_none(), "the prompt closes at once");
    c.settle().await.unwrap();
    // The footer is the inventory's again, and the next key reaches the inventory.
    let screen = render_text(&mut c, 120, 40);
    let footer = screen.lines().last().unwrap_or_default().to_string();
    assert!(
        !footer.contains("incident reference") && footer.contains("filter"),
        "{footer}"
    );
    key(&mut c, "1");
    c.settle().await.unwrap();
    assert_eq!(c.app.spec.quick, steward::console::filter::QuickFilter::All);
    // Both revocations carry the reference in the registry's audit log.
    let admin = r.admin();
    for id in &marked {
        assert_eq!(
            admin.agent(id).await.unwrap().agent.status,
            AgentStatus::Suspended
        );
        let audit = admin.agent_audit(id, &AuditQuery::default()).await.unwrap();
        let revoke = audit
            .events
            .iter()
            .find(|e| e.action == "agent.revoke")
            .expect("the revoke event");
        let notes = admin
            .audit(&AuditQuery {
                after: Some(revoke.seq),
                action: Some("audit.note".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            notes.events.iter().any(
                |n| n.reason.as_deref() == Some("INC-77") && n.details["note_on"] == revoke.seq
            ),
            "no note on #{}: {:?}",
            revoke.seq,
            notes.events
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_view_shows_the_agents_timeline_and_filters_it() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    select(&mut c, "billing-bot").await;
    key(&mut c, "t");
    c.settle().await.unwrap();
    let Some(Overlay::Activity(a)) = &c.app.overlay else {
        panic!("expected the activity view, got {:?}", c.app.overlay);
    };
    assert!(!a.entries.is_empty());
    // Newest first: the registration is the oldest, the policy's grants came after it.
    assert_eq!(
        a.entries.last().map(|e| e.action.as_str()),
        Some("agent.register"),
        "{:?}",
        a.entries
    );
    assert!(a.entries.windows(2).all(|w| w[0].time >= w[1].time));
    assert!(a.entries.iter().any(|e| e.actor_kind == ActorKind::System
        && e.action == "grant.add"
        && e.what == "payments:write"));
    let screen = render_text(&mut c, 120, 40);
    for want in [
        "Activity and audit · billing-bot",
        "ON BEHALF OF",
        "agent.register",
        "human",
        "system",
        "payments:write",
        "newest first",
    ] {
        assert!(screen.contains(want), "{want:?} missing from\n{screen}");
    }
    // Actor kind: human, then agent (none here), then system, then all again.
    key(&mut c, "a");
    c.settle().await.unwrap();
    let Some(Overlay::Activity(a)) = &c.app.overlay else {
        panic!()
    };
    assert_eq!(a.actor_kind, Some(ActorKind::Human));
    assert!(a.entries.iter().all(|e| e.actor_kind == ActorKind::Human));
    key(&mut c, "a");
    c.settle().await.unwrap();
    let Some(Overlay::Activity(a)) = &c.app.overlay else {
        panic!()
    };
    assert!(a.entries.is_empty(), "no agent acted on billing-bot");
    assert!(render_text(&mut c, 120, 40).contains("nothing matches these filters"));
    key(&mut c, "a");
    key(&mut c, "a");
    c.settle().await.unwrap();
    // Text: typing goes into the field (not to the keys), Enter asks the registry.
    key(&mut c, "/");
    type_text(&mut c, "no-such-thing-anywhere");
    assert!(c.app.accepts_text());
    key(&mut c, "enter");
    c.settle().await.unwrap();
    let Some(Overlay::Activity(a)) = &c.app.overlay else {
        panic!()
    };
    assert_eq!(a.actor_kind, None);
    assert!(a.entries.is_empty());
    key(&mut c, "/");
    key(&mut c, "esc"); // clears the text
    c.settle().await.unwrap();
    let Some(Overlay::Activity(a)) = &c.app.overlay else {
        panic!()
    };
    assert!(!a.entries.is_empty());
    key(&mut c, "esc");
    assert!(c.app.overlay.is_none(), "esc closes the view");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_everything_is_for_audit_readers_and_an_owner_sees_their_own_agents() {
    let r = Registry::start().await;
    populate(&r).await;
    // An owner: `:audit` is refused in the console (as /v1/me says) and by the registry.
    let home = tempfile::tempdir().unwrap();
    let token = r.token_for("alan@example.com").await;
    let mut c = console(&r, &token, &home).await;
    key(&mut c, ":");
    type_text(&mut c, "audit");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(
        !matches!(c.app.overlay, Some(Overlay::Activity(_))),
        "{:?}",
        c.app.overlay
    );
    let (_, why) = c.app.message.clone().expect("a reason");
    assert!(why.contains("may not read the whole audit log"), "{why}");
    let refused = steward::client::Client::new(&r.url, Some(steward::client::Secret::new(&token)))
        .unwrap()
        .timeline(&Default::default())
        .await;
    assert_eq!(refused.unwrap_err().status(), Some(403));
    // …while `t` on an agent they own works.
    select(&mut c, "billing-bot").await;
    key(&mut c, "t");
    c.settle().await.unwrap();
    let Some(Overlay::Activity(a)) = &c.app.overlay else {
        panic!("expected the activity view, got {:?}", c.app.overlay);
    };
    assert!(a.error.is_none() && !a.entries.is_empty(), "{:?}", a.error);

    // An auditor reads everything.
    let home = tempfile::tempdir().unwrap();
    let token = r.token_for("otto@example.com").await;
    let mut c = console(&r, &token, &home).await;
    key(&mut c, ":");
    type_text(&mut c, "audit");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    let Some(Overlay::Activity(a)) = &c.app.overlay else {
        panic!("expected the activity view, got {:?}", c.app.overlay);
    };
    assert!(a.agent.is_none());
    assert!(
        a.entries.iter().any(|e| e.action == "person.create")
            && a.entries.iter().any(|e| e.action == "agent.register"),
        "{:?}",
        a.entries.iter().map(|e| &e.action).collect::<Vec<_>>()
    );
}
