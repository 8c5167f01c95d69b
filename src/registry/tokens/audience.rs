//! Audience binding: a token is for the systems that own its scopes, and only for them.
//!
//! Every `audience`/`resource` an exchange names must be an audience of the catalogued resource
//! that owns each requested scope; otherwise `invalid_target`. So a token carrying
//! `payments:write` can only be addressed to the payments system, and one token never spans
//! two systems' scopes (ask for one token per system).

use super::{OAuthError, TokenService};

impl TokenService {
    /// Refuses audiences that are not audiences of the resource owning every requested scope.
    /// Reads the catalogue's in-memory copy (no database read per exchange).
    pub(super) fn check_audience(
        &self,
        scopes: &[String],
        audience: &[String],
    ) -> Result<(), OAuthError> {
        let catalogue = self.store.scope_catalogue(scopes)?;
        for scope in scopes {
            let info = catalogue.iter().find(|i| &i.scope == scope).ok_or_else(|| {
                OAuthError::invalid_target(format!(
                    "{scope} belongs to no resource in the catalogue, so no audience may carry it"
                ))
            })?;
            if let Some(wrong) = audience.iter().find(|a| !info.audiences.contains(a)) {
                return Err(OAuthError::invalid_target(format!(
                    "{wrong} is not an audience of resource {} that owns {scope}{}",
                    info.resource_id,
                    if info.audiences.is_empty() {
                        " (it has no audiences yet: an admin adds them to the catalogue)".into()
                    } else {
                        format!(" (its audiences: {})", info.audiences.join(", "))
                    }
                )));
            }
        }
        Ok(())
    }
}
