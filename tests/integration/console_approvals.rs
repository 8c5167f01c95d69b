//! "Waiting for me" and `+` driven through the console's keys against a real registry: an
//! approver approves with `y` and denies with `n` and a reason, an owner files a request from the
//! agent detail, and the registry's self-approval refusal is shown as it says it. The registry's
//! own state is checked afterwards.

use crate::console_support;

use console_support::*;
use steward::console::Console;
use steward::console::app::{Overlay, Screen};
use steward::model::AgentKind;
use steward::model::api::{CreatePerson, RegisterAgent, SetOwner};
use steward::model::approvals::{CreateRequest, RequestQuery, RequestStatus};
use steward::model::catalogue::{ApprovalMode, CatalogueScope, ImportCatalogue, Resource, Tier};

const GRACE: &str = "grace@example.com";
const ALAN: &str = "alan@example.com";

/// Grace owns the vault (a medium and a high scope); Alan owns `billing-bot` and has asked for
/// both vault scopes for it.
async fn setup() -> (Registry, String) {
    let r = Registry::start().await;
    let admin = r.admin();
    for (email, name) in [(GRACE, "Grace Hopper"), (ALAN, "Alan Turing")] {
        admin
            .create_person(&CreatePerson {
                email: email.into(),
                display_name: name.into(),
                roles: vec![],
                manager: None,
                team: Some("payments".into()),
            })
            .await
            .unwrap();
    }
    let scope = |name: &str, tier| CatalogueScope {
        name: name.into(),
        tier,
        approval: ApprovalMode::Request,
        description: format!("{name} on the vault"),
    };
    admin
        .import_catalogue(&ImportCatalogue {
            resources: vec![Resource {
                id: "vault".into(),
                name: "Vault".into(),
                description: String::new(),
                owner: Some(GRACE.into()),
                audiences: vec!["https://vault.example.com".into()],
                approvers: None,
                max_duration: None,
                scopes: vec![
                    scope("vault.secrets:read", Tier::Medium),
                    scope("vault.keys:rotate", Tier::High),
                ],
            }],
        })
        .await
        .unwrap();
    let agent = admin
        .register_agent(&RegisterAgent {
            name: "billing-bot".into(),
            description: "bills".into(),
            kind: AgentKind::Agent,
            parent_id: None,
            owner: Some(ALAN.into()),
            team: Some("payments".into()),
            environment: Some("prod".into()),
            scopes: vec![],
            source: None,
        })
        .await
        .unwrap();
    (r, agent.id)
}

async fn ask(r: &Registry, token: &str, agent: &str, scope: &str) -> String {
    let alan =
        steward::client::Client::new(&r.url, Some(steward::client::Secret::new(token))).unwrap();
    alan.request_scope(
        agent,
        &CreateRequest {
            scope: scope.into(),
            justification: format!("billing needs {scope}"),
            duration: Some("30d".into()),
        },
    )
    .await
    .unwrap()
    .id
}

/// Moves the approvals cursor onto a scope; returns the keys pressed.
fn go_to(c: &mut Console, scope: &str) -> usize {
    let list = c
        .app
        .waiting
        .requests
        .clone()
        .expect("the queue has loaded");
    let at = list
        .iter()
        .position(|q| q.scope == scope)
        .unwrap_or_else(|| panic!("{scope} does not wait for me: {list:?}"));
    let Screen::Approvals(s) = &c.app.screen else {
        panic!("not on the approvals screen");
    };
    let here = s.list.selected;
    let keys = at.abs_diff(here);
    for _ in 0..keys {
        key(c, if at > here { "j" } else { "k" });
    }
    keys
}

fn notice(c: &Console) -> String {
    match &c.app.overlay {
        Some(Overlay::Notice(n)) => format!("{}\n{}", n.title, n.lines.join("\n")),
        other => panic!("expected a notice, found {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_approves_with_y_and_denies_with_n_and_a_reason() {
    let (r, agent) = setup().await;
    let alan = r.token_for(ALAN).await;
    let read = ask(&r, &alan, &agent, "vault.secrets:read").await;
    let rotate = ask(&r, &alan, &agent, "vault.keys:rotate").await;

    let home = tempfile::tempdir().unwrap();
    let grace = r.token_for(GRACE).await;
    let mut c = console(&r, &grace, &home).await;
    // The header counts what waits for her before she opens anything.
    assert_eq!(c.app.waiting.count(), 2, "{:?}", c.app.waiting.requests);
    let screen = render(&c, 120, 40);
    assert!(screen.contains("⚑ 2 to approve"), "{screen}");

    key(&mut c, "A");
    c.settle().await.unwrap();
    let screen = render(&c, 120, 40);
    assert!(screen.contains("Waiting for me"), "{screen}");
    assert!(screen.contains("◐ medium"), "{screen}");
    assert!(screen.contains("● high"), "{screen}");
    assert!(
        screen.contains("billing needs vault.keys:rotate"),
        "{screen}"
    );
    // The agent's grants, or (a resource owner may not read someone else's agent) the
    // registry's reason why not.
    assert!(screen.contains(" GRANTS"), "{screen}");
    // Newest first: the second request leads.
    assert_eq!(c.app.waiting.requests.as_ref().unwrap()[0].id, rotate);

    go_to(&mut c, "vault.secrets:read");
    key(&mut c, "y");
    c.settle().await.unwrap();
    assert!(c.app.overlay.is_none(), "{:?}", c.app.overlay);
    let (_, msg) = c.app.message.clone().unwrap();
    assert!(msg.starts_with("approved vault.secrets:read"), "{msg}");

    go_to(&mut c, "vault.keys:rotate");
    key(&mut c, "n");
    assert!(matches!(c.app.overlay, Some(Overlay::DenyReason(_))));
    // No reason, no denial.
    key(&mut c, "enter");
    assert!(matches!(c.app.overlay, Some(Overlay::DenyReason(_))));
    type_text(&mut c, "rotation is the platform team's job");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    assert_eq!(c.app.waiting.count(), 0, "{:?}", c.app.waiting.requests);
    assert!(render(&c, 120, 40).contains("nothing waits for you"));

    // The registry agrees: one grant, one denial with its reason.
    let all = r
        .admin()
        .agent_requests(
            &agent,
            &RequestQuery {
                status: Some("all".into()),
                kind: None,
            },
        )
        .await
        .unwrap()
        .requests;
    let of = |id: &str| all.iter().find(|q| q.id == id).unwrap();
    assert_eq!(of(&read).status, RequestStatus::Approved);
    assert_eq!(of(&read).approvals[0].by, GRACE);
    assert_eq!(of(&rotate).status, RequestStatus::Denied);
    assert_eq!(
        of(&rotate).reason.as_deref(),
        Some("rotation is the platform team's job")
    );
    let detail = r.admin().agent(&agent).await.unwrap();
    assert!(
        detail
            .agent
            .grants
            .iter()
            .any(|g| g.scope == "vault.secrets:read")
    );
    assert!(
        !detail
            .agent
            .grants
            .iter()
            .any(|g| g.scope == "vault.keys:rotate")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registrys_self_approval_refusal_is_shown_and_nothing_changes() {
    let (r, agent) = setup().await;
    let alan = r.token_for(ALAN).await;
    let id = ask(&r, &alan, &agent, "vault.secrets:read").await;
    let home = tempfile::tempdir().unwrap();
    let grace = r.token_for(GRACE).await;
    let mut c = console(&r, &grace, &home).await;
    key(&mut c, "A");
    c.settle().await.unwrap();
    assert_eq!(c.app.waiting.count(), 1);
    // Meanwhile the agent becomes Grace's: she may no longer decide for it.
    r.admin()
        .set_owner(
            &agent,
            &SetOwner {
                owner: GRACE.into(),
                reason: Some("team change".into()),
            },
        )
        .await
        .unwrap();
    key(&mut c, "y");
    c.settle().await.unwrap();
    let text = notice(&c);
    assert!(text.contains("refused"), "{text}");
    assert!(text.contains("self_approval"), "{text}");
    assert!(text.contains("separation of duties"), "{text}");
    let screen = render(&c, 80, 24);
    assert!(screen.contains("self_approval"), "{screen}");
    let all = r
        .admin()
        .agent_requests(&agent, &RequestQuery::default())
        .await
        .unwrap()
        .requests;
    let q = all.iter().find(|q| q.id == id).unwrap();
    assert_eq!(q.status, RequestStatus::Pending);
    assert!(q.approvals.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plus_on_the_detail_files_a_request_through_the_catalogue_picker() {
    let (r, agent) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let alan = r.token_for(ALAN).await;
    let mut c = console(&r, &alan, &home).await;
    select(&mut c, "billing-bot").await;
    key(&mut c, "enter");
    c.settle().await.unwrap();
    key(&mut c, "+");
    c.settle().await.unwrap();
    let Some(Overlay::ScopeRequest(p)) = &c.app.overlay else {
        panic!("no picker: {:?}", c.app.overlay);
    };
    assert!(p.catalogue.iter().any(|e| e.scope == "vault.keys:rotate"));
    type_text(&mut c, "vault keys");
    let screen = render(&c, 120, 40);
    assert!(screen.contains("vault.keys:rotate"), "{screen}");
    assert!(screen.contains("● high"), "{screen}");
    assert!(screen.contains("Vault"), "{screen}");
    let screen = render(&c, 80, 24);
    assert!(screen.contains("vault.keys:rotate"), "{screen}");
    key(&mut c, "enter");
    // A justification is required before the duration.
    key(&mut c, "enter");
    type_text(&mut c, "monthly key rotation");
    key(&mut c, "enter");
    let Some(Overlay::ScopeRequest(p)) = &c.app.overlay else {
        panic!("the picker closed early: {:?}", c.app.message);
    };
    // The high tier's longest grant is offered.
    assert_eq!(p.duration, "90d");
    key(&mut c, "ctrl-u");
    type_text(&mut c, "30d");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    c.settle().await.unwrap();
    let (_, msg) = c.app.message.clone().unwrap();
    assert!(msg.contains("pending"), "{msg}");
    let screen = render(&c, 120, 40);
    assert!(screen.contains("PENDING REQUESTS (1)"), "{screen}");

    let pending = r
        .admin()
        .agent_requests(&agent, &RequestQuery::default())
        .await
        .unwrap()
        .requests;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].scope, "vault.keys:rotate");
    assert_eq!(pending[0].requester, ALAN);
    assert_eq!(pending[0].duration.as_deref(), Some("30d"));
    assert_eq!(
        pending[0].justification.as_deref(),
        Some("monthly key rotation")
    );

    // Too long for the tier: the registry's refusal is shown as it says it.
    key(&mut c, "+");
    c.settle().await.unwrap();
    type_text(&mut c, "vault.secrets");
    key(&mut c, "enter");
    type_text(&mut c, "reads for a year and more");
    key(&mut c, "enter");
    key(&mut c, "ctrl-u");
    type_text(&mut c, "400d");
    key(&mut c, "enter");
    c.settle().await.unwrap();
    let text = notice(&c);
    assert!(text.contains("duration_too_long"), "{text}");
}

/// The console drawn into a test backend, as text.
fn render(c: &Console, w: u16, h: u16) -> String {
    let backend = ratatui::backend::TestBackend::new(w, h);
    let mut terminal = ratatui::Terminal::new(backend).unwrap();
    terminal
        .draw(|f| steward::console::views::draw(f, &c.app))
        .unwrap();
    let buf = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}
