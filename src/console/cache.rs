//! The console's local snapshot of one registry, so that it opens instantly and stays readable
//! when the registry is down.
//!
//! One file per registry URL in the cache dir, mode 0600, written atomically (temporary file,
//! then rename). It holds agent summaries and people, never a token or any credential material.
//!
//! Format (little-endian), designed to load a million agents as a few memory copies:
//!
//! ```text
//! "STEWARD-CACHE\n" | format u32 | meta length u32 | meta (JSON: server, persona, cursor,
//! synced_at, symbols, people) | arena length u64 | arena (UTF-8 text) | row count u64 |
//! rows (ROW_BYTES each, text as offset+length into the arena, the parent as a row number)
//! ```
//!
//! Rows are written in tree order (by name, each agent followed by its sub-agents and
//! instances), so the default view needs no sort before the first frame. Rows are decoded in
//! chunks straight from the file: the rows' bytes are never held whole beside the rows.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::inventory::{AgentRow, Arena, Inventory, NONE, PersonRow, Str, Symbols};
use crate::model::{AgentKind, AgentSource, AgentStatus};

const MAGIC: &[u8] = b"STEWARD-CACHE\n";
const FORMAT: u32 = 2;
const ROW_BYTES: usize = 88;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a usable cache ({reason})")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Serialize, Deserialize)]
struct Meta {
    server: String,
    persona: Option<String>,
    cursor: i64,
    synced_at: Option<i64>,
    symbols: Vec<String>,
    people: Vec<PersonRow>,
}

/// [`Meta`] as written: the same fields, borrowed from the inventory.
#[derive(Serialize)]
struct MetaRef<'a> {
    server: &'a str,
    persona: Option<&'a str>,
    cursor: i64,
    synced_at: Option<i64>,
    symbols: Names<'a>,
    people: &'a [PersonRow],
}

/// The symbols' names, serialised as a list without collecting them.
struct Names<'a>(&'a Symbols);

impl Serialize for Names<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.names())
    }
}

/// Counts the bytes written to it.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The cache file of a registry: readable host and port plus a hash of the whole URL.
pub fn cache_file(cache_dir: &Path, server: &str) -> PathBuf {
    let readable: String = server
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(48)
        .collect();
    let hash = hex::encode(&Sha256::digest(server.as_bytes())[..6]);
    cache_dir.join(format!("{}-{hash}.cache", readable.trim_matches('_')))
}

fn kind_code(k: AgentKind) -> u8 {
    match k {
        AgentKind::Agent => 0,
        AgentKind::SubAgent => 1,
        AgentKind::Instance => 2,
    }
}

fn status_code(s: AgentStatus) -> u8 {
    match s {
        AgentStatus::Active => 0,
        AgentStatus::Suspended => 1,
        AgentStatus::Decommissioned => 2,
    }
}

fn source_code(s: AgentSource) -> u8 {
    match s {
        AgentSource::Registered => 0,
        AgentSource::Discovered => 1,
    }
}

/// Encodes the inventory (visible rows only, in tree order, text compacted).
pub fn encode(inv: &Inventory) -> Vec<u8> {
    let mut out = Vec::new();
    write_to(inv, &mut out).expect("writing to memory does not fail");
    out
}

/// Writes the cache format to `w`, streaming: besides the row order, nothing the size of the
/// inventory is built (a million agents are written without a second copy of their text).
pub fn write_to(inv: &Inventory, w: &mut impl Write) -> std::io::Result<()> {
    let mut by_name: Vec<u32> = (0..inv.rows().len() as u32)
        .filter(|&i| !inv.row(i).hidden)
        .collect();
    by_name.sort_by(|&a, &b| {
        let (ra, rb) = (inv.row(a), inv.row(b));
        inv.text(ra.name)
            .cmp(inv.text(rb.name))
            .then_with(|| inv.text(ra.id).cmp(inv.text(rb.id)))
    });
    let order = super::filter::tree_order(inv, &by_name);
    drop(by_name);
    // Where each written row lands, for the parents' row numbers.
    let mut position = vec![NONE; inv.rows().len()];
    for (k, &i) in order.iter().enumerate() {
        position[i as usize] = k as u32;
    }
    let texts = |r: &AgentRow| [r.id, r.name, r.parent, r.scopes, r.flags];
    // Scope lists and flag labels are shared between rows in memory (one copy per distinct
    // text) and written once: where each shared slice lands in the written text.
    let shared_field = |k: usize| k >= 3;
    let mut placed: std::collections::HashMap<(u32, u32), u32> = Default::default();
    let mut arena_len: u64 = 0;
    for &i in &order {
        for (k, s) in texts(inv.row(i)).into_iter().enumerate() {
            if s.len == 0 {
                continue;
            }
            if shared_field(k) {
                if placed.contains_key(&(s.off, s.len)) {
                    continue;
                }
                placed.insert((s.off, s.len), arena_len as u32);
            }
            arena_len += s.len as u64;
            if arena_len > u32::MAX as u64 {
                return Err(std::io::Error::other("the inventory's text exceeds 4 GB"));
            }
        }
    }
    // Where a field's text lands, and whether this is where it is written (its first use).
    let land = |k: usize, s: Str, off: u32| -> (u32, bool) {
        if s.len == 0 {
            (0, false)
        } else if shared_field(k) {
            let at = placed[&(s.off, s.len)];
            (at, at == off)
        } else {
            (off, true)
        }
    };
    // The metadata borrows the inventory's people and symbols (a quarter of a million of each
    // at a million agents) and is streamed twice, once to count its bytes and once to write
    // them: neither a copy of the people nor the JSON is held in memory.
    let meta = MetaRef {
        server: &inv.server,
        persona: inv.persona.as_deref(),
        cursor: inv.cursor,
        synced_at: inv.synced_at,
        symbols: Names(inv.symbols()),
        people: inv.people(),
    };
    let mut counted = Counter(0);
    serde_json::to_writer(&mut counted, &meta).map_err(std::io::Error::other)?;
    let meta_len = u32::try_from(counted.0)
        .map_err(|_| std::io::Error::other("the cache metadata exceeds 4 GB"))?;
    w.write_all(MAGIC)?;
    w.write_all(&FORMAT.to_le_bytes())?;
    w.write_all(&meta_len.to_le_bytes())?;
    serde_json::to_writer(&mut *w, &meta).map_err(std::io::Error::other)?;
    w.write_all(&arena_len.to_le_bytes())?;
    let mut off = 0u32;
    for &i in &order {
        for (k, s) in texts(inv.row(i)).into_iter().enumerate() {
            if let (_, true) = land(k, s, off) {
                w.write_all(inv.text(s).as_bytes())?;
                off += s.len;
            }
        }
    }
    w.write_all(&(order.len() as u64).to_le_bytes())?;
    let mut off = 0u32;
    let mut b = [0u8; ROW_BYTES];
    for &i in &order {
        let r = inv.row(i);
        for (k, s) in texts(r).into_iter().enumerate() {
            // Empty text is written as offset 0 (what `Arena::push` gives it).
            let (at, first) = land(k, s, off);
            if first {
                off += s.len;
            }
            b[k * 8..k * 8 + 4].copy_from_slice(&at.to_le_bytes());
            b[k * 8 + 4..k * 8 + 8].copy_from_slice(&s.len.to_le_bytes());
        }
        b[40..44].copy_from_slice(&r.owner.to_le_bytes());
        b[44..48].copy_from_slice(&r.team.to_le_bytes());
        b[48..52].copy_from_slice(&r.environment.to_le_bytes());
        b[52..56].copy_from_slice(&[
            kind_code(r.kind),
            status_code(r.status),
            source_code(r.source),
            r.static_secret as u8,
        ]);
        b[56..58].copy_from_slice(&r.scope_count.to_le_bytes());
        b[58..60].copy_from_slice(&[0, 0]);
        b[60..68].copy_from_slice(&r.last_seen.to_le_bytes());
        b[68..76].copy_from_slice(&r.created.to_le_bytes());
        b[76..84].copy_from_slice(&r.change_seq.to_le_bytes());
        let parent = match r.parent_row {
            NONE => NONE,
            p => position[p as usize],
        };
        b[84..88].copy_from_slice(&parent.to_le_bytes());
        w.write_all(&b)?;
    }
    Ok(())
}

/// Writes the cache atomically with mode 0600 (its folder 0700).
pub fn save(path: &Path, inv: &Inventory) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, options.open(&tmp)?);
        write_to(inv, &mut file)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads a cache file; `Ok(None)` when there is none yet. The text and the rows are read
/// straight into their own buffers (no copy of the whole file), which keeps a million-agent
/// load fast and its memory low.
pub fn load(path: &Path) -> Result<Option<Inventory>, CacheError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CacheError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    decode_from(std::io::BufReader::with_capacity(1 << 20, file), len)
        .map(Some)
        .map_err(|reason| CacheError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })
}

/// Reads exactly `n` bytes, refusing sizes larger than what is left of the file.
fn read_exact_vec(
    r: &mut impl Read,
    n: u64,
    left: &mut u64,
    what: &str,
) -> Result<Vec<u8>, String> {
    if n > *left {
        return Err(format!("truncated: {what} claims {n} bytes, {left} remain"));
    }
    let mut buf = vec![0u8; n as usize];
    r.read_exact(&mut buf)
        .map_err(|e| format!("truncated while reading {what}: {e}"))?;
    *left -= n;
    Ok(buf)
}

fn read_u32(r: &mut impl Read, left: &mut u64, what: &str) -> Result<u32, String> {
    let b = read_exact_vec(r, 4, left, what)?;
    Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

fn read_u64(r: &mut impl Read, left: &mut u64, what: &str) -> Result<u64, String> {
    let b = read_exact_vec(r, 8, left, what)?;
    Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le_i64(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes and checks a cache held in memory.
pub fn decode(bytes: Vec<u8>) -> Result<Inventory, String> {
    let len = bytes.len() as u64;
    decode_from(std::io::Cursor::new(bytes), len)
}

/// Decodes and checks a cache: every text slice inside the arena, every code known, nothing
/// missing and nothing left over. `len` is the size of the whole input.
fn decode_from(mut r: impl Read, len: u64) -> Result<Inventory, String> {
    let mut left = len;
    if read_exact_vec(&mut r, MAGIC.len() as u64, &mut left, "the header")
        .map_err(|_| "not a Steward cache file".to_string())?
        != MAGIC
    {
        return Err("not a Steward cache file".into());
    }
    let format = read_u32(&mut r, &mut left, "the format")?;
    if format != FORMAT {
        return Err(format!("format {format}, this console reads {FORMAT}"));
    }
    let meta_len = read_u32(&mut r, &mut left, "the metadata length")? as u64;
    let meta_bytes = read_exact_vec(&mut r, meta_len, &mut left, "the metadata")?;
    // The metadata (every person and symbol: a quarter of a million of each at a million
    // agents) is parsed and indexed on a second thread while this one reads the text and the
    // rows; the rows' symbols are checked once both are done.
    // The parser drops the metadata's bytes as soon as they are parsed (peak memory).
    let meta_bytes = std::sync::Mutex::new(Some(meta_bytes));
    std::thread::scope(|scope| {
        let meta_job = std::thread::Builder::new()
            .name("cache-meta".into())
            .spawn_scoped(scope, || parse_meta(&meta_bytes));
        let body = read_body(&mut r, &mut left);
        let meta = match meta_job {
            Ok(job) => job
                .join()
                .map_err(|_| "metadata: its decoder failed".to_string())??,
            // No thread to be had: the same work here.
            Err(_) => parse_meta(&meta_bytes)?,
        };
        let (arena, rows) = body?;
        let nsym = meta.symbols.len() as u32;
        for (n, row) in rows.iter().enumerate() {
            for v in [row.owner, row.team, row.environment] {
                if v != NONE && v >= nsym {
                    return Err(format!("row {n}: unknown symbol {v}"));
                }
            }
        }
        Ok(Inventory::from_parts(
            meta.header,
            rows,
            arena,
            meta.symbols,
            meta.people,
            meta.people_index,
        ))
    })
}

/// The metadata, parsed, with its symbols and people indexed.
struct ParsedMeta {
    header: (String, Option<String>, i64, Option<i64>),
    symbols: Symbols,
    people: Vec<PersonRow>,
    people_index: super::inventory::FastMap<String, usize>,
}

fn parse_meta(bytes: &std::sync::Mutex<Option<Vec<u8>>>) -> Result<ParsedMeta, String> {
    let bytes = bytes
        .lock()
        .ok()
        .and_then(|mut b| b.take())
        .ok_or_else(|| "metadata: already taken".to_string())?;
    let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| format!("metadata: {e}"))?;
    drop(bytes);
    let people_index = Inventory::index_people(&meta.people);
    Ok(ParsedMeta {
        header: (meta.server, meta.persona, meta.cursor, meta.synced_at),
        symbols: Symbols::from_names(meta.symbols),
        people: meta.people,
        people_index,
    })
}

/// The text arena and the rows (their symbols are checked by the caller, against the
/// metadata).
fn read_body(r: &mut impl Read, left: &mut u64) -> Result<(Arena, Vec<AgentRow>), String> {
    let arena_len = read_u64(r, left, "the text length")?;
    if arena_len > u32::MAX as u64 {
        return Err("text arena too large".into());
    }
    let arena = Arena::from_text(
        String::from_utf8(read_exact_vec(r, arena_len, left, "the text")?)
            .map_err(|_| "text is not UTF-8".to_string())?,
    );
    let count = read_u64(r, left, "the row count")?;
    let size = count
        .checked_mul(ROW_BYTES as u64)
        .ok_or_else(|| "row count overflows".to_string())?;
    if size != *left {
        return Err(if size > *left {
            format!("truncated: the rows claim {size} bytes, {left} remain")
        } else {
            "trailing bytes after the rows".into()
        });
    }
    let count = count as usize;
    let mut rows = Vec::with_capacity(count);
    // In chunks: the rows' bytes are never held whole beside the rows.
    const CHUNK_ROWS: usize = 16 * 1024;
    let mut chunk = vec![0u8; CHUNK_ROWS * ROW_BYTES];
    let mut n = 0usize;
    while n < count {
        let take = (count - n).min(CHUNK_ROWS);
        let bytes = &mut chunk[..take * ROW_BYTES];
        r.read_exact(bytes)
            .map_err(|e| format!("truncated while reading the rows: {e}"))?;
        for b in bytes.chunks_exact(ROW_BYTES) {
            rows.push(decode_row(b, n, count, &arena)?);
            n += 1;
        }
    }
    let mut rest = [0u8; 1];
    if r.read(&mut rest).map_err(|e| e.to_string())? != 0 {
        return Err("trailing bytes after the rows".into());
    }
    Ok((arena, rows))
}

/// One row of the cache, checked: text inside the arena, codes known, the parent in range (its
/// symbols are checked by the caller).
fn decode_row(b: &[u8], n: usize, count: usize, arena: &Arena) -> Result<AgentRow, String> {
    {
        let s = |at: usize| Str {
            off: le_u32(b, at),
            len: le_u32(b, at + 4),
        };
        let kind = match b[52] {
            0 => AgentKind::Agent,
            1 => AgentKind::SubAgent,
            2 => AgentKind::Instance,
            k => return Err(format!("row {n}: unknown kind {k}")),
        };
        let status = match b[53] {
            0 => AgentStatus::Active,
            1 => AgentStatus::Suspended,
            2 => AgentStatus::Decommissioned,
            k => return Err(format!("row {n}: unknown status {k}")),
        };
        let source = match b[54] {
            0 => AgentSource::Registered,
            1 => AgentSource::Discovered,
            k => return Err(format!("row {n}: unknown source {k}")),
        };
        let row = AgentRow {
            id: s(0),
            name: s(8),
            parent: s(16),
            scopes: s(24),
            flags: s(32),
            // Checked against the metadata's symbols by the caller.
            owner: le_u32(b, 40),
            team: le_u32(b, 44),
            environment: le_u32(b, 48),
            kind,
            status,
            source,
            static_secret: b[55] != 0,
            hidden: false,
            scope_count: u16::from_le_bytes([b[56], b[57]]),
            last_seen: le_i64(b, 60),
            created: le_i64(b, 68),
            change_seq: le_i64(b, 76),
            parent_row: match le_u32(b, 84) {
                p if p == NONE || (p as usize) < count => p,
                p => return Err(format!("row {n}: parent row {p} does not exist")),
            },
        };
        for (field, text) in [
            ("id", row.id),
            ("name", row.name),
            ("parent", row.parent),
            ("scopes", row.scopes),
            ("flags", row.flags),
        ] {
            if !arena.holds(text) {
                return Err(format!("row {n}: {field} points outside the text"));
            }
        }
        if row.id.len == 0 {
            return Err(format!("row {n}: empty id"));
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Agent;

    fn agent(id: &str, name: &str) -> Agent {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "description": "", "kind": "sub-agent", "parent_id": "p1",
            "owner": "ada@example.com", "owner_name": "Ada", "team": "payments",
            "environment": "prod", "status": "suspended", "source": "discovered",
            "created_at": "2026-01-01T00:00:00Z", "last_seen_at": null, "static_secret": true,
            "flags": ["night-burst"], "change_seq": 9,
            "grants": [{"scope": "crm.orders:read", "granted_by": "system",
                "granted_at": "2026-01-01T00:00:00Z", "expires_at": null, "justification": null,
                "last_used_at": null, "last_certified_at": null}]
        }))
        .unwrap()
    }

    #[test]
    fn round_trips_in_name_order_and_refuses_damage() {
        let mut inv = Inventory::new("http://127.0.0.1:1");
        inv.persona = Some("ada@example.com".into());
        inv.cursor = 42;
        inv.upsert(&agent("a2", "zeta"));
        inv.upsert(&agent("a1", "alpha"));
        inv.upsert(&agent("a3", "gone"));
        inv.hide("a3");
        let bytes = encode(&inv);
        let back = decode(bytes.clone()).unwrap();
        assert_eq!(back.rows().len(), 2);
        assert_eq!(back.text(back.row(0).name), "alpha");
        assert_eq!(back.text(back.row(1).id), "a2");
        let r = back.row(0);
        assert_eq!(back.text(r.parent), "p1");
        assert_eq!(back.text(r.scopes), "crm.orders:read");
        assert_eq!(back.text(r.flags), "night-burst");
        assert_eq!(r.status, AgentStatus::Suspended);
        assert_eq!(r.kind, AgentKind::SubAgent);
        assert!(r.static_secret);
        assert_eq!(r.last_seen, i64::MIN);
        assert_eq!(back.cursor, 42);
        assert_eq!(back.owner_label(r), "Ada");

        let mut truncated = bytes.clone();
        truncated.truncate(bytes.len() - 3);
        assert!(decode(truncated).unwrap_err().contains("truncated"));
        let mut bad = bytes.clone();
        let last_row = bytes.len() - ROW_BYTES;
        bad[last_row..last_row + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(bad).unwrap_err().contains("outside"));
        assert!(decode(b"garbage".to_vec()).is_err());
        // A symbol the metadata does not have (checked after the parallel decode).
        let mut bad = bytes.clone();
        bad[last_row + 40..last_row + 44].copy_from_slice(&1000u32.to_le_bytes());
        let why = decode(bad).unwrap_err();
        assert!(why.contains("row 1: unknown symbol 1000"), "{why}");
        // Damaged metadata (parsed on the second thread) is refused with its reason.
        let mut bad = bytes.clone();
        let meta_at = MAGIC.len() + 8;
        bad[meta_at] = b'[';
        let why = decode(bad).unwrap_err();
        assert!(why.starts_with("metadata:"), "{why}");
    }

    #[test]
    fn writes_tree_order_with_parents_as_row_numbers() {
        let mut inv = Inventory::new("http://127.0.0.1:1");
        let mut kid = agent("k1", "x.kid");
        kid.parent_id = Some("p1".into());
        inv.upsert(&kid);
        let mut root = agent("p1", "x");
        root.parent_id = None;
        inv.upsert(&root);
        let mut other = agent("p2", "x-2");
        other.parent_id = None;
        inv.upsert(&other);
        inv.upsert(&agent("gone", "a-gone"));
        inv.hide("gone");
        inv.resolve_parents();
        let bytes = encode(&inv);
        let back = decode(bytes.clone()).unwrap();
        let names: Vec<&str> = back.rows().iter().map(|r| back.text(r.name)).collect();
        // By name alone `x-2` would come between `x` and `x.kid`.
        assert_eq!(names, ["x", "x.kid", "x-2"]);
        assert_eq!(back.row(1).parent_row, 0);
        assert_eq!(back.row(0).parent_row, NONE);
        let order: Vec<u32> = (0..3).collect();
        assert!(crate::console::filter::is_tree_order(&back, &order));
        // A parent row number past the end is refused.
        let mut bad = bytes.clone();
        let parent_at = bytes.len() - 4;
        bad[parent_at..].copy_from_slice(&7u32.to_le_bytes());
        assert!(decode(bad).unwrap_err().contains("parent row"));
        // Streaming to a writer gives the same bytes.
        let mut written = Vec::new();
        write_to(&inv, &mut written).unwrap();
        assert_eq!(written, bytes);
    }
}
