//! The Shared Signals streams screen (`:streams`, admins): every stream the registry transmits
//! on, as `GET /v1/streams` answers it (receiver, delivery method, state, lag, last error, last
//! delivery), with pause and resume through `POST /v1/streams/{id}/pause|resume`. The registry
//! decides who may see and change streams; this screen only shows its answers.

use super::list::ListCursor;
use crate::model::signals::{POLL, PUSH, StreamState, StreamSummary};

/// The screen's state.
#[derive(Debug, Default)]
pub struct StreamsState {
    /// As the registry last answered; None until the first answer.
    pub streams: Option<Vec<StreamSummary>>,
    pub list: ListCursor,
    /// The stream under the cursor, kept across reloads.
    pub selected_id: Option<String>,
    /// The last refusal or failure of the listing itself.
    pub error: Option<String>,
    pub in_flight: bool,
}

impl StreamsState {
    pub fn len(&self) -> usize {
        self.streams.as_ref().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn selected(&self) -> Option<&StreamSummary> {
        let id = self.selected_id.as_deref()?;
        self.streams.as_ref()?.iter().find(|s| s.stream_id == id)
    }

    /// Takes a new answer, keeping the cursor on the same stream when it is still there.
    pub fn replace(&mut self, streams: Vec<StreamSummary>, page: usize) {
        let at = self
            .selected_id
            .as_deref()
            .and_then(|id| streams.iter().position(|s| s.stream_id == id))
            .unwrap_or(self.list.selected.min(streams.len().saturating_sub(1)));
        self.list.select(at, streams.len(), page.max(1));
        self.selected_id = streams.get(self.list.selected).map(|s| s.stream_id.clone());
        self.streams = Some(streams);
        self.error = None;
    }

    pub fn move_by(&mut self, delta: isize, page: usize) {
        let n = self.len();
        self.list.move_by(delta, n, page.max(1));
        self.selected_id = self
            .streams
            .as_ref()
            .and_then(|s| s.get(self.list.selected))
            .map(|s| s.stream_id.clone());
    }
}

/// A stream's state as a marker and a word (never colour alone). A stream the transmitter
/// paused after consecutive delivery failures is `dead`: paused, with failures since its last
/// delivery (its reason says how many and the last error).
pub fn state_label(s: &StreamSummary) -> &'static str {
    match s.status {
        StreamState::Enabled if s.consecutive_failures > 0 => "◐ failing",
        StreamState::Enabled => "● enabled",
        StreamState::Paused if dead(s) => "✖ dead",
        StreamState::Paused => "‖ paused",
        StreamState::Disabled => "○ disabled",
    }
}

/// Paused after delivery failures (by the transmitter, or by an admin while it failed).
pub fn dead(s: &StreamSummary) -> bool {
    s.status == StreamState::Paused && s.consecutive_failures > 0
}

/// `push` or `poll` for the RFC URNs.
pub fn method_label(method: &str) -> &str {
    match method {
        PUSH => "push",
        POLL => "poll",
        other => other,
    }
}

/// The receiver without its kind prefix, and the kind: (`crm`, `resource`).
pub fn receiver_label(receiver: &str) -> (&str, &str) {
    match receiver.split_once(':') {
        Some((kind, who)) => (who, kind),
        None => (receiver, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, status: StreamState, failures: u32) -> StreamSummary {
        StreamSummary {
            stream_id: id.into(),
            receiver: "resource:crm".into(),
            method: PUSH.into(),
            endpoint_url: None,
            status,
            reason: None,
            description: None,
            pending: 0,
            lag_seconds: 0,
            delivered: 0,
            failed: 0,
            consecutive_failures: failures,
            last_error: None,
            last_error_at: None,
            last_delivered_at: None,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn states_read_as_words_and_a_stream_paused_after_failures_is_dead() {
        assert_eq!(
            state_label(&summary("a", StreamState::Enabled, 0)),
            "● enabled"
        );
        assert_eq!(
            state_label(&summary("a", StreamState::Enabled, 2)),
            "◐ failing"
        );
        assert_eq!(
            state_label(&summary("a", StreamState::Paused, 0)),
            "‖ paused"
        );
        assert_eq!(
            state_label(&summary("a", StreamState::Paused, 10)),
            "✖ dead"
        );
        assert_eq!(
            state_label(&summary("a", StreamState::Disabled, 3)),
            "○ disabled"
        );
        assert_eq!(method_label(POLL), "poll");
        assert_eq!(
            receiver_label("admin:a@example.com"),
            ("a@example.com", "admin")
        );
    }

    #[test]
    fn a_reload_keeps_the_cursor_on_the_same_stream() {
        let mut s = StreamsState::default();
        let all = |ids: &[&str]| {
            ids.iter()
                .map(|i| summary(i, StreamState::Enabled, 0))
                .collect::<Vec<_>>()
        };
        s.replace(all(&["a", "b", "c"]), 10);
        s.move_by(2, 10);
        assert_eq!(s.selected().unwrap().stream_id, "c");
        s.replace(all(&["z", "a", "b", "c"]), 10);
        assert_eq!(s.selected().unwrap().stream_id, "c");
        s.replace(all(&["a"]), 10);
        assert_eq!(s.selected().unwrap().stream_id, "a", "gone: the nearest");
        s.replace(Vec::new(), 10);
        assert!(s.selected().is_none());
    }
}
