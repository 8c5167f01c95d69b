use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = steward::cli::args::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("steward: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(steward::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.downcast_ref::<steward::cli::resolve::Ambiguous>()
                .is_some() =>
        {
            eprintln!(
                "steward: {}",
                steward::model::text::strip_for_terminal(&format!("{e:#}")).trim_end()
            );
            ExitCode::from(steward::cli::resolve::AMBIGUOUS_EXIT)
        }
        Err(e) => {
            // Errors often carry the registry's text: never let it drive the terminal.
            eprintln!(
                "steward: {}",
                steward::model::text::strip_for_terminal(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}
