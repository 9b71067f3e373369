//! The operator's cycle over HTTP (record a complete interview, which claims the next contact
//! and answers with the next call screen) with 64 concurrent operators on loopback against a round of
//! 1,000,000 members, beside two baselines measured in the same run: the same clients hitting
//! `/healthz` of the same server (what the HTTP stack itself allows), and the rows a cycle
//! stores written straight with rusqlite, with no server at all (what SQLite itself allows on
//! this machine). Also: claiming at 10,000 vs 1,000,000 members (O(log n)), and the server's
//! peak memory.
//!
//! Then, given a PostgreSQL cluster (`SHEPING_BENCH_PG`, or `SHEPING_TEST_PG` as
//! tests/pg_cluster.sh sets it: a postgresql:// URL where the bench may CREATE DATABASE), the
//! same round copied there with `sheping migrate` and the same 64 clients against one
//! `sheping serve --db postgres://…`, then against two instances on that database with the
//! clients split half and half (each operator still signs in once, on one instance, as in the
//! SQLite run), each beside the SQLite figure of the same run. After every load the bench
//! counts in the database that each acknowledged cycle was stored once and nothing else was.
//!
//! Run: `cargo bench --bench http_cycle` (MEMBERS=..., CLIENTS=..., SECONDS=... to change;
//! SHEPING_BIN=path to run another build of the server; PAGE_SIZE=N makes the database with
//! pages of N bytes instead of SQLite's 4096), or
//! `bash tests/pg_cluster.sh cargo bench --bench http_cycle` for the PostgreSQL part too.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/operator_client.rs"]
mod operator_client;
#[path = "support/pg.rs"]
mod pg;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use operator_client::OperatorClient;
use sheping::domain::disposition::Outcome;
use sheping::storage::prelude::*;
use sheping::storage::sqlite::SqliteStore;

/// This process's CPU time (user + system) in seconds: the bench's clients, between two calls.
fn own_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    proc_stat_cpu_seconds(&stat)
}

/// utime + stime of a `/proc/PID/stat` line, in seconds (at the usual 100 ticks a second).
fn proc_stat_cpu_seconds(stat: &str) -> f64 {
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    if f.len() < 13 {
        return f64::NAN;
    }
    (f[11] + f[12]) / 100.0
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A round of `members` (45 per unit) planned over `operators`; returns the seconds it took.
fn build(path: &std::path::Path, members: usize, operators: usize) -> f64 {
    let t = Instant::now();
    fixture::planned_round(path, "bench", members, operators);
    t.elapsed().as_secs_f64()
}

/// Median claim latency straight on the store (claim, then release), in microseconds.
fn claim_latency(path: &std::path::Path, samples: usize) -> f64 {
    let store = SqliteStore::open(path).unwrap();
    let round = store.round("bench").unwrap();
    let op = store.user("op0").unwrap();
    let now = chrono::Utc::now();
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let c = store
            .claim_next(&round, &op, now)
            .unwrap()
            .expect("a contact");
        times.push(t.elapsed().as_secs_f64() * 1e6);
        store.release(&c.token, &op).unwrap();
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Median time of each store call the operator's cycle makes, on the same database (µs): where
/// the cycle's server time goes, without HTTP.
fn cycle_breakdown(path: &std::path::Path, samples: usize) -> Vec<(&'static str, f64)> {
    use sheping::storage::AttemptInput;
    use sheping::storage::prelude::*;
    let store = SqliteStore::open(path).unwrap();
    let round = store.round("bench").unwrap();
    let op = store.user("op1").unwrap();
    let now = chrono::Utc::now();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e6
    };
    let mut rounds = Vec::new();
    let mut held = Vec::new();
    let mut day = Vec::new();
    let mut cycle = Vec::new();
    let input = AttemptInput {
        outcome: Some(sheping::domain::disposition::Outcome::Complete),
        answers: vec![Some(0), Some(1), Some(0), Some(0), Some(1)],
        answer_ms: vec![Some(4000); 5],
        comment: None,
        appointment: None,
    };
    let mut claim = store
        .claim_next(&round, &op, now)
        .unwrap()
        .expect("a contact");
    for _ in 0..samples {
        rounds.push(time(&mut || {
            store.operator_rounds(op.id).unwrap();
        }));
        held.push(time(&mut || {
            store.held_claims(&round, &op, now).unwrap();
        }));
        day.push(time(&mut || {
            store.operator_day(&round, op.id, 0, now).unwrap();
        }));
        let mut next = None;
        cycle.push(time(&mut || {
            next = store
                .record_then_claim(&round, &claim.token, &op, &input, now)
                .unwrap()
                .1;
        }));
        let next = next.expect("a next contact");
        claim = store.held_claims(&round, &op, now).unwrap().remove(0);
        assert_eq!(claim.token, next.token);
    }
    vec![
        ("operator_rounds", median(rounds)),
        ("held_claims (with the contact's history)", median(held)),
        ("operator_day (the screen's counts)", median(day)),
        ("record_then_claim (one durable write)", median(cycle)),
    ]
}

/// Which rows the raw SQLite baseline writes for each cycle.
#[derive(Clone, Copy, PartialEq)]
enum RawRows {
    /// All the rows a cycle stores: the attempt, the recorded contact off the queue, the next
    /// contact found and claimed, the claim's audit entry.
    Cycle,
    /// Only the two appends: the attempt and an audit entry, with no queue at all (the least
    /// any durable design of the cycle stores).
    AppendsOnly,
}

impl RawRows {
    fn label(self) -> &'static str {
        match self {
            RawRows::Cycle => "the cycle's rows",
            RawRows::AppendsOnly => "the two appends only",
        }
    }
}

/// A baseline for the cycle's write: `rows` written by one thread with plain prepared
/// statements, 64 cycles to a commit (the most the 64 clients could ever put in one batch),
/// on the same database with the store's durability and integrity settings (WAL,
/// `synchronous=FULL`, foreign keys, the same schema, indexes and tally triggers). What SQLite
/// itself allows for a cycle: no HTTP, no session, no checks, no hash chain, no savepoints, no
/// call screen. Continues from the claims the HTTP load left on each operator's screen.
fn raw_sqlite_cycles(path: &std::path::Path, secs: u64, rows: RawRows) -> Load {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.pragma_update(None, "mmap_size", 1_i64 << 30).unwrap();
    conn.pragma_update(None, "cache_size", -8_192).unwrap();
    let round: i64 = conn
        .query_row("SELECT id FROM rounds WHERE key = 'bench'", [], |r| {
            r.get(0)
        })
        .unwrap();
    // (operator, member on screen, its claim token, claimed at)
    let mut held: Vec<(i64, i64, String, i64)> = conn
        .prepare("SELECT operator_id, member_id, claim_token, claimed_at FROM queue WHERE round_id = ?1 AND claim_token IS NOT NULL")
        .unwrap()
        .query_map([round], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        !held.is_empty(),
        "the HTTP load left claims to continue from"
    );
    let next_sql =
        "SELECT member_id FROM queue WHERE operator_id = ?1 AND round_id = ?2 AND priority = 2
                      AND claim_token IS NULL ORDER BY sort_key LIMIT ?3";
    // Appends only: each operator's coming contacts, read beforehand (last first).
    let mut coming: Vec<Vec<i64>> = held
        .iter()
        .map(|(op, ..)| {
            if rows == RawRows::Cycle {
                return Vec::new();
            }
            let mut next: Vec<i64> = conn
                .prepare(next_sql)
                .unwrap()
                .query_map([*op, round, 20_000], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            next.reverse();
            next
        })
        .collect();
    let mut audit_id: i64 = conn
        .query_row("SELECT COALESCE(MAX(id), 0) FROM audit_log", [], |r| {
            r.get(0)
        })
        .unwrap();
    let hash = "0".repeat(64);
    let mut seq: u64 = 0;
    let mut lat = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    'load: while Instant::now() < deadline {
        let t = Instant::now();
        let tx = conn.unchecked_transaction().unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        for ((op, member, token, claimed_at), coming) in held.iter_mut().zip(&mut coming) {
            tx.prepare_cached(
                "INSERT INTO attempts (member_id, operator_id, attempt_no, claim_token, claimed_at, recorded_at, outcome, aapor_code,
                                       answers, answer_ms, comment, appointment_at, source)
                 VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, '[0,1,0,0,1]', '[4000,8000,12000,16000,20000]', NULL, NULL, 'web')",
            )
            .unwrap()
            .execute(rusqlite::params![
                *member,
                *op,
                token.as_str(),
                *claimed_at,
                now,
                Outcome::Complete.key(),
                Outcome::Complete.aapor_code()
            ])
            .unwrap();
            seq += 1;
            // Time first, as the server's tokens: both token indexes grow at their right edge.
            let next_token = format!("{now:011x}{seq:016x}{op:016x}");
            let next = match rows {
                RawRows::Cycle => {
                    tx.prepare_cached("DELETE FROM queue WHERE member_id = ?1")
                        .unwrap()
                        .execute([*member])
                        .unwrap();
                    // A small round (MEMBERS=…) may run out of contacts: the baseline ends there.
                    let next: Option<i64> = rusqlite::OptionalExtension::optional(
                        tx.prepare_cached(next_sql)
                            .unwrap()
                            .query_row([*op, round, 1], |r| r.get(0)),
                    )
                    .unwrap();
                    let Some(next) = next else {
                        tx.commit().unwrap();
                        break 'load;
                    };
                    tx.prepare_cached(
                        "UPDATE queue SET claim_token = ?1, claimed_at = ?2, claim_expires = ?3 WHERE member_id = ?4",
                    )
                    .unwrap()
                    .execute(rusqlite::params![next_token, now, now + 900_000, next])
                    .unwrap();
                    next
                }
                RawRows::AppendsOnly => match coming.pop() {
                    Some(next) => next,
                    None => {
                        tx.commit().unwrap();
                        break 'load;
                    }
                },
            };
            audit_id += 1;
            tx.prepare_cached(
                "INSERT INTO audit_log (id, at, actor, action, round_key, detail, prev_hash, hash)
                 VALUES (?1, ?2, 'raw', 'contact.claim', 'bench', ?3, ?4, ?4)",
            )
            .unwrap()
            .execute(rusqlite::params![
                audit_id,
                now,
                format!("{{\"member_id\":{next}}}"),
                hash
            ])
            .unwrap();
            (*member, *token, *claimed_at) = (next, next_token, now);
        }
        tx.commit().unwrap();
        // Every cycle of a commit is acknowledged when the commit is.
        let ms = t.elapsed().as_secs_f64() * 1e3;
        lat.extend(std::iter::repeat_n(ms, held.len()));
    }
    summarise(lat, start.elapsed().as_secs_f64())
}

/// The `sheping` binary: SHEPING_BIN runs another build of the server against the same load
/// (A/B runs).
fn server_bin() -> String {
    std::env::var("SHEPING_BIN").unwrap_or(env!("CARGO_BIN_EXE_sheping").into())
}

struct ServerProcess {
    child: std::process::Child,
    url: String,
}

impl ServerProcess {
    /// `sheping --db DB serve` on a free loopback port: a SQLite file or a postgres:// URL.
    fn start(db: &str) -> ServerProcess {
        let mut child = Command::new(server_bin())
            .args(["--db", db, "serve", "--addr", "127.0.0.1:0"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let url = loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0, "server exited");
            if let Some(i) = line.find("http://") {
                break line[i..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_string();
            }
        };
        std::thread::spawn(move || for _ in reader.lines() {});
        ServerProcess { child, url }
    }

    /// CPU seconds the server has used (user + system); /proc counts in USER_HZ = 100.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        proc_stat_cpu_seconds(&stat)
    }

    /// A `/proc/PID/status` figure given in kB (`VmHWM:`, `RssAnon:`…), in MiB.
    fn status_mib(&self, key: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// Resident memory now, (anonymous, file-backed) in MiB: the file-backed part is the
    /// memory-mapped database, shared with the OS page cache.
    fn rss_split_mib(&self) -> (f64, f64) {
        (self.status_mib("RssAnon:"), self.status_mib("RssFile:"))
    }

    fn peak_rss_mib(&self) -> f64 {
        self.status_mib("VmHWM:")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Load {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    n: usize,
}

async fn healthz_load(url: &str, clients: usize, secs: u64) -> Load {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let http = http.clone();
        let url = format!("{url}/healthz");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                http.get(&url).send().await.unwrap().bytes().await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    summarise(all, start.elapsed().as_secs_f64())
}

fn summarise(mut lat: Vec<f64>, secs: f64) -> Load {
    lat.sort_by(f64::total_cmp);
    Load {
        per_sec: lat.len() as f64 / secs,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        n: lat.len(),
    }
}

/// Signs in every operator and puts a contact on each screen. With several servers, operator
/// `op{i}` signs in on server `i * servers / clients` (the first ones on the first server…):
/// each operator still has one client, on one server.
async fn sign_in_all(urls: &[&str], clients: usize) -> Vec<OperatorClient> {
    let mut signed = Vec::new();
    for i in 0..clients {
        let url = urls[i * urls.len() / clients];
        let mut c = OperatorClient::sign_in(url, &format!("op{i}"), fixture::PASSWORD, "bench")
            .await
            .unwrap();
        assert!(c.next().await.unwrap(), "op{i} has a contact");
        signed.push(c);
    }
    signed
}

async fn cycle_load(signed: Vec<OperatorClient>, secs: u64) -> Load {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = signed
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    c.complete(&[1, 2, 1, 1, 2]).await.unwrap();
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    summarise(all, start.elapsed().as_secs_f64())
}

/// Writes the database's pages still waiting in the OS cache to disk before a load, so the
/// kernel's writeback of the setup (or of a copy of the file) does not run during the
/// measurement and slow the server's own fsyncs.
fn settle(path: &std::path::Path) {
    for p in [path.to_path_buf(), path.with_extension("db-wal")] {
        if let Ok(f) = std::fs::File::open(&p) {
            f.sync_all().unwrap();
        }
    }
}

fn main() {
    let members = env("MEMBERS", 1_000_000);
    let clients = env("CLIENTS", 64);
    let secs = env("SECONDS", 10) as u64;
    if let Ok(path) = std::env::var("BUILD_ONLY") {
        // Builds the benchmark's database at PATH and stops (for profiling by hand).
        build(std::path::Path::new(&path), members, clients);
        return;
    }
    if let Ok(path) = std::env::var("BREAKDOWN_ONLY") {
        for (what, us) in cycle_breakdown(std::path::Path::new(&path), 300) {
            println!("{what}: {us:.0} µs");
        }
        return;
    }
    if let Ok(path) = std::env::var("RAW_ONLY") {
        // Only the raw SQLite baseline, on a database an HTTP load has run against.
        for rows in [RawRows::Cycle, RawRows::AppendsOnly] {
            settle(std::path::Path::new(&path));
            let raw = raw_sqlite_cycles(std::path::Path::new(&path), secs, rows);
            println!(
                "raw SQLite cycle writes ({}): {:.0} cycles/s ({} cycles)",
                rows.label(),
                raw.per_sec,
                raw.n
            );
        }
        return;
    }
    if let Ok(path) = std::env::var("LOAD_ONLY") {
        // Only the HTTP load against an existing database at PATH (for profiling by hand).
        settle(std::path::Path::new(&path));
        let server = ServerProcess::start(&path);
        println!("server pid {}", server.child.id());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let signed = rt.block_on(sign_in_all(&[&server.url], clients));
        let cpu = server.cpu_seconds();
        let cycle = rt.block_on(cycle_load(signed, secs));
        let cpu = server.cpu_seconds() - cpu;
        println!(
            "operator cycle: {:.0} cycles/s, p50 {:.2} ms, p99 {:.2} ms ({} cycles), server CPU {:.0} µs per cycle",
            cycle.per_sec,
            cycle.p50_ms,
            cycle.p99_ms,
            cycle.n,
            cpu * 1e6 / cycle.n as f64
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    let small = dir.path().join("small.db");
    build(&small, 10_000, clients);
    let big = dir.path().join("big.db");
    let built = build(&big, members, clients);
    println!("setup: {members} members, {clients} operators, built in {built:.1} s");
    // The PostgreSQL part copies the round as built, before any load here changes it (the raw
    // baseline's audit entries, a fixed string, would not verify, and `migrate` checks).
    let pg_cluster = pg::cluster_url();
    let pristine = dir.path().join("pristine.db");
    if pg_cluster.is_ok() {
        for ext in ["db", "db-wal"] {
            if big.with_extension(ext).exists() {
                std::fs::copy(big.with_extension(ext), pristine.with_extension(ext)).unwrap();
            }
        }
        settle(&pristine);
    }

    let claim_small = claim_latency(&small, 2000);
    let claim_big = claim_latency(&big, 2000);
    println!(
        "claim next (store, median): {claim_small:.0} µs at 10,000 members, {claim_big:.0} µs at {members} members, ratio {:.2}",
        claim_big / claim_small
    );

    let stored_before = pg::Tally::sqlite(&big);
    settle(&big);
    let server = ServerProcess::start(big.to_str().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cpu0 = server.cpu_seconds();
    let own0 = own_cpu_seconds();
    let health = rt.block_on(healthz_load(&server.url, clients, secs.min(5)));
    let own1 = own_cpu_seconds();
    let cpu_health = server.cpu_seconds() - cpu0;
    // The sign-ins (a password hash each) between the two loads are counted in neither.
    let signed = rt.block_on(sign_in_all(&[&server.url], clients));
    let cpu1 = server.cpu_seconds();
    let own2 = own_cpu_seconds();
    let cycle = rt.block_on(cycle_load(signed, secs));
    let cpu2 = server.cpu_seconds();
    let own3 = own_cpu_seconds();
    println!(
        "/healthz baseline: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms ({} requests)",
        health.per_sec, health.p50_ms, health.p99_ms, health.n
    );
    println!(
        "operator cycle (record complete + claim next + next screen): {:.0} cycles/s, p50 {:.2} ms, p99 {:.2} ms ({} cycles)",
        cycle.per_sec, cycle.p50_ms, cycle.p99_ms, cycle.n
    );
    println!(
        "server CPU: {:.1} µs per /healthz request, {:.0} µs per cycle",
        cpu_health * 1e6 / health.n as f64,
        (cpu2 - cpu1) * 1e6 / cycle.n as f64
    );
    println!(
        "bench clients' CPU (this process): {:.1} µs per /healthz request, {:.0} µs per cycle",
        (own1 - own0) * 1e6 / health.n as f64,
        (own3 - own2) * 1e6 / cycle.n as f64
    );
    println!(
        "ratio cycle/healthz throughput: {:.2}",
        cycle.per_sec / health.per_sec
    );
    // The same comparison in the server's CPU, which moves far less with the machine's speed
    // than throughput does: how many /healthz requests one cycle costs.
    println!(
        "server CPU per cycle / per /healthz request: {:.1}",
        ((cpu2 - cpu1) / cycle.n as f64) / (cpu_health / health.n as f64)
    );
    let (anon, file) = server.rss_split_mib();
    println!(
        "server peak RSS: {:.1} MiB (at the end: {anon:.1} MiB anonymous, {file:.1} MiB file-backed, i.e. the mapped database)",
        server.peak_rss_mib()
    );
    drop(server);
    match pg::Tally::sqlite(&big).check(&stored_before, cycle.n) {
        Ok(fine) => println!("stored (SQLite): {fine}"),
        Err(wrong) => panic!("the SQLite run lost or doubled cycles: {wrong}"),
    }
    settle(&big);
    let raw = raw_sqlite_cycles(&big, secs, RawRows::Cycle);
    settle(&big);
    let appends = raw_sqlite_cycles(&big, secs, RawRows::AppendsOnly);
    for (rows, load) in [(RawRows::Cycle, &raw), (RawRows::AppendsOnly, &appends)] {
        println!(
            "raw SQLite baseline ({}; one thread, 64 cycles a commit): {:.0} cycles/s ({} cycles), ratio to /healthz {:.2}",
            rows.label(),
            load.per_sec,
            load.n,
            load.per_sec / health.per_sec
        );
    }
    println!(
        "ratio cycle/raw SQLite throughput (the cycle's rows): {:.2}",
        cycle.per_sec / raw.per_sec
    );
    match pg_cluster {
        Err(why) => println!("PostgreSQL part skipped: {why}"),
        Ok(cluster) => postgres_part(&rt, &cluster, &pristine, clients, secs, &health, &cycle),
    }
}

/// The same round, copied into a new database of the cluster with `sheping migrate`, under the
/// same load: one `sheping serve` on it, then two with the clients split half and half. Each
/// is reported beside the SQLite cycle and the `/healthz` baseline of this run.
fn postgres_part(
    rt: &tokio::runtime::Runtime,
    cluster: &str,
    source: &std::path::Path,
    clients: usize,
    secs: u64,
    health: &Load,
    sqlite: &Load,
) {
    let db = pg::BenchDb::create(rt, cluster);
    let t = Instant::now();
    let out = Command::new(server_bin())
        .args([
            "migrate",
            "--from",
            source.to_str().unwrap(),
            "--to",
            &db.url,
        ])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sheping migrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "PostgreSQL: the round copied with `sheping migrate` in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let check = rt.block_on(pg::connect(&db.url));
    println!(
        "PostgreSQL settings: {}",
        rt.block_on(pg::durability(&check))
    );
    let mut before = rt.block_on(pg::Tally::postgres(&check));
    for instances in [1, 2] {
        // The copy's (or the last load's) dirty pages to disk before the load, as settle()
        // does for SQLite; refused without the rights to, which only makes the run noisier.
        if let Err(e) = rt.block_on(check.batch_execute("CHECKPOINT")) {
            println!("PostgreSQL: CHECKPOINT before the load refused: {e}");
        }
        let servers: Vec<ServerProcess> = (0..instances)
            .map(|_| ServerProcess::start(&db.url))
            .collect();
        let urls: Vec<&str> = servers.iter().map(|s| s.url.as_str()).collect();
        let signed = rt.block_on(sign_in_all(&urls, clients));
        // The sign-ins' transactions reach the statistics first (each backend flushes them
        // within a second).
        std::thread::sleep(Duration::from_millis(1500));
        let xact0 = rt.block_on(pg::transactions(&check));
        let cpu0: f64 = servers.iter().map(ServerProcess::cpu_seconds).sum();
        let pg0 = rt.block_on(pg::backend_cpu(&check));
        let load = rt.block_on(cycle_load(signed, secs));
        let cpu1: f64 = servers.iter().map(ServerProcess::cpu_seconds).sum();
        let pg1 = rt.block_on(pg::backend_cpu(&check));
        let rss: Vec<String> = servers
            .iter()
            .map(|s| format!("{:.1}", s.peak_rss_mib()))
            .collect();
        drop(servers);
        std::thread::sleep(Duration::from_millis(1500));
        let xacts = rt.block_on(pg::transactions(&check)) - xact0;
        let label = match instances {
            1 => format!("PostgreSQL, one instance ({clients} clients)"),
            n => format!(
                "PostgreSQL, {n} instances on one database ({} clients each)",
                clients / n
            ),
        };
        println!(
            "{label}: {:.0} cycles/s, p50 {:.2} ms, p99 {:.2} ms ({} cycles); ratio to the SQLite cycle {:.2}, to /healthz {:.2}",
            load.per_sec,
            load.p50_ms,
            load.p99_ms,
            load.n,
            load.per_sec / sqlite.per_sec,
            load.per_sec / health.per_sec
        );
        let backends = pg::cpu_between(&pg0, &pg1)
            .map_or("n/a (not on this machine)".into(), |s| {
                format!("{:.0} µs", s * 1e6 / load.n as f64)
            });
        println!(
            "{label}: per cycle: {:.1} PostgreSQL transactions (a statement outside one counts as one), CPU: sheping {:.0} µs, PostgreSQL backends {backends}; sheping peak RSS {} MiB",
            xacts as f64 / load.n as f64,
            (cpu1 - cpu0) * 1e6 / load.n as f64,
            rss.join(" + ")
        );
        let after = rt.block_on(pg::Tally::postgres(&check));
        match after.check(&before, load.n) {
            Ok(fine) => println!("stored ({label}): {fine}"),
            Err(wrong) => panic!("{label} lost or doubled cycles: {wrong}"),
        }
        before = after;
    }
    let entries = rt.block_on(pg::verify_audit(&db.url));
    println!("PostgreSQL: the audit chain verifies after both loads ({entries} entries)");
}
