//! Roster import of 1,000,000 generated rows, beside `sqlite3 .import` of the same CSV into a
//! file database on the same machine in the same run. Reports rows/s, the throughput ratio to
//! sqlite3 and the peak memory of the import (the bench process's VmHWM, which the import
//! dominates: the rows are streamed, never held whole).
//!
//! sqlite3 and this import run in turn, ROUNDS times (5 unless set), each into new files; the
//! figures are the medians of the rounds, as one round on a shared machine proves little.
//!
//! Run: `cargo bench --bench roster_import` (ROWS=... to change the size; for A/B runs in one
//! binary: SQLITE_MEMSTATUS=1 turns SQLite's memory statistics back on, as before the eleventh
//! session; PAGE_SIZE=N makes the database with pages of N bytes instead of SQLite's 4096).

use std::io::Write;
use std::time::Instant;

use sheping::domain::stats;
use sheping::domain::unit::{NewUnit, UnitKind};
use sheping::imports::{self, RosterImport};
use sheping::storage::NewRound;
use sheping::storage::prelude::*;
use sheping::storage::sqlite::SqliteStore;

fn main() {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    // A/B runs against the build before the eleventh session in one binary: SQLite's memory
    // statistics back on (they are off by default in our build), which must happen before
    // SQLite is first initialised.
    if std::env::var("SQLITE_MEMSTATUS").as_deref() == Ok("1") {
        // SAFETY: no connection exists yet and no other thread uses SQLite.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                1 as std::ffi::c_int,
            )
        };
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK, "SQLITE_CONFIG_MEMSTATUS");
        println!("SQLite memory statistics: on (SQLITE_MEMSTATUS=1)");
    }
    let per_unit = 45;
    let n_units = rows.div_ceil(per_unit);
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("roster.csv");

    // Messy-but-valid phones, as rosters come: spaces, dashes and +86 prefixes.
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv_path).unwrap());
    writeln!(out, "参评单位,姓名,联系电话,代表类别,工作单位及职务").unwrap();
    for i in 0..rows {
        let unit = i / per_unit;
        let n = 3_000_000_000u64 + i as u64;
        let phone = match i % 3 {
            0 => format!(
                "1{} {:04} {:05}",
                3 + n % 7,
                (n % 1_000_000_000) / 100_000,
                n % 100_000
            ),
            1 => format!("+86-1{}{:09}", 3 + n % 7, n % 1_000_000_000),
            _ => format!("1{}-{:09}", 3 + n % 7, n % 1_000_000_000),
        };
        let cat = if i % 15 == 0 { "人大代表" } else { "" };
        writeln!(out, "单位{unit:06},代表{i},{phone},{cat},某社区居民").unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let size = std::fs::metadata(&csv_path).unwrap().len();
    println!(
        "roster import: {rows} rows, {n_units} units, CSV {:.1} MiB",
        size as f64 / 1048576.0
    );

    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    let before_hwm = vm_hwm();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 1..=rounds {
        // Each round imports into fresh files, sqlite3 first, then sheping.
        let base = baseline(&csv_path, &dir.path().join(format!("baseline-{round}.db")));
        let us = import(
            &csv_path,
            &dir.path().join(format!("sheping-{round}.db")),
            rows,
            n_units,
        );
        match &base {
            Some(b) => println!(
                "round {round}: sheping {:.2} s, sqlite3 {:.2} s, ratio {:.2}; CPU (user + system): sheping {:.2} s (the writing thread {:.2} s), sqlite3 {:.2} s",
                us.timed.secs,
                b.secs,
                b.secs / us.timed.secs,
                us.timed.cpu,
                us.writer_cpu,
                b.cpu
            ),
            None => println!("round {round}: sheping {:.2} s", us.timed.secs),
        }
        if round == 1 {
            println!(
                "database: page size {}, file {:.1} MiB (sqlite3's: {:.1} MiB)",
                us.page_size,
                us.timed.db_mib,
                base.as_ref().map_or(0.0, |b| b.db_mib)
            );
        }
        ours.push(us);
        theirs.extend(base);
    }

    let secs = median(ours.iter().map(|r| r.timed.secs));
    println!(
        "sheping roster import: {secs:.2} s ({:.0} rows/s, reading, checking and storing; median of {rounds} rounds)",
        rows as f64 / secs
    );
    match (before_hwm, vm_hwm()) {
        (Some(before), Some(after)) => println!(
            "peak memory (VmHWM): {:.1} MiB (before the imports: {:.1} MiB)",
            after as f64 / 1048576.0,
            before as f64 / 1048576.0
        ),
        _ => println!("peak memory: /proc/self/status not available"),
    }
    if theirs.len() == ours.len() {
        let base_secs = median(theirs.iter().map(|r| r.secs));
        println!(
            "sqlite3 .import:       {base_secs:.2} s ({:.0} rows/s; median of {rounds} rounds)",
            rows as f64 / base_secs
        );
        // Rounds alternate, so each ratio compares runs seconds apart: on a shared machine
        // one round proves little, the median of several does.
        let ratios: Vec<f64> = theirs
            .iter()
            .zip(&ours)
            .map(|(b, s)| b.secs / s.timed.secs)
            .collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        println!(
            "ratio sheping/sqlite3 throughput: {:.2} (median of {rounds} rounds, {lo:.2}–{hi:.2}, {} at 1.0 or above)",
            median(ratios.iter().copied()),
            ratios.iter().filter(|&&r| r >= 1.0).count()
        );
        println!(
            "CPU time (user + system), medians: sheping {:.2} s (the writing thread {:.2} s), sqlite3 {:.2} s",
            median(ours.iter().map(|r| r.timed.cpu)),
            median(ours.iter().map(|r| r.writer_cpu)),
            median(theirs.iter().map(|r| r.cpu))
        );
    } else {
        println!(
            "sqlite3 .import: NOT AVAILABLE on this machine, no ratio (apt-get install -y sqlite3)"
        );
    }
}

/// The median of values the bench measured (at least one: every figure has a round).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    stats::median(&values.collect::<Vec<_>>()).expect("at least one round")
}

/// One timed import: wall time, CPU time in seconds, and the size of the file it made.
struct Timed {
    secs: f64,
    cpu: f64,
    db_mib: f64,
}

/// Our import, with what only it has: the writing thread's CPU time and the page size.
struct Imported {
    timed: Timed,
    writer_cpu: f64,
    page_size: i64,
}

fn mib(p: &std::path::Path) -> f64 {
    std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1048576.0)
}

/// sqlite3's own CSV import of the file into a new file database; None without sqlite3.
fn baseline(csv_path: &std::path::Path, db: &std::path::Path) -> Option<Timed> {
    let children_before = cpu_ticks("/proc/self/stat", true);
    let t = Instant::now();
    let status = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(".mode csv")
        .arg(format!(".import {} roster", csv_path.display()))
        .status();
    let secs = t.elapsed().as_secs_f64();
    if !matches!(status, Ok(s) if s.success()) {
        return None;
    }
    let cpu = cpu_ticks("/proc/self/stat", true)
        .zip(children_before)
        .map_or(0, |(a, b)| a - b);
    let db_mib = mib(db);
    let _ = std::fs::remove_file(db);
    Some(Timed {
        secs,
        cpu: cpu as f64 / 100.0,
        db_mib,
    })
}

/// The roster import of the file into a new store with a round of `n_units` units.
fn import(
    csv_path: &std::path::Path,
    db: &std::path::Path,
    rows: usize,
    n_units: usize,
) -> Imported {
    // PAGE_SIZE=N (A/B runs): the file is made with that page size first, which the store
    // keeps.
    if let Some(size) = std::env::var("PAGE_SIZE")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        let c = rusqlite::Connection::open(db).unwrap();
        c.pragma_update(None, "page_size", size).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
    }
    let store = SqliteStore::open(db).unwrap();
    let survey =
        sheping::domain::survey::Survey::from_toml_str(include_str!("../surveys/default.toml"))
            .unwrap();
    let round = store
        .create_round(
            &NewRound {
                key: "bench".into(),
                title: "bench".into(),
                survey,
                survey_source: "default".into(),
                field: None,
            },
            "bench",
        )
        .unwrap();
    let units: Vec<NewUnit> = (0..n_units)
        .map(|u| NewUnit {
            name: format!("单位{u:06}"),
            kind: UnitKind::Institution,
            sector: String::new(),
            code: None,
            line: u + 2,
        })
        .collect();
    store.add_units(&round, &units, "bench").unwrap();

    let self_before = cpu_ticks("/proc/self/stat", false);
    // This thread is the import's writer (the rows are read and checked on another).
    let writer_before = cpu_ticks("/proc/thread-self/stat", false);
    let t = Instant::now();
    let reader = imports::open_file(csv_path, None).unwrap();
    let report = imports::roster_import_stream(
        &store,
        &round,
        reader,
        &RosterImport {
            area_code: None,
            skip_invalid: false,
            replace: false,
        },
        "bench",
        &mut imports::RejectLog::all(),
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_ticks("/proc/self/stat", false)
        .zip(self_before)
        .map_or(0, |(a, b)| a - b);
    let writer_cpu = cpu_ticks("/proc/thread-self/stat", false)
        .zip(writer_before)
        .map_or(0, |(a, b)| a - b);
    assert_eq!(
        report.imported,
        rows,
        "every row imported: {:?}",
        report.rejected.first()
    );
    let page_size: i64 = store
        .read(|c| Ok(c.query_row("PRAGMA page_size", [], |r| r.get(0))?))
        .unwrap();
    drop(store);
    let db_mib = mib(db);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Imported {
        timed: Timed {
            secs,
            cpu: cpu as f64 / 100.0,
            db_mib,
        },
        writer_cpu: writer_cpu as f64 / 100.0,
        page_size,
    }
}

/// CPU time (user + system, in clock ticks of 1/100 s) of the process or thread whose `stat`
/// file this is, or of its waited-for children.
fn cpu_ticks(stat_file: &str, children: bool) -> Option<u64> {
    let stat = std::fs::read_to_string(stat_file).ok()?;
    // The fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14-17 of stat(5); here 0-based from field 3.
    let (u, s) = if children { (13, 14) } else { (11, 12) };
    Some(fields.get(u)?.parse::<u64>().ok()? + fields.get(s)?.parse::<u64>().ok()?)
}

/// This process's peak resident size, in bytes.
fn vm_hwm() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
