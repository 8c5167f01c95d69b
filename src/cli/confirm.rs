//! Confirmation of destructive verbs on a terminal: `--yes` skips the question, `--dry-run`
//! shows what would happen and stops. Without a terminal (a script, a pipe) the verb runs as
//! asked, as it always did: scripts say what they mean.

use std::io::{BufRead, IsTerminal, Write};

/// What the person answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Go,
    Stop,
}

/// Asks `question` on the terminal unless `yes`; only "y" or "yes" goes ahead.
pub fn ask(question: &str, yes: bool) -> anyhow::Result<Answer> {
    if yes || !std::io::stdin().is_terminal() {
        return Ok(Answer::Go);
    }
    let mut err = std::io::stderr();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Answer::Go,
        _ => Answer::Stop,
    })
}
