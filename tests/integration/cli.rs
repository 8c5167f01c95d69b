//! The scripting command line, run as the real binary against a real registry (`steward server`
//! on a loopback port over a SQLite file in a tempdir).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde_json::Value;
use steward::client::{Client, Secret};
use steward::model::Role;
use steward::model::api::{CreatePerson, IssueToken, RegisterAgent};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_steward");
const ADMIN: &str = "admin@example.com";
const BOB: &str = "bob@example.com";

/// A `steward` command isolated from the user's environment: its own config and cache dirs,
/// no server or token unless a test gives one.
fn steward(home: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("STEWARD_SERVER")
        .env_remove("STEWARD_TOKEN")
        .env_remove("STEWARD_NO_KEYRING")
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_DATA_HOME", home.join("data"))
        .stdin(Stdio::null());
    cmd
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(cmd: &mut Command) -> Run {
        let out = cmd.output().expect("steward runs");
        Run {
            status: out.status,
            stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        }
    }

    fn ok(self) -> Run {
        assert!(
            self.status.success(),
            "expected success, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    fn fails(self) -> Run {
        assert!(
            !self.status.success(),
            "expected a failure\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.starts_with("steward: ") || self.stderr.starts_with("error: "),
            "errors go to stderr: {}",
            self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A running `steward server` (the shared harness's).
use crate::support::Binary as Server;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// The catalogue every fixture imports with `steward resources import` (all low tier).
const CATALOGUE: &str = r#"
[[resource]]
id = "crm"
name = "CRM"
audiences = ["https://crm.example.com"]

[[resource.scope]]
name = "crm.orders:read"
tier = "low"

[[resource]]
id = "github"
name = "GitHub"
owner = "admin@example.com"

[[resource.scope]]
name = "github.repo:write"
tier = "low"

[[resource.scope]]
name = "jira.issues:write"
tier = "low"

[[resource]]
id = "s3"
name = "S3"

[[resource.scope]]
name = "s3.raw:read"
tier = "low"

[[resource.scope]]
name = "s3.reports:read"
tier = "low"
"#;

/// A registry with an admin created by `steward server create-admin` before it started.
struct Fixture {
    dir: TempDir,
    db: PathBuf,
    admin_token: String,
    server: Option<Server>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("registry.db");
        let created = Run::of(
            steward(dir.path())
                .args(["server", "create-admin", "--db"])
                .arg(&db)
                .args(["--email", ADMIN, "--name", "Ada Admin"]),
        )
        .ok();
        let admin_token = created
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("token: "))
            .expect("create-admin prints the token")
            .to_string();
        let server = Server::start(&db);
        let fx = Fixture {
            dir,
            db,
            admin_token,
            server: Some(server),
        };
        // Only catalogued scopes are granted: the admin imports the ones these tests use.
        let file = fx.home().join("catalogue.toml");
        std::fs::write(&file, CATALOGUE).expect("write the catalogue file");
        let imported = fx
            .run(&["resources", "import", file.to_str().expect("a UTF-8 path")])
            .ok();
        assert!(imported.stdout.contains("3 created"), "{}", imported.stdout);
        fx
    }

    fn url(&self) -> String {
        self.server.as_ref().expect("running").url.clone()
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `steward ARGS` against the registry with `token` (or none).
    fn run_with(&self, token: Option<&str>, args: &[&str]) -> Run {
        let mut cmd = steward(self.home());
        cmd.env("STEWARD_SERVER", self.url()).args(args);
        if let Some(token) = token {
            cmd.env("STEWARD_TOKEN", token);
        }
        Run::of(&mut cmd)
    }

    /// Runs `steward ARGS` as the admin.
    fn run(&self, args: &[&str]) -> Run {
        self.run_with(Some(&self.admin_token.clone()), args)
    }

    fn client(&self) -> Client {
        Client::new(&self.url(), Some(Secret::new(self.admin_token.clone()))).expect("client")
    }

    /// Creates a person through the API and returns their API token.
    fn person(&self, email: &str, roles: Vec<Role>) -> String {
        let client = self.client();
        block_on(async {
            client
                .create_person(&CreatePerson {
                    email: email.into(),
                    display_name: email.split('@').next().unwrap().into(),
                    roles,
                    manager: None,
                    team: None,
                })
                .await
                .expect("create person");
            // An admin-issued token is an invitation; the person redeems it for their own.
            let invitation = client
                .issue_token_for(email, &IssueToken::default())
                .await
                .expect("issue an invitation")
                .token;
            Client::new(&self.url(), Some(Secret::new(invitation)))
                .expect("client")
                .issue_my_token(&IssueToken::default())
                .await
                .expect("redeem the invitation")
                .token
        })
    }

    /// Registers an agent through the CLI and returns its JSON.
    fn register(&self, args: &[&str]) -> Value {
        let mut all = vec!["agents", "register"];
        all.extend_from_slice(args);
        all.push("--json");
        self.run(&all).ok().json()
    }

    fn show(&self, id: &str) -> Value {
        self.run(&["agents", "show", id, "--json"]).ok().json()
    }

    fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        self.server = Some(Server::start(&self.db));
    }
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn scopes(agent: &Value) -> Vec<String> {
    let mut s: Vec<String> = agent["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["scope"].as_str().unwrap().to_string())
        .collect();
    s.sort();
    s
}

#[test]
fn register_list_filters_and_show() {
    let fx = Fixture::new();
    let bob_token = fx.person(BOB, vec![]);

    let billing = fx.register(&[
        "billing-bot",
        "--owner",
        ADMIN,
        "--scope",
        "crm.orders:read",
        "--scope",
        "github.repo:write",
        "--team",
        "payments",
    ]);
    assert!(billing["id"].as_str().unwrap().starts_with("ag_"));
    assert_eq!(billing["name"], "billing-bot");
    assert_eq!(billing["kind"], "agent");
    assert_eq!(billing["status"], "active");
    assert_eq!(billing["owner"], ADMIN);
    assert_eq!(scopes(&billing), ["crm.orders:read", "github.repo:write"]);

    let helper = fx.register(&["bob-helper", "--owner", BOB, "--team", "research"]);
    assert_eq!(helper["owner"], BOB);
    assert_eq!(scopes(&helper), Vec::<String>::new());

    // An unowned agent can only come from the API (the CLI always names an owner).
    let client = fx.client();
    let shadow = block_on(client.register_agent(&RegisterAgent {
        name: "shadow-scraper".into(),
        description: "found by a credential scan".into(),
        kind: steward::model::AgentKind::Agent,
        parent_id: None,
        owner: None,
        team: Some("research".into()),
        environment: None,
        scopes: vec!["s3.raw:read".into()],
        source: Some(steward::model::AgentSource::Discovered),
    }))
    .expect("register unowned");

    let all = fx.run(&["agents", "list", "--json"]).ok().json();
    assert_eq!(
        names(&all),
        ["billing-bot", "bob-helper", "shadow-scraper"],
        "{all}"
    );
    for agent in all.as_array().unwrap() {
        for field in ["id", "name", "kind", "status", "owner", "grants"] {
            assert!(agent.get(field).is_some(), "{field} missing in {agent}");
        }
        assert!(agent["grants"].is_array());
    }
    let shadow_json = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == shadow.id.as_str())
        .unwrap();
    assert!(shadow_json["owner"].is_null(), "{shadow_json}");

    let unowned = fx
        .run(&["agents", "list", "--unowned", "--json"])
        .ok()
        .json();
    assert_eq!(names(&unowned), ["shadow-scraper"]);
    let bobs = fx
        .run(&["agents", "list", "--owner", BOB, "--json"])
        .ok()
        .json();
    assert_eq!(names(&bobs), ["bob-helper"]);
    let research = fx
        .run(&["agents", "list", "--team", "research", "--json"])
        .ok()
        .json();
    assert_eq!(names(&research), ["bob-helper", "shadow-scraper"]);
    let search = fx
        .run(&["agents", "list", "--search", "billing", "--json"])
        .ok()
        .json();
    assert_eq!(names(&search), ["billing-bot"]);

    fx.run(&["revoke", helper["id"].as_str().unwrap()]).ok();
    let suspended = fx
        .run(&["agents", "list", "--status", "suspended", "--json"])
        .ok()
        .json();
    assert_eq!(names(&suspended), ["bob-helper"]);
    let active = fx
        .run(&["agents", "list", "--status", "active", "--json"])
        .ok()
        .json();
    assert_eq!(names(&active), ["billing-bot", "shadow-scraper"]);
    let bad = fx.run(&["agents", "list", "--status", "sleeping"]).fails();
    assert!(bad.stderr.contains("unknown status"), "{}", bad.stderr);

    // Paging: one agent per request gives the same set; --limit stops early.
    let paged = fx
        .run(&["agents", "list", "--page-size", "1", "--json"])
        .ok()
        .json();
    assert_eq!(names(&paged), names(&all));
    let limited = fx
        .run(&[
            "agents",
            "list",
            "--page-size",
            "1",
            "--limit",
            "2",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(limited.as_array().unwrap().len(), 2);
    let empty = fx
        .run(&["agents", "list", "--search", "no-such-thing", "--json"])
        .ok()
        .json();
    assert_eq!(empty, serde_json::json!([]));

    // People without a role see only their own agents, because the server says so.
    let own = fx
        .run_with(Some(&bob_token), &["agents", "list", "--json"])
        .ok()
        .json();
    assert_eq!(names(&own), ["bob-helper"]);

    // The table for humans.
    let table = fx.run(&["agents", "list"]).ok().stdout;
    let header = table.lines().next().unwrap();
    for col in ["ID", "NAME", "KIND", "STATUS", "OWNER", "TEAM", "SCOPES"] {
        assert!(header.contains(col), "{header}");
    }
    let shadow_line = table
        .lines()
        .find(|l| l.contains("shadow-scraper"))
        .unwrap();
    assert!(
        shadow_line.contains(" - "),
        "unowned shows as -: {shadow_line}"
    );
    let billing_line = table.lines().find(|l| l.contains("billing-bot")).unwrap();
    assert!(billing_line.trim_end().ends_with('2'), "{billing_line}");

    let id = billing["id"].as_str().unwrap();
    let shown = fx.show(id);
    assert_eq!(shown["id"], id);
    assert_eq!(shown["owner"], ADMIN);
    assert!(shown["credentials"].is_array());
    assert_eq!(scopes(&shown), ["crm.orders:read", "github.repo:write"]);
    let human = fx.run(&["agents", "show", id]).ok().stdout;
    assert!(
        human.contains("billing-bot") && human.contains("crm.orders:read"),
        "{human}"
    );
    assert!(human.contains("grants (2)"), "{human}");
}

#[test]
fn governance_verbs() {
    let fx = Fixture::new();
    fx.person(BOB, vec![]);
    let parent = fx.register(&["pipeline", "--owner", ADMIN, "--scope", "crm.orders:read"]);
    let pid = parent["id"].as_str().unwrap().to_string();
    let worker = fx.register(&[
        "pipeline-worker",
        "--owner",
        ADMIN,
        "--kind",
        "sub-agent",
        "--parent",
        &pid,
        "--scope",
        "jira.issues:write",
    ]);
    let wid = worker["id"].as_str().unwrap().to_string();
    let instance = fx.register(&[
        "pipeline-worker-7f3",
        "--owner",
        ADMIN,
        "--kind",
        "instance",
        "--parent",
        &wid,
    ]);
    let iid = instance["id"].as_str().unwrap().to_string();

    // request / grant / ungrant. Admins never grant to agents they own: they ask like
    // anyone else (a low-tier scope is then granted at once, by policy).
    let own = fx.run(&["grant", &pid, "s3.reports:read"]).fails();
    assert!(own.stderr.contains("self_approval"), "{}", own.stderr);
    let requested = fx
        .run(&[
            "request",
            &pid,
            "s3.reports:read",
            "--justification",
            "monthly reports",
            "--for",
            "30d",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(requested["status"], "approved");
    assert_eq!(requested["kind"], "grant");
    assert_eq!(requested["approvals"][0]["by"], "policy");
    assert_eq!(
        scopes(&fx.show(&pid)),
        ["crm.orders:read", "s3.reports:read"]
    );
    let after = fx
        .run(&["ungrant", &pid, "crm.orders:read", "--json"])
        .ok()
        .json();
    assert_eq!(scopes(&after), ["s3.reports:read"]);
    let bad_scope = fx.run(&["grant", &pid, "bad scope"]).fails();
    assert!(bad_scope.stderr.contains("422"), "{}", bad_scope.stderr);

    // owner set
    let owned = fx.run(&["owner", "set", &pid, BOB, "--json"]).ok().json();
    assert_eq!(owned["owner"], BOB);
    let back = fx
        .run(&["owner", "set", &pid, ADMIN, "--reason", "handover"])
        .ok();
    assert!(back.stdout.contains(ADMIN), "{}", back.stdout);
    assert_eq!(fx.show(&pid)["owner"], ADMIN);

    // revoke, twice
    let revoked = fx.run(&["revoke", &pid, "--reason", "INC-7"]).ok().stdout;
    for needle in [
        "revoked pipeline",
        "status suspended (was active)",
        "credentials disabled",
        "tokens revoked",
        " ms in the registry",
        "audit event           #",
    ] {
        assert!(revoked.contains(needle), "{needle:?} not in:\n{revoked}");
    }
    assert_eq!(fx.show(&pid)["status"], "suspended");
    // The brake covers the tree: the sub-agent and its instance are listed and suspended.
    for (name, id) in [("pipeline-worker-7f3", &iid), ("pipeline", &pid)] {
        assert!(revoked.contains(name), "{name} not in:\n{revoked}");
        assert!(revoked.contains(id.as_str()), "{id} not in:\n{revoked}");
    }
    assert!(revoked.contains(wid.as_str()), "{wid} not in:\n{revoked}");
    assert_eq!(fx.show(&iid)["status"], "suspended");
    let again = fx.run(&["revoke", &pid, "--json"]).ok().json();
    assert_eq!(again["changed"], false);
    assert_eq!(again["status"], "suspended");
    let again_human = fx.run(&["revoke", &pid]).ok().stdout;
    assert!(
        again_human.contains("already suspended: nothing changed"),
        "{again_human}"
    );

    // reinstate
    let reinstated = fx.run(&["reinstate", &pid]).ok().stdout;
    assert!(reinstated.contains("reinstated pipeline"), "{reinstated}");
    assert!(reinstated.contains("the agent alone"), "{reinstated}");
    assert!(
        reinstated.contains("still suspended under it"),
        "{reinstated}"
    );
    assert_eq!(fx.show(&pid)["status"], "active");
    assert_eq!(fx.show(&wid)["status"], "suspended");
    let tree = fx.run(&["reinstate", &pid, "--subtree"]).ok().stdout;
    assert!(
        tree.contains("also reinstated pipeline-worker-7f3"),
        "{tree}"
    );
    assert_eq!(fx.show(&iid)["status"], "active");

    // decommission cascades to the sub-agent and its instance
    let gone = fx
        .run(&["decommission", &pid, "--reason", "retired"])
        .ok()
        .stdout;
    let mut lines = gone.lines();
    let plan = lines.next().unwrap();
    assert!(plan.starts_with("plan: decommission 3 agents"), "{gone}");
    for id in [&pid, &wid, &iid] {
        assert!(plan.contains(id.as_str()), "{id} not in plan: {plan}");
    }
    assert!(gone.contains("decommissioned 3 agents"), "{gone}");
    for id in [&pid, &wid, &iid] {
        let agent = fx.show(id);
        assert_eq!(agent["status"], "decommissioned", "{agent}");
        assert_eq!(scopes(&agent), Vec::<String>::new(), "{agent}");
    }

    // every step is in the audit log of the parent
    let events = fx
        .run(&["audit", "list", "--target", &pid, "--json"])
        .ok()
        .json();
    let events = events.as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "agent.register",
        "grant.add",
        "grant.remove",
        "agent.revoke",
        "agent.reinstate",
        "agent.decommission",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    assert!(events.iter().all(|e| e["target"] == pid.as_str()));
    let revoke = events
        .iter()
        .find(|e| e["action"] == "agent.revoke")
        .unwrap();
    assert_eq!(revoke["reason"], "INC-7");
}

#[test]
fn audit_verify_detects_an_edited_event() {
    let mut fx = Fixture::new();
    let agent = fx.register(&["reporter", "--owner", ADMIN, "--scope", "crm.orders:read"]);
    let id = agent["id"].as_str().unwrap().to_string();
    fx.run(&["revoke", &id, "--reason", "INC-9"]).ok();
    fx.run(&["reinstate", &id]).ok();

    let events = fx.run(&["audit", "list", "--json"]).ok().json();
    let seqs: Vec<i64> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    let n = seqs.len() as i64;
    assert!(n >= 5, "{events}");
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    let window = fx
        .run(&["audit", "list", "--after", "2", "--limit", "2", "--json"])
        .ok()
        .json();
    let window: Vec<i64> = window
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(window, [3, 4]);
    let human = fx.run(&["audit", "list"]).ok().stdout;
    assert!(
        human.contains("agent.revoke") && human.contains("INC-9"),
        "{human}"
    );
    let revoke_seq = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "agent.revoke")
        .unwrap()["seq"]
        .as_i64()
        .unwrap();

    let intact = fx.run(&["audit", "verify"]).ok().stdout;
    assert!(
        intact.starts_with(&format!("audit chain intact: {n} events, head ")),
        "{intact}"
    );
    let head = intact.split_whitespace().nth(6).unwrap();
    assert_eq!(head.len(), 64, "{intact}");
    // Small pages walk the same chain.
    let paged = fx.run(&["audit", "verify", "--page-size", "2"]).ok().stdout;
    assert_eq!(paged, intact);

    // Tamper with the stopped registry's file the way an attacker with disk access would.
    fx.server.take().unwrap().stop();
    let offline = Run::of(
        steward(fx.home())
            .args(["audit", "verify", "--db"])
            .arg(&fx.db),
    )
    .ok();
    assert_eq!(offline.stdout, intact, "offline and online agree");
    {
        let conn = rusqlite::Connection::open(&fx.db).unwrap();
        conn.execute_batch("DROP TRIGGER audit_no_update;").unwrap();
        let changed = conn
            .execute(
                "UPDATE audit_events SET reason = 'routine maintenance' WHERE seq = ?1",
                [revoke_seq],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    let broken = Run::of(
        steward(fx.home())
            .args(["audit", "verify", "--db"])
            .arg(&fx.db),
    )
    .fails();
    assert!(
        broken
            .stderr
            .contains(&format!("audit chain BROKEN at event #{revoke_seq}:")),
        "{}",
        broken.stderr
    );
    assert!(broken.stderr.contains("altered"), "{}", broken.stderr);
    assert!(broken.stdout.is_empty());

    // The same through the API: the client checks the chain itself.
    fx.restart();
    let remote = fx.run(&["audit", "verify"]).fails();
    assert!(
        remote
            .stderr
            .contains(&format!("audit chain BROKEN at event #{revoke_seq}:")),
        "{}",
        remote.stderr
    );
    let missing = Run::of(
        steward(fx.home())
            .args(["audit", "verify", "--db"])
            .arg(fx.home().join("nope.db")),
    )
    .fails();
    assert!(
        missing.stderr.contains("no database at"),
        "{}",
        missing.stderr
    );
}

#[test]
fn errors_are_clear_and_go_to_stderr() {
    let fx = Fixture::new();
    let bob_token = fx.person(BOB, vec![]);
    let bobs = fx.register(&["bob-bot", "--owner", BOB]);
    let bob_agent = bobs["id"].as_str().unwrap();

    // No token anywhere (the keyring is kept out so that the host's state cannot matter).
    let no_token = Run::of(
        steward(fx.home())
            .env("STEWARD_SERVER", fx.url())
            .env("STEWARD_NO_KEYRING", "1")
            .args(["agents", "list"]),
    )
    .fails();
    assert!(
        no_token.stderr.contains("no API token for") && no_token.stderr.contains("steward login"),
        "{}",
        no_token.stderr
    );
    assert!(no_token.stdout.is_empty());

    // No registry configured at all.
    let no_server = Run::of(steward(fx.home()).args(["agents", "list"])).fails();
    assert!(
        no_server.stderr.contains("no registry is configured")
            && no_server.stderr.contains("--server"),
        "{}",
        no_server.stderr
    );

    // A registry that is not there.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable = Run::of(
        steward(fx.home())
            .env("STEWARD_SERVER", format!("http://127.0.0.1:{closed_port}"))
            .env("STEWARD_TOKEN", &fx.admin_token)
            .args(["agents", "list"]),
    )
    .fails();
    assert!(
        unreachable.stderr.contains("cannot reach the registry at"),
        "{}",
        unreachable.stderr
    );

    // Unknown id.
    let unknown = fx.run(&["agents", "show", "ag_does_not_exist"]).fails();
    assert!(
        unknown
            .stderr
            .contains("no agent with id ag_does_not_exist")
            && unknown.stderr.contains("404"),
        "{}",
        unknown.stderr
    );
    let unknown_revoke = fx.run(&["revoke", "ag_does_not_exist"]).fails();
    assert!(
        unknown_revoke.stderr.contains("404"),
        "{}",
        unknown_revoke.stderr
    );

    // A person without the admin role cannot change owners, even of their own agent.
    let forbidden = fx
        .run_with(Some(&bob_token), &["owner", "set", bob_agent, ADMIN])
        .fails();
    assert!(
        forbidden.stderr.contains("403") && forbidden.stderr.contains("admin"),
        "{}",
        forbidden.stderr
    );
    assert_eq!(fx.show(bob_agent)["owner"], BOB);
    // Nor read the audit log.
    let audit = fx.run_with(Some(&bob_token), &["audit", "verify"]).fails();
    assert!(audit.stderr.contains("403"), "{}", audit.stderr);

    // A token the registry does not know.
    let bad = fx
        .run_with(Some("stw_0000000000000000"), &["agents", "list"])
        .fails();
    assert!(
        bad.stderr.contains("401") && bad.stderr.contains("steward login"),
        "{}",
        bad.stderr
    );
}

#[test]
fn config_toml_is_read_and_a_broken_one_is_refused_precisely() {
    let fx = Fixture::new();
    let config_dir = fx.home().join("config").join("steward");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = config_dir.join("config.toml");

    // The console's own keys are tolerated.
    std::fs::write(
        &config,
        format!(
            "theme = \"light\"\nserver = \"{}\"\n\n[keys]\nrevoke = \"X\"\n",
            fx.url()
        ),
    )
    .unwrap();
    Run::of(
        steward(fx.home())
            .env("STEWARD_TOKEN", &fx.admin_token)
            .args(["agents", "list", "--json"]),
    )
    .ok();

    std::fs::write(&config, "theme = \"light\"\nserver = 8420\n").unwrap();
    let broken = Run::of(
        steward(fx.home())
            .env("STEWARD_TOKEN", &fx.admin_token)
            .args(["agents", "list"]),
    )
    .fails();
    let expected = format!("{}:2:", config.display());
    assert!(
        broken.stderr.contains(&expected) && broken.stderr.contains("key `server`"),
        "{}",
        broken.stderr
    );

    // `paths` still works (it is how one finds the broken file) and shows every path.
    let paths = Run::of(steward(fx.home()).args(["paths"])).ok().stdout;
    for (label, path) in [
        ("config file", config.clone()),
        ("themes dir", config_dir.join("themes")),
        ("cache dir", fx.home().join("cache").join("steward")),
        ("credentials file", config_dir.join("credentials.toml")),
    ] {
        let line = paths
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{label} missing:\n{paths}"));
        assert!(line.contains(&path.display().to_string()), "{line}");
    }
    assert!(paths.contains("unreadable"), "{paths}");

    // The flag wins over the broken file.
    Run::of(
        steward(fx.home())
            .env("STEWARD_TOKEN", &fx.admin_token)
            .args(["--server", &fx.url(), "agents", "list"]),
    )
    .ok();
}

fn login(fx: &Fixture, token: &str, no_keyring: bool) -> Run {
    login_with(fx, token, no_keyring, &[])
}

fn login_with(fx: &Fixture, token: &str, no_keyring: bool, extra: &[&str]) -> Run {
    let mut cmd = steward(fx.home());
    cmd.env("STEWARD_SERVER", fx.url())
        .args(["login", "--token-stdin"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if no_keyring {
        cmd.env("STEWARD_NO_KEYRING", "1");
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{token}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        status: out.status,
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs `steward ARGS` with no server or token in the environment: only what login stored.
fn stored(fx: &Fixture, no_keyring: bool, args: &[&str]) -> Run {
    let mut cmd = steward(fx.home());
    cmd.args(args);
    if no_keyring {
        cmd.env("STEWARD_NO_KEYRING", "1");
    }
    Run::of(&mut cmd)
}

#[cfg(unix)]
#[test]
fn login_falls_back_to_a_private_file_and_says_so() {
    let fx = Fixture::new();
    let credentials = fx.home().join("config/steward/credentials.toml");

    let wrong = login(&fx, "stw_not_a_real_token", true).fails();
    assert!(
        wrong.stderr.contains("refused this token"),
        "{}",
        wrong.stderr
    );
    assert!(!credentials.exists(), "a refused token is not stored");

    let out = login(&fx, &fx.admin_token, true).ok();
    assert!(
        out.stdout.contains("signed in") && out.stdout.contains(ADMIN),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("no usable OS keyring")
            && out.stderr.contains(&credentials.display().to_string()),
        "the fallback is announced on stderr: {}",
        out.stderr
    );
    assert!(!out.stdout.contains(&fx.admin_token) && !out.stderr.contains(&fx.admin_token));
    assert_eq!(mode(&credentials), 0o600);

    // Later commands need neither STEWARD_TOKEN nor STEWARD_SERVER (login set the default).
    let list = stored(&fx, true, &["agents", "list", "--json"]).ok().json();
    assert!(list.is_array());
    let paths = stored(&fx, true, &["paths"]).ok().stdout;
    assert!(paths.contains(&fx.url()), "{paths}");

    let out = stored(&fx, true, &["logout"]).ok();
    assert!(out.stdout.contains("removed the token"), "{}", out.stdout);
    assert!(!credentials.exists());
    let after = stored(&fx, true, &["agents", "list"]).fails();
    assert!(after.stderr.contains("no API token"), "{}", after.stderr);
}

#[cfg(unix)]
#[test]
fn login_uses_the_keyring_where_usable_and_never_falls_back_silently() {
    let fx = Fixture::new();
    let credentials = fx.home().join("config/steward/credentials.toml");
    let out = login(&fx, &fx.admin_token, false).ok();
    assert!(!out.stdout.contains(&fx.admin_token) && !out.stderr.contains(&fx.admin_token));
    if out.stderr.contains("no usable OS keyring") {
        // This host has no usable keyring: the file took the token, and stderr said so.
        assert_eq!(mode(&credentials), 0o600);
    } else {
        assert!(
            out.stdout.contains("token stored in") && out.stdout.contains("keyring"),
            "{}",
            out.stdout
        );
        assert!(!credentials.exists(), "no file copy next to the keyring");
    }
    let list = stored(&fx, false, &["agents", "list", "--json"])
        .ok()
        .json();
    assert!(list.is_array());
    stored(&fx, false, &["logout"]).ok();
    let after = stored(&fx, false, &["agents", "list"]).fails();
    assert!(after.stderr.contains("no API token"), "{}", after.stderr);
}

#[cfg(unix)]
#[test]
fn login_redeems_an_invitation_once_and_delegations_are_managed_from_the_command_line() {
    let fx = Fixture::new();
    let invitation = block_on(async {
        let client = fx.client();
        client
            .create_person(&CreatePerson {
                email: "invited@example.com".into(),
                display_name: "Invited".into(),
                roles: vec![],
                manager: None,
                team: None,
            })
            .await
            .expect("create person");
        client
            .issue_token_for("invited@example.com", &IssueToken::default())
            .await
            .expect("issue an invitation")
    });
    assert_eq!(invitation.kind, "invitation");
    // Without --invite the invitation is refused, saying what it is.
    let plain = login(&fx, &invitation.token, true).fails();
    assert!(plain.stderr.contains("invitation"), "{}", plain.stderr);
    let out = login_with(&fx, &invitation.token, true, &["--invite"]).ok();
    assert!(out.stdout.contains("invited@example.com"), "{}", out.stdout);
    let stored_text =
        std::fs::read_to_string(fx.home().join("config/steward/credentials.toml")).unwrap();
    assert!(
        !stored_text.contains(&invitation.token),
        "the person's own token is stored, not the invitation"
    );
    let again = login_with(&fx, &invitation.token, true, &["--invite"]).fails();
    assert!(
        again.stderr.contains("already redeemed"),
        "{}",
        again.stderr
    );

    // Delegations, as the invited person (through the stored token).
    let agent = fx.register(&["bot", "--owner", ADMIN, "--scope", "crm.orders:read"]);
    let id = agent["id"].as_str().unwrap();
    let added = stored(
        &fx,
        true,
        &[
            "delegations",
            "add",
            id,
            "--scope",
            "crm.orders:read",
            "--for",
            "7d",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(added["person"], "invited@example.com");
    assert_eq!(added["active"], true);
    let list = stored(&fx, true, &["delegations", "list"]).ok().stdout;
    assert!(list.contains(id) && list.contains("active"), "{list}");
    let bad = stored(
        &fx,
        true,
        &[
            "delegations",
            "add",
            id,
            "--scope",
            "x:read",
            "--for",
            "soon",
        ],
    )
    .fails();
    assert!(bad.stderr.contains("--for"), "{}", bad.stderr);
    let dlg = added["id"].as_str().unwrap();
    let removed = stored(&fx, true, &["delegations", "remove", dlg])
        .ok()
        .stdout;
    assert!(removed.contains("removed"), "{removed}");
    let list = stored(&fx, true, &["delegations", "list", "--json"])
        .ok()
        .json();
    assert_eq!(list[0]["active"], false);
}

#[test]
fn catalogue_requests_and_approvals_from_the_command_line() {
    let fx = Fixture::new();
    let bob = fx.person(BOB, vec![]);
    let second_admin = fx.person("eve@example.com", vec![Role::Admin]);

    // A broken file is refused whole, naming its line and key; nothing is imported.
    let broken = fx.home().join("broken.toml");
    std::fs::write(
        &broken,
        "[[resource]]\nid = \"vault\"\nname = \"Vault\"\n\n[[resource.scope]]\nname = \"vault:read\"\ntier = \"severe\"\n",
    )
    .unwrap();
    let refused = fx
        .run(&["resources", "import", broken.to_str().unwrap()])
        .fails();
    assert!(
        refused.stderr.contains("line 7, key tier"),
        "{}",
        refused.stderr
    );
    assert!(
        fx.run(&["resources", "show", "vault"])
            .fails()
            .stderr
            .contains("404")
    );

    // A medium scope owned by Bob; importing the same file twice changes nothing.
    let file = fx.home().join("vault.toml");
    std::fs::write(
        &file,
        "[[resource]]\nid = \"vault\"\nname = \"Vault\"\nowner = \"bob@example.com\"\n\
         audiences = [\"https://vault.example.com\"]\n\n[[resource.scope]]\nname = \"vault:read\"\n\
         tier = \"medium\"\ndescription = \"read secrets\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    assert!(
        fx.run(&["resources", "import", path])
            .ok()
            .stdout
            .contains("1 created")
    );
    assert!(
        fx.run(&["resources", "import", path])
            .ok()
            .stdout
            .contains("1 unchanged")
    );
    let listed = fx.run(&["resources", "list", "--json"]).ok().json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "vault")
    );
    let shown = fx
        .run(&["resources", "show", "vault", "--json"])
        .ok()
        .json();
    assert_eq!(shown["scopes"][0]["tier"], "medium");
    assert_eq!(shown["owner"], BOB);

    // The admin asks for their own agent; they cannot approve it, Bob (the resource owner) can.
    let agent = fx.register(&["vault-reader", "--owner", ADMIN]);
    let id = agent["id"].as_str().unwrap();
    let req = fx
        .run(&[
            "request",
            id,
            "vault:read",
            "--justification",
            "rotate keys",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(req["status"], "pending");
    let rid = req["id"].as_str().unwrap();
    let own = fx.run(&["approvals", "approve", rid]).fails();
    assert!(own.stderr.contains("self_approval"), "{}", own.stderr);
    let queue = fx
        .run_with(Some(&bob), &["approvals", "list", "--json"])
        .ok()
        .json();
    assert_eq!(queue[0]["id"], rid);
    let human = fx.run_with(Some(&bob), &["approvals", "list"]).ok().stdout;
    assert!(
        human.contains("vault:read") && human.contains("rotate keys"),
        "{human}"
    );
    let approved = fx
        .run_with(
            Some(&bob),
            &["approvals", "approve", rid, "--reason", "ok", "--json"],
        )
        .ok()
        .json();
    assert_eq!(approved["status"], "approved");
    assert!(scopes(&fx.show(id)).contains(&"vault:read".to_string()));

    // A denial needs a reason; another admin denies the next one.
    let next = fx
        .run(&[
            "request",
            id,
            "vault:read",
            "--justification",
            "again",
            "--for",
            "12h",
            "--json",
        ])
        .ok()
        .json();
    let nid = next["id"].as_str().unwrap();
    let denied = fx
        .run_with(
            Some(&second_admin),
            &[
                "approvals",
                "deny",
                nid,
                "--reason",
                "one is enough",
                "--json",
            ],
        )
        .ok()
        .json();
    assert_eq!(denied["status"], "denied");
}

#[test]
fn enable_key_is_for_admins_and_responders_once_the_agent_is_back() {
    let fx = Fixture::new();
    let bob = fx.person(BOB, vec![]);
    let agent = fx.register(&["keyed", "--owner", BOB]);
    let id = agent["id"].as_str().unwrap().to_string();
    fx.run(&["agents", "add-secret", &id]).ok();
    let credential = fx.show(&id)["credentials"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    fx.run(&["revoke", &id, "--reason", "INC-11"]).ok();
    // Behind the brake: no new key, and no re-enabling.
    let added = fx.run(&["agents", "add-secret", &id]).fails();
    assert!(added.stderr.contains("suspended"), "{}", added.stderr);
    let early = fx.run(&["agents", "enable-key", &id, &credential]).fails();
    assert!(early.stderr.contains("reinstate it"), "{}", early.stderr);
    fx.run(&["reinstate", &id]).ok();
    assert!(!fx.show(&id)["credentials"][0]["disabled_at"].is_null());
    // The owner cannot undo the brake.
    let by_owner = fx
        .run_with(Some(&bob), &["agents", "enable-key", &id, &credential])
        .fails();
    assert!(by_owner.stderr.contains("403"), "{}", by_owner.stderr);
    let enabled = fx
        .run(&[
            "agents",
            "enable-key",
            &id,
            &credential,
            "--reason",
            "rotated upstream",
        ])
        .ok()
        .stdout;
    assert!(
        enabled.starts_with(&format!("enabled {credential}")),
        "{enabled}"
    );
    assert!(fx.show(&id)["credentials"][0]["disabled_at"].is_null());
}

#[test]
fn resource_credentials_from_the_command_line() {
    use base64::Engine;
    let fx = Fixture::new();
    let bob = fx.person(BOB, vec![]);

    // A secret is printed once, on stdout alone; a key file registers a public key.
    let secret = fx.run(&["resources", "add-secret", "crm"]).ok();
    assert!(
        secret.stdout.trim().starts_with("sts_"),
        "{}",
        secret.stdout
    );
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    let file = fx.home().join("crm.jwk");
    std::fs::write(
        &file,
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x}).to_string(),
    )
    .unwrap();
    let added = fx
        .run(&[
            "resources",
            "add-key",
            "crm",
            "--public-key",
            file.to_str().unwrap(),
        ])
        .ok();
    let key_id = added.stdout.split('\t').next().unwrap().to_string();
    assert!(key_id.starts_with("key_"), "{}", added.stdout);
    let disabled = fx.run(&["resources", "disable-key", "crm", &key_id]).ok();
    assert!(disabled.stdout.contains("disabled"), "{}", disabled.stdout);

    // Only admins; unknown resources and keys are named.
    let refused = fx
        .run_with(Some(&bob), &["resources", "add-secret", "crm"])
        .fails();
    assert!(refused.stderr.contains("403"), "{}", refused.stderr);
    let missing = fx
        .run(&["resources", "disable-key", "crm", "key_nope"])
        .fails();
    assert!(missing.stderr.contains("404"), "{}", missing.stderr);
}

#[test]
fn people_verbs_names_for_ids_and_dry_runs() {
    let fx = Fixture::new();
    let bob_token = fx.person(BOB, vec![]);

    // add (with a manager named by display name), show by name, list, --json everywhere.
    let boss = fx
        .run(&[
            "people",
            "add",
            "boss@example.com",
            "--name",
            "Bo Boss",
            "--team",
            "payments",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(boss["display_name"], "Bo Boss");
    let carol = fx
        .run(&[
            "people",
            "add",
            "carol@example.com",
            "--name",
            "Carol Lee",
            "--manager",
            "Bo Boss",
            "--role",
            "responder",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(carol["manager"], "boss@example.com");
    assert_eq!(carol["roles"], serde_json::json!(["responder"]));
    let shown = fx
        .run(&["people", "show", "carol lee", "--json"])
        .ok()
        .json();
    assert_eq!(shown["email"], "carol@example.com");
    let text = fx.run(&["people", "show", "Carol Lee"]).ok().stdout;
    assert!(
        text.contains("responder") && text.contains("boss@example.com"),
        "{text}"
    );
    let listed = fx.run(&["people", "list", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");

    // A name that is no single person: the candidates, exit status 2, nothing done.
    fx.run(&["people", "add", "carl@example.com", "--name", "Carl Lee"])
        .ok();
    let ambiguous = fx.run(&["people", "show", "lee"]);
    assert_eq!(ambiguous.status.code(), Some(2), "{}", ambiguous.stderr);
    assert!(
        ambiguous.stderr.contains("carol@example.com"),
        "{}",
        ambiguous.stderr
    );
    assert!(
        ambiguous.stderr.contains("carl@example.com"),
        "{}",
        ambiguous.stderr
    );
    let nobody = fx.run(&["people", "show", "zed"]);
    assert_eq!(nobody.status.code(), Some(2));
    assert!(
        nobody.stderr.contains("no person matches"),
        "{}",
        nobody.stderr
    );

    // set-manager, grant-role and its removal.
    let moved = fx
        .run(&[
            "people",
            "set-manager",
            "Carl Lee",
            "boss@example.com",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(moved["manager"], "boss@example.com");
    let granted = fx
        .run(&[
            "people",
            "grant-role",
            "carl@example.com",
            "auditor",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(granted["roles"], serde_json::json!(["auditor"]));
    let removed = fx
        .run(&[
            "people",
            "grant-role",
            "carl@example.com",
            "auditor",
            "--remove",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(removed["roles"], serde_json::json!([]));
    let bad = fx
        .run(&["people", "grant-role", "carl@example.com", "root"])
        .fails();
    assert!(bad.stderr.contains("unknown role"), "{}", bad.stderr);

    // Changing people takes an admin: the registry refuses Bob.
    let refused = fx
        .run_with(Some(&bob_token), &["people", "grant-role", BOB, "admin"])
        .fails();
    assert!(refused.stderr.contains("403"), "{}", refused.stderr);

    // Owners by name; leave hands Carol's agent to her manager.
    let agent = fx.register(&["ledger-bot", "--owner", ADMIN]);
    let id = agent["id"].as_str().unwrap().to_string();
    let set = fx
        .run(&["owner", "set", "ledger-bot", "Carol Lee", "--json"])
        .ok()
        .json();
    assert_eq!(set["owner"], "carol@example.com");
    let candidates = fx
        .run(&["owner", "candidates", "ledger-bot", "--json"])
        .ok()
        .json();
    assert_eq!(candidates["current_owner"], "carol@example.com");
    let left = fx
        .run(&["people", "leave", "Carol Lee", "--json"])
        .ok()
        .json();
    assert_eq!(left["succession"]["successor"], "boss@example.com");
    assert_eq!(left["succession"]["handed_over"], 1);
    assert_eq!(fx.show(&id)["owner"], "boss@example.com");
    let gone = fx.run(&["people", "list", "--left"]).ok().stdout;
    assert!(
        gone.contains("carol@example.com") && gone.contains("left 20"),
        "{gone}"
    );

    // A leaver without a manager: the agent is orphaned and `agents list --unowned` has it.
    let orphan = fx.register(&["orphan-bot", "--owner", "carl@example.com"]);
    fx.run(&["people", "set-manager", "carl@example.com", ADMIN])
        .ok();
    // Carl's manager is the admin: give the agent to someone without one instead.
    fx.run(&["people", "add", "solo@example.com", "--name", "Solo"])
        .ok();
    fx.run(&[
        "owner",
        "set",
        orphan["id"].as_str().unwrap(),
        "solo@example.com",
    ])
    .ok();
    let out = fx.run(&["people", "leave", "solo@example.com"]).ok().stdout;
    assert!(
        out.contains("no active manager: 1 agent(s) orphaned"),
        "{out}"
    );
    let unowned = fx
        .run(&["agents", "list", "--unowned", "--json"])
        .ok()
        .json();
    assert!(
        names(&unowned).contains(&"orphan-bot".to_string()),
        "{unowned}"
    );
    let table = fx.run(&["agents", "list", "--unowned"]).ok().stdout;
    assert!(table.contains("solo@example.com (left)"), "{table}");
    let detail = fx.run(&["agents", "show", "orphan-bot"]).ok().stdout;
    assert!(
        detail.contains("owner Solo <solo@example.com> left on "),
        "{detail}"
    );

    // decommission --dry-run changes nothing; --yes goes ahead (no terminal here either way).
    let dry = fx
        .run(&["decommission", "orphan-bot", "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["plan"]["agents"].as_array().unwrap().len(), 1);
    assert_eq!(fx.show(orphan["id"].as_str().unwrap())["status"], "active");
    let text = fx
        .run(&["decommission", "orphan-bot", "--dry-run"])
        .ok()
        .stdout;
    assert!(
        text.contains("dry run: nothing was decommissioned"),
        "{text}"
    );
    fx.run(&["decommission", "orphan-bot", "--yes"]).ok();
    assert_eq!(
        fx.show(orphan["id"].as_str().unwrap())["status"],
        "decommissioned"
    );

    // campaigns close --dry-run shows what the outcome touches and closes nothing.
    fx.register(&["q4-bot", "--owner", ADMIN, "--scope", "crm.orders:read"]);
    let created = fx
        .run(&["campaigns", "create", "Q4", "--due", "2099-12-31", "--json"])
        .ok()
        .json();
    let cid = created["id"].as_str().unwrap().to_string();
    // reviews reassign (the reviewer by name) and back with --agent; decide --json.
    let items = fx.run(&["reviews", "list", "--all", "--json"]).ok().json();
    let item = items.as_array().unwrap()[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let moved = fx
        .run(&["reviews", "reassign", &item, "Bo Boss", "--json"])
        .ok()
        .json();
    assert_eq!(moved["reviewer"], "boss@example.com");
    assert_eq!(moved["reassigned"].as_array().unwrap().len(), 1);
    let back = fx
        .run(&["reviews", "reassign", &item, ADMIN, "--agent"])
        .ok()
        .stdout;
    assert!(back.contains("now reviewed by admin@example.com"), "{back}");
    let decided = fx
        .run(&["reviews", "decide", &item, "certify", "--json"])
        .ok()
        .json();
    assert_eq!(decided["item"]["decision"], "certify");
    let dry = fx
        .run(&["campaigns", "close", &cid, "--dry-run"])
        .ok()
        .stdout;
    assert!(dry.contains("dry run: nothing was closed"), "{dry}");
    let shown = fx.run(&["campaigns", "show", &cid, "--json"]).ok().json();
    assert_ne!(shown["status"], "closed");
    let closed = fx
        .run(&["campaigns", "close", &cid, "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(closed["campaign"]["status"], "closed");
}
