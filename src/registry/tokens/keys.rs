//! Keys: the registry's Ed25519 signing keys (JWKS, `kid`, rotation) and agents' public keys
//! (JWK or PEM) with their RFC 7638 thumbprints.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The RFC 7638 thumbprint of an Ed25519 public key: base64url(SHA-256 of the canonical JWK).
/// Used as the `kid` of the registry's keys and as the fingerprint of agents' keys.
pub fn thumbprint(key: &VerifyingKey) -> String {
    let x = B64.encode(key.as_bytes());
    // Members in lexicographic order, no whitespace (RFC 7638 §3).
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    B64.encode(Sha256::digest(canonical.as_bytes()))
}

/// The public JWK of a key, as served in the JWKS and stored for agents.
pub fn public_jwk(key: &VerifyingKey, kid: &str) -> serde_json::Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": B64.encode(key.as_bytes()),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    })
}

/// One of the registry's signing keys. `Debug` never shows the private half.
#[derive(Clone)]
pub struct RegistryKey {
    pub kid: String,
    pub signing: SigningKey,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When a newer key took over signing; None for the key that signs now.
    pub retired_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl fmt::Debug for RegistryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryKey")
            .field("kid", &self.kid)
            .field("signing", &"***")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

impl RegistryKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> RegistryKey {
        use rand::RngCore;
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let signing = SigningKey::from_bytes(&seed);
        seed.fill(0);
        RegistryKey {
            kid: thumbprint(&signing.verifying_key()),
            signing,
            created_at: chrono::Utc::now(),
            retired_at: None,
        }
    }

    /// The private seed as stored in the database (base64url).
    pub fn private_text(&self) -> String {
        B64.encode(self.signing.to_bytes())
    }

    pub fn public_text(&self) -> String {
        B64.encode(self.signing.verifying_key().as_bytes())
    }

    /// Rebuilds a key from its stored seed, checking it against its `kid`.
    pub fn from_stored(
        kid: &str,
        private_text: &str,
        created_at: chrono::DateTime<chrono::Utc>,
        retired_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<RegistryKey, String> {
        let bytes = B64
            .decode(private_text.trim())
            .map_err(|_| format!("signing key {kid} is not valid base64url in the database"))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("signing key {kid} does not have 32 bytes"))?;
        let signing = SigningKey::from_bytes(&seed);
        if thumbprint(&signing.verifying_key()) != kid {
            return Err(format!(
                "signing key {kid} does not match its key id; the database may be damaged"
            ));
        }
        Ok(RegistryKey {
            kid: kid.to_string(),
            signing,
            created_at,
            retired_at,
        })
    }

    pub fn jwk(&self) -> serde_json::Value {
        public_jwk(&self.signing.verifying_key(), &self.kid)
    }
}

/// The longest `kid` an agent's JWK may bring.
pub const AGENT_KID_MAX_LEN: usize = 128;

/// An agent's public key, parsed and normalised.
#[derive(Debug, Clone)]
pub struct AgentPublicKey {
    pub key: VerifyingKey,
    /// RFC 7638 thumbprint.
    pub fingerprint: String,
    /// The key's id: the JWK's own `kid` when it brought one (its signer puts that in the
    /// assertions' headers), else the thumbprint.
    pub kid: String,
    /// The canonical public JWK (what the database stores).
    pub jwk_text: String,
}

/// Parses an Ed25519 public key given as a JWK (`{"kty":"OKP","crv":"Ed25519","x":…}`) or as a
/// PEM `PUBLIC KEY` (SPKI). Private keys are refused loudly: they must never reach the registry.
pub fn parse_agent_public_key(text: &str) -> Result<AgentPublicKey, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the public key is empty".into());
    }
    if text.len() > 8 * 1024 {
        return Err("the public key is longer than 8 KiB; expected one Ed25519 key".into());
    }
    let mut own_kid = None;
    let key = if text.starts_with('{') {
        let jwk: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("the public key looks like a JWK but is not valid JSON: {e}"))?;
        own_kid = jwk_kid(&jwk)?;
        jwk_to_key(&jwk)?
    } else if text.starts_with("-----BEGIN") {
        if text.contains("PRIVATE KEY") {
            return Err(
                "that is a PRIVATE key; register only the public half (openssl pkey -pubout)"
                    .into(),
            );
        }
        VerifyingKey::from_public_key_pem(text).map_err(|e| {
            format!("the PEM is not an Ed25519 public key (SPKI `BEGIN PUBLIC KEY`): {e}")
        })?
    } else {
        return Err(
            "expected an Ed25519 public key as a JWK (JSON) or PEM (BEGIN PUBLIC KEY)".into(),
        );
    };
    let fingerprint = thumbprint(&key);
    let kid = own_kid.unwrap_or_else(|| fingerprint.clone());
    let jwk_text = public_jwk(&key, &kid).to_string();
    Ok(AgentPublicKey {
        key,
        fingerprint,
        kid,
        jwk_text,
    })
}

/// A JWK's own `kid`, if it has one: 1 to 128 printable ASCII characters (it is echoed in
/// headers, logs and the console, so nothing invisible or controlling).
fn jwk_kid(jwk: &serde_json::Value) -> Result<Option<String>, String> {
    match jwk.get("kid") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(kid)) => {
            if kid.is_empty()
                || kid.len() > AGENT_KID_MAX_LEN
                || !kid.bytes().all(|b| b.is_ascii_graphic())
            {
                Err(format!(
                    "the JWK's kid must be 1 to {AGENT_KID_MAX_LEN} printable ASCII characters without spaces"
                ))
            } else {
                Ok(Some(kid.clone()))
            }
        }
        Some(_) => Err("the JWK's kid must be a string".into()),
    }
}

/// Reads an Ed25519 JWK, refusing anything else (RSA, EC, symmetric, private).
pub fn jwk_to_key(jwk: &serde_json::Value) -> Result<VerifyingKey, String> {
    let obj = jwk
        .as_object()
        .ok_or("the JWK must be a JSON object".to_string())?;
    if obj.contains_key("d") {
        return Err("that JWK contains a private key (`d`); register only the public half".into());
    }
    let kty = obj.get("kty").and_then(|v| v.as_str()).unwrap_or("");
    let crv = obj.get("crv").and_then(|v| v.as_str()).unwrap_or("");
    if kty != "OKP" || crv != "Ed25519" {
        return Err(format!(
            "only Ed25519 keys are accepted (kty OKP, crv Ed25519); this JWK has kty {kty:?}, crv {crv:?}"
        ));
    }
    // `Ed25519` is the fully specified name of the same algorithm (RFC 9864).
    if let Some(alg) = obj.get("alg").and_then(|v| v.as_str())
        && alg != "EdDSA"
        && alg != "Ed25519"
    {
        return Err(format!(
            "the JWK's alg is {alg:?}; an Ed25519 key signs with EdDSA (or Ed25519)"
        ));
    }
    let x = obj
        .get("x")
        .and_then(|v| v.as_str())
        .ok_or("the JWK has no `x` (the public key)".to_string())?;
    let bytes = B64
        .decode(x)
        .map_err(|_| "the JWK's `x` is not base64url without padding".to_string())?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "the JWK's `x` must hold 32 bytes".to_string())?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "the JWK's `x` is not a valid Ed25519 point".to_string())?;
    if key.is_weak() {
        return Err("the JWK's `x` is a weak (small-order) Ed25519 key".into());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::EncodePublicKey;

    #[test]
    fn thumbprint_matches_rfc8037_example() {
        // RFC 8037 Appendix A.3: the thumbprint of the example Ed25519 key.
        let x = B64
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let key = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        assert_eq!(
            thumbprint(&key),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn parses_jwk_and_pem_to_the_same_key() {
        let key = RegistryKey::generate();
        let public = key.signing.verifying_key();
        let jwk = public_jwk(&public, "x").to_string();
        let pem = public
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap();
        let a = parse_agent_public_key(&jwk).unwrap();
        let b = parse_agent_public_key(&pem).unwrap();
        assert_eq!(a.key, public);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint, key.kid);
    }

    #[test]
    fn a_jwk_keeps_its_own_kid_and_a_bare_key_gets_its_thumbprint() {
        let key = RegistryKey::generate();
        let public = key.signing.verifying_key();
        let mut jwk = public_jwk(&public, "agent-key-2026");
        jwk["alg"] = json!("Ed25519");
        let own = parse_agent_public_key(&jwk.to_string()).unwrap();
        assert_eq!(own.kid, "agent-key-2026");
        assert_eq!(own.fingerprint, key.kid);
        // The stored JWK carries the kid, so it survives a re-parse from the database.
        assert_eq!(
            parse_agent_public_key(&own.jwk_text).unwrap().kid,
            "agent-key-2026"
        );
        let bare = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(public.as_bytes())});
        assert_eq!(
            parse_agent_public_key(&bare.to_string()).unwrap().kid,
            key.kid
        );
        for bad in [
            json!(""),
            json!("a b"),
            json!("\u{202e}x"),
            json!(7),
            json!("k".repeat(129)),
        ] {
            let mut jwk = bare.clone();
            jwk["kid"] = bad.clone();
            assert!(parse_agent_public_key(&jwk.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_private_and_foreign_keys() {
        let key = RegistryKey::generate();
        let mut jwk = key.jwk();
        jwk["d"] = json!(key.private_text());
        assert!(
            parse_agent_public_key(&jwk.to_string())
                .unwrap_err()
                .contains("private")
        );
        let rsa = r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#;
        assert!(parse_agent_public_key(rsa).unwrap_err().contains("Ed25519"));
        assert!(
            parse_agent_public_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .unwrap_err()
                .contains("PRIVATE")
        );
        assert!(parse_agent_public_key("ssh-ed25519 AAAA").is_err());
    }

    #[test]
    fn stored_key_round_trips_and_checks_its_kid() {
        let key = RegistryKey::generate();
        let back =
            RegistryKey::from_stored(&key.kid, &key.private_text(), key.created_at, None).unwrap();
        assert_eq!(back.signing.to_bytes(), key.signing.to_bytes());
        let other = RegistryKey::generate();
        assert!(
            RegistryKey::from_stored(&key.kid, &other.private_text(), key.created_at, None)
                .is_err()
        );
        assert!(!format!("{key:?}").contains(&key.private_text()));
    }
}
