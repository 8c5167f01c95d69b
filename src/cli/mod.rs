//! The command line's dispatcher: the composition root that starts the registry, the console or
//! a scripting command.

pub mod agents;
pub mod approvals;
pub mod args;
pub mod audit;
pub mod backup;
pub mod confirm;
pub mod connect;
pub mod console;
pub mod delegations;
pub mod demo;
pub mod flags;
pub mod govern;
pub mod login;
pub mod output;
pub mod ownership;
pub mod paths;
pub mod people;
pub mod receive;
pub mod resolve;
pub mod resource_credentials;
pub mod reviews;
pub mod server;
pub mod streams;
pub mod tokens;

use args::{AuditCommand, Cli, Command, OwnerCommand};
use connect::Registry;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let server = cli.server.as_deref();
    let command = match cli.command {
        Some(Command::Server(args)) => {
            // Key rotation and identity providers work on the database directly.
            if let Some(command) = &args.command
                && (tokens::run_server_command(command)? || backup::run(command)?)
            {
                return Ok(());
            }
            return server::run(*args).await;
        }
        Some(Command::Token(command)) => return tokens::run_token(cli.server, command).await,
        Some(Command::Reviews(c)) => return reviews::reviews(server, c).await,
        Some(Command::Campaigns(c)) => return reviews::campaigns(server, c).await,
        Some(Command::Tui) | None => return console::run(server).await,
        Some(Command::Demo(args)) => return demo::run(args).await,
        Some(Command::Receive(args)) => return receive::run(args).await,
        Some(command) => command,
    };
    output::quiet_broken_pipe(scripting(server, command).await)
}

async fn scripting(server: Option<&str>, command: Command) -> anyhow::Result<()> {
    let connect = || Registry::connect(server);
    match command {
        Command::Login(args) => login::login(server, args).await,
        Command::Logout => login::logout(server),
        Command::Delegations(cmd) => delegations::run(&connect()?, cmd).await,
        Command::Paths => paths::run(server),
        Command::Flags(cmd) => flags::run(&connect()?, cmd).await,
        Command::Agents(cmd) => match tokens::run_agents(server.map(str::to_string), cmd).await? {
            None => Ok(()),
            Some(cmd) => agents::run(&connect()?, cmd).await,
        },
        Command::Grant {
            id,
            scope,
            justification,
            json,
        } => {
            let reg = connect()?;
            let id = resolve::agent(&reg, &id).await?;
            govern::grant(&reg, &id, &scope, justification, json).await
        }
        Command::Resources(cmd) => approvals::resources(&connect()?, cmd).await,
        Command::Streams(cmd) => streams::run(&connect()?, cmd).await,
        Command::Request {
            agent,
            scope,
            justification,
            duration,
            json,
        } => {
            let reg = connect()?;
            let agent = resolve::agent(&reg, &agent).await?;
            approvals::request(&reg, &agent, &scope, justification, duration, json).await
        }
        Command::Approvals(cmd) => approvals::approvals(&connect()?, cmd).await,
        Command::Ungrant { id, scope, json } => {
            let reg = connect()?;
            let id = resolve::agent(&reg, &id).await?;
            govern::ungrant(&reg, &id, &scope, json).await
        }
        Command::Owner(OwnerCommand::Set {
            id,
            email,
            reason,
            json,
        }) => {
            let reg = connect()?;
            let id = resolve::agent(&reg, &id).await?;
            let email = resolve::person(&reg, &email).await?;
            govern::set_owner(&reg, &id, &email, reason, json).await
        }
        Command::Owner(cmd) => ownership::run(&connect()?, cmd).await,
        Command::People(cmd) => people::run(&connect()?, cmd).await,
        Command::Revoke { id, reason, json } => {
            let reg = connect()?;
            let id = resolve::agent(&reg, &id).await?;
            govern::revoke(&reg, &id, reason, json).await
        }
        Command::Reinstate {
            id,
            reason,
            subtree,
            json,
        } => {
            let reg = connect()?;
            let id = resolve::agent(&reg, &id).await?;
            govern::reinstate(&reg, &id, reason, subtree, json).await
        }
        Command::Decommission {
            id,
            reason,
            yes,
            dry_run,
            json,
        } => {
            let reg = connect()?;
            let id = resolve::agent(&reg, &id).await?;
            govern::decommission(&reg, &id, reason, govern::Asked { yes, dry_run }, json).await
        }
        Command::Audit(AuditCommand::List {
            agent,
            include_exchanges,
            actor_kind,
            text,
            limit,
            page_size,
            json,
            ..
        }) if agent.is_some() || include_exchanges || actor_kind.is_some() || text.is_some() => {
            let query = crate::model::timeline::TimelineQuery {
                agent,
                include_exchanges: Some(include_exchanges),
                actor_kind,
                q: text,
                ..Default::default()
            };
            audit::timeline(&connect()?, query, limit, page_size, json).await
        }
        Command::Audit(AuditCommand::List {
            target,
            after,
            limit,
            page_size,
            json,
            ..
        }) => audit::list(&connect()?, target, after, limit, page_size, json).await,
        Command::Audit(AuditCommand::Verify {
            db: Some(db),
            witness,
            ..
        }) => audit::verify_file(db, witness).await,
        Command::Audit(AuditCommand::Verify {
            db: None,
            page_size,
            ..
        }) => audit::verify_remote(&connect()?, page_size).await,
        Command::Server(_)
        | Command::Tui
        | Command::Demo(_)
        | Command::Receive(_)
        | Command::Token(_)
        | Command::Reviews(_)
        | Command::Campaigns(_) => {
            anyhow::bail!("internal: {command:?} is not a scripting command")
        }
    }
}
