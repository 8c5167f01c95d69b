//! Output of the scripting commands: stdout that tolerates a closed pipe (`| head`), aligned
//! tables of untrusted text, and JSON.

use std::io::{self, BufWriter, StdoutLock, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::model::text::strip_for_terminal;

/// Buffered stdout. Write errors surface as `io::Error`; [`quiet_broken_pipe`] turns a closed
/// pipe into success, as other command-line tools do.
pub struct Out {
    w: BufWriter<StdoutLock<'static>>,
}

impl Out {
    pub fn new() -> Out {
        Out {
            w: BufWriter::new(io::stdout().lock()),
        }
    }

    /// Writes one line.
    pub fn line(&mut self, text: impl std::fmt::Display) -> io::Result<()> {
        writeln!(self.w, "{text}")
    }

    /// Writes a value as pretty JSON followed by a newline.
    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut self.w, value).map_err(io::Error::other)?;
        writeln!(self.w)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let _ = self.w.flush();
    }
}

/// A JSON array written element by element, so that long listings stream page by page.
pub struct JsonArray {
    first: bool,
}

impl JsonArray {
    pub fn start(out: &mut Out) -> io::Result<JsonArray> {
        write!(out.w, "[")?;
        Ok(JsonArray { first: true })
    }

    pub fn push<T: Serialize>(&mut self, out: &mut Out, value: &T) -> io::Result<()> {
        out.w
            .write_all(if self.first { b"\n  " } else { b",\n  " })?;
        self.first = false;
        serde_json::to_writer(&mut out.w, value).map_err(io::Error::other)
    }

    pub fn finish(self, out: &mut Out) -> io::Result<()> {
        if self.first {
            writeln!(out.w, "]")
        } else {
            writeln!(out.w, "\n]")
        }
    }
}

/// A listing that arrives in pages and streams as it comes: a JSON array, or a table whose
/// columns are fitted to the first non-empty page.
pub struct Listing {
    out: Out,
    json: Option<JsonArray>,
    headers: &'static [&'static str],
    caps: &'static [usize],
    table: Option<Table>,
    shown: u64,
}

impl Listing {
    pub fn start(
        json: bool,
        headers: &'static [&'static str],
        caps: &'static [usize],
    ) -> io::Result<Listing> {
        let mut out = Out::new();
        let json = if json {
            Some(JsonArray::start(&mut out)?)
        } else {
            None
        };
        Ok(Listing {
            out,
            json,
            headers,
            caps,
            table: None,
            shown: 0,
        })
    }

    /// Writes one page: each item as JSON, or as a table row built by `row`.
    pub fn page<T: Serialize>(
        &mut self,
        items: &[T],
        row: impl Fn(&T) -> Vec<String>,
    ) -> io::Result<()> {
        match &mut self.json {
            Some(array) => {
                for item in items {
                    array.push(&mut self.out, item)?;
                }
            }
            None => {
                let rows: Vec<Vec<String>> = items.iter().map(row).collect();
                if self.table.is_none() && !rows.is_empty() {
                    let table = Table::fit(self.headers, self.caps, &rows);
                    table.header(&mut self.out, self.headers)?;
                    self.table = Some(table);
                }
                if let Some(table) = &self.table {
                    for r in &rows {
                        table.row(&mut self.out, r)?;
                    }
                }
            }
        }
        self.shown += items.len() as u64;
        self.out.flush()
    }

    /// Closes the JSON array, or says `empty` when a table listing showed nothing.
    pub fn finish(mut self, empty: &str) -> io::Result<()> {
        match self.json.take() {
            Some(array) => array.finish(&mut self.out)?,
            None if self.shown == 0 => self.out.line(empty)?,
            None => {}
        }
        self.out.flush()
    }
}

/// True when `err` is a write to a closed pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// A closed stdout (`steward agents list | head`) ends the command quietly.
pub fn quiet_broken_pipe(result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

/// Untrusted text made safe for a terminal.
pub fn safe(text: &str) -> String {
    strip_for_terminal(text).into_owned()
}

/// A time for humans, in UTC to the minute.
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn when_opt(t: Option<DateTime<Utc>>, none: &str) -> String {
    t.map(when).unwrap_or_else(|| none.to_string())
}

/// Column layout fixed from a sample of rows (the first page), so that rows can stream.
/// Cells wider than their column's cap are cut with `…`; the last column is never padded.
pub struct Table {
    widths: Vec<usize>,
}

impl Table {
    pub fn fit(headers: &[&str], caps: &[usize], sample: &[Vec<String>]) -> Table {
        let widths = headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let widest = sample
                    .iter()
                    .filter_map(|row| row.get(i))
                    .map(|c| c.width())
                    .max()
                    .unwrap_or(0)
                    .max(h.width());
                widest.min(caps.get(i).copied().unwrap_or(usize::MAX))
            })
            .collect();
        Table { widths }
    }

    pub fn header(&self, out: &mut Out, headers: &[&str]) -> io::Result<()> {
        let cells: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        self.row(out, &cells)
    }

    /// Writes one row; cells must already be stripped of control characters.
    pub fn row(&self, out: &mut Out, cells: &[String]) -> io::Result<()> {
        let mut line = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            let width = self.widths.get(i).copied().unwrap_or(usize::MAX);
            let cell = truncate(cell, width);
            if i == last {
                line.push_str(&cell);
            } else {
                line.push_str(&cell);
                line.push_str(&" ".repeat(width.saturating_sub(cell.width()) + 2));
            }
        }
        out.line(line.trim_end())
    }
}

/// Cuts `text` to at most `width` columns, marking the cut with `…`.
pub fn truncate(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_display_width() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdefghij", 5), "abcd…");
        assert_eq!(truncate("日本語テキスト", 5), "日本…");
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe)).context("x");
        assert!(is_broken_pipe(&e));
        assert!(quiet_broken_pipe(Err(e)).is_ok());
        assert!(quiet_broken_pipe(Err(anyhow::anyhow!("other"))).is_err());
    }
}
