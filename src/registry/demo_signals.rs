//! The demo's Shared Signals receivers, registered through the real stream store (as
//! `POST /ssf/streams` would): a resource server that polls (RFC 8936), whose events wait until
//! it asks, and an admin's push receiver (RFC 8935) on a loopback port where nothing listens —
//! a receiver that is down, which the transmitter retries with backoff and pauses after its
//! consecutive failures. The streams screen (`:streams`) and `steward streams list` show both.

use crate::model::Actor;
use crate::model::signals::{CREDENTIAL_CHANGE, POLL, PUSH, SESSION_REVOKED, TOKEN_CLAIMS_CHANGE};
use crate::registry::store::Store;
use crate::registry::store::streams::StreamFields;

/// Where the demo's push receiver would listen: the discard port on loopback (nothing answers:
/// every push is refused by the operating system).
pub const DOWN_RECEIVER: &str = "http://127.0.0.1:9/ssf/events";

/// Registers the demo's two streams. `admin` is the admin persona's email.
pub fn seed_streams(store: &dyn Store, admin: &str) -> anyhow::Result<()> {
    let e = |e: crate::registry::store::StoreError| anyhow::anyhow!("{e}");
    let actor = Actor::system("steward-demo");
    let events: Vec<String> = [SESSION_REVOKED, TOKEN_CLAIMS_CHANGE, CREDENTIAL_CHANGE]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // The resource most agents reach: its stream carries events about their subjects.
    let resources = store.list_resources().map_err(e)?;
    if let Some(resource) = resources.first() {
        store
            .create_stream(
                &actor,
                "st_demo_poll_receiver",
                &format!("resource:{}", resource.id),
                &StreamFields {
                    method: POLL.to_string(),
                    endpoint_url: None,
                    authorization_header: None,
                    events_requested: events.clone(),
                    description: Some(format!(
                        "{}'s resource server: polls for its events (RFC 8936)",
                        resource.name
                    )),
                },
            )
            .map_err(e)?;
    }
    store
        .create_stream(
            &Actor::human(admin),
            "st_demo_push_receiver",
            &format!("admin:{admin}"),
            &StreamFields {
                method: PUSH.to_string(),
                endpoint_url: Some(DOWN_RECEIVER.to_string()),
                authorization_header: None,
                events_requested: events,
                description: Some(
                    "the SIEM's push receiver: down (nothing listens on the port)".into(),
                ),
            },
        )
        .map_err(e)?;
    Ok(())
}
