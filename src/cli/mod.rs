//! The command line's dispatcher: the composition root that starts the registry, the console or
//! a scripting command.

pub mod args;
pub mod server;
pub mod tokens;

use args::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Server(args)) => {
            // Key rotation and identity providers work on the database directly.
            if let Some(command) = &args.command
                && tokens::run_server_command(command)?
            {
                return Ok(());
            }
            server::run(args).await
        }
        Some(Command::Token(command)) => tokens::run_token(cli.server, command).await,
        Some(Command::Agents(command)) => match tokens::run_agents(cli.server, command).await? {
            None => Ok(()),
            Some(other) => anyhow::bail!("`{other:?}` is not built yet"),
        },
        Some(other) => anyhow::bail!("`{other:?}` is not built yet"),
        None => anyhow::bail!("the console is not built yet"),
    }
}
