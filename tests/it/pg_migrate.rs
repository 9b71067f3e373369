//! `sheping migrate --from FILE --to postgres://…` (issue 22): a realistic SQLite database (the
//! demo's rounds, roster, plans, calls, results data, plus a token and a second round made with
//! the real CLI) is copied row for row; the target then has the same rows in every table, the
//! same audit chain (verified, same head), and numbers new rows after the copied ids. A second
//! migration into the now non-empty target is refused and changes nothing; a SQLite file whose
//! audit chain is broken is refused before anything is written.
//!
//! Needs a cluster: `bash tests/pg_cluster.sh cargo test --test it pg_migrate`.

use crate::common;

use common::Sheping;
use common::pg::{self, block_on};
use sheping::domain::user::Role;
use sheping::storage::postgres::{self, PgBackend, copy::TABLES};
use sheping::storage::{AccountStore, NewUser};

/// The demo's database, and a few rows more through the real CLI.
fn realistic() -> Sheping {
    let sp = Sheping::new_sqlite();
    let store = sheping::storage::sqlite::SqliteStore::open(&sp.db).unwrap();
    assert!(sheping::demo::ensure_demo(&store).unwrap());
    drop(store);
    common::add_user(&sp, "op_extra", "operator");
    common::api_token(&sp, "op_extra");
    sp.ok(&["round", "create", "2023", "--title", "2023年度履职评估"]);
    sp
}

/// A results document without the moment it was computed.
fn without_time(mut json: serde_json::Value) -> serde_json::Value {
    json.as_object_mut().unwrap().remove("computed_at");
    json
}

/// Every table's rows as text, in one order (all columns, NULLs first), from SQLite.
fn sqlite_rows(sp: &Sheping, table: &str) -> Vec<String> {
    let c = sp.sqlite();
    let cols: Vec<String> = c
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let order = cols
        .iter()
        .map(|c| format!("\"{c}\" NULLS FIRST"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {} FROM \"{table}\" ORDER BY {order}",
        cols.join(", ")
    );
    let mut stmt = c.prepare(&sql).unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        let line = (0..cols.len())
            .map(|i| match r.get::<_, rusqlite::types::Value>(i).unwrap() {
                rusqlite::types::Value::Null => "NULL".to_string(),
                rusqlite::types::Value::Integer(v) => v.to_string(),
                rusqlite::types::Value::Real(v) => format!("{v:?}"),
                rusqlite::types::Value::Text(v) => v,
                rusqlite::types::Value::Blob(v) => format!("{v:?}"),
            })
            .collect::<Vec<_>>()
            .join("|");
        out.push(line);
    }
    out
}

/// The same on PostgreSQL, in SQLite's column order.
async fn pg_rows(client: &tokio_postgres::Client, sp: &Sheping, table: &str) -> Vec<String> {
    let c = sp.sqlite();
    let cols: Vec<String> = c
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let order = cols
        .iter()
        .map(|c| format!("\"{c}\" NULLS FIRST"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {} FROM \"{table}\" ORDER BY {order}",
        cols.join(", ")
    );
    let rows = client.query(&sql, &[]).await.unwrap();
    rows.iter()
        .map(|r| {
            (0..cols.len())
                .map(|i| {
                    let ty = r.columns()[i].type_().clone();
                    if ty == tokio_postgres::types::Type::INT8 {
                        r.get::<_, Option<i64>>(i)
                            .map_or("NULL".into(), |v| v.to_string())
                    } else if ty == tokio_postgres::types::Type::FLOAT8 {
                        r.get::<_, Option<f64>>(i)
                            .map_or("NULL".into(), |v| format!("{v:?}"))
                    } else {
                        r.get::<_, Option<String>>(i)
                            .unwrap_or_else(|| "NULL".into())
                    }
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

fn sqlite_head(sp: &Sheping) -> String {
    sp.sqlite()
        .query_row("SELECT value FROM meta WHERE key = 'audit_head'", [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// Rows per table on the target, in [`TABLES`] order.
fn pg_counts(url: &str) -> Vec<(String, i64)> {
    block_on(async {
        let c = pg::connect(url).await;
        let mut out = Vec::new();
        for t in TABLES {
            let n: i64 = c
                .query_one(&format!("SELECT COUNT(*) FROM \"{t}\""), &[])
                .await
                .unwrap()
                .get(0);
            out.push((t.to_string(), n));
        }
        out
    })
}

#[test]
fn pg_migrate_copies_everything_and_the_copy_checks_out() {
    let Some(db) = pg::fresh_db("pg_migrate_copies_everything") else {
        return;
    };
    let sp = realistic();
    // Realistic: the demo fills the tables of every aggregate.
    for t in [
        "rounds",
        "round_previous",
        "units",
        "members",
        "users",
        "plans",
        "plan_inputs",
        "assignments",
        "queue",
        "attempts",
        "onsite_ballots",
        "evidence",
        "api_tokens",
        "queue_tally",
        "operator_tally",
        "audit_log",
    ] {
        assert!(
            sp.count(&format!("SELECT COUNT(*) FROM \"{t}\"")) > 0,
            "the demo database has no {t}"
        );
    }
    // The results as the office saw them before the move (this draws and stores each
    // round's bootstrap seed, which moves with the data).
    let sqlite_results: Vec<serde_json::Value> = ["2021", "2022"]
        .iter()
        .map(|round| without_time(sp.json(&["results", "--round", round, "--json"])))
        .collect();
    let out = sp.ok(&[
        "migrate",
        "--from",
        sp.db.to_str().unwrap(),
        "--to",
        &db.url,
    ]);
    assert!(out.contains("迁移完成"), "{out}");
    assert!(out.contains("哈希链完整"), "{out}");
    let head = sqlite_head(&sp);
    assert!(out.contains(&head), "the summary names the head: {out}");

    // Every table: the same rows, value for value (checked here independently of the
    // command's own checksums).
    let n = sp.count("SELECT COUNT(*) FROM audit_log") as usize;
    block_on(async {
        let client = pg::connect(&db.url).await;
        let mut total = 0;
        for t in TABLES {
            let (s, p) = (sqlite_rows(&sp, t), pg_rows(&client, &sp, t).await);
            assert_eq!(s.len(), p.len(), "row count of {t}");
            assert!(s == p, "rows of {t} differ");
            total += s.len();
            assert!(
                out.lines().any(|l| l.split_whitespace().next() == Some(t)
                    && l.contains(&format!(" {} 行", s.len()))),
                "summary line of {t}: {out}"
            );
        }
        assert!(out.contains(&format!("{total} 行")), "{out}");
        // The target's recorded head is SQLite's (the chain is verified below).
        let pg_head: String = client
            .query_one("SELECT value FROM meta WHERE key = 'audit_head'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(pg_head, head);
    });
    // Every table of the SQLite schema is in the list.
    let sqlite_tables = sp.count(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    );
    assert_eq!(sqlite_tables as usize, TABLES.len());
    assert!(sp.ok(&["audit", "verify"]).contains("完整"));

    // The target, through the same commands: `audit verify` and `check` pass, and the
    // results (bootstrap included: same seed, same rows) are the SQLite file's.
    let on_pg = |args: &[&str]| {
        let out = std::process::Command::new(common::BIN)
            .env_remove("SHEPING_DB")
            .env("RUST_LOG", "error")
            .args(["--db", &db.url])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?} on PostgreSQL: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(on_pg(&["audit", "verify"]).contains(&format!("{n} 条记录")));
    let check: serde_json::Value = serde_json::from_str(&on_pg(&["check", "--json"])).unwrap();
    assert_eq!(check["integrity"], serde_json::json!(["ok"]), "{check}");
    assert_eq!(check["foreign_keys"], 0, "{check}");
    assert_eq!(check["problems"], serde_json::json!([]), "{check}");
    assert_eq!(check["audit_entries"], n, "{check}");
    assert!(check["audit_break"].is_null(), "{check}");
    assert_eq!(
        check,
        sp.json(&["check", "--json"]),
        "check answers alike on both"
    );
    for (round, sqlite_results) in ["2021", "2022"].into_iter().zip(sqlite_results) {
        let args = ["results", "--round", round, "--json"];
        let pg_results = without_time(serde_json::from_str(&on_pg(&args)).unwrap());
        assert_eq!(pg_results, sqlite_results, "results of {round}");
    }

    // New rows are numbered after the copied ids, and the chain goes on from the head.
    let pg = PgBackend::open(&db.url).unwrap();
    pg.block_on(async {
        let c = pg.store().client().await.unwrap();
        assert_eq!(postgres::audit::verify(&c).await.unwrap(), Ok(n));
    });
    let max_user = sp.count("SELECT MAX(id) FROM users");
    let u = pg
        .add_user(
            &NewUser {
                login: "after_migrate".into(),
                name: "迁移后".into(),
                role: Role::Operator,
                password_hash: "x".into(),
            },
            "test",
        )
        .unwrap();
    assert_eq!(u.id, max_user + 1);
    let entries = pg.block_on(async {
        let c = pg.store().client().await.unwrap();
        assert_eq!(postgres::audit::verify(&c).await.unwrap(), Ok(n + 1));
        postgres::audit::entries(&c).await.unwrap()
    });
    assert_eq!(entries[n].prev_hash, head);
    assert_eq!(entries[n].id as usize, n + 1);
}

#[test]
fn pg_migrate_refuses_a_target_with_rows_and_changes_nothing() {
    let Some(db) = pg::fresh_db("pg_migrate_refuses_non_empty") else {
        return;
    };
    let sp = realistic();
    sp.ok(&[
        "migrate",
        "--from",
        sp.db.to_str().unwrap(),
        "--to",
        &db.url,
    ]);
    let before = pg_counts(&db.url);
    // A second source with rows of its own: its copy would collide.
    let other = Sheping::new_sqlite();
    common::add_user(&other, "someone", "admin");
    for source in [&sp, &other] {
        let out = source.run(&[
            "migrate",
            "--from",
            source.db.to_str().unwrap(),
            "--to",
            &db.url,
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("不是空的"), "{err}");
        assert!(err.contains("拒绝迁移"), "{err}");
    }
    assert_eq!(pg_counts(&db.url), before);
    let head: String = block_on(async {
        pg::connect(&db.url)
            .await
            .query_one("SELECT value FROM meta WHERE key = 'audit_head'", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(head, sqlite_head(&sp));
}

#[test]
fn pg_migrate_refuses_a_broken_audit_chain() {
    let Some(db) = pg::fresh_db("pg_migrate_refuses_broken") else {
        return;
    };
    let sp = Sheping::new_sqlite();
    common::round_with_units(&sp);
    common::add_user(&sp, "op1", "operator");
    sp.sqlite()
        .execute(
            "UPDATE audit_log SET detail = '{\"edited\":true}' WHERE id = 2",
            [],
        )
        .unwrap();
    let out = sp.run(&[
        "migrate",
        "--from",
        sp.db.to_str().unwrap(),
        "--to",
        &db.url,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("审计日志不完整"), "{err}");
    assert!(err.contains("audit entry 2"), "{err}");
    // Nothing reached the target (it may not even have been connected to).
    let client = block_on(async {
        let c = pg::connect(&db.url).await;
        c.query_one(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'users'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
    });
    assert_eq!(client, 0, "the target was not even migrated");

    // A source that is not a sheping database at all, or missing, is refused by name.
    let missing = sp.path("missing.db");
    let out = sp.run(&[
        "migrate",
        "--from",
        missing.to_str().unwrap(),
        "--to",
        &db.url,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("文件不存在"));
    let out = sp.run(&[
        "migrate",
        "--from",
        sp.db.to_str().unwrap(),
        "--to",
        "data/x.db",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("不是 PostgreSQL 连接地址"));
}

#[test]
fn pg_migrate_rolls_back_everything_when_a_row_cannot_be_copied() {
    let Some(db) = pg::fresh_db("pg_migrate_rolls_back") else {
        return;
    };
    let sp = Sheping::new_sqlite();
    common::round_with_units(&sp);
    common::add_user(&sp, "op1", "operator");
    // SQLite keeps a NUL inside text; PostgreSQL's text cannot hold one. `meta` comes after
    // rounds, units, users and the audit log, which are copied by then.
    sp.sqlite()
        .execute(
            "INSERT INTO meta (key, value) VALUES ('note', 'a' || char(0) || 'b')",
            [],
        )
        .unwrap();
    let before = std::fs::read(&sp.db).unwrap();
    let out = sp.run(&[
        "migrate",
        "--from",
        sp.db.to_str().unwrap(),
        "--to",
        &db.url,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("复制表 meta"), "{err}");
    assert!(err.contains("已回滚"), "{err}");
    // Not a row anywhere on the target, and the source file untouched (opened read-only).
    assert!(pg_counts(&db.url).iter().all(|(_, n)| *n == 0));
    assert!(
        std::fs::read(&sp.db).unwrap() == before,
        "the source changed"
    );
}
