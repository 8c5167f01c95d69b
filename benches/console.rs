//! The console with 100,000 and 1,000,000 agents in its cache: time to first frame (load the
//! cache, build the view, draw), time to draw one frame, fuzzy filter latency for a 3- and an
//! 8-letter query (full pass, and keystroke by keystroke with narrowing), and peak memory.
//!
//! The cache is built from the demo enterprise's own generator (`registry::demo::generate`), so
//! that names, families, grants and owners have the demo's shapes.
//!
//! Run: `cargo bench --bench console` (release build). Each size runs in its own process so
//! that peak memory (VmHWM) belongs to that size alone. Prints figures; asserts nothing.

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use steward::console::app::App;
use steward::console::filter::{self, FilterJob, FilterSpec, QuickFilter, Sort, SortCache};
use steward::console::inventory::Inventory;
use steward::console::keymap::Keymap;
use steward::console::{cache, config, views};
use steward::registry::demo;

const QUERY_3: &str = "inv";
const QUERY_8: &str = "invoicer";

/// The inventory a console holds after syncing the demo enterprise of `n` agents: the demo's own
/// generator (names and families, descriptions, grants, owners, people who left), applied as the
/// change feed would bring it (people first; each agent with its owner's name).
fn demo_shaped(n: usize) -> Inventory {
    use std::collections::HashMap;
    let mut inv = Inventory::new("http://127.0.0.1:8420/");
    inv.persona = Some("admin@example.com".into());
    let anchor = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let mut people: HashMap<String, (String, Option<chrono::DateTime<Utc>>)> = HashMap::new();
    demo::generate(42, n as u32, anchor, &mut |batch| {
        for p in &batch.people {
            inv.upsert_person(&p.person);
            people.insert(
                p.person.email.clone(),
                (p.person.display_name.clone(), p.person.left_at),
            );
        }
        for a in batch.agents {
            let mut agent = a.agent;
            if let Some((name, left)) = agent.owner.as_ref().and_then(|o| people.get(o)) {
                agent.owner_name = Some(name.clone());
                agent.owner_left_at = *left;
            }
            inv.upsert(&agent);
        }
        true
    });
    inv
}

fn peak_memory_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn spec(query: &str) -> FilterSpec {
    FilterSpec {
        quick: QuickFilter::All,
        query: query.into(),
        sort: Sort::default(),
        me: None,
        now: 1_800_000_000,
    }
}

fn make(n: usize, path: &std::path::Path) {
    let started = Instant::now();
    let inv = demo_shaped(n);
    cache::save(path, &inv).unwrap();
    eprintln!(
        "(made and wrote {n} agents in {:.1} s; cache file {:.1} MB)",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(path).unwrap().len() as f64 / 1e6
    );
}

fn measure(path: &std::path::Path) {
    let dir = path.parent().unwrap();

    // First frame: read the cache, build the state, draw once.
    let started = Instant::now();
    let inv = cache::load(path).unwrap().unwrap();
    let n = inv.rows().len();
    let load_ms = ms(started);
    let mut app = App::new(
        &inv.server.clone(),
        dir.to_path_buf(),
        inv,
        config::builtin_theme("default"),
        Keymap::default(),
        false,
        1_800_000_000,
    );
    app.width = 120;
    app.height = 40;
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    terminal.draw(|f| views::draw(f, &app)).unwrap();
    let first_frame_ms = ms(started);
    let first_frame_peak = peak_memory_mb();

    // One frame, steady state (the cursor moves between frames, as when scrolling).
    let frames = 200;
    let started = Instant::now();
    for i in 0..frames {
        app.cursor.selected = (i * 7919) % app.view.len();
        app.cursor.offset = app.cursor.selected.saturating_sub(10);
        terminal.draw(|f| views::draw(f, &app)).unwrap();
    }
    let frame_ms = ms(started) / frames as f64;

    // Filtering, as the worker does it (its sort order is computed once and kept).
    let inventory = app.inventory.clone();
    let mut sort_cache = SortCache::default();
    let never = || false;
    let job = |query: &str, narrow: Option<Arc<[u32]>>| FilterJob {
        generation: 1,
        spec: spec(query),
        inventory: inventory.clone(),
        narrow,
    };
    let started = Instant::now();
    let first = filter::compute(&job("", None), &mut sort_cache, &never).unwrap();
    let first_job_ms = ms(started);
    assert_eq!(first.rows.len(), n);
    let mut results = Vec::new();
    for q in [QUERY_3, QUERY_8] {
        let started = Instant::now();
        let out = filter::compute(&job(q, None), &mut sort_cache, &never).unwrap();
        let full_ms = ms(started);
        // Typed one letter at a time: each keystroke narrows the previous result.
        let mut worst: f64 = 0.0;
        let mut previous: Option<Arc<[u32]>> = None;
        for end in 1..=q.len() {
            let started = Instant::now();
            let o =
                filter::compute(&job(&q[..end], previous.take()), &mut sort_cache, &never).unwrap();
            worst = worst.max(ms(started));
            previous = Some(o.rows);
        }
        results.push((q, out.rows.len(), full_ms, worst));
    }

    // The console writes its cache after each sync: encode and write the whole inventory.
    let started = Instant::now();
    let saved = dir.join("saved.cache");
    cache::save(&saved, &app.inventory).unwrap();
    let save_ms = ms(started);
    let save_peak = peak_memory_mb();

    println!("{n} agents in the cache:");
    println!("  load the cache              {load_ms:8.1} ms");
    println!(
        "  first rows (load + first frame) {first_frame_ms:5.1} ms   (target ≤ {} ms)",
        if n <= 100_000 { 200 } else { 500 }
    );
    println!("  one frame (120×40)          {frame_ms:8.3} ms   (target ≤ 5 ms)");
    println!("  first filter job (sort check) {first_job_ms:6.1} ms");
    for (q, matches, full, worst) in results {
        println!(
            "  filter {:<10} {:>8} matches: full pass {full:7.1} ms, worst keystroke with narrowing {worst:7.1} ms   (target ≤ {} ms)",
            format!("{q:?}"),
            matches,
            if n <= 100_000 { 50 } else { 300 }
        );
    }
    println!("  write the cache (after a sync) {save_ms:5.1} ms");
    println!(
        "  peak memory (VmHWM) at the first frame {first_frame_peak:6.0} MB   (target ≤ 300 MB at 1M)"
    );
    println!(
        "  peak memory, whole run        {save_peak:6.0} MB   (load, draw, filter, write the cache)"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|p| args[p + 1].clone())
    };
    if let (Some(n), Some(path)) = (arg("--make"), arg("--path")) {
        make(n.parse().expect("--make N"), std::path::Path::new(&path));
        return;
    }
    if let Some(path) = arg("--measure") {
        measure(std::path::Path::new(&path));
        return;
    }
    // Each step in its own process, so that peak memory belongs to the console's work alone.
    let exe = std::env::current_exe().unwrap();
    for n in [100_000usize, 1_000_000] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.cache");
        let path = path.to_str().unwrap();
        let ok = std::process::Command::new(&exe)
            .args(["--make", &n.to_string(), "--path", path])
            .status()
            .unwrap()
            .success()
            && std::process::Command::new(&exe)
                .args(["--measure", path])
                .status()
                .unwrap()
                .success();
        assert!(ok, "the benchmark for {n} agents failed");
    }
}
