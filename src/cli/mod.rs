//! The command line's dispatcher: the composition root that starts the registry, the console or
//! a scripting command.

pub mod args;
pub mod console;
pub mod demo;
pub mod server;

use args::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Server(args)) => server::run(args).await,
        Some(Command::Demo(args)) => demo::run(args).await,
        Some(Command::Tui) | None => console::run(cli.server).await,
        Some(other) => anyhow::bail!("`{other:?}` is not built yet"),
    }
}
