//! Names wherever ids are: a person by email or display name, an agent by id or name. An exact
//! match (case-insensitive) is used; otherwise the command stops with the candidates and exit
//! status 2, so that a script never acts on a guess.

use super::connect::Registry;
use super::output::safe;
use crate::model::api::{AgentQuery, PeopleQuery};

/// No single exact match: the candidates found (exit status 2).
#[derive(Debug)]
pub struct Ambiguous {
    pub what: &'static str,
    pub name: String,
    pub candidates: Vec<String>,
}

impl std::fmt::Display for Ambiguous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.candidates.is_empty() {
            write!(f, "no {} matches {:?}", self.what, safe(&self.name))
        } else {
            writeln!(
                f,
                "{:?} names no single {}; candidates (use one exactly):",
                safe(&self.name),
                self.what
            )?;
            for c in &self.candidates {
                writeln!(f, "  {c}")?;
            }
            Ok(())
        }
    }
}

impl std::error::Error for Ambiguous {}

/// The exit status for a name that is not exactly one record.
pub const AMBIGUOUS_EXIT: u8 = 2;

/// At most this many candidates are fetched and listed.
const CANDIDATES: u32 = 20;

/// A person's email from an email or a display name.
pub async fn person(reg: &Registry, name: &str) -> anyhow::Result<String> {
    let query = PeopleQuery {
        q: Some(name.to_string()),
        limit: Some(CANDIDATES),
        ..PeopleQuery::default()
    };
    let page = reg.check(reg.client.list_people(&query).await)?;
    let exact: Vec<_> = page
        .people
        .iter()
        .filter(|p| p.email.eq_ignore_ascii_case(name) || p.display_name.eq_ignore_ascii_case(name))
        .collect();
    if let [one] = exact.as_slice() {
        return Ok(one.email.clone());
    }
    // Two people with the same name, or an email given exactly: the email wins.
    if let Some(p) = exact.iter().find(|p| p.email.eq_ignore_ascii_case(name)) {
        return Ok(p.email.clone());
    }
    let list = if exact.is_empty() {
        page.people.iter().collect()
    } else {
        exact
    };
    Err(Ambiguous {
        what: "person",
        name: name.to_string(),
        candidates: list
            .iter()
            .map(|p| {
                let left = if p.active { "" } else { " (left)" };
                format!("{} <{}>{left}", safe(&p.display_name), safe(&p.email))
            })
            .collect(),
    }
    .into())
}

/// An agent's id from an id (`ag_…`, used as given) or a name.
pub async fn agent(reg: &Registry, name: &str) -> anyhow::Result<String> {
    // An id is used as it is (no extra round trip before a revoke): the verb's own call says
    // when there is no such agent.
    if name.starts_with("ag_") {
        return Ok(name.to_string());
    }
    let query = AgentQuery {
        q: Some(name.to_string()),
        limit: Some(CANDIDATES),
        ..AgentQuery::default()
    };
    let page = reg.check(reg.client.list_agents(&query).await)?;
    let exact: Vec<_> = page
        .agents
        .iter()
        .filter(|a| a.id == name || a.name.eq_ignore_ascii_case(name))
        .collect();
    if let [one] = exact.as_slice() {
        return Ok(one.id.clone());
    }
    let list = if exact.is_empty() {
        page.agents.iter().collect()
    } else {
        exact
    };
    Err(Ambiguous {
        what: "agent",
        name: name.to_string(),
        candidates: list
            .iter()
            .map(|a| {
                format!(
                    "{}  {}  ({}, {})",
                    safe(&a.id),
                    safe(&a.name),
                    a.kind.as_str(),
                    a.status.as_str()
                )
            })
            .collect(),
    }
    .into())
}
