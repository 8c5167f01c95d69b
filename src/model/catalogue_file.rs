//! The catalogue file (`steward resources import FILE`): TOML with one `[[resource]]` table per
//! resource and `[[resource.scope]]` tables for its scopes. A broken file is refused whole, with
//! the line and key of the first problem.
//!
//! ```toml
//! [[resource]]
//! id = "crm"
//! name = "Customer CRM"
//! owner = "dana@example.com"
//! audiences = ["https://crm.example.com"]
//! # optional overrides of the tier policy
//! approvers = 2
//! max_duration = "14d"
//!
//! [[resource.scope]]
//! name = "crm.orders:read"
//! tier = "low"            # low | medium | high | critical
//! approval = "request"    # or "per-use"
//! description = "Read orders"
//! ```

use serde::Deserialize;
use toml::Spanned;

use super::catalogue::{
    ApprovalMode, CatalogueScope, ImportCatalogue, Resource, Tier, check_resource_id,
    parse_duration,
};
use super::text::{check_email, check_free_text, check_line, check_scope};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCatalogue {
    #[serde(default)]
    resource: Vec<FileResource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileResource {
    id: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    description: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    #[serde(default)]
    audiences: Vec<Spanned<String>>,
    approvers: Option<Spanned<u32>>,
    max_duration: Option<Spanned<String>>,
    #[serde(default)]
    scope: Vec<FileScope>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileScope {
    name: Spanned<String>,
    tier: Spanned<String>,
    approval: Option<Spanned<String>>,
    #[serde(default)]
    description: Option<Spanned<String>>,
}

/// A problem in a catalogue file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, key {}: {}", self.line, self.key, self.message)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The key written on the line holding `offset` (`name = …` → `name`), for messages.
fn key_at(text: &str, offset: usize) -> String {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    match line.split_once('=') {
        Some((key, _)) => key.trim().to_string(),
        None => line.trim().to_string(),
    }
}

fn at<T>(text: &str, value: &Spanned<T>, key: &str, message: String) -> FileError {
    FileError {
        line: line_of(text, value.span().start),
        key: key.to_string(),
        message,
    }
}

/// Parses and checks a catalogue file.
pub fn parse_catalogue(text: &str) -> Result<ImportCatalogue, FileError> {
    let file: FileCatalogue = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        FileError {
            line: line_of(text, offset),
            key: key_at(text, offset),
            message: e.message().trim().to_string(),
        }
    })?;
    let mut resources = Vec::new();
    let mut seen_ids: Vec<String> = Vec::new();
    let mut seen_scopes: Vec<String> = Vec::new();
    for r in file.resource {
        check_resource_id(r.id.get_ref()).map_err(|m| at(text, &r.id, "id", m))?;
        if seen_ids.contains(r.id.get_ref()) {
            return Err(at(
                text,
                &r.id,
                "id",
                format!("resource {} is listed twice", r.id.get_ref()),
            ));
        }
        seen_ids.push(r.id.get_ref().clone());
        check_line("name", r.name.get_ref(), 128).map_err(|e| at(text, &r.name, "name", e.0))?;
        if let Some(d) = &r.description {
            check_free_text("description", d.get_ref(), 2000)
                .map_err(|e| at(text, d, "description", e.0))?;
        }
        if let Some(o) = &r.owner {
            check_email(o.get_ref()).map_err(|e| at(text, o, "owner", e.0))?;
        }
        for a in &r.audiences {
            check_line("audience", a.get_ref(), 256).map_err(|e| at(text, a, "audiences", e.0))?;
        }
        if let Some(n) = &r.approvers
            && !(1..=3).contains(n.get_ref())
        {
            return Err(at(
                text,
                n,
                "approvers",
                format!("{} is not between 1 and 3", n.get_ref()),
            ));
        }
        if let Some(d) = &r.max_duration {
            parse_duration(d.get_ref()).map_err(|m| at(text, d, "max_duration", m))?;
        }
        let mut scopes = Vec::new();
        for s in r.scope {
            check_scope(s.name.get_ref()).map_err(|e| at(text, &s.name, "name", e.0))?;
            if seen_scopes.contains(s.name.get_ref()) {
                return Err(at(
                    text,
                    &s.name,
                    "name",
                    format!(
                        "scope {} is listed twice (a scope name is globally unique)",
                        s.name.get_ref()
                    ),
                ));
            }
            seen_scopes.push(s.name.get_ref().clone());
            let tier = Tier::parse(s.tier.get_ref()).ok_or_else(|| {
                at(
                    text,
                    &s.tier,
                    "tier",
                    format!(
                        "tier {:?} does not exist: use low, medium, high or critical",
                        s.tier.get_ref()
                    ),
                )
            })?;
            let approval = match &s.approval {
                None => ApprovalMode::Request,
                Some(a) => ApprovalMode::parse(a.get_ref()).ok_or_else(|| {
                    at(
                        text,
                        a,
                        "approval",
                        format!(
                            "approval {:?} must be \"request\" or \"per-use\"",
                            a.get_ref()
                        ),
                    )
                })?,
            };
            let description = s.description.map(|d| d.into_inner()).unwrap_or_default();
            scopes.push(CatalogueScope {
                name: s.name.into_inner(),
                tier,
                approval,
                description,
            });
        }
        resources.push(Resource {
            id: r.id.into_inner(),
            name: r.name.into_inner(),
            description: r.description.map(|d| d.into_inner()).unwrap_or_default(),
            owner: r.owner.map(|o| o.into_inner()),
            audiences: r.audiences.into_iter().map(|a| a.into_inner()).collect(),
            approvers: r.approvers.map(|n| n.into_inner()),
            max_duration: r.max_duration.map(|d| d.into_inner()),
            scopes,
        });
    }
    if resources.is_empty() {
        return Err(FileError {
            line: 1,
            key: "resource".into(),
            message: "the file lists no [[resource]]".into(),
        });
    }
    Ok(ImportCatalogue { resources })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[resource]]
id = "crm"
name = "CRM"
owner = "dana@example.com"
audiences = ["https://crm.example.com"]
max_duration = "14d"

[[resource.scope]]
name = "crm.orders:read"
tier = "low"

[[resource.scope]]
name = "crm.orders:delete"
tier = "critical"
approval = "per-use"
"#;

    #[test]
    fn a_good_file_parses() {
        let c = parse_catalogue(GOOD).unwrap();
        assert_eq!(c.resources.len(), 1);
        assert_eq!(c.resources[0].scopes[1].approval, ApprovalMode::PerUse);
        assert_eq!(c.resources[0].max_duration.as_deref(), Some("14d"));
    }

    #[test]
    fn a_bad_tier_names_its_line_and_key() {
        let bad = GOOD.replace("tier = \"critical\"", "tier = \"severe\"");
        let e = parse_catalogue(&bad).unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (15, "tier"), "{e}");
    }

    #[test]
    fn syntax_and_unknown_keys_name_their_line() {
        let e = parse_catalogue(&GOOD.replace("owner =", "ownr =")).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert_eq!(e.key, "ownr", "{e}");
        let e = parse_catalogue(&GOOD.replace("max_duration = \"14d\"", "max_duration = \"2w\""))
            .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (7, "max_duration"), "{e}");
        let e = parse_catalogue("[[resource]\nid = 1").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }
}
