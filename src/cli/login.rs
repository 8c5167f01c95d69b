//! `steward login` and `steward logout`: the API token of a registry on this machine.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};

use super::args::LoginArgs;
use super::output::Out;
use crate::client::config::{self, Paths};
use crate::client::credentials::{self, Stored, TOKEN_ENV};
use crate::client::{Client, ClientError, Secret};

pub async fn login(server_flag: Option<&str>, args: LoginArgs) -> anyhow::Result<()> {
    let paths = Paths::resolve()?;
    let server = paths.resolve_server(server_flag)?;
    let mut secret = read_token(&server, args.token_stdin)?;
    if args.invite {
        // Spend the invitation (single use) for this person's own API token.
        let invited = Client::new(&server, Some(secret))?;
        let issued = match invited
            .issue_my_token(&crate::model::api::IssueToken {
                name: Some("steward login".into()),
                ttl_days: None,
            })
            .await
        {
            Ok(issued) => issued,
            Err(ClientError::Api {
                status: 401,
                message,
                ..
            }) => bail!(
                "the registry at {server} refused this invitation: {}; nothing was stored",
                super::output::safe(&message)
            ),
            Err(e) => return Err(e).context("cannot redeem the invitation; nothing was stored"),
        };
        secret = Secret::new(issued.token);
    }

    // Verify before storing: a mistyped token must not replace a working one.
    let client = Client::new(&server, Some(secret.clone()))?;
    let me = match client.me().await {
        Ok(me) => me,
        Err(ClientError::Api {
            status: 401,
            message,
            ..
        }) => bail!("the registry at {server} refused this token: {message}; nothing was stored"),
        Err(e) => return Err(e).context("cannot check the token; nothing was stored"),
    };

    let stored = credentials::store(&paths, &server, &secret)?;
    let mut out = Out::new();
    let person = &me.person;
    let roles = if person.roles.is_empty() {
        "no role; owner of their agents".to_string()
    } else {
        person
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.line(format_args!(
        "signed in to {} at {server} as {} <{}> ({roles})",
        super::output::safe(&me.server_name),
        super::output::safe(&person.display_name),
        super::output::safe(&person.email),
    ))?;
    out.line(format_args!(
        "token {} expires {}",
        me.token_id,
        super::output::when(me.token_expires_at)
    ))?;
    match &stored {
        Stored::Keyring {
            description,
            removed_from_file,
        } => {
            out.line(format_args!("token stored in {description}"))?;
            if *removed_from_file {
                out.line(format_args!(
                    "removed the older copy from {}",
                    paths.credentials_file.display()
                ))?;
            }
        }
        Stored::File {
            path,
            keyring_problem,
        } => {
            out.flush()?;
            eprintln!(
                "steward: no usable OS keyring ({keyring_problem}); storing the token in {} \
                 (mode 0600) instead",
                path.display()
            );
            out.line(format_args!(
                "token stored in {} (mode 0600)",
                path.display()
            ))?;
        }
    }
    if config::remember_server(&paths.config_file, &server)? {
        out.line(format_args!(
            "{server} is now the default registry (server in {})",
            paths.config_file.display()
        ))?;
    }
    out.flush()?;
    if std::env::var_os(TOKEN_ENV).is_some_and(|v| !v.is_empty()) {
        eprintln!(
            "steward: note: {TOKEN_ENV} is set in this environment and takes precedence over \
             the stored token"
        );
    }
    Ok(())
}

/// Reads the token from stdin (`--token-stdin`) or prompts for it without echo.
fn read_token(server: &str, from_stdin: bool) -> anyhow::Result<Secret> {
    let text = if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut text)
            .context("cannot read the token from standard input")?;
        text
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("API token for {server}: "))
            .context("cannot read the token from the terminal")?
    } else {
        bail!(
            "standard input is not a terminal, so steward cannot prompt for the token: \
             pass --token-stdin and pipe the token in"
        );
    };
    let token = text.trim();
    credentials::check_token(token)?;
    Ok(Secret::new(token))
}

pub fn logout(server_flag: Option<&str>) -> anyhow::Result<()> {
    let paths = Paths::resolve()?;
    let server = paths.resolve_server(server_flag)?;
    let deleted = credentials::delete(&paths, &server)?;
    let mut out = Out::new();
    if deleted.from_keyring {
        out.line(format_args!(
            "removed the token for {server} from the OS keyring"
        ))?;
    }
    if deleted.from_file {
        out.line(format_args!(
            "removed the token for {server} from {}",
            paths.credentials_file.display()
        ))?;
    }
    if !deleted.from_keyring && !deleted.from_file {
        out.line(format_args!("no token was stored for {server}"))?;
    }
    out.line("the token itself stays valid on the registry until it expires or is revoked")?;
    out.flush()?;
    Ok(())
}
