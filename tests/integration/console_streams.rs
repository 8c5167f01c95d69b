//! The streams screen (`:streams`): the admin's list of Shared Signals streams with their state,
//! lag and last error, with pause (confirmed) and resume. Driven through the console's keys
//! against a real registry on loopback, and through the real `steward demo` binary in a
//! pseudo-terminal; the registry's own state is checked afterwards. Who may see it is the
//! registry's answer: an owner is refused by `/v1/me` before any call, and by the route anyway.

use crate::console_support;

use std::time::Duration;

use crate::support::pty::Demo;
use console_support::*;
use steward::console::app::{Overlay, Screen};
use steward::model::Actor;
use steward::model::api::CreatePerson;
use steward::model::signals::{POLL, StreamState};
use steward::registry::store::sqlite::OpenMode;
use steward::registry::store::streams::{StreamFields, StreamStore};

const OWNER: &str = "olive@example.com";

/// A poll stream for the `crm` resource, registered through the real store.
fn poll_stream(r: &Registry) -> String {
    let store = steward::registry::open_store(&r.db, OpenMode::MustExist).unwrap();
    store
        .create_stream(
            &Actor::system("test"),
            "st_console_test",
            "resource:crm",
            &StreamFields {
                method: POLL.into(),
                endpoint_url: None,
                authorization_header: None,
                events_requested: vec![steward::model::signals::SESSION_REVOKED.into()],
                description: Some("crm's resource server".into()),
            },
        )
        .unwrap();
    "st_console_test".into()
}

fn status_in_db(r: &Registry, id: &str) -> String {
    let conn = crate::support::sql_at(&r.db);
    conn.query_row("SELECT status FROM ssf_streams WHERE id = ?1", [id], |x| {
        x.get(0)
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_lists_pauses_with_a_confirmation_and_resumes_a_stream() {
    let r = Registry::start().await;
    let id = poll_stream(&r);
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;

    key(&mut c, ":");
    type_text(&mut c, "streams");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    let Screen::Streams(s) = &c.app.screen else {
        panic!("not on the streams screen: {:?}", c.app.message);
    };
    let list = s.streams.as_ref().expect("the registry answered");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].stream_id, id);
    assert_eq!(list[0].receiver, "resource:crm");
    assert_eq!(s.selected_id.as_deref(), Some(id.as_str()));

    // p asks first; Enter on the default (Cancel) changes nothing.
    key(&mut c, "p");
    assert!(matches!(c.app.overlay, Some(Overlay::Confirm(_))));
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(c.app.overlay.is_none());
    assert_eq!(
        status_in_db(&r, &id),
        "enabled",
        "cancelled: nothing changed"
    );

    // p, switch to Pause, Enter: the registry pauses it, and the screen shows its answer.
    key(&mut c, "p");
    key(&mut c, "tab");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    c.settle().await.unwrap();
    assert_eq!(status_in_db(&r, &id), "paused");
    let Screen::Streams(s) = &c.app.screen else {
        panic!("left the streams screen");
    };
    assert_eq!(s.selected().unwrap().status, StreamState::Paused);
    let conn = crate::support::sql_at(&r.db);
    let by: String = conn
        .query_row(
            "SELECT actor_id FROM audit_events WHERE action = 'stream.status' ORDER BY seq DESC",
            [],
            |x| x.get(0),
        )
        .unwrap();
    assert_eq!(by, "root@example.com", "audited as the admin who paused it");

    // p on a paused stream says so; e resumes at once.
    key(&mut c, "p");
    assert!(c.app.overlay.is_none());
    key(&mut c, "e");
    c.settle().await.unwrap();
    c.settle().await.unwrap();
    assert_eq!(status_in_db(&r, &id), "enabled");
    let Screen::Streams(s) = &c.app.screen else {
        panic!("left the streams screen");
    };
    assert_eq!(s.selected().unwrap().status, StreamState::Enabled);

    // esc goes back to the inventory.
    key(&mut c, "esc");
    assert!(matches!(c.app.screen, Screen::Inventory));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_is_refused_the_streams_by_the_registry_not_by_the_console() {
    let r = Registry::start().await;
    let id = poll_stream(&r);
    r.admin()
        .create_person(&CreatePerson {
            email: OWNER.into(),
            display_name: "Olive Owner".into(),
            roles: vec![],
            manager: None,
            team: None,
        })
        .await
        .unwrap();
    let token = r.token_for(OWNER).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &token, &home).await;
    // `/v1/me` says no: the console says so and stays where it was.
    let may = c.app.me.as_ref().unwrap().may.as_ref().unwrap();
    assert!(!may.manage_streams);
    key(&mut c, ":");
    type_text(&mut c, "streams");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(matches!(c.app.screen, Screen::Inventory));
    let (_, text) = c.app.message.clone().unwrap();
    assert!(
        text.contains("may not see the Shared Signals streams"),
        "{text}"
    );
    // And the registry refuses the route itself (the console never decides alone).
    let owner =
        steward::client::Client::new(&r.url, Some(steward::client::Secret::new(token))).unwrap();
    assert_eq!(owner.streams().await.unwrap_err().status(), Some(403));
    assert_eq!(
        owner
            .set_stream(&id, "pause", None)
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    assert_eq!(status_in_db(&r, &id), "enabled");
}

/// The real binary: `steward demo` seeds two streams through the store (a resource that polls,
/// a push receiver that is down); the admin opens `:streams`, pauses the poll stream with a
/// confirmation and resumes it; the database agrees at each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_admin_pauses_and_resumes_a_stream_in_a_pty() {
    let mut demo = Demo::start(&["--agents", "300"]);
    let db = demo.db.clone();
    demo.wait_within("the synced inventory", Duration::from_secs(120), |s| {
        s.contains("synced") && s.contains("300 agents")
    });
    let status = |id: &str| -> String {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row("SELECT status FROM ssf_streams WHERE id = ?1", [id], |x| {
            x.get(0)
        })
        .unwrap()
    };
    let poll = "st_demo_poll_receiver";
    assert_eq!(status(poll), "enabled");

    demo.press(":streams\r");
    demo.wait_within(
        "the streams screen with both demo streams",
        Duration::from_secs(30),
        |s| s.contains("Shared Signals streams") && s.contains("poll") && s.contains("push"),
    );
    // The poll stream is the first (the oldest): the cursor is on it.
    let selected = demo
        .text()
        .lines()
        .find(|l| l.trim_start().starts_with('▶'))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(selected.contains("poll"), "{}", demo.text());

    demo.press("p");
    demo.wait_within("the pause confirmation", Duration::from_secs(10), |s| {
        s.contains("Pause the stream of")
    });
    demo.press("\t");
    demo.press("\r");
    demo.wait_within("the paused stream", Duration::from_secs(30), |s| {
        s.contains("is paused")
    });
    assert_eq!(status(poll), "paused");
    assert!(demo.text().contains("‖ paused"), "{}", demo.text());

    demo.press("e");
    demo.wait_within("the resumed stream", Duration::from_secs(30), |s| {
        s.contains("is enabled")
    });
    assert_eq!(status(poll), "enabled");

    demo.quit();
}
