//! Owners in the real binary: `steward demo` in a pseudo-terminal as the admin. Unowned agents
//! get an owner one by one from the registry's ranked picker (two keys each), `u` undoes the
//! last change, and `o` on marked rows gives them all one owner after a confirmation naming the
//! count. The changes are then read back from the demo's database (audit log and owners).

use crate::support::pty::Demo;

/// The owner-change events of the audit log: (action, reason, before, after).
fn owner_events(db: &std::path::Path) -> Vec<(String, String, Option<String>, Option<String>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT action, coalesce(reason, ''), details FROM audit_events
             WHERE action IN ('agent.owner.set', 'agent.owner.clear') ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([], |r| {
        let details: String = r.get(2)?;
        let d: serde_json::Value = serde_json::from_str(&details).unwrap();
        Ok((
            r.get(0)?,
            r.get(1)?,
            d["before"].as_str().map(str::to_string),
            d["after"].as_str().map(str::to_string),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The toast line (the one above the footer).
fn toast(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .len()
        .checked_sub(2)
        .map(|i| lines[i].to_string())
        .unwrap_or_default()
}

/// The footer (the last line).
fn footer(text: &str) -> String {
    text.lines().last().unwrap_or_default().to_string()
}

#[test]
fn unowned_agents_get_owners_one_by_one_and_in_bulk_and_u_undoes() {
    let mut demo = Demo::start(&["--agents", "300"]);
    demo.wait("the synced inventory", |s| {
        s.contains("NAME ▲") && s.contains("synced") && s.contains("300 agents")
    });
    demo.press("2");
    demo.wait("the unowned view", |s| {
        s.contains("[unowned]") && s.contains("— unowned —")
    });
    // `u` is offered only once there is an owner change to undo.
    assert!(!footer(&demo.text()).contains("undo"), "{}", demo.text());

    // One by one: o, then Enter on the registry's first candidate (the agent's team).
    let start = demo.pressed;
    for n in 1..=2 {
        demo.press("o");
        demo.wait("the ranked picker", |s| {
            s.contains("Assign owner") && s.contains("· now unowned") && s.contains("[team]")
        });
        demo.press("\r");
        demo.wait("the owner set", |s| {
            !s.contains("Assign owner") && toast(s).contains("is now owned by")
        });
        assert_eq!(demo.pressed - start, 2 * n, "two keys per agent");
    }
    assert!(toast(&demo.text()).contains("u undo"));
    assert!(footer(&demo.text()).contains("u undo"), "{}", demo.text());

    // u undoes the last change: that agent is unowned again.
    demo.press("u");
    demo.wait("the undo", |s| toast(s).contains("undone:"));

    // Bulk: mark three rows, o, Enter, then the confirmation (Cancel focused first).
    let start = demo.pressed;
    for _ in 0..3 {
        demo.press(" ");
    }
    demo.wait("three marks", |s| s.contains("3 marked"));
    demo.press("o");
    demo.wait("the picker for the marked rows", |s| {
        s.contains("owner for 3 marked agents") && s.contains("[team]")
    });
    demo.press("\r");
    demo.wait("the confirmation naming the count", |s| {
        s.contains("Give 3 marked agents one owner")
    });
    demo.press("\t");
    demo.press("\r");
    demo.wait("the bulk change", |s| {
        toast(s).contains("3 agents are now owned by")
    });
    assert_eq!(demo.pressed - start, 7, "3 marks + o, Enter, Tab, Enter");

    let done = demo.quit();
    let events = owner_events(&done.db);
    // Two single assignments, one undo (a clear: the agent had no owner), three bulk ones.
    let actions: Vec<(&str, &str)> = events
        .iter()
        .map(|(a, r, _, _)| (a.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("agent.owner.set", "assigned in the console"),
            ("agent.owner.set", "assigned in the console"),
            ("agent.owner.clear", "undone in the console"),
            ("agent.owner.set", "assigned in the console"),
            ("agent.owner.set", "assigned in the console"),
            ("agent.owner.set", "assigned in the console"),
        ],
        "{events:?}"
    );
    let bulk: Vec<&Option<String>> = events[3..].iter().map(|e| &e.3).collect();
    assert!(
        bulk.iter().all(|o| o.is_some() && *o == bulk[0]),
        "one owner for all"
    );
    assert_eq!(
        events[2].2, events[1].3,
        "the undo reversed the last change"
    );
}
