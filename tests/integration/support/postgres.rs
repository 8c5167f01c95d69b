//! PostgreSQL for the integration tests: when `STEWARD_TEST_POSTGRES` names a server (an
//! admin URL; `.ci/run` starts a private cluster and sets it), every registry the harness
//! starts on a new store gets a schema of its own in that database (the URL sets the search
//! path), which the registry migrates as it opens. Unset: the tests run on SQLite files.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The admin URL of the test cluster, when the suite runs on PostgreSQL.
pub fn admin_url() -> Option<String> {
    std::env::var("STEWARD_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Runs `sql` (several statements, no parameters) as the cluster's admin.
pub fn admin(url: &str, sql: &str) -> Result<(), String> {
    let url = url.to_string();
    let sql = sql.to_string();
    // A thread of its own: callers may be on a test's runtime thread.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            let driver = tokio::spawn(connection);
            let out = client.batch_execute(&sql).await.map_err(|e| {
                e.as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string())
            });
            drop(client);
            let _ = driver.await;
            out
        })
    })
    .join()
    .map_err(|_| "the admin thread panicked".to_string())?
}

/// The extensions the schema needs, made once in the test database (every test's schema finds
/// them through `public` on its search path).
fn extensions(admin_url: &str) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        admin(
            admin_url,
            "CREATE EXTENSION IF NOT EXISTS citext; CREATE EXTENSION IF NOT EXISTS pg_trgm;",
        )
        .expect("create the extensions");
    });
}

/// `url` with its connections' search path set to `schema` (then `public`).
pub fn with_schema(url: &str, schema: &str) -> String {
    let joint = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joint}options=-c%20search_path%3D{schema}%2Cpublic")
}

/// A new, empty schema of its own for one test's registry (the registry migrates it when it
/// opens): its URL. A schema, not a database: a few hundred kilobytes instead of eight
/// megabytes a copy, 260 times a run.
pub fn fresh_database() -> Option<String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let admin_url = admin_url()?;
    extensions(&admin_url);
    let schema = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    if let Err(e) = admin(&admin_url, &format!("CREATE SCHEMA {schema}")) {
        panic!("cannot create the test schema {schema}: {e}");
    }
    Some(with_schema(&admin_url, &schema))
}
