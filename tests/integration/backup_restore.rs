//! Backup and restore with the real binary: a copy taken during a write storm restores to an
//! intact chain that records the restore (so verify names the gap as a restore, not
//! tampering), no token issued before the restore is accepted, the signing key is new, and a
//! brake pulled after the copy does not come undone.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use steward::model::tokens::{GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};
use steward::registry::store::sqlite::OpenMode;
use support::{Registry, Reply, call, http_client, serve, steward_exe};

struct KeyedAgent {
    id: String,
    key: SigningKey,
}

fn assertion(agent: &KeyedAgent, aud: &str) -> String {
    use rand::RngCore;
    let mut jti = [0u8; 12];
    rand::rng().fill_bytes(&mut jti);
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": agent.id, "sub": agent.id, "aud": aud, "iat": now,
                        "exp": now + 60, "jti": B64.encode(jti)});
    let der = agent.key.to_pkcs8_der().unwrap();
    jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims,
        &EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap()
}

async fn keyed(reg: &Registry, name: &str) -> KeyedAgent {
    use rand::RngCore;
    let id = reg
        .register(name, Some(&reg.owner.email), &["crm.orders:read"])
        .await;
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(key.verifying_key().as_bytes())});
    reg.post(
        &format!("/v1/agents/{id}/credentials"),
        &reg.admin,
        json!({"kind": "public-key", "public_key": jwk.to_string()}),
    )
    .await
    .expect(201);
    KeyedAgent { id, key }
}

async fn form(url: &str, bearer: Option<&str>, path: &str, params: &[(&str, &str)]) -> Reply {
    let mut req = http_client().post(format!("{url}{path}")).form(params);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

async fn exchange(url: &str, subject: &str, agent: &KeyedAgent) -> Reply {
    form(
        url,
        None,
        "/oauth/token",
        &[
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", TOKEN_TYPE_ACCESS),
            (
                "actor_token",
                &assertion(agent, &format!("{url}/oauth/token")),
            ),
            ("actor_token_type", TOKEN_TYPE_JWT),
            ("scope", "crm.orders:read"),
            ("audience", "https://crm.example.com"),
        ],
    )
    .await
}

fn steward(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(steward_exe())
        .args(args)
        .env("XDG_DATA_HOME", data)
        .env_remove("STEWARD_SERVER")
        .env_remove("STEWARD_TOKEN")
        .output()
        .expect("run steward");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_taken_during_a_write_storm_restores_safely() {
    // SQLite's online backup (PostgreSQL deployments use pg_dump, see README).
    let reg = Registry::launch(crate::support::Launch::new().sqlite_only()).await;
    let steady = keyed(&reg, "steady").await;
    let braked = keyed(&reg, "braked-after-copy").await;
    let subject = reg
        .post(
            "/v1/me/access-token",
            &reg.owner,
            json!({"ttl_seconds": 3600}),
        )
        .await;
    let subject = subject.expect(201)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let before_copy = exchange(&reg.url, &subject, &steady).await;
    let before_copy = before_copy.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let old_kid = kid_of(&before_copy);

    // A write storm: agents registered and revoked without pause while the copy is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let storm = {
        let (url, admin, stop) = (reg.url.clone(), reg.admin.token.clone(), stop.clone());
        tokio::spawn(async move {
            let http = http_client();
            let mut writes = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let made = call(
                    &http,
                    &url,
                    "POST",
                    "/v1/agents",
                    Some(&admin),
                    Some(&json!({"name": format!("storm-{writes}"), "owner": null})),
                )
                .await;
                let id = made.expect(201)["id"].as_str().unwrap().to_string();
                call(
                    &http,
                    &url,
                    "POST",
                    &format!("/v1/agents/{id}/revoke"),
                    Some(&admin),
                    None,
                )
                .await
                .expect(200);
                writes += 2;
            }
            writes
        })
    };
    while reg.audit_count() < 40 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A resource server's secret, in the copy, disabled after it.
    let resource_secret = reg
        .post(
            "/v1/resources/crm/credentials",
            &reg.admin,
            json!({"kind": "static-secret"}),
        )
        .await
        .expect(201)
        .clone();
    let copy = reg.dir().join("copy.db");
    let data = reg.dir().join("data");
    let (db, copy_arg) = (reg.db.clone(), copy.clone());
    let data_arg = data.clone();
    let backed_up = tokio::task::spawn_blocking(move || {
        steward(
            &data_arg,
            &[
                "server",
                "backup",
                "--db",
                db.to_str().unwrap(),
                "--to",
                copy_arg.to_str().unwrap(),
            ],
        )
    })
    .await
    .unwrap();
    assert!(backed_up.0, "backup failed: {}", backed_up.2);
    assert!(backed_up.1.contains("chain intact"), "{}", backed_up.1);

    // After the copy: more tokens, and a brake that must survive the restore.
    let after_copy = exchange(&reg.url, &subject, &braked).await;
    let after_copy = after_copy.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    reg.post(
        &format!("/v1/agents/{}/revoke", braked.id),
        &reg.responder,
        json!({"reason": "INC-after-copy"}),
    )
    .await
    .expect(200);
    reg.post(
        &format!(
            "/v1/resources/crm/credentials/{}/disable",
            resource_secret["credential"]["id"].as_str().unwrap()
        ),
        &reg.admin,
        json!({}),
    )
    .await
    .expect(200);
    stop.store(true, Ordering::SeqCst);
    assert!(storm.await.unwrap() > 0);
    let old_admin = reg.admin.token.clone();
    let stopped = reg.stop().await;
    let db = stopped.db.clone();
    let db_arg = db.to_str().unwrap().to_string();
    // This machine witnesses the head after the copy (later lost to the restore).
    let (ok, _, err) = steward(&data, &["audit", "verify", "--db", &db_arg]);
    assert!(ok, "{err}");

    let (ok, out, err) = steward(
        &data,
        &[
            "server",
            "restore",
            "--db",
            &db_arg,
            "--from",
            copy.to_str().unwrap(),
        ],
    );
    assert!(ok, "restore failed: {err}");
    assert!(out.contains("brakes re-applied"), "{out}");

    // The chain is intact, and the heads witnessed after the copy are named as lost to the
    // restore rather than as tampering.
    let (ok, out, err) = steward(&data, &["audit", "verify", "--db", &db_arg]);
    assert!(ok, "verify after restore: {err}");
    assert!(
        out.contains("lost when the registry was restored to #"),
        "{out}"
    );
    assert!(out.contains("audit chain intact"), "{out}");

    let store = steward::registry::open_store(&db, OpenMode::MustExist).unwrap();
    let (_, admin) =
        steward::registry::bootstrap_admin(store.as_ref(), "admin@example.com", "Ada", "t")
            .unwrap();
    let (url, shutdown, server) = serve(store.clone()).await;

    // No token from before the restore is accepted: API tokens, person tokens, exchanged ones.
    let me = call(
        &http_client(),
        &url,
        "GET",
        "/v1/me",
        Some(&old_admin),
        None,
    )
    .await;
    assert_eq!(me.status, 401, "{me:?}");
    for token in [&before_copy, &after_copy, &subject] {
        let answer = form(
            &url,
            Some(&admin.token),
            "/oauth/introspect",
            &[("token", token)],
        )
        .await;
        assert_eq!(answer.expect(200), &json!({"active": false}));
    }
    let refused = exchange(&url, &subject, &steady).await;
    assert_eq!(refused.status, 400, "{refused:?}");
    // The brake pulled after the copy holds.
    let braked_now = call(
        &http_client(),
        &url,
        "GET",
        &format!("/v1/agents/{}", braked.id),
        Some(&admin.token),
        None,
    )
    .await;
    let braked_now = braked_now.expect(200);
    assert_eq!(braked_now["status"], json!("suspended"));
    assert!(
        braked_now["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| !c["disabled_at"].is_null())
    );

    // The resource secret disabled after the copy stays disabled.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "crm:{}",
            resource_secret["secret"].as_str().unwrap()
        ))
    );
    let resp = http_client()
        .post(format!("{url}/oauth/introspect"))
        .header("authorization", basic)
        .form(&[("token", "no.such.token")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // Agents simply exchange again, under the new key.
    let minted = call(
        &http_client(),
        &url,
        "POST",
        "/v1/me/access-token",
        Some(&admin.token),
        Some(&json!({"ttl_seconds": 600, "may_act": steady.id})),
    )
    .await;
    let minted = minted.expect(201)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let again = exchange(&url, &minted, &steady).await;
    let again = again.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(kid_of(&again), old_kid, "the signing key was rotated");

    let _ = shutdown.send(());
    server.await.unwrap().unwrap();
}
