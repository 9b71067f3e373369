//! The storage contract for the roster (issue 22): whole and streamed imports on SQLite and
//! PostgreSQL, all or nothing, the same line named for a conflict, the same members stored.
//! Needs the test cluster (`bash tests/pg_cluster.sh cargo test --test it pg_contract`).

use crate::pg_contract_rounds::{
    audit_trail, backends, count_pg, err, member, new_round, sql_pg, sql_sqlite, unit,
};

use sheping::domain::roster::NewMember;
use sheping::storage::*;

type Seen = Vec<String>;

/// The members without their ids: PostgreSQL's identity does not give back the numbers a
/// rolled-back import drew (SQLite numbers after the largest stored id), so after a failed
/// import the next ids differ; everything else, and the order, is the same.
fn members_seen<S: RosterStore>(s: &S, round: i64) -> String {
    let members = s.members(round, None).unwrap();
    let mut ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        members.iter().map(|m| m.id).collect::<Vec<_>>(),
        "in id order"
    );
    members
        .iter()
        .map(|m| {
            format!(
                "{} {} {:?} {:?} {:?} {:?} {:?} {:?}",
                m.unit_id, m.unit, m.name, m.phone, m.phone_alt, m.category, m.organization, m.note
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn roster_scenario<S: RoundStore + RosterStore + AuditStore>(
    s: &S,
    fixture: &dyn Fn(&str),
) -> Seen {
    let mut seen = Seen::new();
    let round = s.create_round(&new_round("2026"), "admin").unwrap();
    let other = s.create_round(&new_round("2027"), "admin").unwrap();
    s.add_units(&round, &[unit("市教育局", 2), unit("市卫健委", 3)], "admin")
        .unwrap();
    s.add_units(&other, &[unit("市民政局", 2)], "admin")
        .unwrap();
    let units = s.units(round.id).unwrap();
    let foreign = s.units(other.id).unwrap()[0].id;
    let (u1, u2) = (units[0].id, units[1].id);

    // Whole: stored in file order.
    let first: Vec<NewMember> = (0..5)
        .map(|i| member(if i < 3 { u1 } else { u2 }, format!("1390000000{i}"), 2 + i))
        .collect();
    seen.push(format!("{:?}", s.add_members(&round, &first, &[], "admin")));
    seen.push(members_seen(s, round.id));
    seen.push(format!("{:?}", s.members(round.id, Some(u2)).unwrap()));
    // (Ids still agree here: nothing was rolled back yet.)

    // A phone already on the panel, on line 4 of a new file: nothing of the file is stored.
    let clash = vec![
        member(u2, "13700000001".into(), 2),
        member(u2, "13700000002".into(), 3),
        member(u1, "13900000001".into(), 4),
        member(u2, "13700000003".into(), 5),
    ];
    seen.push(err(s.add_members(&round, &clash, &[], "admin")));
    // A phone twice inside the file (lines 2 and 3): the second line is named.
    let twice = vec![
        member(u2, "13600000001".into(), 2),
        member(u2, "13600000001".into(), 3),
    ];
    seen.push(err(s.add_members(&round, &twice, &[], "admin")));
    // The same conflict streamed, deep inside a large batch.
    let big: Vec<NewMember> = (0..3000)
        .map(|i| member(u2, format!("135{i:08}"), 2 + i))
        .chain([member(u1, "13900000002".into(), 3002)])
        .collect();
    seen.push(err(s.add_members_streamed(&round, "admin", &mut |sink| {
        sink.add(&big[..1000])?;
        sink.add(&big[1000..])?;
        Ok(true)
    })));
    // A unit of another round.
    seen.push(err(s.add_members(
        &round,
        &[
            member(u1, "13400000001".into(), 2),
            member(foreign, "13400000002".into(), 3),
        ],
        &[],
        "admin",
    )));
    // Not kept: nothing stored, no error.
    seen.push(format!(
        "{:?}",
        s.add_members_streamed(&round, "admin", &mut |sink| {
            sink.add(&big[..10])?;
            Ok(false)
        })
    ));
    // The feed's own error: nothing stored, that error back.
    seen.push(err(s.add_members_streamed(&round, "admin", &mut |sink| {
        sink.add(&big[..10])?;
        Err(StorageError::Conflict("第 12 行:号码无效".into()))
    })));
    seen.push(members_seen(s, round.id));

    // Replacing a panel: u2's two members give way to three new ones.
    let again: Vec<NewMember> = (0..3)
        .map(|i| member(u2, format!("1330000000{i}"), 2 + i))
        .collect();
    seen.push(format!(
        "{:?}",
        s.add_members_streamed(&round, "admin", &mut |sink| {
            sink.replace_panel(u2)?;
            sink.add(&again)?;
            Ok(true)
        })
    ));
    seen.push(members_seen(s, round.id));
    // A panel in use (called) cannot be replaced.
    fixture(&format!(
        "INSERT INTO users (login, name, role, password_hash, active, created_at)
             VALUES ('op1', '话务员', 'operator', 'x', 1, 0);
         INSERT INTO attempts (member_id, operator_id, attempt_no, recorded_at, outcome, aapor_code, source)
             SELECT m.id, u.id, 1, 0, 'no_answer', '3.1', 'cli'
             FROM members m, users u WHERE m.unit_id = {u1} AND m.phone = '13900000000' AND u.login = 'op1';"
    ));
    seen.push(err(s.add_members(&round, &again, &[u1], "admin")));
    seen.push(format!("{:?}", s.roster_units(round.id).unwrap()));
    seen.push(members_seen(s, round.id));
    seen
}

#[test]
fn pg_contract_roster_imports_alike_and_all_or_nothing() {
    let Some(b) = backends("pg_contract_roster_imports_alike_and_all_or_nothing") else {
        return;
    };
    let on_sqlite = roster_scenario(&b.sqlite, &|sql| sql_sqlite(&b.sqlite, sql));
    let on_pg = roster_scenario(&b.pg, &|sql| sql_pg(&b.pg, sql));
    for (i, (l, p)) in on_sqlite.iter().zip(&on_pg).enumerate() {
        assert_eq!(l, p, "step {i} differs (left SQLite, right PostgreSQL)");
    }
    assert_eq!(on_sqlite.len(), on_pg.len());
    assert_eq!(on_pg[0], "Ok(5)");
    assert_eq!(
        on_pg[3],
        "Conflict: 第 4 行:该号码已在该单位的代表名单中(可能是同时进行的另一次导入)"
    );
    assert_eq!(
        on_pg[4],
        "Conflict: 第 3 行:该号码已在该单位的代表名单中(可能是同时进行的另一次导入)"
    );
    assert_eq!(
        on_pg[5],
        "Conflict: 第 3002 行:该号码已在该单位的代表名单中(可能是同时进行的另一次导入)"
    );
    assert_eq!(
        on_pg[6],
        "Conflict: 第 3 行:参评单位不在本轮次中(可能刚被修改),请重新导入"
    );
    assert_eq!(on_pg[7], "Ok(None)");
    assert_eq!(on_pg[8], "Conflict: 第 12 行:号码无效");
    // The failed imports stored nothing: the members are the first file's.
    assert_eq!(on_pg[9], on_pg[1]);
    assert_eq!(on_pg[10], "Ok(Some(3))");
    assert_eq!(
        on_pg[12],
        "Conflict: 该单位已排入拨打计划或已开始电话调查,不能替换代表名单"
    );
    assert_eq!(count_pg(&b.pg, "SELECT COUNT(*) FROM members"), 6);
    let trail = audit_trail(&b.pg.audit_entries(None).unwrap());
    assert_eq!(trail, audit_trail(&b.sqlite.audit_entries(None).unwrap()));
    let imports: Vec<&str> = trail
        .iter()
        .filter(|e| e.1 == "roster.import")
        .map(|e| e.3.as_str())
        .collect();
    assert_eq!(
        imports,
        [
            r#"{"members":5,"replaced_units":[]}"#,
            r#"{"members":3,"replaced_units":[2]}"#
        ]
    );
    assert!(b.pg.verify_audit().unwrap().is_ok());
}

/// 20,000 members streamed in batches of 500 over 40 units: the same rows on both backends.
#[test]
fn pg_contract_a_large_streamed_import_stores_the_same_rows() {
    let Some(b) = backends("pg_contract_a_large_streamed_import_stores_the_same_rows") else {
        return;
    };
    const UNITS: usize = 40;
    const PER_UNIT: usize = 500;
    fn import<S: RoundStore + RosterStore>(s: &S) -> (Option<usize>, Vec<MemberRecord>) {
        let round = s.create_round(&new_round("2026"), "admin").unwrap();
        let names: Vec<_> = (0..UNITS)
            .map(|u| unit(&format!("单位{u:02}"), u + 2))
            .collect();
        s.add_units(&round, &names, "admin").unwrap();
        let units = s.units(round.id).unwrap();
        let stored = s
            .add_members_streamed(&round, "admin", &mut |sink| {
                for (u, unit) in units.iter().enumerate() {
                    let batch: Vec<NewMember> = (0..PER_UNIT)
                        .map(|i| {
                            let line = 2 + u * PER_UNIT + i;
                            member(unit.id, format!("13{:09}", line), line)
                        })
                        .collect();
                    sink.add(&batch)?;
                }
                Ok(true)
            })
            .unwrap();
        (stored, s.members(round.id, None).unwrap())
    }
    let (n_sqlite, on_sqlite) = import(&b.sqlite);
    let (n_pg, on_pg) = import(&b.pg);
    assert_eq!(n_pg, Some(UNITS * PER_UNIT));
    assert_eq!(n_sqlite, n_pg);
    assert_eq!(on_pg.len(), UNITS * PER_UNIT);
    assert_eq!(format!("{on_sqlite:?}"), format!("{on_pg:?}"));
    // Ids follow the file on both.
    assert!(on_pg.windows(2).all(|w| w[0].id < w[1].id));
    let units = b.pg.units(1).unwrap();
    assert!(units.iter().all(|u| u.panel == PER_UNIT));
    assert_eq!(
        format!("{:?}", b.sqlite.units(1).unwrap()),
        format!("{units:?}")
    );
}

/// Two instances on one database import the same phone into one unit at once: the second
/// import waits for the first, then refuses naming its own line, and stores nothing.
#[test]
fn pg_contract_two_instances_importing_one_phone_conflict_by_line() {
    let Some(b) = backends("pg_contract_two_instances_importing_one_phone_conflict_by_line") else {
        return;
    };
    let second = sheping::storage::postgres::PgBackend::open(&b.url()).unwrap();
    let round = b.pg.create_round(&new_round("2026"), "admin").unwrap();
    b.pg.add_units(&round, &[unit("市教育局", 2)], "admin")
        .unwrap();
    let u = b.pg.units(round.id).unwrap()[0].id;
    let (inserted_tx, inserted_rx) = std::sync::mpsc::channel::<()>();
    let first_round = round.clone();
    let (pg, second, later_round) = (&b.pg, &second, &round);
    let (first, later) = std::thread::scope(|scope| {
        let first = scope.spawn(move || {
            pg.add_members_streamed(&first_round, "a", &mut |sink| {
                sink.add(&[member(u, "13800000001".into(), 2)])?;
                // Not committed yet: the other instance starts its import now.
                inserted_tx.send(()).unwrap();
                Ok(true)
            })
        });
        let later = scope.spawn(move || {
            inserted_rx.recv().unwrap();
            second.add_members(
                later_round,
                &[
                    member(u, "13800000002".into(), 2),
                    member(u, "13800000001".into(), 3),
                ],
                &[],
                "b",
            )
        });
        (first.join().unwrap(), later.join().unwrap())
    });
    assert_eq!(first.unwrap(), Some(1));
    assert_eq!(
        crate::pg_contract_rounds::kind(&later.unwrap_err()),
        "Conflict: 第 3 行:该号码已在该单位的代表名单中(可能是同时进行的另一次导入)"
    );
    let phones: Vec<Option<String>> =
        b.pg.members(round.id, None)
            .unwrap()
            .into_iter()
            .map(|m| m.phone)
            .collect();
    assert_eq!(phones, [Some("13800000001".to_string())]);
    assert!(b.pg.verify_audit().unwrap().is_ok());
}
