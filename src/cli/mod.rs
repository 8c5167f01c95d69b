//! The command line's dispatcher: the composition root that starts the registry, the console or
//! a scripting command.

pub mod args;
pub mod reviews;
pub mod server;

use args::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Server(args)) => server::run(args).await,
        Some(Command::Reviews(c)) => reviews::reviews(cli.server.as_deref(), c).await,
        Some(Command::Campaigns(c)) => reviews::campaigns(cli.server.as_deref(), c).await,
        Some(other) => anyhow::bail!("`{other:?}` is not built yet"),
        None => anyhow::bail!("the console is not built yet"),
    }
}
