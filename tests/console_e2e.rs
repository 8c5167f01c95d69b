//! End to end: the real `steward demo` binary in a pseudo-terminal. Filter to an agent, press X,
//! quit, then find the agent suspended through a registry opened over the demo's database.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use steward::client::{Client, Secret};
use steward::model::AgentStatus;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::{self, Server};

const COLS: u16 = 120;
const ROWS: u16 = 40;

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    fn lines(&self) -> Vec<String> {
        self.parser.lock().unwrap().screen().rows(0, COLS).collect()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_in_a_pty_filters_revokes_and_the_registry_agrees() {
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
    cmd.args(["demo", "--agents", "300", "--db", db.to_str().unwrap()]);
    cmd.cwd(dir.path());
    cmd.env("XDG_CONFIG_HOME", dir.path().join("config"));
    cmd.env("XDG_CACHE_HOME", dir.path().join("cache"));
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("NO_COLOR");
    let mut child = pty.slave.spawn_command(cmd).unwrap();
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
    let mut keys = pty.master.take_writer().unwrap();
    let mut press = |bytes: &str| {
        keys.write_all(bytes.as_bytes()).unwrap();
        keys.flush().unwrap();
    };
    let screen = Screen { parser };

    screen.wait(
        &mut child,
        "the synced inventory",
        Duration::from_secs(120),
        |s| s.contains("NAME ▲") && s.contains("synced") && s.contains("300 agents"),
    );
    // Pick an active agent a few rows down, so that the filter has work to do. The frame may
    // still be arriving on a loaded machine, so wait until enough rows are drawn.
    let fifth_active = |text: &str| -> Option<String> {
        let lines: Vec<&str> = text.lines().collect();
        let header = lines.iter().position(|l| l.contains("NAME ▲"))?;
        lines[header + 1..]
            .iter()
            .filter(|l| l.contains("● active"))
            .filter_map(|l| l.trim_start_matches(['▶', ' ']).split_whitespace().next())
            .filter(|n| !n.contains('…'))
            .nth(4)
            .map(str::to_string)
    };
    screen.wait(
        &mut child,
        "five active agents on screen",
        Duration::from_secs(30),
        |s| fifth_active(s).is_some(),
    );
    let name = fifth_active(&screen.text()).expect("an active agent on screen");

    press("/");
    press(&name);
    screen.wait(
        &mut child,
        "the filter to apply",
        Duration::from_secs(30),
        |s| s.contains(&format!("/{name}")) && !s.contains("filtering…"),
    );
    press("\r");
    screen.wait(
        &mut child,
        "the agent selected",
        Duration::from_secs(30),
        |s| {
            s.lines()
                .any(|l| l.starts_with('▶') && l.split_whitespace().nth(1) == Some(name.as_str()))
        },
    );
    press("X");
    screen.wait(
        &mut child,
        "the revocation result",
        Duration::from_secs(30),
        |s| s.contains("REVOKED") && s.contains("active → suspended"),
    );
    let id = screen
        .lines()
        .iter()
        .find(|l| l.contains("REVOKED"))
        .and_then(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("ag"))
                .map(str::to_string)
        })
        .expect("the agent's id in the result");
    press("\x1b");
    screen.wait(
        &mut child,
        "the result to close",
        Duration::from_secs(30),
        |s| !s.contains("Incident reference"),
    );
    press("q");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not quit:\n{}",
            screen.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the demo failed:\n{}", screen.text());

    // A registry over the demo's database, asked through the API.
    let store = registry::open_store(&db, OpenMode::MustExist).unwrap();
    let (_, token) =
        registry::bootstrap_admin(store.as_ref(), "checker@example.com", "Checker", "e2e").unwrap();
    let server = Server::bind("127.0.0.1:0", store, "check").await.unwrap();
    let url = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    let client = Client::new(&url, Some(Secret::new(token.token))).unwrap();
    let agent = client.agent(&id).await.unwrap();
    assert_eq!(agent.agent.name, name);
    assert_eq!(agent.agent.status, AgentStatus::Suspended);
    assert!(agent.credentials.iter().all(|c| c.disabled_at.is_some()));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
