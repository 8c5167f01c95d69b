//! "My reviews" driven through the console's keys against a real registry with a campaign
//! created through the client; the registry's state is checked afterwards.

use crate::console_support;

use chrono::{Duration, Utc};
use console_support::*;
use steward::console::Console;
use steward::console::app::{Notice, Overlay, Screen};
use steward::model::api::CreatePerson;
use steward::model::review::{
    CampaignFilter, CreateCampaign, Decision, JustificationPolicy, NoResponse, Recurrence,
    ReminderSchedule, ReviewItem, ReviewItemQuery,
};
use steward::model::{Agent, AgentKind, AgentSource, AgentStatus, Grant};
use steward::registry;
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::store::{SeedAgent, SeedBatch};

const ALICE: &str = "alice@example.com";

/// A grant granted `granted` days ago, last used `used` days ago, last certified `certified`
/// days ago.
fn grant(scope: &str, granted: i64, used: Option<i64>, certified: Option<i64>) -> Grant {
    let ago = |n: i64| Utc::now() - Duration::days(n);
    Grant {
        scope: scope.into(),
        granted_by: "granter@example.com".into(),
        granted_at: ago(granted),
        expires_at: None,
        justification: Some("seeded".into()),
        last_used_at: used.map(ago),
        last_certified_at: certified.map(ago),
    }
}

fn agent(id: &str, grants: Vec<Grant>) -> SeedAgent {
    SeedAgent {
        agent: Agent {
            id: id.into(),
            name: format!("{id}-bot"),
            description: String::new(),
            kind: AgentKind::Agent,
            parent_id: None,
            owner: Some(ALICE.into()),
            owner_name: None,
            team: "payments".into(),
            environment: "production".into(),
            status: AgentStatus::Active,
            source: AgentSource::Registered,
            created_at: Utc::now() - Duration::days(400),
            last_seen_at: None,
            static_secret: false,
            flags: Vec::new(),
            grants,
            change_seq: 0,
            owner_left_at: None,
        },
        credentials: Vec::new(),
    }
}

/// Alice owns two agents: `steady` (every scope used and unchanged) and `mixed` (one used and
/// unchanged, one unused for 60 days, one added since the last certification). An open campaign
/// covers them; certifying an unused scope needs a justification.
async fn setup() -> (Registry, String) {
    let r = Registry::start().await;
    r.admin()
        .create_person(&CreatePerson {
            email: ALICE.into(),
            display_name: "Alice".into(),
            roles: vec![],
            manager: None,
            team: Some("payments".into()),
        })
        .await
        .unwrap();
    // A second handle on the same database (WAL): the seed path writes usage history.
    let store = registry::open_store(&r.db, OpenMode::MustExist).unwrap();
    store
        .seed(&SeedBatch {
            people: Vec::new(),
            agents: vec![
                agent(
                    "steady",
                    vec![
                        grant("crm:read", 200, Some(1), Some(90)),
                        grant("crm:write", 200, Some(2), Some(90)),
                    ],
                ),
                agent(
                    "mixed",
                    vec![
                        grant("erp:read", 200, Some(1), Some(95)),
                        grant("erp:write", 200, Some(60), Some(95)),
                        grant("s3:write", 10, Some(2), None),
                    ],
                ),
            ],
        })
        .unwrap();
    drop(store);
    let campaign = r
        .admin()
        .create_campaign(&CreateCampaign {
            name: "2026-Q4 certification".into(),
            filter: CampaignFilter::default(),
            starts_at: None,
            due_at: Utc::now() + Duration::days(12) + Duration::hours(1),
            grace_days: None,
            recurrence: Recurrence::None,
            fallback_reviewer: None,
            reminders: ReminderSchedule::default(),
            no_response: NoResponse::Keep,
            justification: JustificationPolicy {
                certify_unused: true,
                revoke_against_recommendation: false,
            },
            lookback_days: None,
        })
        .await
        .unwrap();
    (r, campaign.id)
}

fn selected(c: &Console) -> (String, String, Decision) {
    let Screen::Reviews(r) = &c.app.screen else {
        panic!("not on the reviews screen");
    };
    let a = r.selected_agent().unwrap();
    let i = r.selected_item().unwrap();
    (a.agent_name.clone(), i.scope.clone(), i.decision)
}

/// Moves the cursor with j/k to a scope of an agent; returns the keys pressed.
fn go_to(c: &mut Console, agent: &str, scope: &str) -> usize {
    let Screen::Reviews(r) = &c.app.screen else {
        panic!("not on the reviews screen");
    };
    let q = r.queue.as_ref().unwrap().as_ref().unwrap();
    let target = r
        .flat()
        .iter()
        .position(|&(a, i)| q.agents[a].agent_name == agent && q.agents[a].items[i].scope == scope)
        .unwrap_or_else(|| panic!("no {agent} {scope} in the queue"));
    let from = r.items.selected;
    let (k, n) = if target >= from {
        ("j", target - from)
    } else {
        ("k", from - target)
    };
    for _ in 0..n {
        key(c, k);
    }
    assert_eq!(selected(c).1, scope);
    n
}

async fn items(r: &Registry, campaign: &str) -> Vec<ReviewItem> {
    r.admin()
        .campaign_items(
            campaign,
            &ReviewItemQuery {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
}

fn item<'a>(items: &'a [ReviewItem], agent: &str, scope: &str) -> &'a ReviewItem {
    items
        .iter()
        .find(|i| i.agent_id == agent && i.scope == scope)
        .unwrap_or_else(|| panic!("no item {agent} {scope}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_a_full_agent_through_the_keys() {
    let (mut r, campaign) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let token = r.token_for(ALICE).await;
    let mut c = console(&r, &token, &home).await;

    key(&mut c, "r");
    c.settle().await.unwrap();
    {
        let Screen::Reviews(rv) = &c.app.screen else {
            panic!("r opens the reviews");
        };
        let q = rv.queue.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(q.campaigns.len(), 1);
        assert_eq!(q.campaigns[0].progress.total, 5);
        assert_eq!(q.campaigns[0].progress.decided, 0);
        assert_eq!(q.campaigns[0].days_until_due, 12);
        // The server's order: the riskier agent first.
        let names: Vec<&str> = q.agents.iter().map(|a| a.agent_name.as_str()).collect();
        assert_eq!(names, ["mixed-bot", "steady-bot"]);
    }

    // mixed-bot: C certifies only its used and unchanged scope (erp:read).
    assert_eq!(selected(&c).0, "mixed-bot");
    key(&mut c, "C");
    c.settle().await.unwrap();
    let now = items(&r, &campaign).await;
    assert_eq!(item(&now, "mixed", "erp:read").decision, Decision::Certify);
    assert_eq!(item(&now, "mixed", "erp:write").decision, Decision::None);
    assert_eq!(item(&now, "mixed", "s3:write").decision, Decision::None);
    assert_eq!(selected(&c).0, "mixed-bot", "two scopes still to decide");

    // erp:write is unused for 60 days: c asks for a justification and sends it with the decision.
    // The cursor already moved there: every decision moves on to the next undecided item.
    assert_eq!(go_to(&mut c, "mixed-bot", "erp:write"), 0);
    key(&mut c, "c");
    assert!(matches!(c.app.overlay, Some(Overlay::Justify(_))));
    key(&mut c, "enter"); // empty: refused locally, the prompt stays
    assert!(matches!(c.app.overlay, Some(Overlay::Justify(_))));
    type_text(&mut c, "month-end close");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(c.app.overlay.is_none(), "{:?}", c.app.overlay);

    // s3:write was added since the last certification: x revokes it.
    assert_eq!(go_to(&mut c, "mixed-bot", "s3:write"), 0);
    key(&mut c, "x");
    c.settle().await.unwrap();
    assert_eq!(selected(&c).2, Decision::None);

    // mixed-bot is done: the cursor moved on to steady-bot, and one key certifies all of it.
    assert_eq!(selected(&c).0, "steady-bot");
    key(&mut c, "C");
    c.settle().await.unwrap();

    let after = items(&r, &campaign).await;
    assert_eq!(after.len(), 5);
    let write = item(&after, "mixed", "erp:write");
    assert_eq!(write.decision, Decision::Certify);
    assert_eq!(write.justification.as_deref(), Some("month-end close"));
    assert_eq!(write.decided_by.as_deref(), Some(ALICE));
    assert_eq!(item(&after, "mixed", "s3:write").decision, Decision::Revoke);
    for scope in ["crm:read", "crm:write"] {
        assert_eq!(item(&after, "steady", scope).decision, Decision::Certify);
    }
    // The grants themselves: revoked one removed, certified ones stamped.
    let mixed = r.admin().agent("mixed").await.unwrap();
    let scopes: Vec<&str> = mixed
        .agent
        .grants
        .iter()
        .map(|g| g.scope.as_str())
        .collect();
    assert_eq!(scopes, ["erp:read", "erp:write"]);
    for g in &mixed.agent.grants {
        let stamped = g.last_certified_at.unwrap();
        assert!(Utc::now() - stamped < Duration::hours(1), "{g:?}");
    }
    let steady = r.admin().agent("steady").await.unwrap();
    assert!(steady.agent.grants.iter().all(|g| {
        g.last_certified_at
            .is_some_and(|t| Utc::now() - t < Duration::hours(1))
    }));

    // The console shows the server's answer: everything decided.
    {
        let Screen::Reviews(rv) = &c.app.screen else {
            panic!()
        };
        let q = rv.queue.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(q.campaigns[0].progress.decided, 5);
        assert!(
            q.agents
                .iter()
                .flat_map(|a| &a.items)
                .all(|i| i.decision != Decision::None)
        );
    }

    // The last decision sums up: the registry's counts and the campaign's state.
    match &c.app.overlay {
        Some(Overlay::Notice(Notice { title, lines, .. })) => {
            assert_eq!(title, "Review done");
            assert!(
                lines[0].contains("certified 4, revoked 1, left 0"),
                "{lines:?}"
            );
            assert!(lines[1].contains("5/5 decided"), "{lines:?}");
        }
        other => panic!("expected the summary, got {other:?}"),
    }
    key(&mut c, "esc");
    let s = screen_text(&mut c, 120, 40);
    assert!(s.contains("5/5 decided · done"), "{s}");

    // A failed call says so and changes nothing locally.
    go_to(&mut c, "mixed-bot", "s3:write");
    r.stop().await;
    key(&mut c, "c");
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::Notice(Notice { title, .. })) => {
            assert!(title.starts_with("Failed"), "{title}")
        }
        other => panic!("expected a failure notice, got {other:?}"),
    }
    assert_eq!(selected(&c).2, Decision::Revoke);
}

fn screen_text(c: &mut Console, w: u16, h: u16) -> String {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    c.dispatch(steward::console::Action::Resize {
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
async fn the_reviews_screen_at_both_sizes() {
    let (r, _) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let token = r.token_for(ALICE).await;
    let mut c = console(&r, &token, &home).await;
    key(&mut c, "r");
    c.settle().await.unwrap();
    for (w, h) in [(80, 24), (120, 40)] {
        let s = screen_text(&mut c, w, h);
        for needle in [
            "My reviews",
            "0/5 decided",
            "due in 12 days",
            "mixed-bot",
            "steady-bot",
            "erp:read",
            "s3:write",
            "Recommendation",
            " c certify ",
            " x revoke ",
            " C certify unchanged ",
        ] {
            assert!(s.contains(needle), "{w}×{h}: {needle:?} missing in\n{s}");
        }
        // Diff markers: used (✓), unused (!), added (+).
        let line = |n: &str| s.lines().find(|l| l.contains(n)).unwrap().to_string();
        assert!(line("erp:read").contains('✓'), "{s}");
        assert!(line("erp:write").contains('!'), "{s}");
        assert!(line("s3:write").contains('+'), "{s}");
        assert!(line("erp:write").contains("unused 60d"), "{s}");
        // Words that match: write scopes are marked; the risk score comes with its scale.
        assert!(line("erp:write").contains(" write "), "{s}");
        assert!(line("risk ").contains("= 3 per flag"), "{s}");
        // Which row belongs to whom: the divider, the agent's name above its scopes, ▶ on
        // the selected row of both lists.
        assert!(line("mixed-bot").contains('│'), "{s}");
        assert!(line("AGENTS (2 of 2)").contains("▶ mixed-bot"), "{s}");
        assert!(line("erp:read").contains("│▶"), "{s}");
    }
    // The justification prompt.
    key(&mut c, "j");
    key(&mut c, "c");
    let s = screen_text(&mut c, 80, 24);
    assert!(s.contains("Justification required"), "{s}");
    key(&mut c, "esc");
    assert!(c.app.overlay.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registrys_justification_refusal_opens_the_prompt_and_resends() {
    use steward::console::Action;
    use steward::model::review::{DecideItem, Verdict};
    let (r, campaign) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let token = r.token_for(ALICE).await;
    let mut c = console(&r, &token, &home).await;
    key(&mut c, "r");
    c.settle().await.unwrap();
    go_to(&mut c, "mixed-bot", "erp:write");
    let id = item(&items(&r, &campaign).await, "mixed", "erp:write").id;
    // The registry's own refusal of a decision without a justification (422)...
    let refusal = steward::client::Client::new(&r.url, Some(steward::client::Secret::new(&token)))
        .unwrap()
        .decide(
            id,
            &DecideItem {
                decision: Verdict::Certify,
                justification: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refusal.status(), Some(422));
    // ...fed back as the answer to a decision opens the prompt; the decision is re-sent with it.
    c.dispatch(Action::Decided {
        item_id: id,
        verdict: Verdict::Certify,
        justification: None,
        result: Err(refusal),
    });
    match &c.app.overlay {
        Some(Overlay::Justify(j)) => {
            assert_eq!(j.purpose.item_id, id);
            assert!(
                j.purpose.why.contains("needs a justification"),
                "{}",
                j.purpose.why
            );
        }
        other => panic!("expected the justification prompt, got {other:?}"),
    }
    type_text(&mut c, "audit season");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    let decided = item(&items(&r, &campaign).await, "mixed", "erp:write").clone();
    assert_eq!(decided.decision, Decision::Certify);
    assert_eq!(decided.justification.as_deref(), Some("audit season"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sees_progress_and_closes_with_a_typed_confirmation() {
    use steward::console::app::ConfirmState;
    use steward::model::review::{CampaignStatus, DecideItem, Verdict};
    let (r, campaign) = setup().await;
    let alice = steward::client::Client::new(
        &r.url,
        Some(steward::client::Secret::new(r.token_for(ALICE).await)),
    )
    .unwrap();
    let id = item(&items(&r, &campaign).await, "steady", "crm:read").id;
    alice
        .decide(
            id,
            &DecideItem {
                decision: Verdict::Certify,
                justification: None,
            },
        )
        .await
        .unwrap();

    // An owner is told P is not for them.
    let home = tempfile::tempdir().unwrap();
    let token = r.token_for(ALICE).await;
    let mut c = console(&r, &token, &home).await;
    key(&mut c, "r");
    c.settle().await.unwrap();
    key(&mut c, "P");
    assert!(c.app.overlay.is_none());
    assert!(c.app.message.as_ref().unwrap().1.contains("may not"));

    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    key(&mut c, "r");
    c.settle().await.unwrap();
    key(&mut c, "P");
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::Notice(Notice { lines, .. })) => {
            let all = lines.join("\n");
            assert!(
                all.contains("2026-Q4 certification: 1/5 decided (20%)"),
                "{all}"
            );
            assert!(all.contains("no response → keep"), "{all}");
            let alice_line = lines.iter().find(|l| l.contains(ALICE)).expect(&all);
            assert!(
                alice_line.contains("1/5") && alice_line.contains("20%"),
                "{alice_line}"
            );
            assert!(lines.iter().any(|l| l.contains("payments")), "{all}");
        }
        other => panic!("expected the progress notice, got {other:?}"),
    }
    key(&mut c, "esc");

    // Z: the typed phrase names the outcome and the number of undecided items.
    key(&mut c, "Z");
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::Confirm(ConfirmState::CloseCampaign(p))) => {
            assert_eq!(p.order().pending, 4);
        }
        other => panic!("expected the close confirmation, got {other:?}"),
    }
    type_text(&mut c, "keep 3");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert!(
        matches!(c.app.overlay, Some(Overlay::Confirm(_))),
        "wrong phrase"
    );
    let open = r.admin().campaign(&campaign).await.unwrap();
    assert_eq!(open.campaign.status, CampaignStatus::Open);
    key(&mut c, "backspace");
    type_text(&mut c, "4");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::Notice(Notice { title, lines, .. })) => {
            assert!(title.starts_with("Closed"), "{title}");
            assert!(
                lines.iter().any(|l| l == "undecided items it touched: 4"),
                "{lines:?}"
            );
        }
        other => panic!("expected the close result, got {other:?}"),
    }
    let closed = r.admin().campaign(&campaign).await.unwrap();
    assert_eq!(closed.campaign.status, CampaignStatus::Closed);
    let after = items(&r, &campaign).await;
    assert_eq!(
        item(&after, "steady", "crm:read").decision,
        Decision::Certify
    );
    assert_eq!(item(&after, "mixed", "erp:write").decision, Decision::Keep);
}

/// The campaigns the registry lists under a name.
async fn campaigns_named(r: &Registry, name: &str) -> Vec<steward::model::review::Campaign> {
    r.admin()
        .campaigns(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.name == name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_a_campaign_from_the_form() {
    use steward::console::app::CampaignField;
    let (r, _) = setup().await;
    let due = (Utc::now() + Duration::days(40))
        .format("%Y-%m-%d")
        .to_string();

    // Not for owners: the key explains and opens nothing.
    let home = tempfile::tempdir().unwrap();
    let token = r.token_for(ALICE).await;
    let mut c = console(&r, &token, &home).await;
    key(&mut c, "r");
    c.settle().await.unwrap();
    key(&mut c, "N");
    assert!(c.app.overlay.is_none());
    assert!(c.app.message.as_ref().unwrap().1.contains("may not"));

    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    key(&mut c, "r");
    c.settle().await.unwrap();

    // An unparseable date is refused locally, naming the field; nothing is created.
    let before = r
        .admin()
        .campaigns(&Default::default())
        .await
        .unwrap()
        .len();
    key(&mut c, "N");
    key(&mut c, "ctrl-u");
    type_text(&mut c, "Bad date run");
    key(&mut c, "tab");
    key(&mut c, "ctrl-u");
    type_text(&mut c, "2027-02-30");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::CampaignForm(f)) => {
            let error = f.error.as_deref().unwrap();
            assert!(error.starts_with("due date:"), "{error}");
            assert!(error.contains("2027-02-30"), "{error}");
        }
        other => panic!("expected the form with its error, got {other:?}"),
    }
    assert_eq!(
        r.admin()
            .campaigns(&Default::default())
            .await
            .unwrap()
            .len(),
        before
    );
    // Esc cancels and keeps the draft: the key reopens it as it was.
    key(&mut c, "esc");
    assert!(c.app.overlay.is_none());
    key(&mut c, "N");
    match &c.app.overlay {
        Some(Overlay::CampaignForm(f)) => {
            assert_eq!(f.name, "Bad date run");
            assert_eq!(f.due, "2027-02-30");
            assert_eq!(f.focus, CampaignField::Due);
        }
        other => panic!("expected the draft, got {other:?}"),
    }

    // Fix the name and the date, choose "revoke" as the no-response outcome, make it quarterly.
    key(&mut c, "backtab");
    key(&mut c, "ctrl-u");
    type_text(&mut c, "2027-Q1 payments certification");
    key(&mut c, "tab");
    key(&mut c, "ctrl-u");
    type_text(&mut c, &due);
    key(&mut c, "tab");
    type_text(&mut c, "payments");
    key(&mut c, "tab");
    key(&mut c, "tab");
    key(&mut c, "right");
    key(&mut c, "tab");
    key(&mut c, "space");
    // Forget the queue: only a reload after the creation brings it back.
    if let Screen::Reviews(rv) = &mut c.app.screen {
        rv.queue = None;
    }
    key(&mut c, "enter");
    c.settle().await.unwrap();
    c.settle().await.unwrap();

    let created = campaigns_named(&r, "2027-Q1 payments certification").await;
    assert_eq!(created.len(), 1, "{created:?}");
    let campaign = &created[0];
    assert_eq!(campaign.no_response, NoResponse::Revoke);
    assert_eq!(campaign.recurrence, Recurrence::Quarterly);
    assert_eq!(campaign.filter.team.as_deref(), Some("payments"));
    assert_eq!(campaign.due_at.format("%Y-%m-%d").to_string(), due);
    assert!(campaign.progress.total > 0);
    assert!(campaigns_named(&r, "Bad date run").await.is_empty());
    // The notice names the campaign and its item count, as the registry counts them.
    match &c.app.overlay {
        Some(Overlay::Notice(Notice { title, lines, .. })) => {
            assert_eq!(title, "Created 2027-Q1 payments certification");
            let want = format!("{} items to review", campaign.progress.total);
            assert!(lines[0].starts_with(&want), "{lines:?}");
        }
        other => panic!("expected the created notice, got {other:?}"),
    }
    assert!(c.app.campaign_draft.is_none());
    let Screen::Reviews(rv) = &c.app.screen else {
        panic!("left the reviews screen");
    };
    assert!(matches!(rv.queue, Some(Ok(_))), "the queue did not reload");
    assert!(!rv.loading);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registrys_refusal_of_a_campaign_changes_nothing() {
    let (r, _) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    key(&mut c, "r");
    c.settle().await.unwrap();
    let before = r
        .admin()
        .campaigns(&Default::default())
        .await
        .unwrap()
        .len();
    // A date in the past parses, so it goes to the registry, which refuses it.
    key(&mut c, "N");
    key(&mut c, "ctrl-u");
    type_text(&mut c, "Too late");
    key(&mut c, "tab");
    key(&mut c, "ctrl-u");
    type_text(&mut c, "2001-01-01");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::Notice(Notice { title, .. })) => {
            assert!(title.starts_with("Failed"), "{title}")
        }
        other => panic!("expected a failure notice, got {other:?}"),
    }
    assert_eq!(
        r.admin()
            .campaigns(&Default::default())
            .await
            .unwrap()
            .len(),
        before
    );
    assert_eq!(c.app.campaign_draft.as_ref().unwrap().name, "Too late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_campaign_form_at_80_by_24() {
    let (r, _) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &r.admin_token, &home).await;
    key(&mut c, "r");
    c.settle().await.unwrap();
    key(&mut c, "N");
    for _ in 0..4 {
        key(&mut c, "tab");
    }
    key(&mut c, "right");
    key(&mut c, "right");
    let s = screen_text(&mut c, 80, 24);
    for needle in [
        "New campaign",
        "name: ",
        "agent certification",
        "due date: ",
        "team filter: (every team)",
        "fallback reviewer: (you)",
        "no-response outcome: ‹ recommendation ›",
        "quarterly: ‹ no ›",
        "enter creates",
    ] {
        assert!(s.contains(needle), "{needle:?} missing in\n{s}");
    }
}

/// `X` on the reviews screen is one Shift away from `x` (revoke one scope): it asks first,
/// Cancel is focused, and only the confirmed order suspends the agent on screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_on_the_reviews_screen_asks_before_suspending_the_agent() {
    use steward::console::app::ConfirmState;
    let (r, _) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let token = r.token_for(ALICE).await;
    let mut c = console(&r, &token, &home).await;
    key(&mut c, "r");
    c.settle().await.unwrap();
    let (agent, _, _) = selected(&c);
    let id = c
        .app
        .target()
        .map(|(id, _, _)| id)
        .expect("the agent on screen");
    let status = |r: &Registry, id: String| {
        let admin = r.admin();
        async move { admin.agent(&id).await.unwrap().agent.status }
    };
    key(&mut c, "X");
    assert!(matches!(
        c.app.overlay,
        Some(Overlay::Confirm(ConfirmState::Suspend(_)))
    ));
    key(&mut c, "enter"); // Cancel is focused
    c.settle().await.unwrap();
    assert!(c.app.overlay.is_none());
    assert_eq!(status(&r, id.clone()).await, AgentStatus::Active);
    key(&mut c, "X");
    key(&mut c, "esc");
    c.settle().await.unwrap();
    assert_eq!(status(&r, id.clone()).await, AgentStatus::Active);
    // Confirmed: the agent on screen, and only it, is suspended.
    key(&mut c, "X");
    key(&mut c, "tab");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    match &c.app.overlay {
        Some(Overlay::RevokeResult(res)) => assert_eq!(res.name, agent),
        other => panic!("expected the revocation result, got {other:?}"),
    }
    assert_eq!(status(&r, id).await, AgentStatus::Suspended);
    let others = r
        .admin()
        .list_agents(&Default::default())
        .await
        .unwrap()
        .agents;
    assert_eq!(
        others
            .iter()
            .filter(|a| a.status == AgentStatus::Suspended)
            .count(),
        1,
        "only the agent on screen"
    );
}

/// An auditor with nothing assigned: the reviews screen says so and offers the read-only keys,
/// `:export PATH` writes the open campaign's evidence, and the registry refuses a decision from
/// them. An owner (a reviewer) may not export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_reads_and_exports_but_cannot_decide() {
    let (r, campaign) = setup().await;
    r.admin()
        .create_person(&CreatePerson {
            email: "otto@example.com".into(),
            display_name: "Otto Auditor".into(),
            roles: vec![steward::model::Role::Auditor],
            manager: None,
            team: Some("audit".into()),
        })
        .await
        .unwrap();
    let token = r.token_for("otto@example.com").await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &token, &home).await;
    key(&mut c, "r");
    c.settle().await.unwrap();
    let screen = screen_text(&mut c, 120, 40);
    // Nothing is assigned to the auditor: the screen lists every reviewer's items, read-only
    // (the registry's `may_decide: false`), and no decision key is offered.
    assert!(
        screen.contains("Every reviewer's items (read-only)") && screen.contains("mixed-bot"),
        "{screen}"
    );
    assert!(!screen.contains(" c certify "), "{screen}");
    assert!(!screen.contains("no open campaign ·"), "{screen}");

    // The evidence, where the auditor asks.
    let out = home.path().join("evidence.csv");
    key(&mut c, ":");
    type_text(&mut c, &format!("export {}", out.display()));
    key(&mut c, "enter");
    c.settle().await.unwrap();
    let (_, toast) = c.app.message.clone().expect("a toast");
    assert!(
        toast.contains("evidence written to") && toast.contains("evidence.csv"),
        "{toast}"
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(csv.lines().count() > 5, "{csv}");
    assert!(
        csv.contains("erp:write") && csv.contains("crm:read"),
        "{csv}"
    );
    assert!(!home.path().join("evidence.csv.partial").exists());

    // The registry refuses the auditor's decision: reading is not deciding.
    let auditor =
        steward::client::Client::new(&r.url, Some(steward::client::Secret::new(&token))).unwrap();
    let first = items(&r, &campaign).await[0].clone();
    let refused = auditor
        .decide(
            first.id,
            &steward::model::review::DecideItem {
                decision: steward::model::review::Verdict::Revoke,
                justification: Some("not mine to decide".into()),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused.status(), Some(403) | Some(404)),
        "{refused:?}"
    );
    assert_eq!(items(&r, &campaign).await[0].decision, Decision::None);

    // Alice reviews but may not export: the console says so and writes nothing.
    let token = r.token_for(ALICE).await;
    let home = tempfile::tempdir().unwrap();
    let mut c = console(&r, &token, &home).await;
    key(&mut c, "r");
    c.settle().await.unwrap();
    key(&mut c, "E");
    c.settle().await.unwrap();
    let (_, why) = c.app.message.clone().expect("a reason");
    assert!(why.contains("may not export"), "{why}");
    assert!(std::fs::read_dir(home.path()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("evidence")
    }));
}
