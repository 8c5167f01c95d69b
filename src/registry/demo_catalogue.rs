//! The demo enterprise's resource catalogue and approval queue: every scope the demo grants,
//! with a tier and an owner (a few resources owned by the admin persona, most by other people,
//! so that critical requests visibly need a second person), pending requests for the owner and
//! admin personas, and one critical per-use scope with a pending approval.
//!
//! The catalogue is small (a few dozen resources) whatever the enterprise's size, so seeding a
//! million agents stays as fast as before.

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::model::Actor;
use crate::model::api::{AgentQuery, PeopleQuery};
use crate::model::catalogue::{ApprovalMode, CatalogueScope, ImportCatalogue, Resource, Tier};
use crate::registry::service::approvals::Voter;
use crate::registry::store::Store;
use crate::registry::store::approvals::{NewGrantRequest, UseBinding};

const ADMIN: &str = "ada.admin@example.com";
const OWNER: &str = "omar.owner@example.com";
/// The scope whose every use waits for a person's yes.
pub const PER_USE_SCOPE: &str = "payments.payouts:write";

fn resource_of(scope: &str) -> &str {
    scope.split(['.', ':']).next().unwrap_or(scope)
}

/// A plausible tier from the scope's name: reads are low, writes medium, money, secrets,
/// identities and wildcards higher.
fn tier_of(scope: &str) -> Tier {
    let action = scope.rsplit(':').next().unwrap_or("");
    let critical = [
        "aws.iam:",
        "okta.groups:",
        "payments.payouts:",
        "vault.secrets:",
    ];
    let sensitive = [
        "hrdb.",
        "s3.finance",
        "s3.customer-exports",
        "s3.backups",
        "payments.",
        "snowflake.finance",
    ];
    if critical.iter().any(|p| scope.starts_with(p)) {
        Tier::Critical
    } else if action == "*" || action == "admin" || sensitive.iter().any(|p| scope.starts_with(p)) {
        Tier::High
    } else if action == "read" {
        Tier::Low
    } else {
        Tier::Medium
    }
}

fn capitalised(id: &str) -> String {
    let mut c = id.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Imports the demo catalogue and files the demo's requests and approvals. `anchor` is "now"
/// in the data.
pub fn seed_catalogue(store: &dyn Store, anchor: DateTime<Utc>) -> anyhow::Result<()> {
    let e = |e: crate::registry::store::StoreError| anyhow::anyhow!("{e}");
    let people: Vec<String> = store
        .list_people(&PeopleQuery {
            active: Some(true),
            limit: Some(60),
            ..Default::default()
        })
        .map_err(e)?
        .people
        .into_iter()
        .map(|p| p.email)
        .filter(|m| {
            !m.ends_with(".admin@example.com")
                && !m.contains(".owner@")
                && !m.contains(".responder@")
                && !m.contains(".auditor@")
        })
        .collect();
    anyhow::ensure!(
        !people.is_empty(),
        "the demo enterprise has nobody to own its resources"
    );

    let mut resources: Vec<Resource> = Vec::new();
    for scope in super::demo::grantable_scopes() {
        let id = resource_of(&scope).to_string();
        if !resources.iter().any(|r| r.id == id) {
            resources.push(Resource {
                name: capitalised(&id),
                description: format!("The enterprise's {id} system"),
                owner: None,
                audiences: vec![format!("https://{id}.example.com")],
                approvers: None,
                max_duration: None,
                scopes: Vec::new(),
                id: id.clone(),
            });
        }
        let r = resources
            .iter_mut()
            .find(|r| r.id == id)
            .context("added above")?;
        r.scopes.push(CatalogueScope {
            tier: tier_of(&scope),
            approval: if scope == PER_USE_SCOPE {
                ApprovalMode::PerUse
            } else {
                ApprovalMode::Request
            },
            description: String::new(),
            name: scope,
        });
    }
    resources.sort_by(|a, b| a.id.cmp(&b.id));
    for (i, r) in resources.iter_mut().enumerate() {
        r.owner = Some(match r.id.as_str() {
            // Money and identities belong to people other than the personas: critical
            // requests there visibly need the resource owner and an admin.
            "payments" | "okta" | "aws" => people[i % people.len()].clone(),
            // The owner persona owns the wiki, so that something waits for them too.
            "confluence" => OWNER.to_string(),
            _ if i % 5 == 0 => ADMIN.to_string(),
            _ => people[i % people.len()].clone(),
        });
    }
    let system = Actor::system("steward-demo");
    store
        .import_catalogue(&system, &ImportCatalogue { resources })
        .map_err(e)?;

    // The owner persona's agents ask for more; some of it waits for the admin persona.
    let omars = store
        .list_agents(
            &AgentQuery {
                owner: Some(OWNER.into()),
                limit: Some(20),
                ..Default::default()
            },
            &crate::registry::store::Visibility::All,
        )
        .map_err(e)?
        .agents;
    let active: Vec<_> = omars
        .iter()
        .filter(|a| a.status == crate::model::AgentStatus::Active)
        .collect();
    // (A tiny enterprise may give the owner persona fewer than two agents: then skip this.)
    if active.len() >= 2 {
        let omar = Actor::human(OWNER);
        let ask = |agent: &str, scope: &str, why: &str| -> anyhow::Result<String> {
            let held = active
                .iter()
                .find(|a| a.id == agent)
                .is_some_and(|a| a.grants.iter().any(|g| g.scope == scope));
            if held {
                return Ok(String::new());
            }
            Ok(store
                .request_grant(
                    &omar,
                    &NewGrantRequest {
                        agent_id: agent.to_string(),
                        scope: scope.to_string(),
                        justification: Some(why.to_string()),
                        duration_secs: None,
                    },
                    anchor,
                    &|_| Ok(()),
                )
                .map_err(e)?
                .id)
        };
        ask(
            &active[0].id,
            "zendesk.tickets:write",
            "answer refund tickets directly",
        )?;
        ask(
            &active[0].id,
            "okta.groups:write",
            "add new merchants to the payments group",
        )?;
        ask(
            &active[1].id,
            "hrdb.employees:read",
            "route approvals to managers",
        )?;

        // One of them runs payouts: granted after the resource owner and an admin approved; each
        // payout then waits for a person's yes (the admin persona acts through it here).
        let payouts = ask(
            &active[1].id,
            PER_USE_SCOPE,
            "run the weekly merchant payouts",
        )?;
        if !payouts.is_empty() {
            let payments_owner = store
                .resource("payments")
                .map_err(e)?
                .and_then(|r| r.owner)
                .context("payments has an owner")?;
            for (who, admin) in [(ADMIN, true), (payments_owner.as_str(), false)] {
                store
                    .approve_request(
                        &Actor::human(who),
                        &payouts,
                        &Voter {
                            email: who.to_string(),
                            admin,
                        },
                        Some("payouts are this agent's job"),
                        anchor,
                    )
                    .map_err(e)?;
            }
        }
        store
            .request_use_approval(
                &UseBinding {
                    agent_id: active[1].id.clone(),
                    subject: ADMIN.to_string(),
                    scopes: vec![PER_USE_SCOPE.to_string()],
                    audience: vec!["https://payments.example.com".into()],
                    chain: vec![active[1].id.clone()],
                },
                store.clock().now(),
            )
            .map_err(e)?;
    }

    // The admin persona asks for a wiki scope for someone else's agent: the owner persona,
    // who owns the wiki, decides.
    if let Some(theirs) = store
        .list_agents(
            &AgentQuery {
                limit: Some(50),
                status: Some(crate::model::AgentStatus::Active),
                ..Default::default()
            },
            &crate::registry::store::Visibility::All,
        )
        .map_err(e)?
        .agents
        .into_iter()
        .find(|a| {
            a.owner.as_deref().is_some_and(|o| o != OWNER && o != ADMIN)
                && !a.grants.iter().any(|g| g.scope == "confluence.pages:write")
        })
    {
        store
            .request_grant(
                &Actor::human(ADMIN),
                &NewGrantRequest {
                    agent_id: theirs.id,
                    scope: "confluence.pages:write".into(),
                    justification: Some("publish the incident post-mortems".into()),
                    duration_secs: Some(90 * 86_400),
                },
                anchor,
                &|_| Ok(()),
            )
            .map_err(e)?;
    }
    Ok(())
}
