//! `steward resources add-key | add-secret | disable-key`: the credentials with which a
//! resource's servers authenticate to the registry at introspection.

use super::approvals::ResourcesCommand;
use super::connect::Registry;
use super::output::safe;
use super::tokens::read_key_file;
use crate::model::CredentialKind;
use crate::model::tokens::AddCredential;

/// Runs the credential subcommands (the others are run in approvals.rs, which calls this).
pub async fn run(reg: &Registry, command: ResourcesCommand) -> anyhow::Result<()> {
    match command {
        ResourcesCommand::AddKey {
            id,
            public_key,
            label,
        } => {
            let text = read_key_file(&public_key)?;
            let req = AddCredential {
                kind: CredentialKind::PublicKey,
                public_key: Some(text),
                label,
            };
            let added = reg.check(reg.client.add_resource_credential(&id, &req).await)?;
            println!(
                "{}\t{}\t{}",
                added.credential.id,
                added.credential.fingerprint,
                safe(&added.credential.label)
            );
        }
        ResourcesCommand::AddSecret { id, label } => {
            let req = AddCredential {
                kind: CredentialKind::StaticSecret,
                public_key: None,
                label,
            };
            let added = reg.check(reg.client.add_resource_credential(&id, &req).await)?;
            println!("{}", added.secret.unwrap_or_default());
            eprintln!(
                "static secret {} for resource {id}: shown once. Its servers introspect with \
                 HTTP Basic {id}:SECRET.",
                added.credential.id
            );
        }
        ResourcesCommand::DisableKey { id, key } => {
            let c = reg.check(reg.client.disable_resource_credential(&id, &key).await)?;
            println!("disabled {} ({})", c.id, safe(&c.label));
        }
        ResourcesCommand::List { .. }
        | ResourcesCommand::Show { .. }
        | ResourcesCommand::Import { .. } => {}
    }
    Ok(())
}
