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
    /// `exp` (required), `nbf`. Returns its claims.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, IdpRefusal> {
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
            validation.validate_nbf = true;
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return Ok(data.claims),
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
