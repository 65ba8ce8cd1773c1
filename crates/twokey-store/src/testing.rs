//! Helpers for tests and benchmarks that must run on both databases.

use sqlx::Connection;

use crate::{Backend, Store};

/// Makes every ledger insert fail, as a full disk or a lost database would
/// (a trigger raising "ledger unavailable"), on either database;
/// [`mend_ledger`] undoes it. May be used again after mending.
pub async fn break_ledger(store: &Store) -> Result<(), sqlx::Error> {
    let stmts: &[&str] = match store.backend() {
        Backend::Sqlite => &["CREATE TRIGGER ledger_down BEFORE INSERT ON ledger BEGIN SELECT RAISE(ABORT, 'ledger unavailable'); END;"],
        Backend::Postgres => &[
            "CREATE OR REPLACE FUNCTION ledger_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'ledger unavailable'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER ledger_down BEFORE INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_down()",
        ],
    };
    for q in stmts {
        sqlx::query(q).execute(store.pool()).await?;
    }
    Ok(())
}

/// Undoes [`break_ledger`].
pub async fn mend_ledger(store: &Store) -> Result<(), sqlx::Error> {
    let q = match store.backend() {
        Backend::Sqlite => "DROP TRIGGER ledger_down",
        Backend::Postgres => "DROP TRIGGER ledger_down ON ledger",
    };
    sqlx::query(q).execute(store.pool()).await?;
    Ok(())
}

/// PostgreSQL server URL for tests: `TWOKEY_TEST_PG`, default the local
/// trust-auth server.
pub fn pg_server_url() -> String {
    std::env::var("TWOKEY_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty PostgreSQL database with a unique name and returns its URL.
pub async fn fresh_postgres(prefix: &str) -> Result<String, sqlx::Error> {
    use rand_name::name;
    let server = pg_server_url();
    let db = format!("{prefix}_{}", name());
    let mut conn = sqlx::PgConnection::connect(&server).await?;
    sqlx::query(&format!("CREATE DATABASE \"{db}\""))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let base = server
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(server);
    Ok(format!("{base}/{db}"))
}

/// A fresh SQLite database file under `dir`.
pub fn fresh_sqlite(dir: &std::path::Path) -> String {
    format!(
        "sqlite://{}",
        dir.join(format!("twokey-{}.db", rand_name::name()))
            .display()
    )
}

/// The database URLs every backend-generic test runs against: a fresh SQLite
/// file under `dir` and a fresh PostgreSQL database. PostgreSQL is required
/// (it runs on every development and CI machine); set `TWOKEY_TEST_SKIP_PG=1`
/// to run on SQLite alone.
pub async fn both(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    let mut urls = vec![fresh_sqlite(dir)];
    if std::env::var("TWOKEY_TEST_SKIP_PG").ok().as_deref() != Some("1") {
        match fresh_postgres(prefix).await {
            Ok(u) => urls.push(u),
            Err(e) => panic!("PostgreSQL is required for this test ({}): {e}; start it or set TWOKEY_TEST_SKIP_PG=1", pg_server_url()),
        }
    }
    urls
}

mod rand_name {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    static N: AtomicU64 = AtomicU64::new(0);

    /// Unique enough for test databases: time, pid and a counter.
    pub(super) fn name() -> String {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        format!(
            "{:x}_{}_{}",
            t,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }
}
