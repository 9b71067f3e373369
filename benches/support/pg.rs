//! The PostgreSQL side of the HTTP benchmark: a database of the bench's own in a cluster it was
//! given, dropped afterwards; the same counts the SQLite side checks, read with SQL; the CPU of
//! the cluster's backends serving that database.
#![allow(dead_code)]

use std::collections::HashMap;

use sheping::storage::postgres::PgStore;

/// The cluster's URL: `SHEPING_BENCH_PG`, else `SHEPING_TEST_PG` (which tests/pg_cluster.sh
/// sets); `Err` says why the PostgreSQL part is skipped.
pub fn cluster_url() -> Result<String, String> {
    for var in ["SHEPING_BENCH_PG", "SHEPING_TEST_PG"] {
        if let Ok(url) = std::env::var(var)
            && !url.is_empty()
        {
            return Ok(url);
        }
    }
    Err(
        "neither SHEPING_BENCH_PG nor SHEPING_TEST_PG is set (a postgresql:// URL of a cluster \
         where the bench may CREATE DATABASE; `bash tests/pg_cluster.sh cargo bench --bench \
         http_cycle` starts a throwaway one)"
            .into(),
    )
}

/// The URL with its database (the path after the authority) replaced by `dbname`; the query
/// (`?host=…&port=…`) stays.
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

/// A plain connection (no pool, no schema migration), its connection task on the current
/// runtime.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to PostgreSQL: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A new, empty database in the cluster; dropped (with any connection left) on drop.
pub struct BenchDb {
    pub url: String,
    admin_url: String,
    name: String,
    rt: tokio::runtime::Handle,
}

impl BenchDb {
    pub fn create(rt: &tokio::runtime::Runtime, admin_url: &str) -> BenchDb {
        let name = format!("sheping_bench_{}", std::process::id());
        rt.block_on(async {
            let c = connect(admin_url).await;
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
            c.batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        });
        BenchDb {
            url: with_dbname(admin_url, &name),
            admin_url: admin_url.to_owned(),
            name,
            rt: rt.handle().clone(),
        }
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let (url, sql) = (
            self.admin_url.clone(),
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        let rt = self.rt.clone();
        // On a thread of its own: a drop may run inside the runtime.
        let _ = std::thread::spawn(move || {
            rt.block_on(async {
                let c = connect(&url).await;
                let _ = c.batch_execute(&sql).await;
            })
        })
        .join();
    }
}

/// What the cycle stores, counted straight in the database: read before and after a load to
/// check that every acknowledged cycle was stored once and nothing else was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tally {
    /// Attempts recorded.
    pub attempts: i64,
    /// Members with an attempt: equal to `attempts` when none was recorded twice.
    pub members_attempted: i64,
    /// Contacts still in the queue.
    pub queued: i64,
    /// Attempts whose contact is still in the queue (a complete interview takes it off): 0.
    pub recorded_still_queued: i64,
}

/// One statement, valid on both SQLite and PostgreSQL.
pub const TALLY_SQL: &str = "SELECT (SELECT count(*) FROM attempts),
        (SELECT count(DISTINCT member_id) FROM attempts),
        (SELECT count(*) FROM queue),
        (SELECT count(*) FROM attempts a JOIN queue q ON q.member_id = a.member_id)";

impl Tally {
    pub fn sqlite(path: &std::path::Path) -> Tally {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row(TALLY_SQL, [], |r| {
            Ok(Tally {
                attempts: r.get(0)?,
                members_attempted: r.get(1)?,
                queued: r.get(2)?,
                recorded_still_queued: r.get(3)?,
            })
        })
        .unwrap()
    }

    pub async fn postgres(c: &tokio_postgres::Client) -> Tally {
        let r = c.query_one(TALLY_SQL, &[]).await.unwrap();
        Tally {
            attempts: r.get(0),
            members_attempted: r.get(1),
            queued: r.get(2),
            recorded_still_queued: r.get(3),
        }
    }

    /// Checks `self` (after a load) against `before` and the cycles the clients saw
    /// acknowledged; `Err` names what was lost or doubled.
    pub fn check(&self, before: &Tally, acknowledged: usize) -> Result<String, String> {
        let n = acknowledged as i64;
        let mut wrong = Vec::new();
        if self.attempts - before.attempts != n {
            wrong.push(format!(
                "{} attempts stored for {n} cycles acknowledged",
                self.attempts - before.attempts
            ));
        }
        if self.members_attempted != self.attempts {
            wrong.push(format!(
                "{} attempts for {} members (some recorded twice)",
                self.attempts, self.members_attempted
            ));
        }
        if before.queued - self.queued != n {
            wrong.push(format!(
                "{} contacts left the queue for {n} cycles acknowledged",
                before.queued - self.queued
            ));
        }
        if self.recorded_still_queued != 0 {
            wrong.push(format!(
                "{} recorded contacts still queued",
                self.recorded_still_queued
            ));
        }
        if wrong.is_empty() {
            Ok(format!(
                "{n} cycles acknowledged = {n} attempts stored, each for another member, {n} contacts off the queue"
            ))
        } else {
            Err(wrong.join("; "))
        }
    }
}

/// The audit chain of the database verified as `sheping audit verify` does: its length.
pub async fn verify_audit(url: &str) -> usize {
    let store = PgStore::connect(url).await.unwrap();
    let client = store.client().await.unwrap();
    sheping::storage::postgres::audit::verify(&client)
        .await
        .unwrap()
        .unwrap_or_else(|b| panic!("the audit chain breaks: {b:?}"))
}

/// CPU seconds of each backend process serving the database now (other than `c`'s own), read
/// from `/proc` (a cluster on this machine; an empty map for one elsewhere).
pub async fn backend_cpu(c: &tokio_postgres::Client) -> HashMap<i32, f64> {
    c.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .filter_map(|r| {
        let pid: i32 = r.get(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some((pid, crate::proc_stat_cpu_seconds(&stat)))
    })
    .collect()
}

/// CPU seconds the backends used between two readings (a backend started in between counts
/// from 0); `None` when `/proc` showed none (a remote cluster).
pub fn cpu_between(before: &HashMap<i32, f64>, after: &HashMap<i32, f64>) -> Option<f64> {
    if after.is_empty() {
        return None;
    }
    Some(
        after
            .iter()
            .map(|(pid, s)| s - before.get(pid).copied().unwrap_or(0.0))
            .sum(),
    )
}

/// Settings that decide what a commit costs, as `name=value` pairs.
pub async fn durability(c: &tokio_postgres::Client) -> String {
    let mut out = Vec::new();
    for name in [
        "server_version",
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "shared_buffers",
    ] {
        let v: String = c
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .unwrap()
            .get(0);
        out.push(format!("{name}={v}"));
    }
    out.join(", ")
}

/// Transactions committed and rolled back in the database so far (each statement outside a
/// transaction counts as one), by the cumulative statistics; flushed by each backend within
/// about a second, so read a moment after the load.
pub async fn transactions(c: &tokio_postgres::Client) -> i64 {
    c.batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .unwrap();
    c.query_one(
        "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}
