//! The traffic rules of the SQLite connections (issue 10 items 2 and 3): who gets the one
//! writer next, how many readers exist, who checkpoints the write-ahead log, and how long each
//! call site held the writer.
//!
//! - **Writer turns** ([`WriterGate`]): one writer at a time; an *urgent* caller (the brake)
//!   goes before every ordinary caller already waiting, and long work steps aside between its
//!   steps while anyone waits.
//! - **Readers** ([`ReaderPool`]): a fixed number of connections; a caller beyond them waits
//!   for one to come back instead of opening another (a burst of a thousand requests once
//!   opened a thousand connections, each parsing the schema on two shared cores). Short point
//!   reads (API-token lookups, one agent) have a pool of their own, so they never queue behind
//!   bulk pages. A thread that already holds a reader and asks for another (a nested read) gets
//!   a private connection at once, so nesting cannot deadlock; a caller that waits longer than
//!   [`OVERFLOW_AFTER`] also gets one (logged), so a stuck reader cannot stall every request.
//! - **Checkpoints** ([`Checkpointer`]): the writer never checkpoints (`wal_autocheckpoint`
//!   off); a background connection runs a PASSIVE checkpoint every half second, which waits for
//!   no reader and no writer, so copying the log into the database is never on a write's path.
//!   Long work lets a checkpoint catch up between its steps once the log passes 256 MiB, so
//!   that the log starts again instead of growing for as long as the work runs.
//! - **Hold times** ([`WriterStats`]): per call site of `write`, how long callers waited for
//!   the writer and how long they held it (count, p50, p99, max), for benchmarks and logs.

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Who may write next: one at a time, urgent callers first.
pub(in crate::registry::store) struct WriterGate {
    state: Mutex<GateState>,
    turn: Condvar,
}

#[derive(Default)]
struct GateState {
    busy: bool,
    urgent: usize,
    ordinary: usize,
}

/// A turn at the writer; the next caller goes when it is dropped.
pub(super) struct WriterTurn<'a> {
    gate: &'a WriterGate,
}

impl WriterGate {
    pub(super) fn new() -> WriterGate {
        WriterGate {
            state: Mutex::new(GateState::default()),
            turn: Condvar::new(),
        }
    }

    /// Waits for a turn. An urgent caller is served before every ordinary one waiting, in
    /// whatever order they came; ordinary callers wait while any urgent one does.
    pub(super) fn enter(&self, urgent: bool) -> WriterTurn<'_> {
        let mut s = lock(&self.state);
        if urgent {
            s.urgent += 1;
        } else {
            s.ordinary += 1;
        }
        while s.busy || (!urgent && s.urgent > 0) {
            s = self.turn.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        if urgent {
            s.urgent -= 1;
        } else {
            s.ordinary -= 1;
        }
        s.busy = true;
        WriterTurn { gate: self }
    }

    /// Callers waiting for a turn (urgent and ordinary).
    pub(in crate::registry::store) fn waiting(&self) -> usize {
        let s = lock(&self.state);
        s.urgent + s.ordinary
    }

    /// Urgent callers waiting for a turn.
    #[cfg(test)]
    pub(in crate::registry::store) fn urgent_waiting(&self) -> usize {
        lock(&self.state).urgent
    }
}

impl Drop for WriterTurn<'_> {
    fn drop(&mut self) {
        lock(&self.gate.state).busy = false;
        self.gate.turn.notify_all();
    }
}

thread_local! {
    /// Pooled readers this thread holds (a nested read must not wait for the pool).
    static HOLDING: Cell<u32> = const { Cell::new(0) };
}

/// A caller waiting longer than this for a pooled reader gets a private connection.
pub(super) const OVERFLOW_AFTER: Duration = Duration::from_secs(5);

/// A fixed number of read-only connections; callers beyond them wait.
pub(super) struct ReaderPool {
    path: PathBuf,
    max: usize,
    name: &'static str,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Connection>,
    open: usize,
    overflows: u64,
}

/// A reader connection lent by a pool (or a private one), returned on drop.
pub(super) struct Reader<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
    pooled: bool,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a reader holds its connection until dropped")
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a reader holds its connection until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        HOLDING.with(|h| h.set(h.get().saturating_sub(1)));
        if let Some(conn) = self.conn.take()
            && self.pooled
        {
            let mut s = lock(&self.pool.state);
            // A connection whose read failed half way is still usable: its transaction was
            // finished or rolled back when the `Transaction` dropped.
            s.idle.push(conn);
            drop(s);
            self.pool.freed.notify_one();
        }
    }
}

impl ReaderPool {
    pub(super) fn new(path: &Path, max: usize, name: &'static str) -> ReaderPool {
        ReaderPool {
            path: path.to_path_buf(),
            max: max.max(1),
            name,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
                overflows: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        super::configure(&c)?;
        Ok(c)
    }

    fn lend(&self, conn: Connection, pooled: bool) -> Reader<'_> {
        HOLDING.with(|h| h.set(h.get() + 1));
        Reader {
            pool: self,
            conn: Some(conn),
            pooled,
        }
    }

    /// A reader: an idle pooled one, a new pooled one while fewer than `max` exist, else the
    /// first one given back.
    pub(super) fn get(&self) -> rusqlite::Result<Reader<'_>> {
        if HOLDING.with(|h| h.get()) > 0 {
            // Nested: waiting could wait for ourselves.
            return Ok(self.lend(self.connect()?, false));
        }
        let started = Instant::now();
        let mut s = lock(&self.state);
        loop {
            if let Some(conn) = s.idle.pop() {
                return Ok(self.lend(conn, true));
            }
            if s.open < self.max {
                s.open += 1;
                drop(s);
                return match self.connect() {
                    Ok(conn) => Ok(self.lend(conn, true)),
                    Err(e) => {
                        lock(&self.state).open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let left = OVERFLOW_AFTER.saturating_sub(started.elapsed());
            if left.is_zero() {
                s.overflows += 1;
                let overflows = s.overflows;
                drop(s);
                tracing::warn!(
                    pool = self.name,
                    max = self.max,
                    overflows,
                    "no reader came back within {OVERFLOW_AFTER:?}; using a private connection"
                );
                return Ok(self.lend(self.connect()?, false));
            }
            s = self
                .freed
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Connections this pool has open (idle or lent), never above its maximum.
    pub(super) fn open(&self) -> usize {
        lock(&self.state).open
    }

    /// Private connections handed out because a caller waited too long.
    #[cfg(test)]
    pub(super) fn overflows(&self) -> u64 {
        lock(&self.state).overflows
    }
}

/// Checkpoints the write-ahead log in the background (PASSIVE: it waits for nobody), and
/// between the steps of long work when the log has grown long.
pub(super) struct Checkpointer {
    conn: Option<Arc<Mutex<Connection>>>,
    /// Frames in the log at the last checkpoint (0 once a catch-up has copied them all).
    log_frames: Arc<AtomicI64>,
    /// Frames beyond which long work lets a checkpoint catch up.
    long_log_frames: i64,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// How often the background checkpoint runs.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The size the write-ahead log is cut back to once a checkpoint has emptied it, and beyond
/// which long work lets the checkpoint catch up (see [`Checkpointer::catch_up_if_long`]).
pub(super) const LONG_LOG_BYTES: i64 = 256 * 1024 * 1024;

/// How long a RESTART checkpoint waits for the writer and for readers of the old log (the
/// checkpoint connection's busy timeout; PASSIVE ones never wait).
const RESTART_WAIT: Duration = Duration::from_millis(20);

/// One checkpoint (`PASSIVE` or `RESTART`): whether it copied the whole log into the
/// database, and how many frames the log holds.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(bool, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        let (busy, log, copied): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok((busy == 0 && log == copied, log))
    })
}

impl Checkpointer {
    /// Starts the background checkpoint; long work catches up beyond `long_log_bytes`.
    pub(super) fn start(path: &Path, long_log_bytes: i64) -> Checkpointer {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let log_frames = Arc::new(AtomicI64::new(0));
        let opened = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| {
            c.busy_timeout(RESTART_WAIT)?;
            let page: i64 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
            Ok((c, page))
        });
        let (conn, page) = match opened {
            Ok((c, page)) => (Arc::new(Mutex::new(c)), page.max(512)),
            Err(e) => {
                tracing::error!(error = %e, "the checkpoint connection did not open");
                return Checkpointer {
                    conn: None,
                    log_frames,
                    long_log_frames: i64::MAX,
                    stop,
                    thread: None,
                };
            }
        };
        let signal = stop.clone();
        let shared = conn.clone();
        let frames = log_frames.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let (stopped, wake) = &*signal;
                let mut done = lock(stopped);
                while !*done {
                    done = wake
                        .wait_timeout(done, CHECKPOINT_EVERY)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    if *done {
                        break;
                    }
                    drop(done);
                    match checkpoint(&lock(&shared), "PASSIVE") {
                        Ok((_, log)) => frames.store(log, Ordering::Relaxed),
                        Err(e) => tracing::warn!(error = %e, "a background checkpoint failed"),
                    }
                    done = lock(stopped);
                }
            })
            .ok();
        Checkpointer {
            conn: Some(conn),
            log_frames,
            long_log_frames: long_log_bytes / page,
            stop,
            thread,
        }
    }

    /// Called by long work between its steps, holding no turn at the writer. The log restarts
    /// from its beginning only when a write begins after a checkpoint has copied all of it and
    /// no reader still reads the old log, and work that writes step after step never leaves
    /// such a moment: the log grew to 7 GB while a campaign over a million agents closed, and
    /// every append to a growing file makes the next sync slower. So once the log is long,
    /// the work waits for a PASSIVE checkpoint (which holds nobody up) and then a RESTART one,
    /// which holds new writers only while it copies the few frames written meanwhile and
    /// waits, at most [`RESTART_WAIT`], for readers of the old log; the next write starts
    /// the log again and cuts the file back to [`LONG_LOG_BYTES`].
    pub(in crate::registry::store) fn catch_up_if_long(&self) {
        let Some(conn) = &self.conn else { return };
        if self.log_frames.load(Ordering::Relaxed) <= self.long_log_frames {
            return;
        }
        let conn = lock(conn);
        let restarted = checkpoint(&conn, "PASSIVE").and_then(|(whole, _)| {
            if !whole {
                return Ok(false);
            }
            checkpoint(&conn, "RESTART").map(|(whole, _)| whole)
        });
        match restarted {
            Ok(true) => self.log_frames.store(0, Ordering::Relaxed),
            // Readers or writers were in the way: tried again after the next background pass.
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "a checkpoint between steps failed"),
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Which API tokens had their `last_used_at` written lately, so that a burst of requests
/// with one token writes it once rather than once per request.
pub(super) struct TouchFilter {
    last: Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>,
}

/// A token's use is written at most this often by one process.
pub(super) const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

impl TouchFilter {
    pub(super) fn new() -> TouchFilter {
        TouchFilter {
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a use at `at` should be written (and, if so, counts it as written).
    pub(super) fn claim(&self, token_id: &str, at: chrono::DateTime<chrono::Utc>) -> bool {
        let mut last = lock(&self.last);
        if last.get(token_id).is_some_and(|t| at < *t + TOUCH_EVERY) {
            return false;
        }
        if last.len() >= 10_000 {
            last.retain(|_, t| at < *t + TOUCH_EVERY);
        }
        last.insert(token_id.to_string(), at);
        true
    }

    /// A claimed write failed: the next use tries again.
    pub(super) fn forget(&self, token_id: &str) {
        lock(&self.last).remove(token_id);
    }
}

/// Milliseconds per bucket of the hold-time histogram, and the number of buckets (the last
/// one holds everything longer).
const BUCKETS: usize = 1024;

#[derive(Clone)]
struct Histogram {
    count: u64,
    max: Duration,
    /// Whole milliseconds, the last bucket for `BUCKETS - 1` ms and more.
    buckets: Box<[u32; BUCKETS]>,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            count: 0,
            max: Duration::ZERO,
            buckets: Box::new([0; BUCKETS]),
        }
    }

    fn add(&mut self, d: Duration) {
        self.count += 1;
        self.max = self.max.max(d);
        let ms = (d.as_millis() as usize).min(BUCKETS - 1);
        self.buckets[ms] = self.buckets[ms].saturating_add(1);
    }

    /// The upper bound (ms) of the bucket holding the `p` quantile.
    fn quantile_ms(&self, p: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((self.count as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (ms, n) in self.buckets.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= rank {
                let upper = (ms + 1) as f64;
                return upper.min(self.max.as_secs_f64() * 1000.0);
            }
        }
        self.max.as_secs_f64() * 1000.0
    }
}

/// One call site's waits for the writer and holds of it.
#[derive(Debug, Clone)]
pub struct WriteSite {
    /// `file:line` of the `write` call.
    pub site: String,
    pub count: u64,
    pub hold_p50_ms: f64,
    pub hold_p99_ms: f64,
    pub hold_max_ms: f64,
    pub wait_p50_ms: f64,
    pub wait_p99_ms: f64,
    pub wait_max_ms: f64,
}

/// Hold and wait times of the writer, per call site.
pub(super) struct WriterStats {
    sites: Mutex<HashMap<&'static Location<'static>, (Histogram, Histogram)>>,
}

/// A hold longer than this is logged (with its call site).
pub(super) const SLOW_HOLD: Duration = Duration::from_millis(250);

impl WriterStats {
    pub(super) fn new() -> WriterStats {
        WriterStats {
            sites: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn record(&self, site: &'static Location<'static>, wait: Duration, hold: Duration) {
        if hold >= SLOW_HOLD {
            tracing::warn!(
                site = %format!("{}:{}", site.file(), site.line()),
                hold_ms = hold.as_secs_f64() * 1000.0,
                "a write held the writer long"
            );
        }
        let mut sites = lock(&self.sites);
        let (waits, holds) = sites
            .entry(site)
            .or_insert_with(|| (Histogram::new(), Histogram::new()));
        waits.add(wait);
        holds.add(hold);
    }

    pub(super) fn report(&self) -> Vec<WriteSite> {
        let sites = lock(&self.sites);
        let mut out: Vec<WriteSite> = sites
            .iter()
            .map(|(site, (waits, holds))| WriteSite {
                site: format!("{}:{}", site.file(), site.line()),
                count: holds.count,
                hold_p50_ms: holds.quantile_ms(0.5),
                hold_p99_ms: holds.quantile_ms(0.99),
                hold_max_ms: holds.max.as_secs_f64() * 1000.0,
                wait_p50_ms: waits.quantile_ms(0.5),
                wait_p99_ms: waits.quantile_ms(0.99),
                wait_max_ms: waits.max.as_secs_f64() * 1000.0,
            })
            .collect();
        out.sort_by(|a, b| b.hold_max_ms.total_cmp(&a.hold_max_ms));
        out
    }

    pub(super) fn reset(&self) {
        lock(&self.sites).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A log grown past the limit is started again after a catch-up between steps; while a
    /// reader still reads the old log, the catch-up gives up after its short wait instead.
    #[test]
    fn a_long_log_starts_again_after_a_catch_up_once_no_reader_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let writer = Connection::open(&path).unwrap();
        let _: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .pragma_update(None, "journal_size_limit", 16 * 4096)
            .unwrap();
        writer.execute("CREATE TABLE t (x BLOB)", []).unwrap();
        let write = |n: usize| {
            for _ in 0..n {
                writer
                    .execute("INSERT INTO t VALUES (randomblob(4000))", [])
                    .unwrap();
            }
        };
        let log = || -> i64 {
            writer
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
                .unwrap()
        };
        write(200);
        let wal = path.with_extension("db-wal");
        let long = std::fs::metadata(&wal).unwrap().len();
        // A reader that began before any checkpoint reads the old log.
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        let checkpointer = Checkpointer::start(&path, 16 * 4096);
        let waited = Instant::now();
        while checkpointer.log_frames.load(Ordering::Relaxed) <= checkpointer.long_log_frames {
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "no background pass"
            );
            std::thread::sleep(Duration::from_millis(20));
        }

        checkpointer.catch_up_if_long();
        write(1);
        assert!(log() > 200, "a reader of the old log keeps it: {}", log());

        reader.execute_batch("COMMIT").unwrap();
        checkpointer.log_frames.store(i64::MAX, Ordering::Relaxed);
        checkpointer.catch_up_if_long();
        write(1);
        assert!(log() < 10, "started again: {} frames", log());
        let cut = std::fs::metadata(&wal).unwrap().len();
        assert!(
            cut < long / 4,
            "the file is cut back: {long} then {cut} bytes"
        );
    }

    /// An urgent caller that arrives while ordinary callers are already queued is served
    /// before all of them (ordering only; no timing).
    #[test]
    fn an_urgent_writer_goes_before_ordinary_writers_already_waiting() {
        let gate = Arc::new(WriterGate::new());
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = gate.enter(false);
        let mut threads = Vec::new();
        for i in 0..3 {
            let (gate, order) = (gate.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                let _t = gate.enter(false);
                lock(&order).push(format!("ordinary{i}"));
            }));
        }
        while gate.waiting() < 3 {
            std::thread::yield_now();
        }
        let (g, o) = (gate.clone(), order.clone());
        threads.push(std::thread::spawn(move || {
            let _t = g.enter(true);
            lock(&o).push("urgent".to_string());
        }));
        while gate.urgent_waiting() < 1 {
            std::thread::yield_now();
        }
        drop(held);
        for t in threads {
            t.join().unwrap();
        }
        let order = lock(&order);
        assert_eq!(order.len(), 4);
        assert_eq!(order[0], "urgent", "{order:?}");
    }

    /// A pool never opens more than its maximum: the callers beyond it wait for a connection
    /// to come back, and a nested read on the same thread does not wait for itself.
    #[test]
    fn a_reader_pool_makes_callers_wait_instead_of_opening_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER);")
                .unwrap();
        }
        let pool = Arc::new(ReaderPool::new(&path, 2, "test"));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (pool, most) = (pool.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let r = pool.get().unwrap();
                        most.fetch_max(pool.open(), Ordering::SeqCst);
                        let n: i64 = r
                            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                            .unwrap();
                        assert_eq!(n, 0);
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(pool.overflows(), 0);
        // Nested on one thread: the inner read gets a private connection at once.
        let outer = pool.get().unwrap();
        let inner = pool.get().unwrap();
        assert!(!inner.pooled && outer.pooled);
        drop(inner);
        drop(outer);
        assert!(pool.open() <= 2);
    }
}
