//! `Store::snapshot` on PostgreSQL (issue 22): every read inside it comes from one snapshot,
//! whatever another instance commits meanwhile; a write through the same store starts a new
//! one, so the closure reads its own writes. The same scenario runs on two SQLite handles on
//! one file and on two PostgreSQL instances on one database, with the same answers. Needs
//! the test cluster (`bash tests/pg_cluster.sh cargo test --test it pg_snapshot`).

use crate::common;
use crate::pg_contract_rounds::{new_round, sql_pg, unit};

use common::pg;
use sheping::storage::postgres::PgBackend;
use sheping::storage::sqlite::SqliteStore;
use sheping::storage::*;

/// What a page reads about a round, through three methods (three statements): units counted
/// by `round_counts`, by `rounds()` and listed by `units`.
fn units_seen(s: &dyn Store, round: &RoundRecord) -> (usize, usize, usize) {
    let counts = s.round_counts(round).unwrap().units;
    let summary = s
        .rounds()
        .unwrap()
        .into_iter()
        .find(|r| r.round.id == round.id)
        .unwrap()
        .units;
    (counts, summary, s.units(round.id).unwrap().len())
}

/// `a` and `b` are two handles (instances) on one database. Returns what `a` saw, step by
/// step, for comparing the backends.
fn scenario(a: &dyn Store, b: &dyn Store) -> Vec<(usize, usize, usize)> {
    let round = a.create_round(&new_round("2024"), "root").unwrap();
    a.add_units(&round, &[unit("甲局", 1)], "root").unwrap();
    let mut seen = Vec::new();
    in_snapshot(a, || {
        let first = units_seen(a, &round);
        seen.push(first);
        // Another instance commits a unit: unseen inside the snapshot, by every method.
        b.add_units(&round, &[unit("乙局", 2)], "root").unwrap();
        assert_eq!(b.units(round.id).unwrap().len(), 2, "b sees its own write");
        let during = units_seen(a, &round);
        assert_eq!(
            during, first,
            "a commit of another instance leaked into the snapshot"
        );
        seen.push(during);
        // A snapshot nested in it is the same snapshot.
        seen.push(in_snapshot(a, || units_seen(a, &round)));
        // A write through this store starts a new snapshot: its own write and everything
        // committed before it are seen from here on.
        a.add_units(&round, &[unit("丙局", 3)], "root").unwrap();
        let after_own = units_seen(a, &round);
        assert_eq!(after_own, (3, 3, 3), "the snapshot must show its own write");
        seen.push(after_own);
        // …and the new snapshot holds still again.
        b.add_units(&round, &[unit("丁局", 4)], "root").unwrap();
        seen.push(units_seen(a, &round));
    });
    // After the snapshot every read is current.
    seen.push(units_seen(a, &round));
    seen
}

#[test]
fn pg_snapshot_reads_one_moment_and_its_own_writes_on_both_backends() {
    let Some(db) = pg::fresh_db("pg_snapshot_reads") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.db");
    let (sa, sb) = (
        SqliteStore::open(&path).unwrap(),
        SqliteStore::open(&path).unwrap(),
    );
    let on_sqlite = scenario(&sa, &sb);

    let (pa, pb) = (
        PgBackend::open(&db.url).unwrap(),
        PgBackend::open(&db.url).unwrap(),
    );
    let on_pg = scenario(&pa, &pb);

    let expected = vec![
        (1, 1, 1),
        (1, 1, 1),
        (1, 1, 1),
        (3, 3, 3),
        (3, 3, 3),
        (4, 4, 4),
    ];
    assert_eq!(on_sqlite, expected, "SQLite");
    assert_eq!(on_pg, expected, "PostgreSQL");
}

/// The connections a snapshot pinned go back to the pool with no transaction open, also when
/// the closure panics: later writes of the instance work (a read-only transaction left open
/// on a pooled connection would refuse them) and no session of it stays idle in a transaction.
#[test]
fn pg_snapshot_leaves_no_transaction_open() {
    let Some(db) = pg::fresh_db("pg_snapshot_no_tx") else {
        return;
    };
    let a = PgBackend::open(&db.url).unwrap();
    let b = PgBackend::open(&db.url).unwrap();
    let round = a.create_round(&new_round("2024"), "root").unwrap();
    // A write that takes a connection of its own (plain SQL through the backend's runtime)
    // also starts a new snapshot: the read after it sees it, and what B committed before.
    in_snapshot(&a, || {
        assert_eq!(a.units(round.id).unwrap().len(), 0);
        b.add_units(&round, &[unit("乙局", 1)], "root").unwrap();
        assert_eq!(a.units(round.id).unwrap().len(), 0);
        sql_pg(
            &a,
            &format!(
                "INSERT INTO units (round_id, name, kind, sector) VALUES ({}, '甲局', '党政机关', '综合')",
                round.id
            ),
        );
        assert_eq!(a.units(round.id).unwrap().len(), 2);
    });
    sql_pg(
        &a,
        &format!("DELETE FROM units WHERE round_id = {}", round.id),
    );
    for i in 0..20 {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            in_snapshot(&a, || {
                a.units(round.id).unwrap();
                if i % 2 == 0 {
                    // A write inside it, then a read in the new snapshot.
                    a.add_units(&round, &[unit(&format!("局{i}"), i)], "root")
                        .unwrap();
                    a.round_counts(&round).unwrap();
                }
                if i % 5 == 0 {
                    panic!("a page's bug inside the snapshot");
                }
            })
        }));
        assert_eq!(caught.is_err(), i % 5 == 0);
    }
    // Writes on every connection the pool holds (more than one at once).
    std::thread::scope(|s| {
        for t in 0..4 {
            let (a, round) = (&a, &round);
            s.spawn(move || {
                for k in 0..5 {
                    a.add_units(
                        round,
                        &[unit(&format!("写{t}-{k}"), 100 + t * 10 + k)],
                        "root",
                    )
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(a.units(round.id).unwrap().len(), 10 + 20);
    let idle_in_tx: i64 = pg::block_on(async {
        let c = pg::connect(&db.url).await;
        c.query_one(
            "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'sheping'
               AND state LIKE 'idle in transaction%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
    });
    assert_eq!(idle_in_tx, 0);
}
