//! PostgreSQL for the integration tests: when `STEWARD_TEST_POSTGRES` names a server (an
//! admin URL; `.ci/run` starts a private cluster and sets it), every registry the harness
//! starts on a new store gets a database of its own there, copied from a template migrated
//! once per test process. Unset: the tests run on SQLite files.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use steward::registry::clock::Clock;
use steward::registry::store::SqliteStore;

/// The admin URL of the test cluster, when the suite runs on PostgreSQL.
pub fn admin_url() -> Option<String> {
    std::env::var("STEWARD_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn admin(url: &str, sql: &str) -> Result<(), String> {
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

/// The migrated template this process copies every test database from.
fn template(admin_url: &str) -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("steward_tpl_{}", std::process::id());
        admin(admin_url, &format!("DROP DATABASE IF EXISTS {name}")).expect("drop an old template");
        admin(admin_url, &format!("CREATE DATABASE {name}")).expect("create the template");
        let store =
            SqliteStore::connect_postgres(&with_database(admin_url, &name), Clock::system())
                .expect("migrate the template database");
        drop(store);
        name
    })
}

/// A new, migrated, empty database for one test: its URL.
pub fn fresh_database() -> Option<String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let admin_url = admin_url()?;
    let template = template(&admin_url);
    let name = format!(
        "steward_t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    // The template's last connections may still be closing: CREATE DATABASE refuses a template
    // in use, so try again briefly.
    let mut last = String::new();
    for _ in 0..100 {
        match admin(
            &admin_url,
            &format!("CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY"),
        ) {
            Ok(()) => return Some(with_database(&admin_url, &name)),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("cannot create the test database {name}: {last}");
}
