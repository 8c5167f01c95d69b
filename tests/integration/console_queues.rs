//! The admin's and the auditor's review queues in the real `steward demo` binary in a
//! pseudo-terminal: `/` filters the queue through the registry, `s` cycles the sort shown in the
//! header, `Y` accepts the recommendations of the filtered agents behind a typed count, and an
//! auditor reads every reviewer's items with no decision keys. The registry is read afterwards.

use crate::support::pty::Demo;
use steward::model::review::{Decision, QueueQuery};
use steward::registry;
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;

const ADMIN: &str = "ada.admin@example.com";

/// The demo in a pseudo-terminal, signed in as `persona`.
fn demo_as(persona: &str, agents: &str) -> Demo {
    Demo::start(&["--as", persona, "--agents", agents])
}

/// The agent names of the queue's left pane (after the marker column).
fn queue_agents(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once('│').map(|(left, _)| left.to_string()))
        .skip_while(|l| !l.contains("AGENTS ("))
        .skip(1)
        .filter_map(|l| {
            l.trim_start_matches([' ', '▶', '*'])
                .split_whitespace()
                .next()
                .map(str::to_string)
        })
        .filter(|n| n.contains('-'))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admins_queue_filters_sorts_and_accepts_recommendations_in_a_pty() {
    let started = chrono::Utc::now();
    let mut demo = demo_as("admin", "300");
    demo.wait("the synced inventory", |s| {
        s.contains("NAME ▲") && s.contains("synced")
    });
    demo.pressed = 0;
    demo.press("r");
    let text = demo.wait("the admin's queue", |s| {
        s.contains("My reviews") && s.contains(" agents ") && !s.contains("loading…")
    });
    assert!(
        text.contains("sort: due"),
        "the header names the order:\n{text}"
    );
    // The header says how many agents are loaded of how many.
    let total: u64 = text
        .split(" of ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no \"N of M agents\":\n{text}"));
    assert!(total > 0, "{text}");

    // s cycles the order; the registry sorts.
    demo.press("s");
    demo.wait("sorted by risk", |s| {
        s.contains("sort: risk") && !s.contains("loading…")
    });
    demo.press("s");
    demo.wait("sorted by team", |s| {
        s.contains("sort: team") && !s.contains("loading…")
    });

    // / filters the queue by an agent's name: the registry answers with its agents only.
    let text = demo.text();
    let agents = queue_agents(&text);
    let target = agents
        .first()
        .unwrap_or_else(|| panic!("no agent in the queue:\n{text}"))
        .clone();
    demo.press("/");
    for ch in target.chars() {
        demo.press(&ch.to_string());
    }
    demo.press("\r");
    let text = demo.wait("the filtered queue", |s| {
        !s.contains("loading…") && {
            let shown = queue_agents(s);
            !shown.is_empty() && shown.iter().all(|n| n.contains(target.as_str()))
        }
    });
    let filtered = queue_agents(&text);

    // Y: the registry counts, the confirmation shows the counts and wants the count typed.
    let before_y = demo.pressed;
    demo.press("Y");
    let text = demo.wait("the typed confirmation", |s| {
        s.contains("Accept recommendations") && s.contains(" Type ") && s.contains("revoke over")
    });
    assert!(
        text.contains("certify,") && text.contains("revoke over"),
        "{text}"
    );
    let count: String = text
        .lines()
        .find_map(|l| l.split_once(" Type ").map(|(_, r)| r.to_string()))
        .and_then(|r| r.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| panic!("no phrase to type:\n{text}"));
    // A wrong count changes nothing.
    demo.press("0");
    demo.press("\r");
    demo.wait("the refusal", |s| s.contains("does not match"));
    demo.press("\x7f");
    for ch in count.chars() {
        demo.press(&ch.to_string());
    }
    demo.press("\r");
    let text = demo.wait("the bulk decision", |s| s.contains("accepted:"));
    eprintln!(
        "the admin's bulk accept of {count} items over {} filtered agents: {} keys from r, {} from Y",
        filtered.len(),
        demo.pressed,
        demo.pressed - before_y
    );
    assert!(
        text.contains("certified") && text.contains("revoked"),
        "{text}"
    );
    demo.wait("the reload", |s| !s.contains("loading…"));
    let db = demo.quit();

    // The registry agrees: the filtered agents' items of the admin are all decided, each one
    // by the admin and as recommended.
    let store = registry::open_store(&db, OpenMode::MustExist).unwrap();
    let q = store
        .review_queue(
            Some(ADMIN),
            &QueueQuery {
                q: Some(target.clone()),
                limit: Some(500),
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .unwrap();
    let mut decided = 0;
    for agent in &q.agents {
        for item in &agent.items {
            assert_ne!(
                item.decision,
                Decision::None,
                "{} {}",
                agent.agent_name,
                item.scope
            );
            // (The demo's history has decisions of the admin's too, made before today.)
            if item.decided_by.as_deref() == Some(ADMIN)
                && item.decided_at.is_some_and(|t| t >= started)
            {
                assert_eq!(
                    item.decision,
                    Decision::from(item.diff.recommendation.action)
                );
                decided += 1;
            }
        }
    }
    assert_eq!(decided.to_string(), count, "as many decided as confirmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_reads_every_reviewers_items_read_only_in_a_pty() {
    let mut demo = demo_as("auditor", "300");
    demo.wait("the synced inventory", |s| {
        s.contains("NAME ▲") && s.contains("synced")
    });
    demo.press("r");
    // The frame is read whole: the footer is the last line written, so wait for it too (it must
    // come to offer no decision key; if it never does, the wait fails).
    let text = demo.wait("every reviewer's items, no decision key offered", |s| {
        s.contains("Every reviewer's items")
            && s.contains("read-only")
            && !s.contains("loading…")
            && !queue_agents(s).is_empty()
            && s.lines()
                .last()
                .is_some_and(|f| f.contains("help") && !f.contains("certify"))
    });
    assert!(
        !queue_agents(&text).is_empty(),
        "the items are listed:\n{text}"
    );
    // A decision key says why nothing happens.
    demo.press("c");
    demo.wait("the refusal", |s| s.contains("read-only: the registry"));
    // The filter works for the auditor too.
    let target = queue_agents(&demo.text())[0].clone();
    demo.press("/");
    for ch in target.chars() {
        demo.press(&ch.to_string());
    }
    demo.press("\r");
    demo.wait("the filtered list", |s| {
        !s.contains("loading…") && {
            let shown = queue_agents(s);
            !shown.is_empty() && shown.iter().all(|n| n.contains(target.as_str()))
        }
    });
    let db = demo.quit();
    // Nothing was decided by the auditor.
    let store = registry::open_store(&db, OpenMode::MustExist).unwrap();
    let q = store
        .review_queue(
            None,
            &QueueQuery {
                q: Some(target),
                limit: Some(500),
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .unwrap();
    assert!(
        q.agents
            .iter()
            .flat_map(|a| &a.items)
            .all(|i| i.decided_by.as_deref() != Some("aubrey.auditor@example.com"))
    );
}

/// The marked agents' names in the queue's left pane (the inventory's `*` before the name).
fn marked_agents(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once('│').map(|(left, _)| left.to_string()))
        .skip_while(|l| !l.contains("AGENTS ("))
        .skip(1)
        .filter_map(|l| {
            let name = l.trim_start_matches([' ', '▶', '✓']);
            name.strip_prefix('*')
                .and_then(|n| n.split_whitespace().next())
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_marks_two_agents_and_y_accepts_exactly_theirs_in_a_pty() {
    let started = chrono::Utc::now();
    let mut demo = demo_as("admin", "300");
    demo.wait("the synced inventory", |s| {
        s.contains("NAME ▲") && s.contains("synced")
    });
    demo.pressed = 0;
    demo.press("r");
    demo.wait("the admin's queue with mark offered", |s| {
        s.contains("My reviews")
            && !s.contains("loading…")
            && !queue_agents(s).is_empty()
            && s.lines().last().is_some_and(|f| f.contains("mark"))
    });
    // space marks the agent on screen and moves to the next one: two presses, two agents.
    demo.press(" ");
    demo.press(" ");
    let text = demo.wait("two marked agents", |s| {
        s.contains("· 2 marked") && marked_agents(s).len() == 2
    });
    let marked = marked_agents(&text);
    assert_ne!(marked[0], marked[1], "{text}");
    // Y takes the marked agents (not the whole queue): the confirmation names them.
    let before_y = demo.pressed;
    demo.press("Y");
    let text = demo.wait("the typed confirmation for the marked agents", |s| {
        s.contains("Accept recommendations")
            && s.contains(" Type ")
            && s.contains("2 marked agents:")
    });
    assert!(
        text.contains("certify,") && text.contains("revoke"),
        "the counts are shown:\n{text}"
    );
    let count: String = text
        .lines()
        .find_map(|l| l.split_once(" Type ").map(|(_, r)| r.to_string()))
        .and_then(|r| r.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| panic!("no phrase to type:\n{text}"));
    for ch in count.chars() {
        demo.press(&ch.to_string());
    }
    demo.press("\r");
    demo.wait("the bulk decision", |s| s.contains("accepted:"));
    eprintln!(
        "the admin's marked bulk accept of {count} items over 2 agents: {} keys from r, {} from Y",
        demo.pressed,
        demo.pressed - before_y
    );
    // The marks did their job and are gone.
    demo.wait("the marks cleared", |s| {
        !s.contains("loading…") && !s.contains(" marked ")
    });
    let db = demo.quit();

    // The registry: every item the admin decided now belongs to the two marked agents, as
    // recommended, as many as confirmed; and their admin items are all decided.
    let store = registry::open_store(&db, OpenMode::MustExist).unwrap();
    let q = store
        .review_queue(
            Some(ADMIN),
            &QueueQuery {
                limit: Some(1000),
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .unwrap();
    let mut decided = 0;
    for agent in &q.agents {
        let ours = marked.contains(&agent.agent_name);
        for item in &agent.items {
            let now = item.decided_by.as_deref() == Some(ADMIN)
                && item.decided_at.is_some_and(|t| t >= started);
            if now {
                assert!(
                    ours,
                    "{} {} was decided but not marked",
                    agent.agent_name, item.scope
                );
                assert_eq!(
                    item.decision,
                    Decision::from(item.diff.recommendation.action)
                );
                decided += 1;
            } else if ours && item.decision == Decision::None {
                // Only an item that needs a justification may stay (the registry skips it).
                assert!(
                    item.justification_required.certify || item.justification_required.revoke,
                    "{} {} of a marked agent was left undecided",
                    agent.agent_name,
                    item.scope
                );
            }
        }
    }
    assert!(
        marked
            .iter()
            .all(|m| q.agents.iter().any(|a| &a.agent_name == m)),
        "both marked agents are in the admin's queue"
    );
    assert_eq!(decided.to_string(), count, "as many decided as confirmed");
}

const OMAR: &str = "omar.owner@example.com";
const ROSA: &str = "rosa.responder@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_reassigns_an_agents_items_and_sees_the_registrys_refusal_in_a_pty() {
    let mut demo = demo_as("admin", "300");
    demo.wait("the synced inventory", |s| {
        s.contains("NAME ▲") && s.contains("synced")
    });
    demo.pressed = 0;
    demo.press("r");
    let text = demo.wait("the admin's queue with reassign offered", |s| {
        s.contains("My reviews")
            && !s.contains("loading…")
            && !queue_agents(s).is_empty()
            && s.lines().last().is_some_and(|f| f.contains("reassign"))
    });
    let target = text
        .lines()
        .find_map(|l| l.split_once("│ ▶ ").map(|(_, r)| r.to_string()))
        .and_then(|r| r.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| panic!("no agent on screen:\n{text}"));
    let start = demo.pressed;
    // a: the reviewer picker for the selected item; tab: all the agent's items.
    demo.press("a");
    demo.wait("the reviewer picker", |s| {
        // The current reviewer is shown (the line may wrap).
        s.contains("Reassign review") && s.contains("reviewer for") && s.contains("Ada Admin")
    });
    demo.press("\t");
    demo.wait("all the agent's items", |s| s.contains("all items of"));
    for ch in "omar.owner".chars() {
        demo.press(&ch.to_string());
    }
    demo.wait("Omar offered", |s| s.contains("▶ Omar Owner"));
    demo.press("\r");
    let text = demo.wait("the registry's answer", |s| {
        s.contains("now reviewed by Omar Owner")
    });
    eprintln!(
        "reassigning all of an agent's items from the queue: {} keys (a, tab, omar.owner, enter)",
        demo.pressed - start
    );
    assert!(text.contains(&target), "{text}");

    // A refusal: the picker offers Rosa (active when the console synced); she leaves meanwhile;
    // the registry refuses, the console shows its words, and nothing moves.
    demo.wait("the reload", |s| !s.contains("loading…"));
    demo.press("a");
    demo.wait("the reviewer picker again", |s| {
        s.contains("Reassign review")
    });
    for ch in "rosa.responder".chars() {
        demo.press(&ch.to_string());
    }
    demo.wait("Rosa offered", |s| s.contains("▶ Rosa Responder"));
    let db = demo.db.clone();
    {
        let store = registry::open_store(&db, OpenMode::MustExist).unwrap();
        store
            .leave(&steward::model::Actor::system("test"), ROSA)
            .unwrap();
    }
    demo.press("\r");
    let text = demo.wait("the registry's refusal", |s| {
        s.contains("Failed: reassigning") && s.contains("has left and cannot review")
    });
    assert!(text.contains(ROSA), "{text}");
    demo.press("\x1b");
    let db = demo.quit();

    let store = registry::open_store(&db, OpenMode::MustExist).unwrap();
    let mine = |who: &str| {
        store
            .review_queue(
                Some(who),
                &QueueQuery {
                    q: Some(target.clone()),
                    limit: Some(500),
                    ..Default::default()
                },
                chrono::Utc::now(),
            )
            .unwrap()
            .agents
            .into_iter()
            .filter(|a| a.agent_name == target)
            .flat_map(|a| a.items)
            .collect::<Vec<_>>()
    };
    let omars = mine(OMAR);
    assert!(!omars.is_empty(), "Omar's queue holds {target}'s items");
    assert!(omars.iter().all(|i| i.reviewer == OMAR));
    assert!(
        mine(ADMIN).is_empty(),
        "the admin's queue no longer has them"
    );
    assert!(
        mine(ROSA).is_empty(),
        "nothing moved to the person who left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_is_not_offered_reassign_and_the_key_changes_nothing_in_a_pty() {
    let mut demo = demo_as("owner", "300");
    demo.wait("the synced inventory", |s| {
        s.contains("NAME ▲") && s.contains("synced")
    });
    demo.press("r");
    let text = demo.wait("the owner's queue", |s| {
        s.contains("My reviews")
            && !s.contains("loading…")
            && s.lines().last().is_some_and(|f| f.contains("help"))
    });
    let footer = text.lines().last().unwrap_or_default().to_string();
    assert!(!footer.contains("reassign"), "{footer}");
    demo.press("a");
    demo.wait("the refusal", |s| {
        s.contains("you may not reassign review items (admins do), says the registry")
    });
    assert!(!demo.text().contains("Reassign review"));
    // The help lists no reassign key for this person either.
    demo.press("?");
    let help = demo.wait("the help", |s| s.contains("My reviews"));
    assert!(!help.contains("reassign the selected item"), "{help}");
    demo.press("\x1b");
    let db = demo.quit();
    let store = registry::open_store(&db, OpenMode::MustExist).unwrap();
    let q = store
        .review_queue(
            Some(OMAR),
            &QueueQuery {
                limit: Some(500),
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .unwrap();
    assert!(
        q.agents
            .iter()
            .flat_map(|a| &a.items)
            .all(|i| i.reviewer == OMAR),
        "nothing moved"
    );
}
