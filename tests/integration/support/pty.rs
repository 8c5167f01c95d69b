//! The real `steward` binary in a pseudo-terminal, read through a terminal emulator (vt100):
//! how the console tests press keys and read the screen as a person would.
//!
//! Every wait is bounded and polls the screen (the frames arrive when the program draws them);
//! nothing asserts on time.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tempfile::TempDir;

pub const COLS: u16 = 120;
pub const ROWS: u16 = 40;

/// How long a wait for the screen may take before the test fails (a bound, not an assertion).
pub const SCREEN_TIMEOUT: Duration = Duration::from_secs(120);

/// `steward ARGS…` running in a pseudo-terminal of [`COLS`]×[`ROWS`], in its own tempdir (its
/// working directory, config and cache home).
pub struct Pty {
    /// Taken by [`Pty::quit`].
    dir: Option<TempDir>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    parser: Arc<Mutex<vt100::Parser>>,
    keys: Box<dyn Write + Send>,
    /// Keys pressed so far (a test may reset it to count the keys of one job).
    pub pressed: usize,
}

impl Pty {
    /// Starts `steward` with `args` (`{dir}` in an argument is replaced by the tempdir's path).
    pub fn spawn(args: &[&str]) -> Pty {
        Pty::spawn_with(args, &[])
    }

    /// [`Pty::spawn`] with extra environment variables.
    pub fn spawn_with(args: &[&str], env: &[(&str, &str)]) -> Pty {
        let dir = tempfile::tempdir().expect("create a tempdir");
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let mut cmd = CommandBuilder::new(super::steward_exe());
        let here = dir.path().to_str().expect("a UTF-8 tempdir");
        cmd.args(args.iter().map(|a| a.replace("{dir}", here)));
        cmd.cwd(dir.path());
        cmd.env("XDG_CONFIG_HOME", dir.path().join("config"));
        cmd.env("XDG_CACHE_HOME", dir.path().join("cache"));
        cmd.env("XDG_DATA_HOME", dir.path().join("data"));
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        cmd.env_remove("STEWARD_SERVER");
        cmd.env_remove("STEWARD_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pty.slave.spawn_command(cmd).expect("start steward");
        drop(pty.slave);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(ROWS).unwrap(),
            std::num::NonZeroU16::new(COLS).unwrap(),
            0,
        )));
        let mut reader = pty.master.try_clone_reader().expect("read the terminal");
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
        let keys = pty.master.take_writer().expect("write to the terminal");
        // The master must outlive the session: leak it into the writer's lifetime.
        std::mem::forget(pty.master);
        Pty {
            dir: Some(dir),
            child,
            parser,
            keys,
            pressed: 0,
        }
    }

    /// The tempdir the program runs in.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("the program's tempdir").path()
    }

    /// The screen's text.
    pub fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// The screen's rows, [`COLS`] wide.
    pub fn lines(&self) -> Vec<String> {
        self.parser.lock().unwrap().screen().rows(0, COLS).collect()
    }

    /// The screen's rows once the frame is whole: two reads 100 ms apart agree (at most 5 s).
    /// A frame arrives in several writes; a test that reads rows after a header changed could
    /// otherwise see a row not yet redrawn.
    pub fn settled_lines(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = self.lines();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.lines();
            if now == last || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    /// Sends `key` (bytes as typed: "q", "\r", "\x1b", …) and counts it.
    pub fn press(&mut self, key: &str) {
        self.keys.write_all(key.as_bytes()).expect("press a key");
        self.keys.flush().expect("press a key");
        self.pressed += 1;
    }

    /// Waits (at most [`SCREEN_TIMEOUT`]) until `ready` holds for the screen; returns its text.
    /// Fails with the screen at the bound, or at once if the program has exited.
    #[track_caller]
    pub fn wait(&mut self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        self.wait_within(what, SCREEN_TIMEOUT, ready)
    }

    /// [`Pty::wait`] with another bound.
    #[track_caller]
    pub fn wait_within(
        &mut self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        // A screen is taken as ready when two reads a poll apart both are: a frame read while the
        // program was still writing it (on a loaded machine) can lack the very line that says
        // it is not ready yet, such as an overlay's title.
        let mut ready_once = false;
        loop {
            let text = self.text();
            if ready(&text) {
                if ready_once {
                    return text;
                }
                ready_once = true;
                std::thread::sleep(Duration::from_millis(30));
                continue;
            }
            ready_once = false;
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "steward exited ({status:?}) while waiting for {what}; the screen shows:\n{text}"
                );
            }
            if Instant::now() > deadline {
                panic!("waited {limit:?} for {what}; the screen shows:\n{text}");
            }
            // Polls for the next frame (drawn by the program when it is ready).
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) for the program to exit and returns its status.
    #[track_caller]
    pub fn exit_status(&mut self) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll steward") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "steward did not exit:\n{}",
                self.text()
            );
            // Polls for the exit (the program finishes its last writes first).
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Presses `q`, waits (bounded) for a successful exit and hands back the tempdir.
    #[track_caller]
    pub fn quit(mut self) -> TempDir {
        self.press("q");
        let status = self.exit_status();
        assert!(status.success(), "steward failed:\n{}", self.text());
        self.dir.take().expect("the program's tempdir")
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // A test that panics must not leave the program running.
        let _ = self.child.kill();
    }
}

/// `steward demo` in a pseudo-terminal over `demo.db` in its tempdir.
pub struct Demo {
    pub pty: Pty,
    pub db: PathBuf,
}

/// What is left of a demo that quit: its database (the tempdir lives as long as this).
pub struct Finished {
    pub db: PathBuf,
    pub dir: TempDir,
}

impl std::ops::Deref for Finished {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.db
    }
}

impl AsRef<Path> for Finished {
    fn as_ref(&self) -> &Path {
        &self.db
    }
}

impl Demo {
    /// `steward demo ARGS… --db DIR/demo.db` (e.g. `&["--as", "owner", "--agents", "300"]`).
    pub fn start(args: &[&str]) -> Demo {
        let mut all = vec!["demo"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--db", "{dir}/demo.db"]);
        let pty = Pty::spawn(&all);
        let db = pty.dir().join("demo.db");
        Demo { pty, db }
    }

    pub fn text(&self) -> String {
        self.pty.text()
    }

    pub fn lines(&self) -> Vec<String> {
        self.pty.lines()
    }

    pub fn settled_lines(&self) -> Vec<String> {
        self.pty.settled_lines()
    }

    pub fn press(&mut self, key: &str) {
        self.pty.press(key)
    }

    #[track_caller]
    pub fn wait(&mut self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        self.pty.wait(what, ready)
    }

    /// Presses `q`, waits for a successful exit; the database stays readable.
    #[track_caller]
    pub fn quit(self) -> Finished {
        let Demo { pty, db } = self;
        Finished {
            dir: pty.quit(),
            db,
        }
    }
}

impl std::ops::Deref for Demo {
    type Target = Pty;
    fn deref(&self) -> &Pty {
        &self.pty
    }
}

impl std::ops::DerefMut for Demo {
    fn deref_mut(&mut self) -> &mut Pty {
        &mut self.pty
    }
}
