//! Backup while serving, checks, the round lock on every write path, and purging contacts.

use crate::common;

use common::Sheping;

/// A demo-shaped database (30 units × 45, plan, simulated calls) made by `sheping demo`.
fn demo_db(sp: &Sheping) {
    let _server = common::Server::start(sp, &["demo"]);
}

#[test]
fn backup_while_writing_gives_a_consistent_copy() {
    let Some(sp) = Sheping::sqlite_only("the online backup copies the SQLite file") else {
        return;
    };
    demo_db(&sp);
    // Keep writing (audit entries through a second process's imports) while backing up.
    let writer_db = sp.db.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..30 {
            let out = std::process::Command::new(common::BIN)
                .args([
                    "--db",
                    writer_db.to_str().unwrap(),
                    "user",
                    "add",
                    "--login",
                    &format!("u{i}"),
                    "--name",
                    "n",
                    "--role",
                    "evaluator",
                ])
                .output()
                .unwrap();
            assert!(out.status.success());
        }
    });
    let copy = sp.path("backup.db");
    sp.ok(&["backup", "--out", copy.to_str().unwrap()]);
    writer.join().unwrap();
    // The copy is complete and consistent on its own.
    let restored = Sheping::on_sqlite_file(copy.clone());
    let out = restored.run(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The demo's 2022 round (the demo also has a smaller 2021 round).
    assert_eq!(restored.count("SELECT COUNT(*) FROM members m JOIN units u ON u.id = m.unit_id JOIN rounds r ON r.id = u.round_id WHERE r.key = '2022'"), 30 * 45);
    assert_eq!(
        restored.count("SELECT COUNT(*) FROM attempts"),
        sp.count("SELECT COUNT(*) FROM attempts")
    );
    let users = restored.count("SELECT COUNT(*) FROM users");
    assert!((6..=36).contains(&users));
    // Restoring = serving from the copy: the service starts on it and lists the round.
    let _server = common::Server::start(&restored, &["serve"]);
    // Refuses to overwrite an existing file.
    assert!(
        !sp.run(&["backup", "--out", copy.to_str().unwrap()])
            .status
            .success()
    );
}

#[test]
fn check_finds_a_broken_invariant_and_repair_rebuilds_the_queue() {
    let sp = Sheping::new();
    demo_db(&sp);
    let out = sp.run(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let queued = sp.count("SELECT COUNT(*) FROM queue");
    // Behind sheping's back: a final member put back in the queue with another operator.
    sp.sql()
        .execute(
            "UPDATE queue SET operator_id = (SELECT MAX(id) FROM users WHERE role = 'operator') + 0 WHERE member_id = (SELECT MIN(member_id) FROM queue)",
            [],
        )
        .unwrap();
    sp.sql()
        .execute("UPDATE queue SET operator_id = operator_id % 3 + 2", [])
        .unwrap();
    let out = sp.run(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["problems"][0]
            .as_str()
            .unwrap()
            .contains("operator differs"),
        "{report:#}"
    );
    let out = sp.run(&["check", "--repair-round", "2022"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM queue"), queued);
}

#[test]
fn a_locked_round_refuses_every_write_path() {
    let sp = Sheping::new();
    demo_db(&sp);
    let before_attempts = sp.count("SELECT COUNT(*) FROM attempts");
    sp.ok(&["round", "lock", "2022"]);
    let units = sp.write(
        "units.csv",
        "单位名称,单位类型\n新单位,事业单位\n".as_bytes(),
    );
    let roster = sp.write(
        "roster.csv",
        "参评单位,姓名,联系电话\n汉滨区教育体育局,新人,13812345678\n".as_bytes(),
    );
    let attempts = sp.write(
        "attempts.csv",
        "unit,phone,operator,outcome,at\n汉滨区教育体育局,13812345678,op1,no_answer,2022-11-02 10:00\n".as_bytes(),
    );
    let member = sp.count("SELECT MIN(id) FROM members").to_string();
    let token = "0000";
    let refused: Vec<Vec<&str>> = vec![
        vec![
            "units",
            "import",
            "--round",
            "2022",
            units.to_str().unwrap(),
        ],
        vec![
            "roster",
            "import",
            "--round",
            "2022",
            roster.to_str().unwrap(),
        ],
        vec![
            "roster",
            "import",
            "--round",
            "2022",
            roster.to_str().unwrap(),
            "--replace",
        ],
        vec![
            "attempts",
            "import",
            "--round",
            "2022",
            attempts.to_str().unwrap(),
        ],
        vec!["calls", "generate", "--round", "2022"],
        vec!["calls", "reassign", "--round", "2022", "--from", "op1"],
        vec!["calls", "next", "--round", "2022", "--operator", "op1"],
        vec![
            "calls",
            "record",
            "--round",
            "2022",
            "--operator",
            "op1",
            "--token",
            token,
            "--outcome",
            "busy",
        ],
        vec![
            "roster",
            "fix-phone",
            "--round",
            "2022",
            "--member",
            &member,
            "--phone",
            "13812345679",
        ],
        vec![
            "round", "reopen", "2022", "--member", &member, "--reason", "x",
        ],
        vec![
            "round",
            "field",
            "2022",
            "--from",
            "2022-01-01",
            "--to",
            "2022-12-31",
        ],
        vec![
            "operators",
            "exclude",
            "op1",
            "--round",
            "2022",
            "--unit",
            "汉滨区教育体育局",
        ],
        vec!["round", "lock", "2022"],
    ];
    for args in &refused {
        let out = sp.run(args);
        assert!(
            !out.status.success(),
            "{args:?} must be refused on a locked round"
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("locked") || text.contains("锁定"),
            "{args:?} says why: {text}"
        );
    }
    assert_eq!(sp.count("SELECT COUNT(*) FROM attempts"), before_attempts);
    assert_eq!(
        sp.count(
            "SELECT COUNT(*) FROM units u JOIN rounds r ON r.id = u.round_id WHERE r.key = '2022'"
        ),
        30
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM members m JOIN units u ON u.id = m.unit_id JOIN rounds r ON r.id = u.round_id WHERE r.key = '2022'"), 30 * 45);
    // Reading still works.
    sp.ok(&["progress", "--round", "2022"]);
}

#[test]
fn purging_contacts_needs_a_lock_and_keeps_what_results_need() {
    let sp = Sheping::new();
    demo_db(&sp);
    let out = sp.run(&["round", "purge-contacts", "2022"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("尚未锁定"));
    let progress_before = sp.json(&["progress", "--round", "2022", "--json"]);
    sp.ok(&["round", "lock", "2022"]);
    sp.ok(&["round", "purge-contacts", "2022"]);
    assert_eq!(sp.count("SELECT COUNT(*) FROM members m JOIN units u ON u.id = m.unit_id JOIN rounds r ON r.id = u.round_id WHERE r.key = '2022' AND (m.name IS NOT NULL OR m.phone IS NOT NULL OR m.phone_alt IS NOT NULL)"), 0);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM members m JOIN units u ON u.id = m.unit_id JOIN rounds r ON r.id = u.round_id WHERE r.key = '2022'"),
        30 * 45,
        "members stay, anonymous"
    );
    let mut progress_after = sp.json(&["progress", "--round", "2022", "--json"]);
    let mut before = progress_before;
    // Only the field-closed flag may differ; every count and rate is unchanged.
    before["field_closed"] = serde_json::Value::Null;
    progress_after["field_closed"] = serde_json::Value::Null;
    assert_eq!(before["units"], progress_after["units"]);
    let shown = sp.ok(&[
        "roster",
        "show",
        "--round",
        "2022",
        "--unit",
        "汉滨区教育体育局",
    ]);
    assert!(shown.contains("(已清除)"));
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'round.purge_contacts' AND round_key = '2022'"),
        1
    );
}

/// The call screen's counts come from tallies the database keeps with triggers; they must
/// equal the counts taken the slow way, and `check` must notice when they are changed behind
/// sheping's back (and `--repair-round` count them again).
#[test]
fn tallies_equal_the_slow_counts_and_check_catches_drift() {
    let sp = Sheping::new();
    demo_db(&sp);
    let store = sp.store();
    let round = store.round("2022").unwrap();
    let now = chrono::Utc::now();
    // Half the demo's attempts were recorded before this quarter hour.
    let median: i64 = sp.count(
        "SELECT recorded_at FROM attempts ORDER BY recorded_at LIMIT 1 OFFSET (SELECT COUNT(*) / 2 FROM attempts)",
    );
    let since = median - median % 900_000;
    let db = sp.sql();
    let mut checked = 0;
    let mut callbacks = 0;
    for login in ["op1", "op2", "op3"] {
        let op = store.user(login).unwrap();
        for since in [0, since] {
            let day = store.operator_day(&round, op.id, since, now).unwrap();
            let (attempts, completes): (i64, i64) = db
                .query_row(
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN a.outcome = 'complete' THEN 1 ELSE 0 END), 0) FROM attempts a
                     JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id
                     WHERE a.operator_id = ?1 AND u.round_id = ?2 AND a.recorded_at >= ?3",
                    crate::params![op.id, round.id, since],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            let queued: i64 = db
                .query_row(
                    "SELECT COUNT(*) FROM queue WHERE operator_id = ?1 AND round_id = ?2",
                    crate::params![op.id, round.id],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(
                i64::from(day.attempts_today),
                attempts,
                "{login} since {since}"
            );
            assert_eq!(
                i64::from(day.completes_today),
                completes,
                "{login} since {since}"
            );
            assert_eq!(i64::from(day.remaining), queued, "{login}");
            // Callable now: retries and appointments that are due, and first calls while the
            // calling windows are open; then the next due time.
            let (due_callbacks, first_calls, next_due): (i64, i64, Option<i64>) = db
                .query_row(
                    "SELECT COALESCE(SUM(CASE WHEN priority < 2 AND sort_key <= ?3 THEN 1 ELSE 0 END), 0),
                            COALESCE(SUM(CASE WHEN priority = 2 THEN 1 ELSE 0 END), 0),
                            MIN(CASE WHEN priority < 2 AND sort_key > ?3 THEN sort_key END)
                     FROM queue WHERE operator_id = ?1 AND round_id = ?2",
                    crate::params![op.id, round.id, now.timestamp_millis()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            let open =
                sheping::domain::schedule::may_call_now(&round.survey, &round.field_period(), now);
            let due = due_callbacks + if open { first_calls } else { 0 };
            assert_eq!(i64::from(day.due_now), due, "{login}");
            assert_eq!(day.next_due_ms, next_due, "{login}");
            callbacks += sp.count(&format!(
                "SELECT COUNT(*) FROM queue WHERE priority < 2 AND operator_id = {}",
                op.id
            ));
            checked += attempts;
        }
    }
    assert!(checked > 0, "the demo's operators made calls");
    assert!(
        callbacks > 0,
        "the demo's operators have retries or appointments queued"
    );
    drop(store);

    // A queue tally changed behind sheping's back.
    db.execute(
        "UPDATE queue_tally SET n = n + 5 WHERE priority = 2 AND operator_id = (SELECT MIN(operator_id) FROM queue_tally)",
        [],
    )
    .unwrap();
    // An operator's tally for a quarter hour removed.
    db.execute(
        "DELETE FROM operator_tally WHERE quarter = (SELECT MIN(quarter) FROM operator_tally)",
        [],
    )
    .unwrap();
    let out = sp.run(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = report["problems"].to_string();
    assert!(problems.contains("queue tallies"), "{report:#}");
    assert!(problems.contains("operator tallies"), "{report:#}");
    let out = sp.run(&["check", "--repair-round", "2022"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(sp.run(&["check"]).status.success());
}

/// The queue's rows (claims included) and its tallies, in a fixed order.
#[allow(clippy::type_complexity)]
fn queue_state(
    c: &rusqlite::Connection,
) -> (
    Vec<(
        i64,
        i64,
        i64,
        i64,
        i64,
        Option<String>,
        Option<i64>,
        Option<i64>,
    )>,
    Vec<(i64, i64, i64, i64)>,
) {
    let rows = c
        .prepare(
            "SELECT member_id, round_id, operator_id, priority, sort_key, claim_token, claimed_at, claim_expires
             FROM queue ORDER BY member_id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let tallies = c
        .prepare("SELECT round_id, operator_id, priority, n FROM queue_tally ORDER BY 1, 2, 3")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    (rows, tallies)
}

#[test]
fn migrating_the_queue_to_calling_order_keeps_every_row_claim_and_tally() {
    let Some(sp) = Sheping::sqlite_only("rewinds SQLite's schema to migration 8") else {
        return;
    };
    demo_db(&sp);
    // Two contacts held, so the claims' columns are carried over too.
    let c = sp.sqlite();
    c.execute_batch(
        "UPDATE queue SET claim_token = 'tok-' || member_id, claimed_at = 1, claim_expires = 2
         WHERE member_id IN (SELECT member_id FROM queue ORDER BY member_id LIMIT 2)",
    )
    .unwrap();
    let before = queue_state(&c);
    assert!(before.0.len() > 100, "the demo leaves a queue to migrate");
    assert_eq!(before.0.iter().filter(|r| r.5.is_some()).count(), 2);
    // Put the queue back in its layout before migration 009 (keyed by member, as 002, 005
    // and 006 made it), rows and all, and mark the schema as version 8 (without what 011
    // adds: the late flag and the ended claims).
    c.execute_batch(
        "PRAGMA foreign_keys = OFF;
         BEGIN;
         CREATE TABLE queue_v8 (
             member_id     INTEGER PRIMARY KEY REFERENCES members(id),
             round_id      INTEGER NOT NULL REFERENCES rounds(id),
             operator_id   INTEGER NOT NULL REFERENCES users(id),
             priority      INTEGER NOT NULL,
             sort_key      INTEGER NOT NULL,
             claim_token   TEXT UNIQUE,
             claimed_at    INTEGER,
             claim_expires INTEGER
         );
         INSERT INTO queue_v8 SELECT member_id, round_id, operator_id, priority, sort_key, claim_token, claimed_at, claim_expires FROM queue;
         DROP TABLE queue;
         DROP TABLE ended_claims;
         ALTER TABLE attempts DROP COLUMN late;
         ALTER TABLE queue_v8 RENAME TO queue;
         CREATE INDEX queue_next ON queue(operator_id, round_id, priority, sort_key);
         CREATE INDEX queue_claims ON queue(operator_id, round_id, claim_expires) WHERE claim_token IS NOT NULL;
         CREATE TRIGGER queue_tally_insert AFTER INSERT ON queue BEGIN
             INSERT INTO queue_tally (round_id, operator_id, priority, n) VALUES (NEW.round_id, NEW.operator_id, NEW.priority, 1)
             ON CONFLICT (round_id, operator_id, priority) DO UPDATE SET n = n + 1;
         END;
         CREATE TRIGGER queue_tally_delete AFTER DELETE ON queue BEGIN
             UPDATE queue_tally SET n = n - 1 WHERE round_id = OLD.round_id AND operator_id = OLD.operator_id AND priority = OLD.priority;
         END;
         PRAGMA user_version = 8;
         COMMIT;",
    )
    .unwrap();
    assert_eq!(queue_state(&c), before);
    drop(c);

    // Opening the database migrates it; the checks (tallies against the queue included) pass.
    let report = sp.ok(&["check"]);
    assert!(report.contains("检查通过"), "{report}");
    let c = sp.sqlite();
    assert_eq!(queue_state(&c), before);
    let sql: String = c
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'queue'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.contains("WITHOUT ROWID"), "{sql}");
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'queue_next'"),
        0
    );
    // The tally triggers came back with the new table: a queue change still moves its tally.
    let (member, round, operator, priority): (i64, i64, i64, i64) = c
        .query_row(
            "SELECT member_id, round_id, operator_id, priority FROM queue ORDER BY member_id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    let tally = |c: &rusqlite::Connection| -> i64 {
        c.query_row(
            "SELECT n FROM queue_tally WHERE round_id = ?1 AND operator_id = ?2 AND priority = ?3",
            [round, operator, priority],
            |r| r.get(0),
        )
        .unwrap()
    };
    let n = tally(&c);
    c.execute("DELETE FROM queue WHERE member_id = ?1", [member])
        .unwrap();
    assert_eq!(tally(&c), n - 1);
}

/// Enumerated columns refuse unknown values on write (migration 013's triggers), and a row
/// stored before the triggers is named on read — never read as "no answer" or a service
/// recipient.
#[test]
fn unknown_stored_values_are_refused_on_write_and_named_on_read() {
    let sp = Sheping::new();
    demo_db(&sp);
    let c = sp.sql();
    let (attempt, member): (i64, i64) = c
        .query_row(
            "SELECT id, member_id FROM attempts WHERE outcome = 'no_answer' ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // Refused by the triggers, naming the column.
    let err = c
        .execute(
            "UPDATE attempts SET outcome = 'maybe' WHERE id = ?1",
            [attempt],
        )
        .unwrap_err();
    assert!(err.to_string().contains("attempts.outcome"), "{err}");
    let err = c
        .execute(
            "INSERT INTO attempts (member_id, operator_id, attempt_no, recorded_at, outcome, aapor_code, source)
             SELECT member_id, operator_id, 99, recorded_at + 1, 'No Answer', aapor_code, source FROM attempts WHERE id = ?1",
            [attempt],
        )
        .unwrap_err();
    assert!(err.to_string().contains("attempts.outcome"), "{err}");
    let err = c
        .execute(
            "UPDATE members SET category = '群众' WHERE id = ?1",
            [member],
        )
        .unwrap_err();
    assert!(err.to_string().contains("members.category"), "{err}");
    assert_eq!(
        c.query_row(
            "SELECT outcome FROM attempts WHERE id = ?1",
            [attempt],
            |r| r.get::<_, String>(0)
        )
        .unwrap(),
        "no_answer"
    );

    // Rows written before the triggers existed: drop them, write, and rewind the schema
    // version so that opening the database runs migration 013 again (it must be repeatable).
    // (PostgreSQL has no schema version to rewind, and CHECK constraints beside the triggers:
    // there the rows are planted around both.)
    if sp.is_postgres() {
        c.execute_batch(&format!(
            "DROP TRIGGER attempts_outcome_update ON attempts;
             DROP TRIGGER members_category_update ON members;
             ALTER TABLE attempts DROP CONSTRAINT attempts_outcome_known;
             ALTER TABLE members DROP CONSTRAINT members_category_known;
             UPDATE attempts SET outcome = 'maybe' WHERE id = {attempt};
             UPDATE members SET category = '群众' WHERE id = {member};"
        ))
        .unwrap();
    } else {
        c.execute_batch(&format!(
            "DROP TRIGGER attempts_outcome_update;
             DROP TRIGGER members_category_update;
             UPDATE attempts SET outcome = 'maybe' WHERE id = {attempt};
             UPDATE members SET category = '群众' WHERE id = {member};
             PRAGMA user_version = 12;"
        ))
        .unwrap();
    }
    drop(c);

    // `check` names both rows (and exits 1), and the triggers are back.
    let out = sp.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("拨打记录 #{attempt}")) && text.contains("`maybe`"),
        "{text}"
    );
    assert!(
        text.contains(&format!("members 第 {member} 行的 category 列")) && text.contains("`群众`"),
        "{text}"
    );
    if !sp.is_postgres() {
        assert_eq!(
            sp.count(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'
                 AND name IN ('attempts_outcome_update', 'members_category_update')"
            ),
            2
        );
    }

    // Rebuilding the queue reads every member's history: the bad outcome is a named error,
    // where it used to be read as "no answer".
    let out = sp.run(&["check", "--repair-round", "2022"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("attempts 第 {attempt} 行的 outcome 列")) && err.contains("`maybe`"),
        "{err}"
    );

    // The results refuse with the row named; no panic.
    let out = sp.run(&["results", "--round", "2022"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(&format!("#{attempt}")), "{err}");
}
