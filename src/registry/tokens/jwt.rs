//! Compact JWS/JWT with EdDSA only (RFC 7515, 7519, 8037).
//!
//! Verification is deliberately narrow: the header's `alg` must be exactly `EdDSA` or its fully
//! specified name `Ed25519` (RFC 9864; the same signature), so `none`,
//! HMAC-with-a-public-key and every other algorithm trick fail before any key is touched; keys
//! are never taken from the token itself (`jwk`, `jku`, `x5u` are ignored); unknown critical
//! header parameters (`crit`) are refused; signatures are checked with `verify_strict`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::Serialize;
use serde_json::{Map, Value};

/// The longest token the registry reads (its own are well under 2 KiB).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Why a token was refused. The text is safe to send back to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtError(pub String);

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(text: impl Into<String>) -> JwtError {
    JwtError(text.into())
}

/// A token split into its parts, not yet trusted.
#[derive(Debug, Clone)]
pub struct Unverified<'a> {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl Unverified<'_> {
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// Checks that the header names EdDSA (or Ed25519) and nothing this code does not understand.
    pub fn check_header(&self) -> Result<(), JwtError> {
        match self.alg() {
            Some("EdDSA") | Some("Ed25519") => {}
            Some("none") | Some("None") | Some("NONE") => {
                return Err(err("unsigned tokens (alg none) are refused"));
            }
            Some(alg) if alg.starts_with("HS") => {
                return Err(err(format!(
                    "alg {alg} (HMAC) is refused: only EdDSA (Ed25519) signatures are accepted"
                )));
            }
            Some(alg) => {
                return Err(err(format!(
                    "alg {alg} is refused: only EdDSA (Ed25519) signatures are accepted"
                )));
            }
            None => return Err(err("the token header has no alg")),
        }
        if self.header.contains_key("crit") {
            return Err(err(
                "the token header has critical extensions (crit) this registry does not support",
            ));
        }
        Ok(())
    }

    /// Verifies the EdDSA signature with `key` (after [`check_header`](Self::check_header)).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), JwtError> {
        self.check_header()?;
        verify_parts(&self.signed_parts(), key)
    }

    /// The signed bytes and the signature, owned (to check on another thread without parsing
    /// the token again). The header must have been checked.
    pub fn signed_parts(&self) -> SignedParts {
        SignedParts {
            input: self.signing_input.as_bytes().to_vec(),
            signature: self.signature.clone(),
        }
    }
}

/// What an EdDSA signature check needs of a token whose header was checked.
#[derive(Debug, Clone)]
pub struct SignedParts {
    input: Vec<u8>,
    signature: Vec<u8>,
}

/// Verifies `parts` with `key` (`verify_strict`).
pub fn verify_parts(parts: &SignedParts, key: &VerifyingKey) -> Result<(), JwtError> {
    let sig: [u8; 64] = parts
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| err("the signature is not 64 bytes (not an Ed25519 signature)"))?;
    key.verify_strict(&parts.input, &Signature::from_bytes(&sig))
        .map_err(|_| err("the signature does not verify"))
}

/// Splits and decodes a compact JWS without trusting it.
pub fn parse(token: &str) -> Result<Unverified<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(err(format!(
            "the token is longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(err(
            "not a JWT: expected three base64url parts separated by dots",
        ));
    };
    let decode = |part: &str, what: &str| {
        B64.decode(part)
            .map_err(|_| err(format!("the JWT {what} is not base64url without padding")))
    };
    let header: Map<String, Value> = serde_json::from_slice(&decode(h, "header")?)
        .map_err(|_| err("the JWT header is not a JSON object"))?;
    let claims: Map<String, Value> = serde_json::from_slice(&decode(c, "payload")?)
        .map_err(|_| err("the JWT payload is not a JSON object"))?;
    let signature = decode(s, "signature")?;
    Ok(Unverified {
        header,
        claims,
        signing_input: &token[..h.len() + 1 + c.len()],
        signature,
    })
}

/// Signs `claims` with EdDSA, naming the key in `kid`.
pub fn sign(claims: &impl Serialize, key: &SigningKey, kid: &str, typ: &str) -> String {
    let header = serde_json::json!({"alg": "EdDSA", "typ": typ, "kid": kid});
    let mut out = String::with_capacity(512);
    B64.encode_string(header.to_string(), &mut out);
    out.push('.');
    B64.encode_string(
        serde_json::to_vec(claims).expect("claims are plain JSON"),
        &mut out,
    );
    let signature = key.sign(out.as_bytes());
    out.push('.');
    B64.encode_string(signature.to_bytes(), &mut out);
    out
}

/// Reads a NumericDate claim (seconds since the epoch; fractions are truncated).
pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| err(format!("the claim {name} is not a valid time"))),
        Some(_) => Err(err(format!("the claim {name} must be a number of seconds"))),
    }
}

/// True when `aud` (a string or an array of strings) contains one of `wanted`.
pub fn audience_contains(claims: &Map<String, Value>, wanted: &[&str]) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => wanted.contains(&a.as_str()),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| wanted.contains(&a)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn round_trip_and_tamper() {
        let k = key();
        let token = sign(&serde_json::json!({"sub": "a"}), &k, "kid1", "JWT");
        let parsed = parse(&token).unwrap();
        assert_eq!(parsed.kid(), Some("kid1"));
        parsed.verify(&k.verifying_key()).unwrap();
        // Change one claim: the signature must fail.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = B64.encode(br#"{"sub":"b"}"#);
        parts[1] = &forged;
        let forged_token = parts.join(".");
        assert!(
            parse(&forged_token)
                .unwrap()
                .verify(&k.verifying_key())
                .is_err()
        );
    }

    #[test]
    fn refuses_none_and_hmac() {
        let k = key();
        for alg in ["none", "HS256", "RS256"] {
            let h = B64.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let c = B64.encode(br#"{"sub":"a"}"#);
            let token = format!("{h}.{c}.");
            let parsed = parse(&token).unwrap();
            let e = parsed.verify(&k.verifying_key()).unwrap_err();
            assert!(e.0.contains(alg), "{e}");
        }
    }

    #[test]
    fn accepts_the_fully_specified_ed25519_alg() {
        let k = key();
        let h = B64.encode(br#"{"alg":"Ed25519","typ":"JWT"}"#);
        let c = B64.encode(br#"{"sub":"a"}"#);
        let input = format!("{h}.{c}");
        let sig = B64.encode(k.sign(input.as_bytes()).to_bytes());
        let token = format!("{input}.{sig}");
        parse(&token).unwrap().verify(&k.verifying_key()).unwrap();
        for alg in ["ed25519", "Ed448", "EDDSA"] {
            let h = B64.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let token = format!("{h}.{c}.{sig}");
            assert!(
                parse(&token).unwrap().verify(&k.verifying_key()).is_err(),
                "{alg}"
            );
        }
    }

    #[test]
    fn refuses_malformed() {
        assert!(parse("a.b").is_err());
        assert!(parse("a.b.c.d").is_err());
        assert!(parse("!!.e30.").is_err());
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(parse(&long).is_err());
    }
}
