//! Every screen rendered through ratatui's TestBackend at 80×24 and 120×40, the too-small
//! screen, NO_COLOR, and untrusted text.

use crate::console_support;

use console_support::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use steward::console::app::Link;
use steward::console::views;
use steward::console::{Action, Console};
use steward::model::Agent;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn render(c: &mut Console, w: u16, h: u16) -> Buffer {
    c.dispatch(Action::Resize {
        width: w,
        height: h,
    });
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| views::draw(f, &c.app)).unwrap();
    terminal.backend().buffer().clone()
}

fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{screen}"))
}

/// Renders at both sizes and checks each needle is on screen.
fn check(c: &mut Console, needles: &[&str]) -> Vec<String> {
    SIZES
        .iter()
        .map(|&(w, h)| {
            let screen = text(&render(c, w, h));
            for n in needles {
                assert!(screen.contains(n), "{w}×{h}: {n:?} missing in\n{screen}");
            }
            screen
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_screen_at_both_sizes() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;

    // Inventory: header, tabs, table with the sort arrow, footer generated from the keymap.
    let screens = check(
        &mut c,
        &[
            "test registry",
            "root@example.com (admin)",
            "7 agents · 3 unowned",
            "synced",
            "[all]",
            "NAME ▲",
            "STATUS",
            "OWNER",
            "billing-bot",
            "— unowned —",
            "● active",
            "X revoke",
            "? help",
        ],
    );
    assert!(line_with(&screens[0], "billing-bot").starts_with('▶'));
    // The wide screen has room for more columns.
    assert!(screens[1].contains("TEAM") && !screens[0].contains("SCOPES"));

    key(&mut c, "/");
    type_text(&mut c, "orch");
    c.settle().await.unwrap();
    check(&mut c, &["/orch", "orchestrator", "enter keep filter"]);
    key(&mut c, "enter");
    c.settle().await.unwrap();

    key(&mut c, "enter"); // detail of orchestrator
    c.settle().await.unwrap();
    check(
        &mut c,
        &[
            "Agent orchestrator",
            "Grace Hopper <grace@example.com>",
            "GRANTS (1)",
            "tasks:run",
            "CREDENTIALS (0)",
            "Family       ▶ orchestrator (agent, active)",
            "└─ orchestrator-worker (",
            "RECENT AUDIT",
            // The newest events: the scope asked for at registration, granted by policy.
            "grant.add",
            "esc back",
        ],
    );
    key(&mut c, "esc");

    key(&mut c, "o");
    type_text(&mut c, "lo");
    check(
        &mut c,
        &[
            "Assign owner",
            "owner for orchestrator",
            "Ada Lovelace",
            "(left: not offered)",
        ],
    );
    key(&mut c, "esc");

    key(&mut c, "D");
    c.settle().await.unwrap();
    check(
        &mut c,
        &[
            "Decommission agent",
            "2 agent(s) decommissioned",
            "orchestrator-worker",
            "2 grant(s) removed",
            "[ Cancel ]",
        ],
    );
    key(&mut c, "esc");

    key(&mut c, "?");
    let screens = check(&mut c, &["Help: keys", "Everywhere", "revoke now", "quit"]);
    assert!(
        screens[1].contains("sort by owner"),
        "two columns at 120×40"
    );
    // At 80×24 the rest is a scroll away.
    let found = (0..60).any(|_| {
        key(&mut c, "down");
        text(&render(&mut c, 80, 24)).contains("sort by owner")
    });
    assert!(found, "scrolling the help reaches every binding");
    key(&mut c, "esc");

    key(&mut c, ":");
    type_text(&mut c, "them");
    check(&mut c, &[":them", "agent NAME"]);
    key(&mut c, "esc");

    key(&mut c, "X");
    c.settle().await.unwrap();
    check(
        &mut c,
        &[
            "REVOKED",
            "active → suspended",
            "credentials",
            "tokens killed",
            "round trip",
            "Incident reference",
        ],
    );
    key(&mut c, "esc");
    check(&mut c, &["■ suspended", "revoked orchestrator"]);

    // Unreachable: the banner says so plainly.
    c.app.link = Link::Offline {
        error: "connection refused".into(),
    };
    check(&mut c, &["READ-ONLY", "connection refused", "OFFLINE"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_small_says_so() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    for (w, h) in [(59, 24), (80, 14), (20, 5)] {
        let screen = text(&render(&mut c, w, h));
        assert!(screen.contains("small"), "{w}×{h}:\n{screen}");
        assert!(!screen.contains("billing-bot"));
    }
    let screen = text(&render(&mut c, 60, 15));
    assert!(screen.contains("billing-bot"), "60×15 is enough:\n{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_color_uses_no_colour_and_stays_readable() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut options = options(&r, &r.admin_token, &home);
    options.no_color = true;
    let mut c = Console::open(options).unwrap();
    c.start();
    c.settle().await.unwrap();
    c.settle().await.unwrap();
    assert_eq!(c.app.theme.name, "mono");
    key(&mut c, "X");
    c.settle().await.unwrap();
    key(&mut c, "esc");
    // Even a colourful theme chosen later loses its colours.
    key(&mut c, ":");
    type_text(&mut c, "theme high-contrast");
    key(&mut c, "enter");
    assert!(c.app.theme.is_colorless());
    for (w, h) in SIZES {
        let buf = render(&mut c, w, h);
        for cell in buf.content() {
            assert!(
                matches!(cell.fg, Color::Reset) && matches!(cell.bg, Color::Reset),
                "a coloured cell under NO_COLOR: {cell:?}"
            );
        }
        let screen = text(&buf);
        // Selection: a marker and reverse video; status: words.
        let y = screen
            .lines()
            .position(|l| l.starts_with('▶'))
            .expect("the selected row is marked") as u16;
        assert!(buf[(3, y)].modifier.contains(Modifier::REVERSED));
        assert!(screen.contains("■ suspended") && screen.contains("● active"));
        assert!(screen.contains("[all]"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_from_the_registry_is_stripped_before_drawing() {
    let r = Registry::start().await;
    populate(&r).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    // A hostile record, as a compromised registry or a tampered cache could hand over.
    let mut evil: Agent = r.admin().agent(&id_of(&c, "crawler")).await.unwrap().agent;
    evil.name = "evil\u{1b}]0;pwned\u{7}\u{1b}[31mname\u{202e}".into();
    evil.team = "te\u{1b}[2Jam".into();
    std::sync::Arc::make_mut(&mut c.app.inventory).upsert(&evil);
    c.dispatch(Action::Command(steward::console::keymap::Command::Quick(
        steward::console::filter::QuickFilter::Unowned,
    )));
    c.settle().await.unwrap();
    for (w, h) in SIZES {
        let screen = text(&render(&mut c, w, h));
        assert!(screen.contains("evilname"), "{screen}");
        assert!(!screen.contains('\u{1b}') && !screen.contains('\u{7}'));
        assert!(!screen.contains("pwned"));
        assert!(!screen.contains('\u{202e}'));
    }
}
