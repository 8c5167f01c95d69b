//! Trusted identity providers: an enterprise's SSO issues a person's token, the registry checks
//! it against the provider's keys configured here (`steward server trust-issuer`).
//!
//! Providers commonly sign with RS256 or ES256, so their tokens are checked with `jsonwebtoken`
//! (its RustCrypto backend). Each key is pinned to one algorithm — the JWK's `alg`, or the only
//! one its key type allows — so a token cannot choose its own algorithm; symmetric (HMAC) keys
//! are refused when the provider is configured.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::live::CLOCK_LEEWAY;

/// The longest a provider's token may live (`exp` - `iat`, or `exp` - now without `iat`).
/// Providers issue ID and access tokens for an hour; some (Entra ID) up to 90 minutes.
pub const IDP_TOKEN_MAX_SECONDS: i64 = 2 * 3600;
// Clock leeway on providers' `exp`/`nbf`/`iat` stays at most a minute (documented in tokens.md).
const _: () = assert!(CLOCK_LEEWAY <= 60);

pub struct IdpKey {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    key: DecodingKey,
}

pub struct IdentityProvider {
    pub issuer: String,
    pub audience: String,
    pub keys: Vec<IdpKey>,
}

/// Why a provider's token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdpRefusal {
    Expired,
    Invalid(String),
}

fn key_algorithm(jwk: &Jwk) -> Result<Algorithm, String> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            ref other => return Err(format!("unsupported elliptic curve {other:?}")),
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric (HMAC) keys cannot prove a provider's tokens".into());
        }
        _ => return Err("unsupported key type".into()),
    };
    match jwk.common.key_algorithm {
        None => Ok(by_type),
        Some(alg) => {
            let alg: Algorithm = alg
                .try_into()
                .map_err(|_| format!("unsupported key algorithm {alg:?}"))?;
            let same_family = matches!(
                (alg, by_type),
                (
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512,
                    Algorithm::RS256
                ) | (Algorithm::ES256, Algorithm::ES256)
                    | (Algorithm::ES384, Algorithm::ES384)
                    | (Algorithm::EdDSA, Algorithm::EdDSA)
            );
            if same_family {
                Ok(alg)
            } else {
                Err(format!("the key's alg {alg:?} does not fit its key type"))
            }
        }
    }
}

/// Parses a provider's JWKS, refusing it unless every key is usable.
pub fn parse_jwks(text: &str) -> Result<Vec<IdpKey>, String> {
    let set: JwkSet = serde_json::from_str(text)
        .map_err(|e| format!("the JWKS is not a JSON object with a `keys` array of JWKs: {e}"))?;
    if set.keys.is_empty() {
        return Err("the JWKS has no keys".into());
    }
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        let name = jwk
            .common
            .key_id
            .clone()
            .unwrap_or_else(|| format!("#{}", i + 1));
        let algorithm = key_algorithm(jwk).map_err(|e| format!("key {name}: {e}"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {name}: {e}"))?;
        keys.push(IdpKey {
            kid: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
    }
    Ok(keys)
}

impl IdentityProvider {
    pub fn new(issuer: &str, jwks: &str, audience: &str) -> Result<IdentityProvider, String> {
        Ok(IdentityProvider {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            keys: parse_jwks(jwks)?,
        })
    }

    /// Verifies a token of this provider: signature with a pinned algorithm, `iss`, `aud`,
    /// `exp` (required), `nbf`, both against `now` (the registry's clock, in Unix seconds).
    /// Returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Map<String, Value>, IdpRefusal> {
        refuse_critical_extensions(token)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| IdpRefusal::Invalid(format!("the token header cannot be read: {e}")))?;
        let candidates: Vec<&IdpKey> = self
            .keys
            .iter()
            .filter(|k| k.algorithm == header.alg)
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(IdpRefusal::Invalid(format!(
                "no key of {} signs with {:?}{}",
                self.issuer,
                header.alg,
                header
                    .kid
                    .as_deref()
                    .map(|k| format!(" under kid {k}"))
                    .unwrap_or_default()
            )));
        }
        let mut last = IdpRefusal::Invalid("the signature does not verify".into());
        for key in candidates {
            let mut validation = Validation::new(key.algorithm);
            validation.leeway = CLOCK_LEEWAY as u64;
            // exp and nbf are checked below against the registry's clock, not the library's
            // reading of the system clock (see registry/clock.rs).
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => {
                    check_dates(&data.claims, now)?;
                    check_lifetime(&data.claims, now)?;
                    return Ok(data.claims);
                }
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind;
                    last = match e.kind() {
                        ErrorKind::ExpiredSignature => return Err(IdpRefusal::Expired),
                        ErrorKind::InvalidSignature => {
                            IdpRefusal::Invalid("the signature does not verify".into())
                        }
                        ErrorKind::InvalidAudience => IdpRefusal::Invalid(format!(
                            "the token's aud does not name {}",
                            self.audience
                        )),
                        ErrorKind::ImmatureSignature => {
                            IdpRefusal::Invalid("the token is not valid yet (nbf)".into())
                        }
                        ErrorKind::MissingRequiredClaim(c) => {
                            IdpRefusal::Invalid(format!("the token has no {c} claim"))
                        }
                        other => IdpRefusal::Invalid(format!("the token is invalid: {other:?}")),
                    };
                }
            }
        }
        Err(last)
    }
}

/// RFC 7515 §4.1.11: a recipient must refuse a token whose `crit` names an extension it does not
/// understand. This registry understands none, so any `crit` is refused (also a malformed one).
fn refuse_critical_extensions(token: &str) -> Result<(), IdpRefusal> {
    use base64::Engine;
    let header = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .ok_or_else(|| IdpRefusal::Invalid("the token header cannot be read".into()))?;
    match header.get("crit") {
        None => Ok(()),
        Some(crit) => Err(IdpRefusal::Invalid(format!(
            "the token header has critical extensions this registry does not understand (crit {crit})"
        ))),
    }
}

/// `exp` and `nbf` with [`CLOCK_LEEWAY`], as jsonwebtoken checks them but against `now`.
fn check_dates(claims: &Map<String, Value>, now: i64) -> Result<(), IdpRefusal> {
    let date = |name: &str| -> Result<Option<i64>, IdpRefusal> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|f| Some(f as i64))
                .ok_or_else(|| IdpRefusal::Invalid(format!("the token's {name} is not a number"))),
        }
    };
    let exp =
        date("exp")?.ok_or_else(|| IdpRefusal::Invalid("the token has no exp claim".into()))?;
    if exp < now - CLOCK_LEEWAY {
        return Err(IdpRefusal::Expired);
    }
    if date("nbf")?.is_some_and(|nbf| nbf > now + CLOCK_LEEWAY) {
        return Err(IdpRefusal::Invalid(
            "the token is not valid yet (nbf)".into(),
        ));
    }
    Ok(())
}

/// Caps how long a provider's token is accepted: a long-lived token, once stolen, would make a
/// person's authority outlive their session.
fn check_lifetime(claims: &Map<String, Value>, now: i64) -> Result<(), IdpRefusal> {
    let date = |name: &str| claims.get(name).and_then(Value::as_f64).map(|f| f as i64);
    let exp =
        date("exp").ok_or_else(|| IdpRefusal::Invalid("the token has no exp claim".into()))?;
    let start = date("iat").unwrap_or(now);
    if exp - start > IDP_TOKEN_MAX_SECONDS || exp > now + IDP_TOKEN_MAX_SECONDS + CLOCK_LEEWAY {
        return Err(IdpRefusal::Invalid(format!(
            "the token lives longer than {IDP_TOKEN_MAX_SECONDS} seconds; \
             ask the identity provider for a shorter-lived token"
        )));
    }
    Ok(())
}

/// The person a provider's token names: its `email` claim when `email_verified` is true (an
/// unverified address proves nothing about who holds it), or its `sub` when that is an email
/// address (the provider's own identifier).
pub fn person_of(claims: &Map<String, Value>) -> Result<String, String> {
    if let Some(email) = claims.get("email").and_then(Value::as_str) {
        // Some providers send the flag as the string "true".
        let verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)))
            || claims.get("email_verified").and_then(Value::as_str) == Some("true");
        if !verified {
            return Err(format!(
                "its email {email} is not marked verified (email_verified: true is required)"
            ));
        }
        return Ok(email.to_string());
    }
    claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| s.contains('@'))
        .map(str::to_string)
        .ok_or_else(|| "it names no person (no email claim)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_person_needs_a_verified_email_or_an_email_sub() {
        let ok = claims(json!({"sub": "x", "email": "a@example.com", "email_verified": true}));
        assert_eq!(person_of(&ok).unwrap(), "a@example.com");
        let text = claims(json!({"sub": "x", "email": "a@example.com", "email_verified": "true"}));
        assert_eq!(person_of(&text).unwrap(), "a@example.com");
        for v in [json!(false), json!("false"), json!(null), json!(1)] {
            let c = claims(json!({"sub": "x", "email": "a@example.com", "email_verified": v}));
            assert!(person_of(&c).is_err(), "{v}");
        }
        let missing = claims(json!({"sub": "x", "email": "a@example.com"}));
        assert!(person_of(&missing).unwrap_err().contains("verified"));
        // An unverified email never falls back to an email-shaped sub.
        let both = claims(json!({"sub": "b@example.com", "email": "a@example.com"}));
        assert!(person_of(&both).is_err());
        let sub = claims(json!({"sub": "b@example.com"}));
        assert_eq!(person_of(&sub).unwrap(), "b@example.com");
        assert!(person_of(&claims(json!({"sub": "opaque"}))).is_err());
    }

    #[test]
    fn exp_and_nbf_are_judged_against_the_given_time_not_the_machines() {
        // Dates far from the machine's clock: only `now` decides.
        let now = 4_000_000_000;
        let at = |exp: i64, nbf: Option<i64>| {
            let mut c = json!({"exp": exp});
            if let Some(n) = nbf {
                c["nbf"] = json!(n);
            }
            check_dates(&claims(c), now)
        };
        assert!(at(now + 10, None).is_ok());
        assert!(at(now - CLOCK_LEEWAY, None).is_ok(), "within the leeway");
        assert!(matches!(
            at(now - CLOCK_LEEWAY - 1, None),
            Err(IdpRefusal::Expired)
        ));
        assert!(at(now + 10, Some(now + CLOCK_LEEWAY)).is_ok());
        assert!(matches!(
            at(now + 10, Some(now + CLOCK_LEEWAY + 1)),
            Err(IdpRefusal::Invalid(_))
        ));
        assert!(
            check_dates(&claims(json!({})), now).is_err(),
            "exp is required"
        );
        assert!(check_dates(&claims(json!({"exp": "soon"})), now).is_err());
    }

    #[test]
    fn lifetime_is_capped() {
        let now = 1_000_000;
        assert!(check_lifetime(&claims(json!({"iat": now, "exp": now + 3600})), now).is_ok());
        assert!(check_lifetime(&claims(json!({"iat": now, "exp": now + 5400})), now).is_ok());
        assert!(check_lifetime(&claims(json!({"iat": now, "exp": now + 86400})), now).is_err());
        assert!(check_lifetime(&claims(json!({"exp": now + 86400})), now).is_err());
        // A backdated iat does not hide a far exp.
        assert!(
            check_lifetime(&claims(json!({"iat": now - 80000, "exp": now + 7000})), now).is_err()
        );
    }

    #[test]
    fn any_crit_is_refused() {
        use base64::Engine;
        let b = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let with = format!(
            "{}.{}.sig",
            b(json!({"alg": "RS256", "crit": ["exp"]})),
            b(json!({}))
        );
        assert!(refuse_critical_extensions(&with).is_err());
        let without = format!("{}.{}.sig", b(json!({"alg": "RS256"})), b(json!({})));
        assert!(refuse_critical_extensions(&without).is_ok());
    }
}
