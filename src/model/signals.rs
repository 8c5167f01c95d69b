//! OpenID Shared Signals (SSF 1.0) and CAEP: the names and payloads a transmitter and its
//! receivers share. Field names are the specifications' (SSF 1.0 §7, RFC 8935, RFC 8936,
//! RFC 9493, CAEP 1.0). No I/O lives here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `delivery.method` for push delivery (RFC 8935).
pub const PUSH: &str = "urn:ietf:rfc:8935";
/// `delivery.method` for poll delivery (RFC 8936).
pub const POLL: &str = "urn:ietf:rfc:8936";
/// The `typ` header of every Security Event Token (RFC 8417 §2.3).
pub const SET_TYP: &str = "secevent+jwt";
/// The media type of a pushed SET (RFC 8935 §2).
pub const SET_MEDIA_TYPE: &str = "application/secevent+jwt";

pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
pub const TOKEN_CLAIMS_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
pub const STREAM_UPDATED: &str =
    "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";

/// Every event type this transmitter emits (`events_supported`).
pub const EVENTS_SUPPORTED: &[&str] = &[
    SESSION_REVOKED,
    CREDENTIAL_CHANGE,
    TOKEN_CLAIMS_CHANGE,
    VERIFICATION,
    STREAM_UPDATED,
];

/// Transmitter Configuration Metadata (SSF 1.0 §7.1), served at `/.well-known/ssf-configuration`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct TransmitterConfiguration {
    pub spec_version: String,
    pub issuer: String,
    pub jwks_uri: String,
    pub delivery_methods_supported: Vec<String>,
    pub configuration_endpoint: String,
    pub status_endpoint: String,
    pub add_subject_endpoint: String,
    pub remove_subject_endpoint: String,
    pub verification_endpoint: String,
    pub authorization_schemes: Vec<AuthorizationScheme>,
    /// `ALL`: a new stream carries events about every subject its receiver may see.
    pub default_subjects: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct AuthorizationScheme {
    pub spec_urn: String,
}

/// The `delivery` member of a stream configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// `urn:ietf:rfc:8935` (push) or `urn:ietf:rfc:8936` (poll).
    pub method: String,
    /// Push: the receiver's URL. Poll: set by the transmitter (the URL to poll).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Push: the `Authorization` header value the transmitter sends with each SET. Never
    /// shown back once stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_header: Option<String>,
}

/// What a receiver sends to create, update (PATCH) or replace (PUT) a stream.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamRequest {
    /// Required for update and replace; refused on create (the transmitter names streams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_requested: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `GET /ssf/streams`: one configuration when `stream_id` names it, else every stream of the
/// receiver (SSF 1.0 §8.1.1.2).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StreamRead {
    One(Box<StreamConfiguration>),
    Many(Vec<StreamConfiguration>),
}

/// A stream's configuration as the transmitter answers it (SSF 1.0 §8.1.1).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct StreamConfiguration {
    pub stream_id: String,
    pub iss: String,
    /// The receiver: the resource id, or `admin:<email>` for an admin's stream.
    pub aud: String,
    pub events_supported: Vec<String>,
    pub events_requested: Vec<String>,
    pub events_delivered: Vec<String>,
    pub delivery: Delivery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seconds between two verification requests that the transmitter honours.
    pub min_verification_interval: u32,
}

/// `enabled`, `paused` or `disabled` (SSF 1.0 §8.1.2).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    Enabled,
    Paused,
    Disabled,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Enabled => "enabled",
            StreamState::Paused => "paused",
            StreamState::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<StreamState> {
        match text {
            "enabled" => Some(StreamState::Enabled),
            "paused" => Some(StreamState::Paused),
            "disabled" => Some(StreamState::Disabled),
            _ => None,
        }
    }
}

/// A stream's status (GET and POST at the status endpoint).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamStatus {
    pub stream_id: String,
    pub status: StreamState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Add a subject (SSF 1.0 §8.1.3.2).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSubject {
    pub stream_id: String,
    /// An RFC 9493 subject identifier (`opaque`, `email` or `iss_sub`).
    #[schema(value_type = Object)]
    pub subject: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

/// Remove a subject (SSF 1.0 §8.1.3.3).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveSubject {
    pub stream_id: String,
    #[schema(value_type = Object)]
    pub subject: serde_json::Value,
}

/// Ask for a verification event (SSF 1.0 §8.1.4.2).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationRequest {
    pub stream_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// A poll request (RFC 8936 §2.4).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollRequest {
    #[serde(default, rename = "maxEvents", skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u32>,
    #[serde(
        default,
        rename = "returnImmediately",
        skip_serializing_if = "Option::is_none"
    )]
    pub return_immediately: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ack: Vec<String>,
    #[serde(
        default,
        rename = "setErrs",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub set_errs: BTreeMap<String, SetError>,
}

/// A receiver's reason for refusing one SET (RFC 8936 §2.4, RFC 8935 §2.3).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct SetError {
    pub err: String,
    pub description: String,
}

/// A poll answer (RFC 8936 §2.5): SETs by `jti`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, ToSchema)]
pub struct PollResponse {
    pub sets: BTreeMap<String, String>,
    #[serde(rename = "moreAvailable")]
    pub more_available: bool,
}

/// A stream as an admin sees it in `/v1/streams`: its configuration, state and delivery health.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct StreamSummary {
    pub stream_id: String,
    /// `resource:<id>` or `admin:<email>`.
    pub receiver: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    pub status: StreamState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// SETs queued and not yet delivered (push) or acknowledged (poll).
    pub pending: u64,
    /// Seconds since the oldest pending SET was queued (0 when none waits).
    pub lag_seconds: u64,
    pub delivered: u64,
    /// SETs the receiver refused for good (RFC 8935 error or `setErrs`).
    pub failed: u64,
    pub consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// `/v1/streams`: every stream.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, ToSchema)]
pub struct StreamList {
    pub streams: Vec<StreamSummary>,
}

/// What became of one action's events (`/v1/signals/{audit_seq}`): the revoke result's
/// fan-out line.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, ToSchema)]
pub struct FanOut {
    /// The action's audit sequence number (also the SETs' `txn`).
    pub audit_seq: i64,
    /// False until the action's outbox row has been fanned out to the streams.
    pub fanned_out: bool,
    /// Streams that have received (push: 2xx; poll: acknowledged) every SET of the action.
    pub notified: u64,
    /// Streams with a SET of the action still queued.
    pub pending: u64,
    /// Streams that refused a SET of the action or are paused/disabled with SETs waiting.
    pub failed: u64,
}

impl FanOut {
    /// `3 receivers notified · 1 pending · 0 failed`.
    pub fn line(&self) -> String {
        if !self.fanned_out {
            return "receivers: queued for fan-out".to_string();
        }
        format!(
            "{} receiver{} notified · {} pending · {} failed",
            self.notified,
            if self.notified == 1 { "" } else { "s" },
            self.pending,
            self.failed
        )
    }
}

/// The `txn` claim shared by the SETs of one action: its audit sequence number.
pub fn txn_of(audit_seq: i64) -> String {
    format!("audit-{audit_seq}")
}

/// Validates an RFC 9493 subject identifier of a format this transmitter understands, and
/// returns it normalised (`opaque` id, lower-case `email`, `iss_sub`).
pub fn parse_subject(value: &serde_json::Value) -> Result<Subject, String> {
    let obj = value
        .as_object()
        .ok_or("the subject must be a JSON object with a `format` member (RFC 9493)")?;
    let text = |name: &str| -> Result<String, String> {
        obj.get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.trim().is_empty() && s.len() <= 512)
            .map(|s| s.trim().to_string())
            .ok_or_else(|| format!("the subject needs a non-empty string `{name}` (≤ 512 bytes)"))
    };
    let format = text("format")?;
    let allowed: &[&str] = match format.as_str() {
        "opaque" => &["format", "id"],
        "email" => &["format", "email"],
        "iss_sub" => &["format", "iss", "sub"],
        other => {
            return Err(format!(
                "subject format {other:?} is not supported; use opaque, email or iss_sub"
            ));
        }
    };
    if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "a subject of format {format} has no member {extra:?}"
        ));
    }
    Ok(match format.as_str() {
        "opaque" => Subject::Agent(text("id")?),
        "email" => {
            let email = text("email")?.to_lowercase();
            if !email.contains('@') {
                return Err(format!("{email:?} is not an email address"));
            }
            Subject::Person(email)
        }
        _ => Subject::IssSub {
            iss: text("iss")?,
            sub: text("sub")?,
        },
    })
}

/// A subject a receiver may add or remove: an agent (opaque id, or `iss_sub` with the registry
/// as issuer) or a person (email).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Agent(String),
    Person(String),
    IssSub { iss: String, sub: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subjects_parse_and_refuse_precisely() {
        assert_eq!(
            parse_subject(&json!({"format": "opaque", "id": "ag_1"})),
            Ok(Subject::Agent("ag_1".into()))
        );
        assert_eq!(
            parse_subject(&json!({"format": "email", "email": "Ada@Example.com"})),
            Ok(Subject::Person("ada@example.com".into()))
        );
        let err = parse_subject(&json!({"format": "phone_number", "phone_number": "+1"}));
        assert!(err.unwrap_err().contains("not supported"));
        let err = parse_subject(&json!({"format": "opaque", "id": "x", "extra": 1}));
        assert!(err.unwrap_err().contains("extra"));
        assert!(parse_subject(&json!("ag_1")).is_err());
        assert!(parse_subject(&json!({"format": "email", "email": "nobody"})).is_err());
    }

    #[test]
    fn poll_request_uses_the_rfc_names() {
        let r: PollRequest = serde_json::from_value(json!({
            "maxEvents": 5, "returnImmediately": true, "ack": ["a"],
            "setErrs": {"b": {"err": "invalid_key", "description": "kid unknown"}}
        }))
        .unwrap();
        assert_eq!(r.max_events, Some(5));
        assert_eq!(r.set_errs["b"].err, "invalid_key");
        assert!(serde_json::from_value::<PollRequest>(json!({"max_events": 5})).is_err());
    }

    #[test]
    fn the_fan_out_line_reads_like_the_issue() {
        let f = FanOut {
            audit_seq: 1,
            fanned_out: true,
            notified: 3,
            pending: 1,
            failed: 0,
        };
        assert_eq!(f.line(), "3 receivers notified · 1 pending · 0 failed");
    }
}
