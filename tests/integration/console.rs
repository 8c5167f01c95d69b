//! The console driven through its actions against a real registry, with the registry's state
//! checked afterwards through the client.

use crate::console_support;

use console_support::*;
use steward::console::app::{ConfirmState, Link, Notice, Overlay, Screen};
use steward::console::filter::{Column, QuickFilter};
use steward::console::keymap::Command;
use steward::console::overlays::command_line::CommandLine;
use steward::console::{Action, Console};
use steward::model::AgentStatus;
use steward::model::api::AuditQuery;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_signed_in_and_synced() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let c = console(&r, &r.admin_token, &home).await;
    assert_eq!(c.app.link, Link::Online);
    assert_eq!(c.app.me.as_ref().unwrap().person.email, "root@example.com");
    // Name order, every agent.
    assert_eq!(
        names(&c),
        [
            "billing-bot",
            "crawler",
            "invoice-reader",
            "legacy-sync",
            "night-runner",
            "orchestrator",
            "orchestrator-worker"
        ]
    );
    assert!(c.app.inventory.person("grace@example.com").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigns_an_owner_in_five_keystrokes_from_the_unowned_view() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;

    key(&mut c, "2"); // quick filter: unowned
    c.settle().await.unwrap();
    assert_eq!(c.app.spec.quick, QuickFilter::Unowned);
    assert_eq!(names(&c), ["crawler", "invoice-reader", "night-runner"]);
    assert_eq!(selected_name(&c).as_deref(), Some("crawler"));
    let crawler = id_of(&c, "crawler");

    // o, g, r, a, Enter: five keystrokes.
    key(&mut c, "o");
    type_text(&mut c, "gra");
    match &c.app.overlay {
        Some(Overlay::Picker(p)) => {
            let first = &c.app.inventory.people()[p.entries[p.cursor.selected].person];
            assert_eq!(first.email, "grace@example.com");
        }
        other => panic!("expected the picker, got {other:?}"),
    }
    key(&mut c, "enter");
    c.settle().await.unwrap();

    let agent = r.admin().agent(&crawler).await.unwrap();
    assert_eq!(agent.agent.owner.as_deref(), Some("grace@example.com"));
    // The row took the server's answer, and left the unowned view; the next one is selected.
    let inv = &c.app.inventory;
    let row = inv.row(inv.find_scan(&crawler).unwrap());
    assert_eq!(inv.symbol(row.owner), "grace@example.com");
    assert_eq!(names(&c), ["invoice-reader", "night-runner"]);
    assert_eq!(selected_name(&c).as_deref(), Some("invoice-reader"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_picker_marks_people_who_left_and_never_offers_them() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    select(&mut c, "night-runner").await;
    let id = id_of(&c, "night-runner");
    key(&mut c, "o");
    type_text(&mut c, "lovelace");
    match &c.app.overlay {
        Some(Overlay::Picker(p)) => {
            assert!(!p.entries.is_empty());
            let ada = p
                .entries
                .iter()
                .find(|e| c.app.inventory.people()[e.person].email == "ada@example.com")
                .expect("Ada is listed");
            assert!(!ada.offered, "a person who left is never offered");
            assert!(p.entries.iter().all(|e| !e.offered));
        }
        other => panic!("expected the picker, got {other:?}"),
    }
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(
        matches!(c.app.overlay, Some(Overlay::Picker(_))),
        "nothing to choose"
    );
    key(&mut c, "esc");
    assert!(c.app.overlay.is_none());
    let agent = r.admin().agent(&id).await.unwrap();
    assert_eq!(agent.agent.owner, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_revokes_at_once_and_records_an_incident_reference() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    select(&mut c, "billing-bot").await;
    let id = id_of(&c, "billing-bot");

    key(&mut c, "X");
    c.settle().await.unwrap();
    let seq = match &c.app.overlay {
        Some(Overlay::RevokeResult(res)) => {
            assert!(res.outcome.changed);
            assert_eq!(res.outcome.previous_status, AgentStatus::Active);
            assert_eq!(res.outcome.status, AgentStatus::Suspended);
            assert!(res.round_trip_ms > 0.0);
            res.outcome.audit_seq
        }
        other => panic!("expected the revocation result, got {other:?}"),
    };
    let inv = &c.app.inventory;
    assert_eq!(
        inv.row(inv.find_scan(&id).unwrap()).status,
        AgentStatus::Suspended
    );
    type_text(&mut c, "INC-4821");
    key(&mut c, "enter");
    // The prompt closes at once: the next key belongs to the inventory again (its footer too).
    assert!(c.app.overlay.is_none());
    c.settle().await.unwrap();
    let (_, toast) = c
        .app
        .message
        .clone()
        .expect("the note's outcome as a toast");
    assert!(toast.contains("incident reference added"), "{toast}");
    let footer = render_text(&mut c, 120, 40);
    let footer = footer.lines().last().unwrap_or_default().to_string();
    assert!(
        footer.contains("revoke") && !footer.contains("incident reference"),
        "the inventory's footer again: {footer}"
    );
    // And the next key is the inventory's, not swallowed: Esc clears the filter.
    assert_eq!(c.app.spec.query, "billing-bot");
    key(&mut c, "esc");
    assert_eq!(c.app.spec.query, "", "the key reached the inventory");

    let admin = r.admin();
    assert_eq!(
        admin.agent(&id).await.unwrap().agent.status,
        AgentStatus::Suspended
    );
    let audit = admin
        .agent_audit(&id, &AuditQuery::default())
        .await
        .unwrap();
    let note = audit
        .events
        .iter()
        .find(|e| e.action == "audit.note")
        .expect("the incident reference is in the audit log");
    assert_eq!(note.reason.as_deref(), Some("INC-4821"));
    assert_eq!(note.details["note_on"], seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decommission_shows_the_plan_and_defaults_to_cancel() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    select(&mut c, "orchestrator").await;
    let id = id_of(&c, "orchestrator");
    let child = id_of(&c, "orchestrator-worker");

    key(&mut c, "D");
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::Confirm(ConfirmState::Decommission(p))) => {
            assert_eq!(p.order().plan.agents.len(), 2);
            assert_eq!(p.order().plan.grants, 2);
            assert!(p.order().names.contains(&"orchestrator-worker".to_string()));
        }
        other => panic!("expected the decommission plan, got {other:?}"),
    }
    // Enter on the default button cancels.
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(c.app.overlay.is_none());
    let admin = r.admin();
    assert_eq!(
        admin.agent(&id).await.unwrap().agent.status,
        AgentStatus::Active
    );

    // Esc also goes back without doing anything.
    key(&mut c, "D");
    c.settle().await.unwrap();
    key(&mut c, "esc");
    c.settle().await.unwrap();
    assert_eq!(
        admin.agent(&id).await.unwrap().agent.status,
        AgentStatus::Active
    );

    key(&mut c, "D");
    c.settle().await.unwrap();
    key(&mut c, "right");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(matches!(c.app.overlay, Some(Overlay::Notice(_))));
    for agent in [&id, &child] {
        let a = admin.agent(agent).await.unwrap();
        assert_eq!(a.agent.status, AgentStatus::Decommissioned);
        assert!(a.agent.grants.is_empty());
    }
    let inv = &c.app.inventory;
    assert_eq!(
        inv.row(inv.find_scan(&child).unwrap()).status,
        AgentStatus::Decommissioned
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinstate_asks_first() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    select(&mut c, "crawler").await;
    let id = id_of(&c, "crawler");
    key(&mut c, "R");
    assert!(
        c.app.overlay.is_none(),
        "only a suspended agent can be reinstated"
    );
    key(&mut c, "X");
    c.settle().await.unwrap();
    key(&mut c, "esc"); // skip the incident reference
    // On the detail, the registry says what may be done: R is offered once suspended.
    let footer = |c: &mut Console| {
        let screen = render_text(c, 120, 40);
        screen.lines().last().unwrap_or_default().to_string()
    };
    key(&mut c, "enter");
    c.settle().await.unwrap();
    let Screen::Detail(d) = &c.app.screen else {
        panic!("enter opens the detail");
    };
    let may = d.detail.as_ref().unwrap().as_ref().unwrap().may.clone();
    assert_eq!(may.map(|m| (m.reinstate, m.revoke)), Some((true, true)));
    assert!(footer(&mut c).contains("R reinstate"), "{}", footer(&mut c));
    key(&mut c, "R");
    assert!(matches!(
        c.app.overlay,
        Some(Overlay::Confirm(ConfirmState::Reinstate(_)))
    ));
    key(&mut c, "tab");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert_eq!(
        r.admin().agent(&id).await.unwrap().agent.status,
        AgentStatus::Active
    );
    let inv = &c.app.inventory;
    assert_eq!(
        inv.row(inv.find_scan(&id).unwrap()).status,
        AgentStatus::Active
    );
    // Active again: the detail no longer offers R.
    c.settle().await.unwrap();
    assert!(!footer(&mut c).contains("reinstate"), "{}", footer(&mut c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_revoke_needs_the_typed_phrase() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    key(&mut c, "2");
    c.settle().await.unwrap();
    key(&mut c, "space");
    key(&mut c, "space");
    assert_eq!(c.app.marks.len(), 2);
    let marked: Vec<String> = c
        .app
        .marks
        .iter()
        .map(|&i| c.app.inventory.text(c.app.inventory.row(i).id).to_string())
        .collect();
    key(&mut c, "X");
    assert!(matches!(
        c.app.overlay,
        Some(Overlay::Confirm(ConfirmState::BulkRevoke(_)))
    ));
    type_text(&mut c, "revoke 3");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(
        matches!(c.app.overlay, Some(Overlay::Confirm(_))),
        "a wrong phrase keeps the dialog"
    );
    let admin = r.admin();
    for id in &marked {
        assert_eq!(
            admin.agent(id).await.unwrap().agent.status,
            AgentStatus::Active
        );
    }
    key(&mut c, "ctrl-u");
    type_text(&mut c, "revoke 2");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(c.app.marks.is_empty());
    for id in &marked {
        assert_eq!(
            admin.agent(id).await.unwrap().agent.status,
            AgentStatus::Suspended
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_narrow_and_columns_sort_both_ways() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;

    assert!(
        !c.app.accepts_text(),
        "a paste outside a field is not typed as commands"
    );
    key(&mut c, "/");
    assert!(c.app.accepts_text());
    type_text(&mut c, "orc");
    c.settle().await.unwrap();
    assert_eq!(names(&c), ["orchestrator", "orchestrator-worker"]);
    type_text(&mut c, "hw");
    c.settle().await.unwrap();
    assert_eq!(names(&c), ["orchestrator-worker"]);
    key(&mut c, "esc"); // leaves the input and clears the query
    c.settle().await.unwrap();
    assert_eq!(names(&c).len(), 7);

    key(&mut c, "O"); // by owner: unowned first
    c.settle().await.unwrap();
    assert_eq!(c.app.spec.sort.column, Column::Owner);
    let by_owner = names(&c);
    assert_eq!(
        &by_owner[..3],
        ["crawler", "invoice-reader", "night-runner"]
    );
    key(&mut c, "O");
    c.settle().await.unwrap();
    assert!(c.app.spec.sort.descending);
    let reversed = names(&c);
    // Grace's agents first; ties stay in name order.
    assert_eq!(&reversed[..2], ["orchestrator", "orchestrator-worker"]);
    assert_eq!(
        &reversed[4..],
        ["crawler", "invoice-reader", "night-runner"]
    );

    key(&mut c, "N");
    c.settle().await.unwrap();
    key(&mut c, "N");
    c.settle().await.unwrap();
    assert_eq!(
        names(&c).first().map(String::as_str),
        Some("orchestrator-worker")
    );

    // `:mine` for an owner shows their agents; Esc goes back to all without destroying anything.
    c.dispatch(Action::Command(Command::CommandLine));
    type_text(&mut c, "suspended");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert_eq!(c.app.spec.quick, QuickFilter::Suspended);
    assert!(names(&c).is_empty());
    key(&mut c, "esc");
    c.settle().await.unwrap();
    assert_eq!(c.app.spec.quick, QuickFilter::All);
    // `:theme! NAME` switches and remembers (through an effect: no file I/O in update);
    // an unknown theme changes nothing.
    key(&mut c, ":");
    type_text(&mut c, "theme! light");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert_eq!(c.app.theme.name, "light");
    let saved = std::fs::read_to_string(c.app.config_dir.join("config.toml")).unwrap();
    assert!(saved.contains("theme = \"light\""), "{saved}");
    key(&mut c, ":");
    type_text(&mut c, "theme nosuch");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert_eq!(c.app.theme.name, "light");
    assert!(c.app.message.as_ref().unwrap().1.contains("no theme named"));
    key(&mut c, ":");
    type_text(&mut c, "suspended");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    key(&mut c, "esc");
    c.settle().await.unwrap();
    // History: Up recalls the last command.
    key(&mut c, ":");
    key(&mut c, "up");
    match &c.app.overlay {
        Some(Overlay::CommandLine(CommandLine { text, .. })) => assert_eq!(text, "suspended"),
        other => panic!("expected the command line, got {other:?}"),
    }
    key(&mut c, "esc");

    // The count is of the view the tab shows: within `unowned`, a query counts against its 3.
    key(&mut c, "2");
    c.settle().await.unwrap();
    key(&mut c, "/");
    type_text(&mut c, "craw");
    c.settle().await.unwrap();
    let screen = render_text(&mut c, 120, 40);
    assert!(screen.contains("/craw · 1 of 3"), "{screen}");
    key(&mut c, "esc");
    key(&mut c, "1");
    c.settle().await.unwrap();

    // A toast stays with its agent: moving to another clears it.
    key(&mut c, "g");
    key(&mut c, "X");
    c.settle().await.unwrap();
    key(&mut c, "esc"); // skip the incident reference
    assert!(
        c.app
            .message
            .as_ref()
            .is_some_and(|(_, m)| m.contains("revoked")),
        "{:?}",
        c.app.message
    );
    key(&mut c, "j");
    assert!(c.app.message.is_none(), "{:?}", c.app.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_command_opens_the_detail_with_grants_and_audit() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    key(&mut c, ":");
    type_text(&mut c, "agent orchestrator");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    let Screen::Detail(d) = &c.app.screen else {
        panic!("expected the detail");
    };
    let detail = d.detail.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(detail.agent.name, "orchestrator");
    assert_eq!(detail.children.len(), 1);
    assert_eq!(detail.agent.grants[0].scope, "tasks:run");
    let audit = d.audit.as_ref().unwrap().as_ref().unwrap();
    assert!(audit.iter().any(|e| e.action.starts_with("agent.")));
    key(&mut c, "esc");
    assert!(matches!(c.app.screen, Screen::Inventory));

    // Not an exact name or id: nothing opens by a guess; the filter shows the matches.
    key(&mut c, ":");
    type_text(&mut c, "agent orchestr");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(matches!(c.app.screen, Screen::Inventory));
    assert!(matches!(c.app.overlay, Some(Overlay::FilterInput(_))));
    assert_eq!(c.app.spec.query, "orchestr");
    assert_eq!(names(&c), ["orchestrator", "orchestrator-worker"]);
    key(&mut c, "enter"); // keep the filter
    key(&mut c, "enter"); // open the best match
    c.settle().await.unwrap();
    let Screen::Detail(d) = &c.app.screen else {
        panic!("expected the detail");
    };
    assert_eq!(
        d.detail.as_ref().unwrap().as_ref().unwrap().agent.name,
        "orchestrator"
    );
    // Any case, exact: opens.
    key(&mut c, "esc");
    key(&mut c, "esc");
    c.settle().await.unwrap();
    key(&mut c, ":");
    type_text(&mut c, "agent ORCHESTRATOR-WORKER");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    let Screen::Detail(d) = &c.app.screen else {
        panic!("an exact name in another case opens the detail");
    };
    assert_eq!(
        d.detail.as_ref().unwrap().as_ref().unwrap().agent.name,
        "orchestrator-worker"
    );
    key(&mut c, "esc");
    // A fast "Esc q" arrives as Alt+q: it still goes back, then quits.
    key(&mut c, "enter");
    c.settle().await.unwrap();
    key(&mut c, "alt-q");
    assert!(matches!(c.app.screen, Screen::Inventory));
    assert!(c.app.quit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopens_from_the_cache_before_the_registry_answers() {
    let mut r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let c = console(&r, &r.admin_token, &home).await;
    let path = c.cache_path().unwrap().to_path_buf();
    c.shutdown().await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the cache is private");
    }
    let bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(&r.admin_token), "no token in the cache");

    // With the registry down, the console still opens with every row, read-only.
    r.stop().await;
    let mut c = Console::open(options(&r, &r.admin_token, &home)).unwrap();
    assert_eq!(names(&c).len(), 7, "rows come from the cache at once");
    assert!(c.app.inventory.synced_at.is_some());
    c.start();
    c.settle().await.unwrap();
    assert!(matches!(c.app.link, Link::Offline { .. }));
    assert_eq!(names(&c).len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_makes_actions_fail_without_local_change() {
    let mut r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    select(&mut c, "crawler").await;
    let id = id_of(&c, "crawler");
    r.stop().await;

    c.dispatch(Action::Command(Command::Refresh));
    c.settle().await.unwrap();
    assert!(matches!(c.app.link, Link::Offline { .. }));
    assert!(c.app.read_only());

    key(&mut c, "X");
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::Notice(Notice { title, lines, .. })) => {
            assert!(title.contains("Failed"), "{title}");
            assert!(lines.iter().any(|l| l.contains("Nothing was changed")));
        }
        other => panic!("expected a failure notice, got {other:?}"),
    }
    let inv = &c.app.inventory;
    assert_eq!(
        inv.row(inv.find_scan(&id).unwrap()).status,
        AgentStatus::Active,
        "nothing changed locally"
    );
    key(&mut c, "esc");
    // Assigning an owner fails the same way.
    key(&mut c, "o");
    type_text(&mut c, "grace");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(matches!(c.app.overlay, Some(Overlay::Notice(_))));
    let inv = &c.app.inventory;
    assert_eq!(
        inv.row(inv.find_scan(&id).unwrap()).owner,
        steward::console::inventory::NONE
    );

    r.restart().await;
    let a = r.admin().agent(&id).await.unwrap();
    assert_eq!(a.agent.status, AgentStatus::Active);
    assert_eq!(a.agent.owner, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_hide_what_the_registry_would_refuse_and_its_refusals_still_show() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let token = r.token_for("otto@example.com").await;
    let mut c = console(&r, &token, &home).await;
    assert_eq!(names(&c).len(), 7, "auditors read everything");
    select(&mut c, "crawler").await;
    let row = c.app.inventory.row(c.app.selected_row().unwrap());
    assert!(c.app.permits(Command::Revoke, Some(row)).is_err());
    assert!(c.app.permits(Command::AssignOwner, Some(row)).is_err());
    key(&mut c, "X");
    c.settle().await.unwrap();
    assert!(c.app.overlay.is_none());
    assert!(c.app.message.as_ref().unwrap().1.contains("may not revoke"));

    // The registry decides anyway: without knowing the roles, the console asks and reports the refusal.
    c.app.me = None;
    key(&mut c, "X");
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::Notice(Notice { lines, .. })) => {
            assert!(
                lines[0].contains("forbidden") || lines[0].contains("may not"),
                "{lines:?}"
            )
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    let id = id_of(&c, "crawler");
    assert_eq!(
        r.admin().agent(&id).await.unwrap().agent.status,
        AgentStatus::Active
    );

    // An owner sees only their agents, and `mine` shows them.
    let home2 = tempfile::tempdir().unwrap();
    let token = r.token_for("alan@example.com").await;
    let mut c = console(&r, &token, &home2).await;
    assert_eq!(names(&c), ["billing-bot", "legacy-sync"]);
    key(&mut c, "3");
    c.settle().await.unwrap();
    assert_eq!(names(&c), ["billing-bot", "legacy-sync"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_fresh_through_the_change_feed() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    let id = id_of(&c, "legacy-sync");
    r.admin()
        .revoke(&id, Some("someone else".into()))
        .await
        .unwrap();
    c.dispatch(Action::Command(Command::Refresh));
    c.settle().await.unwrap();
    let inv = &c.app.inventory;
    assert_eq!(
        inv.row(inv.find_scan(&id).unwrap()).status,
        AgentStatus::Suspended
    );
    key(&mut c, "4");
    c.settle().await.unwrap();
    assert_eq!(names(&c), ["legacy-sync"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_of_another_persons_view_is_dropped_on_sign_in() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let c = console(&r, &r.admin_token, &home).await;
    c.shutdown().await.unwrap();

    // Alan opens the console with the same cache folder: the admin's view must not linger.
    let token = r.token_for("alan@example.com").await;
    let mut c = Console::open(options(&r, &token, &home)).unwrap();
    assert_eq!(names(&c).len(), 7, "the cached view shows first");
    key(&mut c, "end");
    // Draw after every step, as the terminal loop does: no frame may show a stale row.
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    c.start();
    for _ in 0..100 {
        terminal
            .draw(|f| steward::console::views::draw(f, &c.app))
            .unwrap();
        if !c.busy() {
            break;
        }
        let action = c.next().await.unwrap();
        c.dispatch(action);
    }
    c.settle().await.unwrap();
    assert_eq!(names(&c), ["billing-bot", "legacy-sync"]);
    assert_eq!(c.app.inventory.persona.as_deref(), Some("alan@example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_shows_live_tokens_and_the_revoke_counts_the_tokens_killed() {
    use steward::client::{Client, Secret};
    use steward::model::CredentialKind;
    use steward::model::tokens::{
        AddCredential, GRANT_TOKEN_EXCHANGE, MintAccessToken, TOKEN_TYPE_ACCESS,
    };
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    select(&mut c, "billing-bot").await;
    let id = id_of(&c, "billing-bot");

    // The agent exchanges a person's token for one in which it acts (client_secret_post).
    let admin = r.admin();
    let secret = admin
        .add_credential(
            &id,
            &AddCredential {
                kind: CredentialKind::StaticSecret,
                public_key: None,
                label: Some("legacy".into()),
            },
        )
        .await
        .unwrap()
        .secret
        .unwrap();
    // The admin does not own the agent: the token names it (may_act), or it may not act.
    let subject = admin
        .mint_access_token(&MintAccessToken {
            may_act: Some(id.clone()),
            ..MintAccessToken::default()
        })
        .await
        .unwrap()
        .access_token;
    let agent_side = Client::new(&r.url, None::<Secret>).unwrap();
    agent_side
        .token_exchange(&[
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("subject_token", &subject),
            ("subject_token_type", TOKEN_TYPE_ACCESS),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "payments:write"),
            ("audience", "https://payments.example.com"),
        ])
        .await
        .unwrap();

    key(&mut c, "enter");
    c.settle().await.unwrap();
    let Screen::Detail(d) = &c.app.screen else {
        panic!("enter opens the detail");
    };
    let tokens = d.tokens.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(tokens.tokens.len(), 1);
    assert_eq!(tokens.tokens[0].subject, "root@example.com");
    assert_eq!(tokens.tokens[0].scopes, ["payments:write"]);
    assert_eq!(tokens.tokens[0].audience, ["https://payments.example.com"]);
    assert_eq!(tokens.exchanges_last_hour, 1);
    let expires = tokens.tokens[0].expires_at.timestamp() - c.app.now;
    assert!(expires > 60, "the token is live for {expires}s");
    let screen = render_text(&mut c, 120, 40);
    assert!(
        screen.contains("LIVE TOKENS (1) · exchanges in the last hour: 1"),
        "{screen}"
    );
    let line = screen
        .lines()
        .find(|l| l.contains("root@example.com") && l.contains("aud https://payments.ex"))
        .unwrap_or_else(|| panic!("no token line in\n{screen}"));
    assert!(line.contains("payments:write") && line.contains("expires in"));
    // A live token has time left (this was always "0s": the arguments were swapped).
    let left = line.split("expires in ").nth(1).unwrap_or_default().trim();
    assert!(
        !left.starts_with("0s") && (left.ends_with('m') || left.ends_with('s')),
        "{line}"
    );

    // X: the revoke result counts the tokens it killed.
    key(&mut c, "X");
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::RevokeResult(res)) => assert_eq!(res.outcome.tokens_revoked, 1),
        other => panic!("expected the revocation result, got {other:?}"),
    }
    let screen = render_text(&mut c, 80, 24);
    let line = screen
        .lines()
        .find(|l| l.contains("tokens killed"))
        .unwrap_or_else(|| panic!("no tokens killed in\n{screen}"));
    assert!(line.contains('1'), "{line}");
    key(&mut c, "esc");
    c.settle().await.unwrap();
    let Screen::Detail(d) = &c.app.screen else {
        panic!()
    };
    assert!(
        d.tokens
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap()
            .tokens
            .is_empty()
    );
}

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

/// The revoke result shows the action's Shared Signals fan-out, kept live: with a poll stream
/// that has not taken the SET it reads `0 receivers notified · 1 pending · 0 failed`, and once
/// the receiver acknowledges it, `1 receiver notified · 0 pending · 0 failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revoke_result_shows_the_fan_out_live() {
    use steward::console::overlays::revoke_result::FanOutLine;
    let r = Registry::start().await;
    populate(&r).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let auth = format!("Bearer {}", r.admin_token);
    let created: serde_json::Value = http
        .post(format!("{}/ssf/streams", r.url))
        .header("authorization", &auth)
        .json(&serde_json::json!({"delivery": {"method": "urn:ietf:rfc:8936"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poll = format!(
        "{}/ssf/poll/{}",
        r.url,
        created["stream_id"].as_str().unwrap()
    );
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    select(&mut c, "billing-bot").await;

    key(&mut c, "X");
    // The receiver has not polled yet: its SET is pending, and the line says so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let jti = loop {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        c.drain();
        let got: serde_json::Value = http
            .post(&poll)
            .header("authorization", &auth)
            .json(&serde_json::json!({"returnImmediately": true}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let line = match &c.app.overlay {
            Some(Overlay::RevokeResult(res)) => res.fan_out.as_ref().map(FanOutLine::text),
            _ => None,
        };
        if let (Some(jti), Some(line)) = (
            got["sets"].as_object().and_then(|s| s.keys().next()),
            line.clone(),
        ) && line == "0 receivers notified · 1 pending · 0 failed"
        {
            let screen = render_text(&mut c, 120, 40);
            assert!(
                screen.contains("0 receivers notified · 1 pending · 0 failed"),
                "{screen}"
            );
            break jti.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never pending: {line:?} {got}"
        );
    };
    let acked = http
        .post(&poll)
        .header("authorization", &auth)
        .json(&serde_json::json!({"ack": [jti], "maxEvents": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status().as_u16(), 200);
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::RevokeResult(res)) => assert_eq!(
            res.fan_out.as_ref().map(FanOutLine::text).as_deref(),
            Some("1 receiver notified · 0 pending · 0 failed")
        ),
        other => panic!("expected the revocation result, got {other:?}"),
    }
    let screen = render_text(&mut c, 80, 24);
    assert!(
        screen.contains("1 receiver notified · 0 pending · 0 failed"),
        "{screen}"
    );
}
