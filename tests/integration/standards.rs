//! Standards conformance of the OAuth surfaces (issue 10, items 9, 10, 11, 19, 20), against a real
//! registry on a loopback port over a real SQLite file. Assertions are signed here by hand (the
//! header bytes matter: `kid`, `alg: Ed25519`), tokens checked with `jsonwebtoken`.

use crate::support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use support::{Member, Registry, Reply};

use steward::model::tokens::{GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};

fn new_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn jti() -> String {
    B64.encode(rand::random::<[u8; 16]>())
}

/// A compact JWS over exactly these header and claims.
fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig.to_bytes()))
}

fn public_jwk(key: &SigningKey) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(key.verifying_key().as_bytes())})
}

struct Agent {
    id: String,
    key: SigningKey,
}

impl Agent {
    /// Standard assertion claims addressed to `aud`, valid for `ttl` seconds.
    fn claims(&self, aud: &str, ttl: i64) -> Value {
        json!({"iss": self.id, "sub": self.id, "aud": aud, "iat": now(), "exp": now() + ttl, "jti": jti()})
    }
}

/// Registers an agent owned by `r.owner` with `scope`, and its key given as `jwk`.
async fn agent_with_jwk(r: &Registry, key: SigningKey, jwk: Value) -> Agent {
    let id = r
        .register("standards-bot", Some(&r.owner.email), &["crm.orders:read"])
        .await;
    r.post(
        &format!("/v1/agents/{id}/credentials"),
        &r.admin,
        json!({"kind": "public-key", "public_key": jwk.to_string()}),
    )
    .await
    .expect(201);
    Agent { id, key }
}

async fn agent(r: &Registry) -> Agent {
    let key = new_key();
    let jwk = public_jwk(&key);
    agent_with_jwk(r, key, jwk).await
}

/// A person access token of `who` that `agent` may act with.
async fn subject_token(r: &Registry, who: &Member, agent: &str) -> String {
    r.post(
        "/v1/me/access-token",
        who,
        json!({"ttl_seconds": 600, "may_act": agent}),
    )
    .await
    .expect(201)["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn form(r: &Registry, path: &str, auth: Option<&str>, params: &[(&str, &str)]) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut req = r
        .http
        .post(format!("{}{path}", r.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

async fn exchange(r: &Registry, subject: &str, assertion: &str) -> Reply {
    form(
        r,
        "/oauth/token",
        None,
        &[
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", TOKEN_TYPE_ACCESS),
            ("actor_token", assertion),
            ("actor_token_type", TOKEN_TYPE_JWT),
            ("scope", "crm.orders:read"),
            ("audience", "https://crm.example.com"),
        ],
    )
    .await
}

fn token_endpoint(r: &Registry) -> String {
    format!("{}/oauth/token", r.url)
}

#[tokio::test]
async fn an_agent_key_keeps_its_own_kid_and_assertions_naming_it_verify() {
    let r = Registry::start().await;
    let key = new_key();
    let mut jwk = public_jwk(&key);
    jwk["kid"] = json!("invoice-bot-2026-11");
    let own = agent_with_jwk(&r, key, jwk).await;
    let subject = subject_token(&r, &r.owner, &own.id).await;
    let aud = token_endpoint(&r);

    // The kid the JWK brought verifies (401 before: only the thumbprint was known).
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": "invoice-bot-2026-11"});
    let assertion = sign(&own.key, &header, &own.claims(&aud, 60));
    exchange(&r, &subject, &assertion).await.expect(200);

    // The thumbprint still names it too; a kid it does not have names nothing.
    let thumbprint = steward::registry::tokens::keys::thumbprint(&own.key.verifying_key());
    let header = json!({"alg": "EdDSA", "kid": thumbprint});
    let assertion = sign(&own.key, &header, &own.claims(&aud, 60));
    exchange(&r, &subject, &assertion).await.expect(200);
    let header = json!({"alg": "EdDSA", "kid": "someone-elses-key"});
    let assertion = sign(&own.key, &header, &own.claims(&aud, 60));
    let refused = exchange(&r, &subject, &assertion).await;
    assert_eq!(
        (refused.status, refused.code()),
        (401, "invalid_client"),
        "{refused:?}"
    );

    // Another agent's key that claims the same kid cannot stand in for it.
    let thief_key = new_key();
    let header = json!({"alg": "EdDSA", "kid": "invoice-bot-2026-11"});
    let forged = sign(&thief_key, &header, &own.claims(&aud, 60));
    assert_eq!(exchange(&r, &subject, &forged).await.status, 401);

    // A key registered without a kid answers to its RFC 7638 thumbprint.
    let bare = agent(&r).await;
    let subject = subject_token(&r, &r.owner, &bare.id).await;
    let thumbprint = steward::registry::tokens::keys::thumbprint(&bare.key.verifying_key());
    let header = json!({"alg": "EdDSA", "kid": thumbprint});
    let assertion = sign(&bare.key, &header, &bare.claims(&aud, 60));
    exchange(&r, &subject, &assertion).await.expect(200);

    // A kid with invisible or control characters is refused when the key is registered.
    let mut jwk = public_jwk(&new_key());
    jwk["kid"] = json!("bad\u{202e}kid");
    let reply = r
        .post(
            &format!("/v1/agents/{}/credentials", bare.id),
            &r.admin,
            json!({"kind": "public-key", "public_key": jwk.to_string()}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (422, "invalid_public_key"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn hour_long_dated_assertions_and_alg_ed25519_are_accepted_and_tokens_carry_nbf() {
    let r = Registry::start().await;
    let bot = agent(&r).await;
    let subject = subject_token(&r, &r.owner, &bot.id).await;
    let aud = token_endpoint(&r);

    // Authlib's default private_key_jwt: iat now, exp one hour later (401 before: 5 minutes).
    let claims = bot.claims(&aud, 3600);
    let assertion = sign(&bot.key, &json!({"alg": "EdDSA", "typ": "JWT"}), &claims);
    let issued = exchange(&r, &subject, &assertion).await;
    let token = issued.expect(200)["access_token"].as_str().unwrap();
    // Its jti stays spent for its whole life: a replay is refused.
    let replay = exchange(&r, &subject, &assertion).await;
    assert_eq!((replay.status, replay.code()), (401, "invalid_client"));
    assert!(
        replay.body["error_description"]
            .as_str()
            .unwrap()
            .contains("replay"),
        "{replay:?}"
    );
    // Spent ids are stored until the assertion expires (so replays fail across restarts).
    let stored_until: i64 = r
        .sql()
        .query_row(
            "SELECT expires_at FROM consumed_assertions WHERE jti = ?1",
            [claims["jti"].as_str().unwrap()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(stored_until, claims["exp"].as_i64().unwrap());

    // Issued tokens carry nbf (= iat).
    let claims: Value =
        serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["nbf"], claims["iat"], "{claims}");
    let person: Value =
        serde_json::from_slice(&B64.decode(subject.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(person["nbf"], person["iat"], "{person}");

    // Longer than an hour after iat, or more than five minutes ahead without iat/nbf: refused.
    let mut claims = bot.claims(&aud, 3700);
    let refused = exchange(
        &r,
        &subject,
        &sign(&bot.key, &json!({"alg": "EdDSA"}), &claims),
    )
    .await;
    assert_eq!((refused.status, refused.code()), (401, "invalid_client"));
    claims = bot.claims(&aud, 3600);
    claims.as_object_mut().unwrap().remove("iat");
    let refused = exchange(
        &r,
        &subject,
        &sign(&bot.key, &json!({"alg": "EdDSA"}), &claims),
    )
    .await;
    assert_eq!((refused.status, refused.code()), (401, "invalid_client"));
    // An old iat does not buy an hour from now.
    let mut claims = bot.claims(&aud, 3000);
    claims["iat"] = json!(now() - 1000);
    let refused = exchange(
        &r,
        &subject,
        &sign(&bot.key, &json!({"alg": "EdDSA"}), &claims),
    )
    .await;
    assert_eq!((refused.status, refused.code()), (401, "invalid_client"));
    // nbf alone dates it too.
    let mut claims = bot.claims(&aud, 1800);
    claims.as_object_mut().unwrap().remove("iat");
    claims["nbf"] = json!(now());
    exchange(
        &r,
        &subject,
        &sign(&bot.key, &json!({"alg": "EdDSA"}), &claims),
    )
    .await
    .expect(200);

    // alg Ed25519 (RFC 9864), the fully specified name of the same signature.
    let assertion = sign(
        &bot.key,
        &json!({"alg": "Ed25519", "typ": "JWT"}),
        &bot.claims(&aud, 60),
    );
    exchange(&r, &subject, &assertion).await.expect(200);
    // Other names and HMAC stay refused.
    for alg in ["ed25519", "Ed448", "HS256"] {
        let assertion = sign(&bot.key, &json!({"alg": alg}), &bot.claims(&aud, 60));
        let refused = exchange(&r, &subject, &assertion).await;
        assert_eq!(
            (refused.status, refused.code()),
            (401, "invalid_client"),
            "{alg}"
        );
    }
}

/// The Python interpreter of the venv with the stock clients (`STEWARD_PYTHON`, made by
/// `.ci/run`). Without it the Python tests are skipped locally, and fail under CI.
fn stock_python() -> Option<String> {
    match std::env::var("STEWARD_PYTHON") {
        Ok(python) if !python.is_empty() => {
            assert!(
                std::path::Path::new(&python).exists(),
                "STEWARD_PYTHON={python} does not exist"
            );
            Some(python)
        }
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but STEWARD_PYTHON is not set: .ci/run makes the venv with the stock clients"
            );
            eprintln!("skipped: set STEWARD_PYTHON to a venv's python with the stock clients");
            None
        }
    }
}

/// Runs `tests/python/SCRIPT` with `env`; panics with its output unless it succeeds.
async fn run_python(python: String, script: &str, env: Vec<(&'static str, String)>) -> String {
    let script = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .envs(env)
            .env("AUTHLIB_INSECURE_TRANSPORT", "1")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .output()
            .expect("run the Python interpreter")
    })
    .await
    .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the Python script failed:\n{text}");
    text
}

#[tokio::test]
async fn stock_python_clients_work_unmodified() {
    let Some(python) = stock_python() else {
        return;
    };
    let r = Registry::start().await;
    let bot = agent(&r).await;
    let subject = subject_token(&r, &r.owner, &bot.id).await;
    // PKCS#8 v1 (what `openssl genpkey -algorithm ed25519` writes): the fixed Ed25519 prefix
    // and the 32-byte seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&bot.key.to_bytes());
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    let out = run_python(
        python,
        "stock_clients.py",
        vec![
            ("STEWARD_URL", r.url.clone()),
            ("AGENT_ID", bot.id.clone()),
            ("AGENT_KEY_PEM", pem),
            ("SUBJECT_TOKEN", subject),
            ("ADMIN_TOKEN", r.admin.token.clone()),
            ("SCOPE", "crm.orders:read".into()),
            ("AUDIENCE", "https://crm.example.com".into()),
        ],
    )
    .await;
    assert!(out.contains("all stock-client checks passed"), "{out}");
}

#[tokio::test]
async fn metadata_is_rfc8414_and_oauth_errors_are_json_with_the_right_challenge() {
    let r = Registry::start().await;
    let _bot = agent(&r).await;
    let m = r
        .call("GET", "/.well-known/oauth-authorization-server", None, None)
        .await;
    let m = m.expect(200);
    assert_eq!(m["response_types_supported"], json!(["none"]), "{m}");
    assert!(m.get("authorization_endpoint").is_none());
    for field in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let methods = m[field].as_array().unwrap();
        assert!(methods.contains(&json!("private_key_jwt")), "{field}");
        assert!(
            !methods.contains(&json!("bearer")),
            "{field}: unregistered method"
        );
    }
    for field in [
        "token_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
    ] {
        assert_eq!(m[field], json!(["EdDSA", "Ed25519"]), "{field}");
    }
    // The catalogue's scopes (the only grantable ones), sorted.
    let scopes: Vec<&str> = m["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(scopes.contains(&"crm.orders:read"), "{m}");
    assert!(scopes.windows(2).all(|w| w[0] < w[1]), "{m}");

    // A failed Bearer at the OAuth endpoints gets a Bearer challenge.
    for path in ["/oauth/introspect", "/oauth/revoke", "/oauth/token"] {
        let resp = r
            .http
            .post(format!("{}{path}", r.url))
            .bearer_auth("stw_not-a-real-token")
            .form(&[
                ("token", "x"),
                ("grant_type", GRANT_TOKEN_EXCHANGE),
                ("subject_token", "x"),
                ("subject_token_type", TOKEN_TYPE_ACCESS),
                ("scope", "crm.orders:read"),
                ("audience", "https://crm.example.com"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
            "{path}: {challenge:?}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{path}");
    }
    // Without credentials, introspection offers both schemes it takes.
    let resp = r
        .http
        .post(format!("{}/oauth/introspect", r.url))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    let schemes: Vec<String> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(schemes, ["Basic", "Bearer"]);

    // Every token-endpoint error is JSON, an oversized body too (it was plain text).
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let big = format!("token={}", "a".repeat(70 * 1024));
        let resp = r
            .http
            .post(format!("{}{path}", r.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .bearer_auth(&r.admin.token)
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 413, "{path}");
        let body: Value = resp.json().await.expect("a JSON error body");
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
}

#[tokio::test]
async fn identity_provider_tokens_need_a_verified_email_no_crit_and_a_short_life() {
    use steward::model::Actor;
    use steward::registry::store::TrustedIssuer;
    use steward::registry::store::prelude::*;
    let r = Registry::start().await;
    let bot = agent(&r).await;
    let idp_key = new_key();
    let mut jwk = public_jwk(&idp_key);
    jwk["kid"] = json!("sso-1");
    let idp = "https://sso.example.com";
    r.store
        .put_trusted_issuer(
            &Actor::system("test"),
            &TrustedIssuer {
                issuer: idp.into(),
                jwks: json!({"keys": [jwk]}).to_string(),
                audience: r.url.clone(),
                created_at: chrono::Utc::now(),
            },
        )
        .unwrap();
    let aud = token_endpoint(&r);
    let header = json!({"alg": "EdDSA", "kid": "sso-1"});
    let base = json!({"iss": idp, "sub": "00u1abc", "email": r.owner.email, "email_verified": true,
        "aud": r.url, "iat": now(), "exp": now() + 300, "may_act": {"sub": bot.id}});
    let exchange_with = |claims: Value, header: Value| {
        let subject = sign(&idp_key, &header, &claims);
        let assertion = sign(&bot.key, &json!({"alg": "EdDSA"}), &bot.claims(&aud, 60));
        let r = &r;
        async move { exchange(r, &subject, &assertion).await }
    };
    // The registry picks the provider up at its next refresh (bounded wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let reply = exchange_with(base.clone(), header.clone()).await;
        if reply.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the provider was never trusted: {reply:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let with = |change: Value| {
        let mut c = base.clone();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let cases = [
        (
            with(json!({"email_verified": null})),
            header.clone(),
            "verified",
        ),
        (
            with(json!({"email_verified": false})),
            header.clone(),
            "verified",
        ),
        (
            with(json!({"exp": now() + 86_400})),
            header.clone(),
            "longer than",
        ),
        (
            with(json!({"iat": now() - 20_000, "exp": now() + 600})),
            header.clone(),
            "longer than",
        ),
        (
            base.clone(),
            json!({"alg": "EdDSA", "kid": "sso-1", "crit": ["exp"], "exp": 1}),
            "crit",
        ),
        // Past the leeway (at most a minute) is expired.
        (with(json!({"exp": now() - 61})), header.clone(), "expired"),
    ];
    for (claims, header, expect) in cases {
        let reply = exchange_with(claims, header).await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "invalid_grant"),
            "{expect}: {reply:?}"
        );
        assert!(
            reply.body["error_description"]
                .as_str()
                .unwrap()
                .contains(expect),
            "{expect}: {reply:?}"
        );
    }
    // The person may also be named by an email-shaped sub (no email claim to verify).
    let by_sub = with(json!({"email": null, "email_verified": null, "sub": r.owner.email}));
    exchange_with(by_sub, header.clone()).await.expect(200);
}

fn kid_of(token: &str) -> String {
    let header: Value =
        serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn jwks_kids(r: &Registry) -> Vec<String> {
    r.call("GET", "/.well-known/jwks.json", None, None)
        .await
        .expect(200)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// Waits (bounded) until the served JWKS lists `want` keys.
async fn wait_for_kids(r: &Registry, want: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let kids = jwks_kids(r).await;
        if kids.len() == want {
            return kids;
        }
        assert!(std::time::Instant::now() < deadline, "JWKS stayed {kids:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn rotate_key_publishes_the_next_key_before_it_signs() {
    use steward::model::Actor;
    use steward::registry::store::prelude::*;
    use steward::registry::tokens::{ROTATION_LEAD_SECONDS, stage_signing_key};
    let r = Registry::start().await;
    let bot = agent(&r).await;
    let subject = subject_token(&r, &r.owner, &bot.id).await;
    let aud = token_endpoint(&r);
    let mint = || async {
        let assertion = sign(&bot.key, &json!({"alg": "EdDSA"}), &bot.claims(&aud, 60));
        let reply = exchange(&r, &subject, &assertion).await;
        reply.expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let current = kid_of(&mint().await);
    assert_eq!(jwks_kids(&r).await, vec![current.clone()]);

    // `steward server rotate-key` (the real binary) stages the next key.
    let out = std::process::Command::new(support::steward_exe())
        .args(["server", "rotate-key", "--db"])
        .arg(&r.db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let next = stdout
        .trim()
        .strip_prefix("next signing key: ")
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_string();
    // It is published (after the signing key) while tokens are still signed with the old one
    // (before: the new key appeared and signed in the same instant).
    let kids = wait_for_kids(&r, 2).await;
    assert_eq!(kids, [current.clone(), next.clone()]);
    assert_eq!(kid_of(&mint().await), current);
    // A second staging while one waits is refused; nothing changes.
    let again = std::process::Command::new(support::steward_exe())
        .args(["server", "rotate-key", "--db"])
        .arg(&r.db)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already staged"));
    assert_eq!(jwks_kids(&r).await, [current.clone(), next.clone()]);

    // A key staged a lead ago (time passed in as `now`) takes over at the next refresh, and
    // the old key stays published while its tokens live.
    let r2 = Registry::start().await;
    let bot2 = agent(&r2).await;
    let subject2 = subject_token(&r2, &r2.owner, &bot2.id).await;
    let aud2 = token_endpoint(&r2);
    let assertion = sign(&bot2.key, &json!({"alg": "EdDSA"}), &bot2.claims(&aud2, 60));
    let old_token = exchange(&r2, &subject2, &assertion).await.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let old_kid = kid_of(&old_token);
    let staged_then = chrono::Utc::now() - chrono::Duration::seconds(ROTATION_LEAD_SECONDS);
    let (new_kid, _) =
        stage_signing_key(r2.store.as_ref(), &Actor::system("test"), staged_then).unwrap();
    let kids = wait_for_kids(&r2, 2).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let assertion = sign(&bot2.key, &json!({"alg": "EdDSA"}), &bot2.claims(&aud2, 60));
        let token = exchange(&r2, &subject2, &assertion).await.expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        if kid_of(&token) == new_kid {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the staged key never took over: {:?} {:?}",
            jwks_kids(&r2).await,
            r2.store.signing_keys().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(kids.contains(&old_kid) && kids.contains(&new_kid));
    assert_eq!(jwks_kids(&r2).await, [new_kid.clone(), old_kid.clone()]);
    // Staging is audited, without key material.
    let audit = r2
        .get("/v1/audit?action=signing_key.stage", &r2.admin)
        .await;
    let events = audit.expect(200)["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(!events[0].to_string().contains("private"));
}

#[tokio::test]
async fn the_openapi_document_is_complete_and_validates() {
    let r = Registry::start().await;
    let doc = r.call("GET", "/openapi.json", None, None).await;
    let doc = doc.expect(200);
    // Every $ref resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    for reference in all {
        let pointer = reference.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling {reference}");
    }
    // Every response is described; every secured route documents 401; bodies document 422.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status} has no description"
                );
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured || path.starts_with("/oauth/") {
                assert!(responses.contains_key("401"), "{method} {path} lacks 401");
            }
            if op.get("requestBody").is_some() && path.starts_with("/v1/") {
                assert!(responses.contains_key("422"), "{method} {path} lacks 422");
            }
        }
    }
    // Introspection's aud is a string or an array of strings.
    let aud = &doc["components"]["schemas"]["Introspection"]["properties"]["aud"];
    assert_eq!(
        aud["oneOf"],
        json!([{"type": "string"}, {"type": "array", "items": {"type": "string"}}])
    );
    // The stock validator agrees.
    if let Some(python) = stock_python() {
        let out = run_python(
            python,
            "validate_openapi.py",
            vec![("STEWARD_URL", r.url.clone())],
        )
        .await;
        assert!(out.contains("the document is valid"), "{out}");
    }
}
