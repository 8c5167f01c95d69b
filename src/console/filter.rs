//! Quick filters, the `/` fuzzy filter and column sorting, computed off the UI thread.
//!
//! The UI submits a [`FilterJob`] tagged with a generation number and keeps drawing the previous
//! result; the worker always runs the newest job it has, abandons a job as soon as a newer one
//! arrives, and the UI ignores any answer whose generation is not the latest. When a query only
//! extends the previous one, the job narrows the previous matches instead of scanning every row
//! (a fuzzy match of `abcd` implies a match of `abc`).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use fuzzy_matcher::FuzzyMatcher;
use fuzzy_matcher::skim::SkimMatcherV2;

use super::inventory::{AgentRow, Inventory, NONE};
use crate::model::AgentStatus;

/// An agent is stale when it has not been seen for this long (or never, and is this old).
pub const STALE_AFTER_SECS: i64 = 30 * 24 * 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuickFilter {
    All,
    Unowned,
    Mine,
    Suspended,
    Decommissioned,
    StaticSecrets,
    Stale,
    /// Agents with unresolved behaviour flags, highest severity first.
    Flagged,
}

impl QuickFilter {
    pub const ALL: [QuickFilter; 8] = [
        QuickFilter::All,
        QuickFilter::Unowned,
        QuickFilter::Mine,
        QuickFilter::Suspended,
        QuickFilter::Decommissioned,
        QuickFilter::StaticSecrets,
        QuickFilter::Stale,
        QuickFilter::Flagged,
    ];

    pub fn label(self) -> &'static str {
        match self {
            QuickFilter::All => "all",
            QuickFilter::Unowned => "unowned",
            QuickFilter::Mine => "mine",
            QuickFilter::Suspended => "suspended",
            QuickFilter::Decommissioned => "decommissioned",
            QuickFilter::StaticSecrets => "static",
            QuickFilter::Stale => "stale",
            QuickFilter::Flagged => "flagged",
        }
    }

    pub fn parse(text: &str) -> Option<QuickFilter> {
        QuickFilter::ALL.into_iter().find(|q| q.label() == text)
    }

    pub fn cycle(self, forward: bool) -> QuickFilter {
        let i = QuickFilter::ALL
            .iter()
            .position(|&q| q == self)
            .unwrap_or(0);
        let n = QuickFilter::ALL.len();
        QuickFilter::ALL[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }

    /// `left`: owner symbols of people who left (their agents are orphaned, i.e. unowned work).
    fn keeps(self, row: &AgentRow, mine: u32, left: &HashSet<u32>, now: i64) -> bool {
        match self {
            QuickFilter::All => true,
            QuickFilter::Unowned => {
                (row.owner == NONE || left.contains(&row.owner))
                    && row.status != AgentStatus::Decommissioned
            }
            QuickFilter::Mine => mine != NONE && row.owner == mine,
            QuickFilter::Suspended => row.status == AgentStatus::Suspended,
            QuickFilter::Decommissioned => row.status == AgentStatus::Decommissioned,
            QuickFilter::StaticSecrets => row.static_secret,
            QuickFilter::Stale => is_stale(row, now),
            // Decided in `run`, which reads the row's flag labels (see `flag_rank`).
            QuickFilter::Flagged => true,
        }
    }
}

pub fn is_stale(row: &AgentRow, now: i64) -> bool {
    if row.status == AgentStatus::Decommissioned {
        return false;
    }
    let seen = if row.last_seen == i64::MIN {
        row.created
    } else {
        row.last_seen
    };
    now.saturating_sub(seen) > STALE_AFTER_SECS
}

/// The inventory's columns, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Name,
    Kind,
    Owner,
    Status,
    Team,
    Environment,
    Scopes,
    LastSeen,
    Flags,
}

impl Column {
    pub const ALL: [Column; 9] = [
        Column::Name,
        Column::Kind,
        Column::Owner,
        Column::Status,
        Column::Team,
        Column::Environment,
        Column::Scopes,
        Column::LastSeen,
        Column::Flags,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::Kind => "KIND",
            Column::Owner => "OWNER",
            Column::Status => "STATUS",
            Column::Team => "TEAM",
            Column::Environment => "ENV",
            Column::Scopes => "SCOPES",
            Column::LastSeen => "LAST SEEN",
            Column::Flags => "FLAGS",
        }
    }

    pub fn config_name(self) -> &'static str {
        match self {
            Column::Name => "name",
            Column::Kind => "kind",
            Column::Owner => "owner",
            Column::Status => "status",
            Column::Team => "team",
            Column::Environment => "environment",
            Column::Scopes => "scopes",
            Column::LastSeen => "last-seen",
            Column::Flags => "flags",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sort {
    pub column: Column,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Sort {
        Sort {
            column: Column::Name,
            descending: false,
        }
    }
}

/// What the table should show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterSpec {
    pub quick: QuickFilter,
    pub query: String,
    pub sort: Sort,
    /// The signed-in person's email, for `mine`.
    pub me: Option<String>,
    /// "Now" for `stale`, in unix seconds (whole days are enough; the UI rounds it).
    pub now: i64,
}

impl FilterSpec {
    /// True when `self` can be computed by narrowing the result of `prev`.
    pub fn narrows(&self, prev: &FilterSpec) -> bool {
        !prev.query.is_empty()
            && self.query.len() > prev.query.len()
            && self.query.starts_with(&prev.query)
            && self.quick == prev.quick
            && self.sort == prev.sort
            && self.me == prev.me
            && self.now == prev.now
    }
}

pub struct FilterJob {
    pub generation: u64,
    pub spec: FilterSpec,
    pub inventory: Arc<Inventory>,
    /// The previous result to narrow, when `spec` extends its query over the same rows.
    pub narrow: Option<Arc<[u32]>>,
}

#[derive(Debug, Clone)]
pub struct FilterOutcome {
    pub generation: u64,
    pub spec: FilterSpec,
    pub inventory_version: u64,
    /// Row indices to show, in sort order.
    pub rows: Arc<[u32]>,
    /// Position (in `rows`) of the best fuzzy match, when there is a query.
    pub best: Option<usize>,
    /// Rows the quick filter keeps before the query (the view's size, the count's
    /// denominator); None when narrowing, where it has not changed.
    pub scope_len: Option<usize>,
    pub elapsed_ms: f64,
}

/// The sort order of every row, kept by the worker until the rows or the sort change.
#[derive(Default)]
pub struct SortCache {
    key: Option<(u64, usize, Sort)>,
    order: Arc<[u32]>,
}

fn compare(inv: &Inventory, sort: Sort, a: u32, b: u32) -> std::cmp::Ordering {
    let (ra, rb) = (inv.row(a), inv.row(b));
    let by = match sort.column {
        Column::Name => std::cmp::Ordering::Equal,
        Column::Kind => ra.kind.as_str().cmp(rb.kind.as_str()),
        // By what the column shows: the owner's name (unowned first), not their email.
        Column::Owner => inv.owner_label(ra).cmp(inv.owner_label(rb)),
        Column::Status => ra.status.as_str().cmp(rb.status.as_str()),
        Column::Team => inv.symbol(ra.team).cmp(inv.symbol(rb.team)),
        Column::Environment => inv.symbol(ra.environment).cmp(inv.symbol(rb.environment)),
        // The count, then the scopes listed after it.
        Column::Scopes => ra
            .scope_count
            .cmp(&rb.scope_count)
            .then_with(|| inv.text(ra.scopes).cmp(inv.text(rb.scopes))),
        Column::LastSeen => ra.last_seen.cmp(&rb.last_seen),
        Column::Flags => flag_count(inv, ra)
            .cmp(&flag_count(inv, rb))
            .then_with(|| inv.text(ra.flags).cmp(inv.text(rb.flags))),
    };
    let by = if sort.descending { by.reverse() } else { by };
    let name = inv.text(ra.name).cmp(inv.text(rb.name));
    let name = if sort.descending && sort.column == Column::Name {
        name.reverse()
    } else {
        name
    };
    by.then(name)
        .then_with(|| inv.text(ra.id).cmp(inv.text(rb.id)))
}

/// The highest severity among a row's behaviour flags (`severity:kind` labels): 0 for none,
/// 1 low … 4 critical.
pub fn flag_rank(inv: &Inventory, r: &AgentRow) -> u8 {
    let text = inv.text(r.flags);
    if text.is_empty() {
        return 0;
    }
    crate::model::flag::highest_severity(text.split(' '))
        .map(|s| s as u8 + 1)
        .unwrap_or(0)
}

/// How many flags the FLAGS column shows for a row (risk flags, static secret, discovered).
fn flag_count(inv: &Inventory, r: &AgentRow) -> usize {
    let flags = inv.text(r.flags);
    let risk = if flags.is_empty() {
        0
    } else {
        flags.split(' ').count()
    };
    risk + r.static_secret as usize + (r.source == crate::model::AgentSource::Discovered) as usize
}

/// Tree order: `by_name` (rows in name order) rearranged so that each agent is followed by its
/// sub-agents and instances (in name order, recursively). A row whose parent is not among
/// `by_name` is a root. Rows caught in a parent cycle (which the registry refuses, but a cache
/// is untrusted) come last, in name order, so that no row is ever lost.
pub fn tree_order(inv: &Inventory, by_name: &[u32]) -> Vec<u32> {
    let n = inv.rows().len();
    let mut member = vec![false; n];
    for &i in by_name {
        member[i as usize] = true;
    }
    let parent = |i: u32| -> Option<u32> {
        let p = inv.row(i).parent_row;
        (p != NONE && p != i && member[p as usize]).then_some(p)
    };
    // Children lists (compressed: `first[p]..first[p + 1]` in `kids`), each in name order.
    let mut first = vec![0u32; n + 1];
    for &i in by_name {
        if let Some(p) = parent(i) {
            first[p as usize + 1] += 1;
        }
    }
    for k in 0..n {
        first[k + 1] += first[k];
    }
    let mut fill = first.clone();
    let mut kids = vec![0u32; first[n] as usize];
    for &i in by_name {
        if let Some(p) = parent(i) {
            kids[fill[p as usize] as usize] = i;
            fill[p as usize] += 1;
        }
    }
    drop(fill);
    let mut out = Vec::with_capacity(by_name.len());
    let mut placed = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    for &root in by_name {
        if parent(root).is_some() {
            continue;
        }
        stack.push(root);
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut placed[i as usize], true) {
                continue;
            }
            out.push(i);
            let (a, b) = (first[i as usize] as usize, first[i as usize + 1] as usize);
            stack.extend(kids[a..b].iter().rev());
        }
    }
    if out.len() < by_name.len() {
        out.extend(by_name.iter().filter(|&&i| !placed[i as usize]));
    }
    out
}

/// True when `order` (every row) is already what [`tree_order`] would make of it: each row is
/// either the first child of the row before it or the next sibling (by name) of that row or of
/// one of its ancestors. One pass, no sort (a cache is written this way).
pub fn is_tree_order(inv: &Inventory, order: &[u32]) -> bool {
    const DEEPEST: usize = 64;
    let parent = |i: u32| {
        let p = inv.row(i).parent_row;
        (p != NONE && p != i).then_some(p)
    };
    let by_name = Sort::default();
    if order.len() != inv.rows().len() || order.first().is_some_and(|&i| parent(i).is_some()) {
        return false;
    }
    order.windows(2).all(|w| {
        let (a, b) = (w[0], w[1]);
        let pb = parent(b);
        if pb == Some(a) {
            return true;
        }
        let mut x = a;
        for _ in 0..DEEPEST {
            if parent(x) == pb {
                return compare(inv, by_name, x, b) == std::cmp::Ordering::Less;
            }
            match parent(x) {
                Some(p) => x = p,
                None => return false,
            }
        }
        false
    })
}

fn sorted_rows(inv: &Inventory, sort: Sort, cache: &mut SortCache) -> Arc<[u32]> {
    let key = (inv.version, inv.rows().len(), sort);
    if cache.key != Some(key) {
        let mut order: Vec<u32> = (0..inv.rows().len() as u32).collect();
        // A cache is written in tree order: skip the sort when it still holds.
        let already = sort == Sort::default() && is_tree_order(inv, &order);
        if !already {
            order.sort_unstable_by(|&a, &b| compare(inv, sort, a, b));
            if sort == Sort::default() {
                // By name is by family: sub-agents and instances right under their parent.
                order = tree_order(inv, &order);
            }
        }
        cache.order = order.into();
        cache.key = Some(key);
    }
    cache.order.clone()
}

/// Runs a job. `stale` is asked now and then; when it answers true the job is abandoned.
pub fn compute(
    job: &FilterJob,
    cache: &mut SortCache,
    stale: &(dyn Fn() -> bool + Sync),
) -> Option<FilterOutcome> {
    let started = Instant::now();
    let inv = job.inventory.as_ref();
    let spec = &job.spec;
    let mine = spec
        .me
        .as_deref()
        .and_then(|m| inv.symbols().find(m))
        .unwrap_or(NONE);
    let left = if spec.quick == QuickFilter::Unowned {
        inv.left_owner_symbols()
    } else {
        HashSet::new()
    };
    let candidates: Arc<[u32]> = match &job.narrow {
        Some(prev) => prev.clone(),
        None => sorted_rows(inv, spec.sort, cache),
    };
    if stale() {
        return None;
    }
    let keep = |i: u32| {
        let row = inv.row(i);
        !row.hidden
            && spec.quick.keeps(row, mine, &left, spec.now)
            && (spec.quick != QuickFilter::Flagged || flag_rank(inv, row) > 0)
    };
    let query = spec.query.trim();
    let (rows, best): (Vec<u32>, _) = if query.is_empty() {
        let mut rows: Vec<u32> = candidates.iter().copied().filter(|&i| keep(i)).collect();
        if spec.quick == QuickFilter::Flagged && spec.sort == Sort::default() {
            // Severity first (stable: by name within a severity).
            rows.sort_by_key(|&i| std::cmp::Reverse(flag_rank(inv, inv.row(i))));
        }
        (rows, None)
    } else {
        fuzzy(inv, &candidates, query, &keep, stale)?
    };
    let scope_len = if query.is_empty() {
        Some(rows.len())
    } else if job.narrow.is_none() {
        Some(candidates.iter().filter(|&&i| keep(i)).count())
    } else {
        None
    };
    Some(FilterOutcome {
        generation: job.generation,
        spec: spec.clone(),
        inventory_version: inv.version,
        rows: rows.into(),
        best,
        scope_len,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// At most this many matches are scored to choose the best one (the filter itself is exact).
pub const SCORED_MATCHES: usize = 10_000;

/// Fuzzy-matches names: which rows match is decided for every row (over two threads for big
/// inventories); the fuzzy score only chooses which match the cursor lands on, so it is computed
/// for the first [`SCORED_MATCHES`] matches in table order.
fn fuzzy(
    inv: &Inventory,
    candidates: &[u32],
    query: &str,
    keep: &(dyn Fn(u32) -> bool + Sync),
    stale: &(dyn Fn() -> bool + Sync),
) -> Option<(Vec<u32>, Option<usize>)> {
    let matcher = SkimMatcherV2::default().ignore_case();
    // For an ASCII query, skim's acceptance test is exactly an ASCII-case-insensitive
    // subsequence test, which is much cheaper than scoring; otherwise ask the matcher.
    let ascii = query.is_ascii();
    let run = |part: &[u32]| -> Option<Vec<u32>> {
        let matcher = SkimMatcherV2::default().ignore_case();
        let mut out = Vec::new();
        for (n, chunk) in part.chunks(16 * 1024).enumerate() {
            if n > 0 && stale() {
                return None;
            }
            for &i in chunk {
                if !keep(i) {
                    continue;
                }
                let name = inv.text(inv.row(i).name);
                let hit = if ascii {
                    is_subsequence(name, query)
                } else {
                    matcher.fuzzy_match(name, query).is_some()
                };
                if hit {
                    out.push(i);
                }
            }
        }
        Some(out)
    };
    let (left, right) = candidates.split_at(candidates.len() / 2);
    let (a, b) = if candidates.len() < 50_000 {
        (run(left), run(right))
    } else {
        std::thread::scope(|s| {
            let handle = s.spawn(|| run(right));
            let a = run(left);
            (a, handle.join().expect("the filter thread does not panic"))
        })
    };
    let mut matches = a?;
    matches.extend(b?);
    let mut best: Option<(usize, i64)> = None;
    for (pos, &i) in matches.iter().take(SCORED_MATCHES).enumerate() {
        if let Some(score) = matcher.fuzzy_match(inv.text(inv.row(i).name), query)
            && best.is_none_or(|(_, s)| score > s)
        {
            best = Some((pos, score));
        }
    }
    Some((matches, best.map(|(p, _)| p)))
}

/// True when the characters of `query` appear in `text` in order, ASCII case folded: what
/// skim's `cheap_matches` accepts with case ignored.
fn is_subsequence(text: &str, query: &str) -> bool {
    let mut want = query.bytes().map(|b| b.to_ascii_lowercase()).peekable();
    for b in text.bytes() {
        match want.peek() {
            None => return true,
            Some(&w) if b.to_ascii_lowercase() == w => {
                want.next();
            }
            Some(_) => {}
        }
    }
    want.peek().is_none()
}

/// The filter thread. Results are handed to `deliver`; only the newest job's result is delivered.
pub struct FilterWorker {
    jobs: mpsc::Sender<FilterJob>,
    latest: Arc<AtomicU64>,
}

impl FilterWorker {
    pub fn spawn(deliver: impl Fn(FilterOutcome) + Send + 'static) -> FilterWorker {
        let (jobs, rx) = mpsc::channel::<FilterJob>();
        let latest = Arc::new(AtomicU64::new(0));
        let newest = latest.clone();
        std::thread::Builder::new()
            .name("steward-filter".into())
            .spawn(move || {
                let mut cache = SortCache::default();
                while let Ok(mut job) = rx.recv() {
                    // Skip straight to the newest waiting job.
                    while let Ok(newer) = rx.try_recv() {
                        job = newer;
                    }
                    let generation = job.generation;
                    let stale = || newest.load(Ordering::Relaxed) != generation;
                    if stale() {
                        continue;
                    }
                    let outcome = compute(&job, &mut cache, &stale);
                    drop(job);
                    if let Some(outcome) = outcome {
                        deliver(outcome);
                    }
                }
            })
            .expect("the filter thread starts");
        FilterWorker { jobs, latest }
    }

    pub fn submit(&self, job: FilterJob) {
        self.latest.store(job.generation, Ordering::Relaxed);
        // The thread only stops when this handle is dropped.
        let _ = self.jobs.send(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsequence_test_agrees_with_the_matcher() {
        let matcher = SkimMatcherV2::default().ignore_case();
        for (name, q) in [
            ("billing-bot", "bb"),
            ("billing-bot", "BIL"),
            ("Billing-Bot", "bot"),
            ("crm-sync", "bot"),
            ("crm-sync", "cs"),
            ("crm sync", "m s"),
            ("crm-sync", "m s"),
            ("x", "xy"),
            ("évaluation", "val"),
            ("", "a"),
        ] {
            assert_eq!(
                is_subsequence(name, q),
                matcher.fuzzy_match(name, q).is_some(),
                "{name:?} {q:?}"
            );
        }
    }

    #[test]
    fn narrowing_needs_an_extension_of_the_same_view() {
        let base = FilterSpec {
            quick: QuickFilter::All,
            query: "bil".into(),
            sort: Sort::default(),
            me: None,
            now: 0,
        };
        let mut next = base.clone();
        next.query = "bill".into();
        assert!(next.narrows(&base));
        next.quick = QuickFilter::Unowned;
        assert!(!next.narrows(&base));
        let mut shorter = base.clone();
        shorter.query = "bi".into();
        assert!(!shorter.narrows(&base));
    }
}

#[cfg(test)]
mod owner_tests {
    use super::*;
    use crate::console::inventory::tests::agent;
    use crate::model::{Grant, Person};

    fn person(email: &str, name: &str, active: bool) -> Person {
        serde_json::from_value(serde_json::json!({
            "id": email, "email": email, "display_name": name, "roles": [], "active": active,
            "manager": null, "team": null, "created_at": "2026-01-01T00:00:00Z", "change_seq": 0,
        }))
        .unwrap()
    }

    fn run(inv: &Inventory, quick: QuickFilter, sort: Sort) -> Vec<String> {
        let job = FilterJob {
            generation: 1,
            spec: FilterSpec {
                quick,
                query: String::new(),
                sort,
                me: None,
                now: 0,
            },
            inventory: Arc::new(inv.clone()),
            narrow: None,
        };
        let out = compute(&job, &mut SortCache::default(), &|| false).unwrap();
        out.rows
            .iter()
            .map(|&i| inv.text(inv.row(i).name).to_string())
            .collect()
    }

    #[test]
    fn the_unowned_view_holds_orphaned_agents_and_the_counts_agree() {
        let mut inv = Inventory::new("x");
        inv.upsert_person(&person("zed@example.com", "Zed", true));
        inv.upsert_person(&person("gone@example.com", "Gone", false));
        inv.upsert(&agent("a1", "owned", Some("zed@example.com")));
        inv.upsert(&agent("a2", "orphaned", Some("gone@example.com")));
        inv.upsert(&agent("a3", "nobodys", None));
        let rows = run(&inv, QuickFilter::Unowned, Sort::default());
        assert_eq!(rows, ["nobodys", "orphaned"]);
        assert_eq!(inv.counts().unowned, 2);
        let orphan = inv.row(inv.find_scan("a2").unwrap());
        assert_eq!(
            inv.owner_left(orphan).map(|p| p.email.as_str()),
            Some("gone@example.com")
        );
        // Back at work: no longer orphaned.
        inv.upsert_person(&person("gone@example.com", "Gone", true));
        assert_eq!(
            run(&inv, QuickFilter::Unowned, Sort::default()),
            ["nobodys"]
        );
    }

    #[test]
    fn owner_and_scopes_sort_by_what_the_columns_show() {
        let mut inv = Inventory::new("x");
        // Emails sort the other way round from the names shown.
        inv.upsert_person(&person("a@example.com", "Zoe", true));
        inv.upsert_person(&person("z@example.com", "Adam", true));
        let grant = |s: &str| Grant {
            scope: s.into(),
            granted_by: "x".into(),
            granted_at: chrono::Utc::now(),
            expires_at: None,
            justification: None,
            last_used_at: None,
            last_certified_at: None,
        };
        let mut one = agent("1", "one", Some("a@example.com"));
        one.grants = vec![grant("wiki:read")];
        let mut two = agent("2", "two", Some("z@example.com"));
        two.grants = vec![grant("crm:read")];
        inv.upsert(&one);
        inv.upsert(&two);
        let by = |column| Sort {
            column,
            descending: false,
        };
        assert_eq!(
            run(&inv, QuickFilter::All, by(Column::Owner)),
            ["two", "one"]
        );
        assert_eq!(
            run(&inv, QuickFilter::All, by(Column::Scopes)),
            ["two", "one"]
        );
    }
}

#[cfg(test)]
mod tree_tests {
    use super::*;
    use crate::console::inventory::tests::agent;
    use crate::model::AgentKind;

    fn child(id: &str, name: &str, parent: &str, kind: AgentKind) -> crate::model::Agent {
        let mut a = agent(id, name, None);
        a.parent_id = Some(parent.into());
        a.kind = kind;
        a
    }

    /// The demo's family names: `x-2` sorts between `x` and `x.sub` by name alone.
    pub(crate) fn families() -> Inventory {
        let mut inv = Inventory::new("x");
        // A child before its parent (the feed does not promise parents first).
        inv.upsert(&child("c1", "x.summarizer", "p1", AgentKind::SubAgent));
        inv.upsert(&agent("p2", "x-2", None));
        inv.upsert(&agent("p1", "x", None));
        inv.upsert(&child("c2", "x.extractor", "p1", AgentKind::SubAgent));
        inv.upsert(&child("i1", "x.extractor.i1", "c2", AgentKind::Instance));
        inv.upsert(&child("c3", "x-2.writer", "p2", AgentKind::SubAgent));
        inv.upsert(&agent("a0", "alpha", None));
        inv.resolve_parents();
        inv
    }

    fn names(inv: &Inventory, rows: &[u32]) -> Vec<String> {
        rows.iter()
            .map(|&i| inv.text(inv.row(i).name).to_string())
            .collect()
    }

    fn view(inv: &Inventory, sort: Sort, query: &str) -> Vec<u32> {
        let job = FilterJob {
            generation: 1,
            spec: FilterSpec {
                quick: QuickFilter::All,
                query: query.into(),
                sort,
                me: None,
                now: 0,
            },
            inventory: Arc::new(inv.clone()),
            narrow: None,
        };
        compute(&job, &mut SortCache::default(), &|| false)
            .unwrap()
            .rows
            .to_vec()
    }

    #[test]
    fn by_name_is_by_family_and_children_arriving_first_find_their_parent() {
        let inv = families();
        let rows = view(&inv, Sort::default(), "");
        assert_eq!(
            names(&inv, &rows),
            [
                "alpha",
                "x",
                "x.extractor",
                "x.extractor.i1",
                "x.summarizer",
                "x-2",
                "x-2.writer"
            ]
        );
        // Any order of the rows is recognised as tree order or not without a sort.
        assert!(is_tree_order(&inv, &rows));
        let by_name: Vec<u32> = {
            let mut all: Vec<u32> = (0..inv.rows().len() as u32).collect();
            all.sort_by_key(|&i| inv.text(inv.row(i).name).to_string());
            all
        };
        assert!(!is_tree_order(&inv, &by_name));
        // Descending by name is a plain name order (no tree), other sorts too.
        let down = view(
            &inv,
            Sort {
                column: Column::Name,
                descending: true,
            },
            "",
        );
        assert_eq!(names(&inv, &down)[0], "x.summarizer");
    }

    #[test]
    fn a_parent_cycle_loses_no_row() {
        let mut inv = Inventory::new("x");
        inv.upsert(&child("a", "a", "b", AgentKind::SubAgent));
        inv.upsert(&child("b", "b", "a", AgentKind::SubAgent));
        inv.upsert(&agent("r", "root", None));
        inv.resolve_parents();
        let all: Vec<u32> = (0..3).collect();
        let order = tree_order(&inv, &all);
        assert_eq!(order.len(), 3);
        assert_eq!(names(&inv, &order)[0], "root");
        assert!(
            !is_tree_order(&inv, &order),
            "a cycle is never a valid tree"
        );
    }

    #[test]
    fn a_hidden_parent_leaves_its_children_in_view() {
        let mut inv = families();
        inv.hide("p1");
        let rows = view(&inv, Sort::default(), "");
        let shown = names(&inv, &rows);
        assert_eq!(shown.len(), 6);
        assert!(!shown.contains(&"x".to_string()));
        assert!(shown.contains(&"x.summarizer".to_string()));
    }
}
