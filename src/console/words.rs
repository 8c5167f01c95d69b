//! Words and numbers as the console writes them, shared by `update`, the overlays and the views
//! (a leaf: it depends on none of them).

use std::borrow::Cow;

use crate::model::AgentStatus;
use crate::model::review::QueueCampaign;
use crate::model::text::strip_for_terminal;

/// Untrusted text, made safe to draw.
pub fn clean(s: &str) -> Cow<'_, str> {
    strip_for_terminal(s)
}

/// "12s", "5m", "3h", "4d": how long a duration of `secs` is.
pub fn span(secs: i64) -> String {
    let d = secs.max(0);
    match d {
        0..60 => format!("{d}s"),
        60..3600 => format!("{}m", d / 60),
        3600..86400 => format!("{}h", d / 3600),
        86400..31_536_000 => format!("{}d", d / 86400),
        _ => format!("{}y", d / 31_536_000),
    }
}

/// "12s", "5m", "3h", "4d", "never".
pub fn ago(now: i64, then: i64) -> String {
    if then == i64::MIN {
        return "never".into();
    }
    let d = (now - then).max(0);
    match d {
        0..60 => format!("{d}s"),
        60..3600 => format!("{}m", d / 60),
        3600..86400 => format!("{}h", d / 3600),
        86400..31_536_000 => format!("{}d", d / 86400),
        _ => format!("{}y", d / 31_536_000),
    }
}

/// Cuts text to `width` characters, marking the cut with an ellipsis.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// "due in 12 days", "due today", "OVERDUE by 3 days": the registry's count, in the words the
/// command line uses too (shouted when overdue).
pub fn due_text(c: &QueueCampaign) -> String {
    let words = crate::model::review::due_words(c.days_until_due, c.overdue);
    match words.strip_prefix("overdue") {
        Some(rest) => format!("OVERDUE{rest}"),
        None => words,
    }
}

pub fn status_text(s: AgentStatus) -> &'static str {
    match s {
        AgentStatus::Active => "● active",
        AgentStatus::Suspended => "■ suspended",
        AgentStatus::Decommissioned => "✕ decommissioned",
    }
}
