//! Token-service commands: `steward token …`, `steward agents add-key|add-secret|disable-key|
//! tokens`, and `steward server rotate-key|trust-issuer|distrust-issuer|issuers`.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};

use super::args::{AgentsCommand, ServerArgs, ServerCommand, TokenCommand};
use crate::client::{Client, Secret};
use crate::model::Actor;
use crate::model::CredentialKind;
use crate::model::tokens::{AddCredential, MintAccessToken};
use crate::registry;
use crate::registry::store::TrustedIssuer;
use crate::registry::store::sqlite::OpenMode;
use crate::registry::tokens::{TokenSettings, idp, rotate_signing_key, stage_signing_key};

/// Reads `90`, `90s`, `10m` or `1h` as seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: i64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a duration such as 90s, 10m or 1h"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => bail!("{text:?}: the unit must be s, m or h"),
    };
    Ok(n.saturating_mul(factor))
}

/// The token-service settings given to `steward server`.
pub fn token_settings(args: &ServerArgs) -> anyhow::Result<TokenSettings> {
    let settings = TokenSettings {
        issuer: args.issuer.clone(),
        default_ttl: parse_duration(&args.token_ttl).context("--token-ttl")?,
        max_ttl: parse_duration(&args.token_max_ttl).context("--token-max-ttl")?,
        api_token_max_days: args.api_token_max_days,
        ..TokenSettings::default()
    };
    settings.check().map_err(|e| anyhow::anyhow!(e))?;
    Ok(settings)
}

/// Runs the `steward server` subcommands that manage token keys and identity providers
/// directly on the database. Returns false for subcommands this module does not handle.
pub fn run_server_command(command: &ServerCommand) -> anyhow::Result<bool> {
    match command {
        ServerCommand::RotateKey { db, immediate } => {
            let store = registry::open_store(db, OpenMode::MustExist)?;
            let actor = Actor::system("steward-server-rotate-key");
            if *immediate {
                let kid = rotate_signing_key(store.as_ref(), &actor)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("new signing key: {kid}");
                eprintln!(
                    "A running registry signs with it within a few seconds; the previous key \
                     stays in the JWKS until the tokens it signed expire. Resource servers with \
                     a cached JWKS refuse the new tokens until they fetch it again."
                );
            } else {
                let (kid, at) = stage_signing_key(store.as_ref(), &actor, chrono::Utc::now())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("next signing key: {kid}");
                eprintln!(
                    "It is in the JWKS now and signs from {} on (after every cached JWKS and \
                     every token has had time to see it); the previous key stays published \
                     until the tokens it signed expire.",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
        }
        ServerCommand::TrustIssuer {
            db,
            issuer,
            jwks,
            audience,
        } => {
            let text = std::fs::read_to_string(jwks)
                .with_context(|| format!("cannot read {}", jwks.display()))?;
            crate::model::text::check_line("issuer", issuer, 256)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            crate::model::text::check_line("audience", audience, 256)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let keys =
                idp::parse_jwks(&text).map_err(|e| anyhow::anyhow!("{}: {e}", jwks.display()))?;
            let store = registry::open_store(db, OpenMode::MustExist)?;
            crate::registry::store::TokenStore::put_trusted_issuer(
                store.as_ref(),
                &Actor::system("steward-server-trust-issuer"),
                &TrustedIssuer {
                    issuer: issuer.clone(),
                    jwks: text,
                    audience: audience.clone(),
                    created_at: chrono::Utc::now(),
                },
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "trusting {issuer} ({} key{}) for tokens with aud {audience}",
                keys.len(),
                if keys.len() == 1 { "" } else { "s" }
            );
        }
        ServerCommand::DistrustIssuer { db, issuer } => {
            let store = registry::open_store(db, OpenMode::MustExist)?;
            let removed = crate::registry::store::TokenStore::remove_trusted_issuer(
                store.as_ref(),
                &Actor::system("steward-server-distrust-issuer"),
                issuer,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            if !removed {
                bail!("{issuer} was not a trusted issuer");
            }
            println!("no longer trusting {issuer}");
        }
        ServerCommand::Issuers { db } => {
            let store = registry::open_store(db, OpenMode::MustExist)?;
            let issuers = crate::registry::store::TokenStore::trusted_issuers(store.as_ref())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if issuers.is_empty() {
                println!("no trusted identity providers");
            }
            for i in issuers {
                println!(
                    "{}\taud={}\tsince {}",
                    i.issuer,
                    i.audience,
                    i.created_at.to_rfc3339()
                );
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A client from `--server`/`STEWARD_SERVER` and the API token in `STEWARD_TOKEN`.
/// The same registry and credential resolution as every other command (flag, env, config,
/// keyring).
fn connect(server: Option<String>) -> anyhow::Result<Client> {
    Ok(super::connect::Registry::connect(server.as_deref())?.client)
}

fn token_argument(token: Option<String>) -> anyhow::Result<Secret> {
    let text = match token.as_deref() {
        None | Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the token from standard input")?;
            text
        }
        Some(t) => t.to_string(),
    };
    let text = text.trim();
    if text.is_empty() {
        bail!("no token given");
    }
    Ok(Secret::new(text))
}

pub async fn run_token(server: Option<String>, command: TokenCommand) -> anyhow::Result<()> {
    let client = connect(server)?;
    match command {
        TokenCommand::Mint {
            ttl,
            may_act,
            scopes,
            json,
        } => {
            let seconds = parse_duration(&ttl).context("--ttl")?;
            if !(60..=3600).contains(&seconds) {
                bail!("--ttl must be between 60s and 1h");
            }
            let minted = client
                .mint_access_token(&MintAccessToken {
                    ttl_seconds: Some(seconds as u32),
                    may_act,
                    scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&minted)?);
            } else {
                println!("{}", minted.access_token);
                eprintln!(
                    "person access token {} expires {}",
                    minted.jti,
                    minted.expires_at.to_rfc3339()
                );
            }
        }
        TokenCommand::Introspect { token } => {
            let answer = client.introspect(&token_argument(token)?).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
        }
        TokenCommand::Revoke { token } => {
            client.revoke_token(&token_argument(token)?).await?;
            println!("revoked (with every token exchanged from it)");
        }
    }
    Ok(())
}

/// The agent subcommands of the token service; hands any other back.
pub async fn run_agents(
    server: Option<String>,
    command: AgentsCommand,
) -> anyhow::Result<Option<AgentsCommand>> {
    match command {
        AgentsCommand::AddKey {
            id,
            public_key,
            label,
        } => {
            let text = read_key_file(&public_key)?;
            let added = connect(server)?
                .add_credential(
                    &id,
                    &AddCredential {
                        kind: CredentialKind::PublicKey,
                        public_key: Some(text),
                        label,
                    },
                )
                .await?;
            println!(
                "{}\t{}\t{}",
                added.credential.id, added.credential.fingerprint, added.credential.label
            );
        }
        AgentsCommand::AddSecret { id, label } => {
            let added = connect(server)?
                .add_credential(
                    &id,
                    &AddCredential {
                        kind: CredentialKind::StaticSecret,
                        public_key: None,
                        label,
                    },
                )
                .await?;
            println!("{}", added.secret.unwrap_or_default());
            eprintln!(
                "static secret {} for {id}: shown once. Static secrets are flagged as debt; \
                 prefer `steward agents add-key`.",
                added.credential.id
            );
        }
        AgentsCommand::EnableKey {
            id,
            credential_id,
            reason,
        } => {
            let c = connect(server)?
                .enable_credential(&id, &credential_id, reason)
                .await?;
            println!("enabled {} ({})", c.id, c.label);
        }
        AgentsCommand::DisableKey { id, credential_id } => {
            let c = connect(server)?
                .disable_credential(&id, &credential_id)
                .await?;
            println!("disabled {} ({})", c.id, c.label);
        }
        AgentsCommand::Tokens { id, json } => {
            let answer = connect(server)?.agent_tokens(&id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                println!(
                    "{} live token(s); {} exchange(s) in the last hour",
                    answer.tokens.len(),
                    answer.exchanges_last_hour
                );
                for t in answer.tokens {
                    println!(
                        "{}\t{}\t{}\t{}\texpires {}",
                        t.jti,
                        crate::model::text::strip_for_terminal(&t.subject),
                        t.scopes.join(" "),
                        crate::model::text::strip_for_terminal(&t.audience.join(" ")),
                        t.expires_at.to_rfc3339()
                    );
                }
            }
        }
        other => return Ok(Some(other)),
    }
    Ok(None)
}

pub(super) fn read_key_file(path: &Path) -> anyhow::Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > 8 * 1024 {
        bail!(
            "{} is larger than 8 KiB; expected one public key",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("10m").unwrap(), 600);
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert!(parse_duration("10d").is_err());
        assert!(parse_duration("m").is_err());
    }
}
