//! The admin's and the auditor's review queues in the real `steward demo` binary in a
//! pseudo-terminal: `/` filters the queue through the registry, `s` cycles the sort shown in the
//! header, `Y` accepts the recommendations of the filtered agents behind a typed count, and an
//! auditor reads every reviewer's items with no decision keys. The registry is read afterwards.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use steward::model::review::{Decision, QueueQuery};
use steward::registry;
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;

const COLS: u16 = 120;
const ROWS: u16 = 40;
const ADMIN: &str = "ada.admin@example.com";

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until `ready` holds for the screen; fails with the screen after `limit`, or at
    /// once if the program has exited.
    fn wait(
        &self,
        child: &mut Box<dyn portable_pty::Child + Send + Sync>,
        what: &str,
        limit: Duration,
        ready: impl Fn(&str) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.text();
            if ready(&text) {
                return;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "steward exited ({status:?}) while waiting for {what}; the screen shows:\n{text}"
                );
            }
            if Instant::now() > deadline {
                panic!("waited {limit:?} for {what}; the screen shows:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The demo in a pseudo-terminal, signed in as `persona`.
struct Demo {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    screen: Screen,
    keys: Box<dyn Write + Send>,
    /// Keys pressed so far.
    pressed: usize,
}

impl Demo {
    fn start(persona: &str, agents: &str) -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("demo.db");
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_steward"));
        cmd.args([
            "demo",
            "--as",
            persona,
            "--agents",
            agents,
            "--db",
            db.to_str().unwrap(),
        ]);
        cmd.cwd(dir.path());
        cmd.env("XDG_CONFIG_HOME", dir.path().join("config"));
        cmd.env("XDG_CACHE_HOME", dir.path().join("cache"));
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        let child = pty.slave.spawn_command(cmd).unwrap();
        drop(pty.slave);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(ROWS).unwrap(),
            std::num::NonZeroU16::new(COLS).unwrap(),
            0,
        )));
        let mut reader = pty.master.try_clone_reader().unwrap();
        {
            let parser = parser.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    parser.lock().unwrap().process(&buf[..n]);
                }
            });
        }
        let keys = pty.master.take_writer().unwrap();
        // The master must outlive the session: leak it into the writer's lifetime.
        std::mem::forget(pty.master);
        Demo {
            _dir: dir,
            db,
            child,
            screen: Screen { parser },
            keys,
            pressed: 0,
        }
    }

    fn press(&mut self, key: &str) {
        self.keys.write_all(key.as_bytes()).unwrap();
        self.keys.flush().unwrap();
        self.pressed += 1;
    }

    fn wait(&mut self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        self.screen
            .wait(&mut self.child, what, Duration::from_secs(60), ready);
        self.screen.text()
    }

    fn quit(mut self) -> std::path::PathBuf {
        self.press("q");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the demo failed:\n{}", self.screen.text());
                break;
            }
            assert!(Instant::now() < deadline, "the demo did not quit");
            std::thread::sleep(Duration::from_millis(50));
        }
        let db = self.db.clone();
        std::mem::forget(self._dir);
        db
    }
}

/// The agent names of the queue's left pane (after the marker column).
fn queue_agents(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once('│').map(|(left, _)| left.to_string()))
        .skip_while(|l| !l.contains("AGENTS ("))
        .skip(1)
        .filter_map(|l| {
            l.trim_start_matches([' ', '▶'])
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
    let mut demo = Demo::start("admin", "300");
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
    let text = demo.screen.text();
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
    let mut demo = Demo::start("auditor", "300");
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
    let target = queue_agents(&demo.screen.text())[0].clone();
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
