//! The server's logs: `tracing` events on stderr, filtered by `RUST_LOG` (default `info`), as
//! text or as one JSON object per line, with a request id on every request.
//!
//! What is never logged: headers (the Authorization header carries API tokens), query strings,
//! bodies (forms carry assertions and secrets). A request's span holds its method, its path,
//! the peer address and its request id; the response line adds the status and the latency.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header that carries the request id back to the caller (and in from a trusted proxy).
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The id of the request being answered, for error bodies that name it.
    static REQUEST_ID: String;
}

/// The current request's id, when called inside a request.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Installs the global subscriber once; later calls (tests, embedded registries) do nothing.
pub fn init(format: LogFormat) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use tracing_subscriber::EnvFilter;
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false);
        let result = match format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
        };
        // Another subscriber (a test's) may already be installed; that one wins.
        let _ = result;
    });
}

/// A new request id: 64 random bits in hex.
fn new_request_id() -> String {
    use rand::RngCore;
    format!("{:016x}", rand::rng().next_u64())
}

/// Accepts a proxy's request id only when it is short and plain (it is echoed and logged).
fn usable_incoming_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let plain = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    plain.then(|| text.to_string())
}

/// Middleware: gives the request an id, runs it inside a span that names it, echoes the id in
/// `x-request-id` and logs one line per response.
pub async fn request_span(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(usable_incoming_id)
        .unwrap_or_else(new_request_id);
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    // The path only: a query string could carry something a caller should not have put there.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        peer = %peer,
    );
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, elapsed_ms, "answered");
        } else {
            tracing::info!(status, elapsed_ms, "answered");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_ids_must_be_plain() {
        assert_eq!(
            usable_incoming_id(&HeaderValue::from_static("abc-123")),
            Some("abc-123".into())
        );
        assert_eq!(
            usable_incoming_id(&HeaderValue::from_static("a b")),
            None,
            "spaces could forge log fields"
        );
        assert_eq!(
            usable_incoming_id(&HeaderValue::from_str(&"x".repeat(65)).unwrap()),
            None
        );
    }
}
