//! `steward people list|show|add|leave|set-manager|grant-role`: the directory (changes are for
//! admins; the registry refuses everyone else). A person may be named by email or display name.

use anyhow::{Context, bail};
use clap::Subcommand;

use super::connect::Registry;
use super::output::{Listing, Out, safe, when};
use super::resolve;
use crate::model::api::{CreatePerson, PeopleQuery, UpdatePerson};
use crate::model::{Person, Role};

#[derive(Subcommand, Debug)]
pub enum PeopleCommand {
    /// List people (everyone may read the directory).
    List {
        /// Text to search for in names and emails.
        #[arg(long)]
        search: Option<String>,
        /// Only people who left.
        #[arg(long, conflicts_with = "active")]
        left: bool,
        /// Only people still here.
        #[arg(long)]
        active: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show one person (email or display name).
    Show {
        person: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a person (admins).
    Add {
        email: String,
        /// The name shown everywhere (the API's `display_name`).
        #[arg(long)]
        name: String,
        /// Their manager (email or name), the successor of their agents when they leave.
        #[arg(long)]
        manager: Option<String>,
        #[arg(long)]
        team: Option<String>,
        /// admin, responder or auditor; repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Mark a person as having left (admins): their tokens end and each of their agents goes
    /// to their manager (with a reminder to the manager), else it becomes orphaned (unowned).
    Leave {
        person: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a person's manager (admins).
    SetManager {
        person: String,
        manager: String,
        #[arg(long)]
        json: bool,
    },
    /// Give a person a role, or take it away with --remove (admins).
    GrantRole {
        person: String,
        /// admin, responder or auditor.
        role: String,
        #[arg(long)]
        remove: bool,
        #[arg(long)]
        json: bool,
    },
}

const HEADERS: [&str; 6] = ["EMAIL", "NAME", "TEAM", "ROLES", "MANAGER", "STATUS"];
const CAPS: [usize; 6] = [40, 32, 20, 24, 40, 22];

fn status(p: &Person) -> String {
    match (p.active, p.left_at) {
        (true, _) => "active".into(),
        (false, Some(t)) => format!("left {}", t.format("%Y-%m-%d")),
        (false, None) => "left".into(),
    }
}

fn roles(p: &Person) -> String {
    if p.roles.is_empty() {
        "-".into()
    } else {
        p.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn row(p: &Person) -> Vec<String> {
    vec![
        safe(&p.email),
        safe(&p.display_name),
        p.team.as_deref().map(safe).unwrap_or_else(|| "-".into()),
        roles(p),
        p.manager.as_deref().map(safe).unwrap_or_else(|| "-".into()),
        status(p),
    ]
}

fn parse_role(text: &str) -> anyhow::Result<Role> {
    Role::parse(text).with_context(|| {
        format!(
            "unknown role {:?}: use admin, responder or auditor",
            safe(text)
        )
    })
}

fn print_person(p: &Person, json: bool, headline: Option<String>) -> anyhow::Result<()> {
    let mut out = Out::new();
    if json {
        out.json(p)?;
    } else {
        if let Some(h) = headline {
            out.line(h)?;
        }
        out.line(format_args!(
            "{} <{}>",
            safe(&p.display_name),
            safe(&p.email)
        ))?;
        let field = |out: &mut Out, label: &str, value: String| {
            out.line(format_args!("  {label:<10}{value}"))
        };
        field(&mut out, "status", status(p))?;
        field(&mut out, "roles", roles(p))?;
        field(
            &mut out,
            "team",
            p.team.as_deref().map(safe).unwrap_or_else(|| "-".into()),
        )?;
        field(
            &mut out,
            "manager",
            p.manager.as_deref().map(safe).unwrap_or_else(|| "-".into()),
        )?;
        field(&mut out, "since", when(p.created_at))?;
    }
    out.flush()?;
    Ok(())
}

pub async fn run(reg: &Registry, command: PeopleCommand) -> anyhow::Result<()> {
    match command {
        PeopleCommand::List {
            search,
            left,
            active,
            json,
        } => {
            let mut query = PeopleQuery {
                q: search,
                active: if left {
                    Some(false)
                } else {
                    active.then_some(true)
                },
                limit: Some(1000),
                after: None,
            };
            let mut listing = Listing::start(json, &HEADERS, &CAPS)?;
            loop {
                let page = reg.check(reg.client.list_people(&query).await)?;
                listing.page(&page.people, row)?;
                match page.next {
                    None => break,
                    Some(next) if Some(&next) == query.after.as_ref() => {
                        bail!("the registry's paging did not advance past {next}; stopping")
                    }
                    Some(next) => query.after = Some(next),
                }
            }
            listing.finish("no people match")?;
            Ok(())
        }
        PeopleCommand::Show { person, json } => {
            let email = resolve::person(reg, &person).await?;
            let p = reg.check(reg.client.person(&email).await)?;
            print_person(&p, json, None)
        }
        PeopleCommand::Add {
            email,
            name,
            manager,
            team,
            roles,
            json,
        } => {
            let manager = match manager {
                Some(m) => Some(resolve::person(reg, &m).await?),
                None => None,
            };
            let req = CreatePerson {
                email,
                display_name: name,
                roles: roles
                    .iter()
                    .map(|r| parse_role(r))
                    .collect::<anyhow::Result<_>>()?,
                manager,
                team,
            };
            let p = reg.check(reg.client.create_person(&req).await)?;
            print_person(&p, json, Some("added".into()))
        }
        PeopleCommand::Leave { person, json } => {
            let email = resolve::person(reg, &person).await?;
            let outcome = reg.check(reg.client.leave(&email).await)?;
            let mut out = Out::new();
            if json {
                out.json(&outcome)?;
            } else {
                let s = &outcome.succession;
                out.line(format_args!(
                    "{} marked as left; their tokens no longer work",
                    safe(&outcome.person.email)
                ))?;
                match &s.successor {
                    Some(m) => out.line(format_args!(
                        "{} agent(s) handed to their manager {} (reminded); {} orphaned",
                        s.handed_over,
                        safe(m),
                        s.orphaned
                    ))?,
                    None => out.line(format_args!(
                        "no active manager: {} agent(s) orphaned (see `steward agents list --unowned`)",
                        s.orphaned
                    ))?,
                }
            }
            out.flush()?;
            Ok(())
        }
        PeopleCommand::SetManager {
            person,
            manager,
            json,
        } => {
            let email = resolve::person(reg, &person).await?;
            let manager = resolve::person(reg, &manager).await?;
            let req = UpdatePerson {
                manager: Some(manager),
                ..UpdatePerson::default()
            };
            let p = reg.check(reg.client.update_person(&email, &req).await)?;
            print_person(&p, json, Some("manager set".into()))
        }
        PeopleCommand::GrantRole {
            person,
            role,
            remove,
            json,
        } => {
            let role = parse_role(&role)?;
            let email = resolve::person(reg, &person).await?;
            let current = reg.check(reg.client.person(&email).await)?;
            let mut roles = current.roles.clone();
            if remove {
                roles.retain(|r| *r != role);
            } else if !roles.contains(&role) {
                roles.push(role);
            }
            let req = UpdatePerson {
                roles: Some(roles),
                ..UpdatePerson::default()
            };
            let p = reg.check(reg.client.update_person(&email, &req).await)?;
            let verb = if remove { "removed" } else { "granted" };
            print_person(&p, json, Some(format!("{verb} role {}", role.as_str())))
        }
    }
}
