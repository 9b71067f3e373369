//! PostgreSQL for tests: a database of its own per test in the cluster that
//! `tests/pg_cluster.sh` started (its URL in `SHEPING_TEST_PG`), dropped afterwards.
//!
//! Without `SHEPING_TEST_PG` a PostgreSQL test skips, loudly, unless `SHEPING_REQUIRE_PG=1`
//! (set by tests/run.sh, which always starts the cluster): then it fails.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh, empty database in the test cluster; dropped (connections included) on drop.
pub struct PgDb {
    /// Its URL, for `PgStore::connect` or `--db`.
    pub url: String,
    admin_url: String,
    name: String,
}

/// The test cluster's URL, or `None` (after saying so on stderr) when the test should skip.
pub fn cluster_url(test: &str) -> Option<String> {
    match std::env::var("SHEPING_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("SHEPING_REQUIRE_PG").as_deref() == Ok("1") => panic!(
            "{test}: SHEPING_REQUIRE_PG=1 but SHEPING_TEST_PG is unset: run the tests through \
             tests/run.sh or `bash tests/pg_cluster.sh cargo test …`, which start a PostgreSQL cluster"
        ),
        _ => {
            // Straight to the process's stderr: the test harness swallows eprintln! of a test
            // that passes, and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! SKIPPED {test}: no PostgreSQL (SHEPING_TEST_PG is unset). Run \
                 `bash tests/pg_cluster.sh cargo test --test it pg_schema::` to start a throwaway \
                 cluster for it. !!!!!!!!\n"
            );
            None
        }
    }
}

/// A new database for `test`, or `None` when PostgreSQL tests skip (see [`cluster_url`]).
pub fn fresh_db(test: &str) -> Option<PgDb> {
    new_db(test, None)
}

/// A new database for `test` that starts as a copy of `template` (PostgreSQL copies it file by
/// file: much faster than building it again). Nothing may be connected to `template`.
pub fn copy_of(test: &str, template: &PgDb) -> Option<PgDb> {
    new_db(test, Some(&template.name))
}

fn new_db(test: &str, template: Option<&str>) -> Option<PgDb> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let admin_url = cluster_url(test)?;
    let name = format!(
        "sheping_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        test.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(30)
            .collect::<String>()
    )
    .to_lowercase();
    match template {
        // The template's last connections may still be closing: wait for them (bounded).
        Some(t) => {
            let sql = format!("CREATE DATABASE {name} TEMPLATE {t}");
            let mut tries = 0;
            while let Err(e) = try_admin(&admin_url, &sql) {
                tries += 1;
                assert!(
                    tries < 100 && e.contains("being accessed by other users"),
                    "{sql}: {e}"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        None => admin(&admin_url, &format!("CREATE DATABASE {name}")),
    }
    Some(PgDb {
        url: with_dbname(&admin_url, &name),
        admin_url,
        name,
    })
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // WITH (FORCE): a pool of the test may still hold connections.
        admin(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs one statement on the cluster's maintenance database. On a thread of its own, so it
/// works from inside a test's Tokio runtime too.
fn admin(url: &str, sql: &str) {
    try_admin(url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn try_admin(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        block_on(async {
            let client = connect(&url).await;
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| match e.as_db_error() {
                    Some(db) => db.message().to_string(),
                    None => e.to_string(),
                })
        })
    })
    .join()
    .expect("admin statement")
}

/// A plain connection (no pool), its connection task spawned on the current runtime.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Runs a future to completion on a fresh runtime (tests are plain `#[test]`s).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

/// The URL with its database (the path after the authority) replaced by `dbname`.
pub fn with_dbname(url: &str, dbname: &str) -> String {
    let authority_start = url.find("://").map(|i| i + 3).expect("a URL");
    let (head, rest) = url.split_at(authority_start);
    let query_start = rest.find('?').unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(query_start);
    let authority = match before_query.find('/') {
        Some(slash) => &before_query[..slash],
        None => before_query,
    };
    format!("{head}{authority}/{dbname}{query}")
}
