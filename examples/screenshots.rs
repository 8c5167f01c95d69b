//! Regenerates `screenshots/*.svg` from the real views over the demo enterprise:
//!
//! ```sh
//! cargo run --example screenshots            # writes screenshots/
//! cargo run --example screenshots -- --out DIR
//! ```
//!
//! It starts an embedded registry seeded like `steward demo`, drives the console through its
//! actions as the admin persona, renders each screen with ratatui's TestBackend and writes the
//! buffer as SVG.

use std::path::PathBuf;
use std::sync::Arc;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use steward::client::Secret;
use steward::console::filter::QuickFilter;
use steward::console::keymap::{Command, KeySpec};
use steward::console::{Action, Console, Options, svg, views};
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::{self, Server};

const W: u16 = 120;
const H: u16 = 36;

fn key(c: &mut Console, spec: &str) {
    c.dispatch(Action::Key(KeySpec::parse(spec).unwrap().to_event()));
}

fn type_text(c: &mut Console, text: &str) {
    for ch in text.chars() {
        c.dispatch(Action::Key(KeySpec::char(ch).to_event()));
    }
}

fn shoot(c: &mut Console, out: &std::path::Path, name: &str, title: &str) -> anyhow::Result<()> {
    let mut terminal = Terminal::new(TestBackend::new(W, H))?;
    terminal.draw(|f| views::draw(f, &c.app))?;
    let path = out.join(format!("{name}.svg"));
    std::fs::write(
        &path,
        svg::buffer_to_svg(terminal.backend().buffer(), title),
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Selects an agent by filtering to its exact name.
async fn select(c: &mut Console, name: &str) -> anyhow::Result<()> {
    key(c, "/");
    type_text(c, name);
    key(c, "enter");
    c.settle().await?;
    key(c, "esc"); // clear the filter again; the selection stays on the agent
    c.settle().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .iter()
        .position(|a| a == "--out")
        .map(|p| PathBuf::from(&args[p + 1]))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("screenshots"));
    std::fs::create_dir_all(&out)?;

    let scratch = tempfile::tempdir()?;
    let store = registry::open_store(&scratch.path().join("demo.db"), OpenMode::CreateIfMissing)?;
    let personas = registry::demo::seed(store.as_ref(), 7, 3000)?;
    // The demo's two Shared Signals streams (a resource that polls, a push receiver that is down).
    registry::demo_signals::seed_streams(store.as_ref(), &personas["admin"].email)?;
    // A week of exchanges, some live, for the revoke result and the activity view.
    registry::demo_history::seed_token_history(store.as_ref(), 7, chrono::Utc::now())?;
    // The demo's behaviour story: history, then today's events through the real detectors.
    let plan = registry::demo_activity::seed_history(store.as_ref(), 7, chrono::Utc::now())?;
    let store: Arc<dyn Store> = store;
    let kept = store.clone();
    let server = Server::bind("127.0.0.1:0", store, "steward demo").await?;
    let behaviour = server.start_behaviour();
    tokio::task::spawn_blocking(move || registry::demo_activity::plant_story(&behaviour, &plan))
        .await?;
    let url = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));

    let mut c = Console::open(Options {
        server: url,
        token: Secret::new(personas["admin"].token.clone()),
        config_dir: scratch.path().join("config"),
        cache_dir: None,
        no_color: false,
    })?;
    c.dispatch(Action::Resize {
        width: W,
        height: H,
    });
    c.start();
    c.settle().await?;
    c.settle().await?;

    shoot(
        &mut c,
        &out,
        "inventory",
        "Steward console: the agent inventory",
    )?;

    // An agent with sub-agents: the richest detail and decommission plan.
    let inv = c.app.inventory.clone();
    let parent = inv
        .rows()
        .iter()
        .filter(|r| r.parent.len > 0)
        .map(|r| inv.text(r.parent).to_string())
        .find_map(|p| inv.find_scan(&p))
        .map(|i| inv.text(inv.row(i).name).to_string());

    if let Some(name) = &parent {
        select(&mut c, name).await?;
        key(&mut c, "enter");
        c.settle().await?;
        shoot(&mut c, &out, "detail", "Steward console: agent detail")?;
        key(&mut c, "esc");
        key(&mut c, "D");
        c.settle().await?;
        shoot(
            &mut c,
            &out,
            "decommission-confirm",
            "Steward console: decommission plan and confirmation",
        )?;
        key(&mut c, "esc");
    }

    c.dispatch(Action::Command(Command::Quick(QuickFilter::Unowned)));
    c.settle().await?;
    shoot(
        &mut c,
        &out,
        "unowned",
        "Steward console: the unowned quick filter",
    )?;
    key(&mut c, "o");
    c.settle().await?; // the registry's ranking
    type_text(&mut c, "ma");
    shoot(
        &mut c,
        &out,
        "owner-picker",
        "Steward console: the owner picker, ranked by the registry",
    )?;
    key(&mut c, "esc");
    // One owner for marked agents, after a confirmation naming the count.
    for _ in 0..3 {
        key(&mut c, "space");
    }
    key(&mut c, "o");
    c.settle().await?;
    key(&mut c, "enter");
    shoot(
        &mut c,
        &out,
        "owner-bulk",
        "Steward console: one owner for three marked agents",
    )?;
    key(&mut c, "esc");
    key(&mut c, "esc"); // clears the marks

    // The incident view: flagged agents, most severe first; the first one's flags, evidence,
    // last 24 h and week of activity against its band; the acknowledge prompt.
    c.dispatch(Action::Command(Command::Quick(QuickFilter::Flagged)));
    c.settle().await?;
    shoot(
        &mut c,
        &out,
        "flagged",
        "Steward console: the flagged quick filter (severity first)",
    )?;
    key(&mut c, "enter");
    c.settle().await?;
    shoot(
        &mut c,
        &out,
        "incident",
        "Steward console: an agent's flags with evidence and its week against the baseline band",
    )?;
    key(&mut c, "a");
    type_text(&mut c, "on call: looking into it");
    shoot(
        &mut c,
        &out,
        "acknowledge",
        "Steward console: acknowledging the agent's open flags with a reason",
    )?;
    key(&mut c, "esc");
    key(&mut c, "esc");
    c.settle().await?;

    c.dispatch(Action::Command(Command::Quick(QuickFilter::All)));
    c.settle().await?;
    key(&mut c, "/");
    type_text(&mut c, "pay");
    c.settle().await?;
    shoot(&mut c, &out, "filter", "Steward console: fuzzy filter")?;
    key(&mut c, "enter");
    key(&mut c, "X");
    c.settle().await?;
    type_text(&mut c, "INC-4821");
    shoot(
        &mut c,
        &out,
        "revoke-result",
        "Steward console: one-keystroke revocation",
    )?;
    key(&mut c, "esc");
    key(&mut c, "esc");
    c.settle().await?;

    // The activity and audit view of everything: the revocation above, exchanges with their
    // delegation chains, the seeded history.
    key(&mut c, ":");
    type_text(&mut c, "audit");
    key(&mut c, "enter");
    c.settle().await?;
    shoot(
        &mut c,
        &out,
        "activity",
        "Steward console: the activity and audit view",
    )?;
    key(&mut c, "esc");
    c.settle().await?;

    key(&mut c, "?");
    shoot(
        &mut c,
        &out,
        "help",
        "Steward console: help generated from the keymap",
    )?;
    key(&mut c, "esc");

    key(&mut c, ":");
    type_text(&mut c, "theme light");
    key(&mut c, "enter");
    c.settle().await?;
    shoot(
        &mut c,
        &out,
        "inventory-light",
        "Steward console: the light theme",
    )?;

    // "My reviews" as the owner persona, over the demo's half-decided quarterly campaign.
    registry::demo_reviews::seed_demo_campaign(kept.as_ref(), chrono::Utc::now())?;
    let mut owner = Console::open(Options {
        server: c.app.server_url.clone(),
        token: Secret::new(personas["owner"].token.clone()),
        config_dir: scratch.path().join("config-owner"),
        cache_dir: None,
        no_color: false,
    })?;
    owner.dispatch(Action::Resize {
        width: W,
        height: H,
    });
    owner.start();
    owner.settle().await?;
    owner.settle().await?;
    key(&mut owner, "r");
    owner.settle().await?;
    shoot(
        &mut owner,
        &out,
        "reviews",
        "Steward console: my reviews (access certification)",
    )?;

    // The owner's whole review by the recommendations, to its summary.
    for _ in 0..400 {
        use steward::console::app::{Notice, Overlay, Screen};
        use steward::model::review::Verdict;
        match &owner.app.overlay {
            Some(Overlay::Notice(Notice { title, .. })) if title == "Review done" => break,
            Some(Overlay::Justify(_)) => {
                type_text(&mut owner, "reviewed with the team");
                key(&mut owner, "enter");
            }
            Some(_) => key(&mut owner, "esc"),
            None => {
                let Screen::Reviews(r) = &owner.app.screen else {
                    break;
                };
                let (Some(agent), Some(item)) = (r.selected_agent(), r.selected_item()) else {
                    break;
                };
                let k = if item.diff.recommendation.action == Verdict::Revoke {
                    "x"
                } else if agent.items.iter().any(|i| i.bulk_certifiable) {
                    "C"
                } else {
                    "c"
                };
                key(&mut owner, k);
            }
        }
        owner.settle().await?;
    }
    shoot(
        &mut owner,
        &out,
        "review-summary",
        "Steward console: the review's summary at the last decision",
    )?;

    // What waits for the admin persona: the demo's pending requests and per-use approval.
    key(&mut c, "esc");
    key(&mut c, "A");
    c.settle().await?;
    shoot(
        &mut c,
        &out,
        "approvals",
        "Steward console: waiting for me (approvals)",
    )?;

    // The owner requests a scope for one of their agents: the catalogue picker. Back from the
    // review (its summary, then the screen) to the inventory first.
    key(&mut owner, "esc");
    owner.settle().await?;
    key(&mut owner, "esc");
    owner.settle().await?;
    key(&mut owner, "esc");
    owner.settle().await?;
    key(&mut owner, "3");
    owner.settle().await?;
    key(&mut owner, "enter");
    owner.settle().await?;
    key(&mut owner, "+");
    owner.settle().await?;
    type_text(&mut owner, "crm");
    shoot(
        &mut owner,
        &out,
        "request-scope",
        "Steward console: requesting a scope from the catalogue",
    )?;

    // The admin's streams: the poll stream holds the revokes above until its resource server
    // polls; the push receiver is down and its failures show. A moment for a retry or two.
    for _ in 0..3 {
        key(&mut c, "esc");
        c.settle().await?;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    key(&mut c, ":");
    type_text(&mut c, "streams");
    key(&mut c, "enter");
    c.settle().await?;
    shoot(
        &mut c,
        &out,
        "streams",
        "Steward console: Shared Signals streams (admins)",
    )?;

    // The admin's queue: two agents marked for Y, then the reviewer picker for all of an
    // agent's items (a, tab).
    key(&mut c, "esc");
    c.settle().await?;
    key(&mut c, "r");
    c.settle().await?;
    key(&mut c, "space");
    c.settle().await?;
    key(&mut c, "space");
    c.settle().await?;
    shoot(
        &mut c,
        &out,
        "reviews-marked",
        "Steward console: the admin's queue with two agents marked for Y",
    )?;
    key(&mut c, "a");
    c.settle().await?;
    key(&mut c, "tab");
    c.settle().await?;
    type_text(&mut c, "omar");
    shoot(
        &mut c,
        &out,
        "reassign",
        "Steward console: reassigning an agent's review items (admins)",
    )?;

    let _ = stop.send(());
    serving.await??;
    Ok(())
}
