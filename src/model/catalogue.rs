//! The resource catalogue: the systems agents reach, their audiences, owners and scopes. The
//! catalogue is the only source of grantable scopes; each scope's risk tier decides who approves
//! a grant of it and for how long (see `registry::service::approvals`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A scope's risk tier. `unclassified` is what an upgrade gives scopes granted before the
/// catalogue existed: treated as `high` for new requests, approved by admins while the resource
/// has no owner.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Low,
    Medium,
    High,
    Critical,
    Unclassified,
}

impl Tier {
    pub const ALL: [Tier; 5] = [
        Tier::Low,
        Tier::Medium,
        Tier::High,
        Tier::Critical,
        Tier::Unclassified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Low => "low",
            Tier::Medium => "medium",
            Tier::High => "high",
            Tier::Critical => "critical",
            Tier::Unclassified => "unclassified",
        }
    }

    pub fn parse(text: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// How a scope is approved: once per grant (`request`), or additionally for every exchange
/// that asks for it (`per-use`, a human in the loop).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, ToSchema)]
pub enum ApprovalMode {
    #[default]
    #[serde(rename = "request")]
    Request,
    #[serde(rename = "per-use")]
    PerUse,
}

impl ApprovalMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalMode::Request => "request",
            ApprovalMode::PerUse => "per-use",
        }
    }

    pub fn parse(text: &str) -> Option<ApprovalMode> {
        match text {
            "request" => Some(ApprovalMode::Request),
            "per-use" => Some(ApprovalMode::PerUse),
            _ => None,
        }
    }
}

/// One scope of a resource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogueScope {
    /// Globally unique, e.g. `crm.orders:read`.
    pub name: String,
    pub tier: Tier,
    #[serde(default)]
    pub approval: ApprovalMode,
    #[serde(default)]
    pub description: String,
}

/// A system agents reach, as stored and as imported.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// A short stable id such as `crm` (letters, digits, `.`, `_`, `-`).
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The resource owner's email (the default approver); null: admins approve.
    pub owner: Option<String>,
    /// The `aud` / `resource` values tokens for this resource carry.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Overrides the tier's number of distinct approvers (1–3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<u32>,
    /// Overrides the tier's longest grant, written `14d` or `12h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    #[serde(default)]
    pub scopes: Vec<CatalogueScope>,
}

/// `PUT /v1/resources`: resources to create or update (by id). Scopes and resources that the
/// body does not name are left as they are.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportCatalogue {
    pub resources: Vec<Resource>,
}

/// What an import changed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, ToSchema)]
pub struct ImportOutcome {
    /// Resources that did not exist before.
    pub created: Vec<String>,
    /// Resources whose fields or scopes changed.
    pub updated: Vec<String>,
    /// Resources already exactly as imported.
    pub unchanged: Vec<String>,
    /// The audit event of the import (none when nothing changed).
    pub audit_seq: Option<i64>,
}

/// `GET /v1/resources`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ResourceList {
    pub resources: Vec<Resource>,
}

/// What the registry needs to know about one catalogued scope to decide on it: its resource's
/// audiences (audience binding), tier and approval mode (grants and per-use), the resource owner
/// and the resource's policy overrides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ScopeInfo {
    pub scope: String,
    pub resource_id: String,
    pub audiences: Vec<String>,
    pub tier: Tier,
    pub approval: ApprovalMode,
    /// The resource owner's email, if it has one and they have not left.
    pub resource_owner: Option<String>,
    pub approvers: Option<u32>,
    /// The resource's `max_duration` override in seconds.
    pub max_duration_secs: Option<i64>,
}

/// Parses a duration written `30d` or `12h` into seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad =
        || format!("duration {text:?} must be a whole number of days or hours, e.g. 30d or 12h");
    let text = text.trim();
    // By suffix, not by byte position: the last character may be wider than one byte.
    let (number, unit_secs) = if let Some(n) = text.strip_suffix('d') {
        (n, 86_400)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3_600)
    } else {
        return Err(bad());
    };
    let n: i64 = number.parse().map_err(|_| bad())?;
    if n <= 0 || n > 100_000 {
        return Err(bad());
    }
    Ok(n * unit_secs)
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;

    #[test]
    fn durations_parse_and_hostile_text_is_refused_without_a_panic() {
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration(" 12h "), Ok(12 * 3_600));
        // Found by schemathesis: a multi-byte last character panicked on a byte split.
        for bad in [
            "",
            "d",
            "0d",
            "-1d",
            "30",
            "30x",
            "3ä",
            "𪝍§3ÙÊtÖ¿â",
            "1é",
            "+d",
            "100001d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}

/// Writes seconds back as `30d` (whole days) or `12h`.
pub fn format_duration(secs: i64) -> String {
    if secs % 86_400 == 0 {
        format!("{}d", secs / 86_400)
    } else {
        format!("{}h", (secs + 3_599) / 3_600)
    }
}

/// The characters a resource id may use.
pub fn check_resource_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "resource id {id:?} must be 1-64 letters, digits, '.', '_' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_days_and_hours_only() {
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(12 * 3_600));
        for bad in ["", "d", "0d", "-3d", "30m", "1.5d", "30 d", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_duration(90 * 86_400), "90d");
        assert_eq!(format_duration(36 * 3_600), "36h");
    }

    #[test]
    fn tiers_and_modes_round_trip() {
        for t in Tier::ALL {
            assert_eq!(Tier::parse(t.as_str()), Some(t));
        }
        assert_eq!(Tier::parse("severe"), None);
        assert_eq!(
            serde_json::to_value(ApprovalMode::PerUse).unwrap(),
            serde_json::json!("per-use")
        );
    }
}
