//! The storage contract for results (on-site data, evidence, results settings), the audit log
//! (search, facets, the chain) and backups (issue 22), on SQLite and PostgreSQL alike. Needs
//! the test cluster (`bash tests/pg_cluster.sh cargo test --test it pg_contract`).

use crate::pg_contract_rounds::{audit_trail, backends, err, new_round, unit};

use sheping::domain::evidence::{EvidenceKind, EvidenceRecord};
use sheping::storage::postgres::backup::NO_ONLINE_BACKUP;
use sheping::storage::*;
use sheping::storage::{
    AuditFilter, BackupStore, EvidenceBatch, OnsiteBatch, ResultsSettings, StoredBallot,
};

type Seen = Vec<String>;

fn ballot(id: &str, levels: &[usize], overall: bool) -> StoredBallot {
    StoredBallot {
        ballot: id.into(),
        levels: levels.to_vec(),
        overall,
    }
}

fn evidence(kind: EvidenceKind, count: u64, volume: Option<u64>) -> EvidenceRecord {
    EvidenceRecord {
        kind,
        count,
        volume,
        source: "市信访局函〔2026〕3号".into(),
        note: String::new(),
    }
}

fn results_scenario<S: RoundStore + ResultsStore + AuditStore>(s: &S) -> Seen {
    let mut seen = Seen::new();
    let round = s.create_round(&new_round("2026"), "admin").unwrap();
    s.add_units(
        &round,
        &[
            unit("市教育局", 2),
            unit("市卫健委", 3),
            unit("市民政局", 4),
        ],
        "admin",
    )
    .unwrap();
    let u: Vec<i64> = s.units(round.id).unwrap().iter().map(|u| u.id).collect();

    // On-site: ballots for two units, a direct score for the third.
    let batch = OnsiteBatch {
        ballots: vec![
            (u[0], ballot("A-001", &[0, 1, 2, 1], false), 2),
            (u[0], ballot("A-002", &[1], true), 3),
            (u[1], ballot("B-001", &[2, 2, 2, 2], false), 4),
        ],
        scores: vec![(u[2], 87.5, 5)],
        replace_units: vec![],
    };
    seen.push(format!("{:?}", s.store_onsite(&round, &batch, "stat")));
    seen.push(format!("{:?}", s.onsite(round.id).unwrap()));
    // The same ballot again (line 7), a second score (line 8): all refused, nothing stored.
    let again = OnsiteBatch {
        ballots: vec![
            (u[1], ballot("B-002", &[0, 0, 0, 0], false), 6),
            (u[0], ballot("A-001", &[0, 0, 0, 0], false), 7),
        ],
        scores: vec![],
        replace_units: vec![],
    };
    seen.push(err(s.store_onsite(&round, &again, "stat")));
    let score_again = OnsiteBatch {
        ballots: vec![],
        scores: vec![(u[2], 90.0, 8)],
        replace_units: vec![],
    };
    seen.push(err(s.store_onsite(&round, &score_again, "stat")));
    seen.push(format!("{:?}", s.onsite(round.id).unwrap()));
    // --replace of unit 1's ballots.
    let replace = OnsiteBatch {
        ballots: vec![(u[0], ballot("A-009", &[3, 3, 3, 3], false), 2)],
        scores: vec![(u[2], 90.0, 3)],
        replace_units: vec![u[0], u[2]],
    };
    seen.push(format!("{:?}", s.store_onsite(&round, &replace, "stat")));
    seen.push(format!("{:?}", s.onsite(round.id).unwrap()));

    // Evidence: kinds come back in order; a kind twice is refused naming the line.
    let records = EvidenceBatch {
        records: vec![
            (u[0], evidence(EvidenceKind::Petition, 3, Some(120)), 2),
            (u[0], evidence(EvidenceKind::Complaint, 12, None), 3),
            (u[1], evidence(EvidenceKind::Discipline, 0, None), 4),
        ],
        replace: false,
    };
    seen.push(format!("{:?}", s.store_evidence(&round, &records, "stat")));
    seen.push(format!("{:?}", s.evidence(round.id).unwrap()));
    let twice = EvidenceBatch {
        records: vec![
            (u[1], evidence(EvidenceKind::Complaint, 1, None), 2),
            (u[0], evidence(EvidenceKind::Complaint, 2, None), 3),
        ],
        replace: false,
    };
    seen.push(err(s.store_evidence(&round, &twice, "stat")));
    let replaced = EvidenceBatch {
        records: vec![(u[2], evidence(EvidenceKind::Complaint, 4, Some(9)), 2)],
        replace: true,
    };
    seen.push(format!("{:?}", s.store_evidence(&round, &replaced, "stat")));
    seen.push(format!("{:?}", s.evidence(round.id).unwrap()));

    // Settings: drawn once, kept; allowed on a locked round, unlike the imports.
    seen.push(format!("{:?}", s.results_settings(round.id).unwrap()));
    s.lock_round(&round, "admin").unwrap();
    let round = s.round("2026").unwrap();
    let first = ResultsSettings {
        bootstrap_seed: u64::MAX - 7,
        pseudonym_key: [0xab; 32],
    };
    let second = ResultsSettings {
        bootstrap_seed: 1,
        pseudonym_key: [1; 32],
    };
    seen.push(format!(
        "{:?}",
        s.init_results_settings(&round, &first, "stat")
    ));
    seen.push(format!(
        "{:?}",
        s.init_results_settings(&round, &second, "stat")
    ));
    seen.push(format!("{:?}", s.results_settings(round.id).unwrap()));
    seen.push(err(s.store_onsite(&round, &score_again, "stat")));
    seen.push(err(s.store_evidence(&round, &replaced, "stat")));
    seen
}

#[test]
fn pg_contract_results_onsite_evidence_and_settings_alike() {
    let Some(b) = backends("pg_contract_results_onsite_evidence_and_settings_alike") else {
        return;
    };
    let on_sqlite = results_scenario(&b.sqlite);
    let on_pg = results_scenario(&b.pg);
    for (i, (l, p)) in on_sqlite.iter().zip(&on_pg).enumerate() {
        assert_eq!(l, p, "step {i} differs (left SQLite, right PostgreSQL)");
    }
    assert_eq!(on_sqlite.len(), on_pg.len());
    assert_eq!(on_pg[0], "Ok(4)");
    assert_eq!(
        on_pg[2],
        "Conflict: 第 7 行:选票编号“A-001”已导入过(可能是同时进行的另一次导入)"
    );
    assert_eq!(on_pg[3], "Conflict: 第 8 行:该单位已有现场评价得分");
    assert_eq!(on_pg[4], on_pg[1]);
    assert!(on_pg[6].contains("A-009") && !on_pg[6].contains("A-001"));
    assert!(
        on_pg[9].starts_with("Conflict: 第 3 行:该单位的"),
        "{}",
        on_pg[9]
    );
    assert_eq!(on_pg[10], "Ok(1)");
    assert!(on_pg[11].contains("count: 4") && !on_pg[11].contains("count: 12"));
    assert_eq!(on_pg[12], "None");
    assert!(on_pg[13].contains("18446744073709551608"));
    assert_eq!(on_pg[14], on_pg[13]);
    assert!(on_pg[15].contains("18446744073709551608"));
    assert_eq!(on_pg[16], "Locked: 2026");
    assert_eq!(on_pg[17], "Locked: 2026");
    let trail = audit_trail(&b.pg.audit_entries(Some("2026")).unwrap());
    assert_eq!(
        trail,
        audit_trail(&b.sqlite.audit_entries(Some("2026")).unwrap())
    );
    let actions: Vec<&str> = trail.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        actions,
        [
            "round.create",
            "units.import",
            "onsite.import",
            "onsite.import",
            "evidence.import",
            "evidence.import",
            "round.lock",
            "results.settings"
        ]
    );
    assert!(b.pg.verify_audit().unwrap().is_ok());
}

fn audit_scenario<S: RoundStore + AuditStore + BackupStore>(s: &S) -> Seen {
    let mut seen = Seen::new();
    let round = s.create_round(&new_round("2026"), "admin").unwrap();
    s.create_round(&new_round("2027"), "chen").unwrap();
    s.add_units(&round, &[unit("市教育局", 2)], "chen").unwrap();
    for (actor, action) in [
        ("admin", "auth.signin"),
        ("chen", "auth.signin"),
        ("chen", "auth.signout"),
        ("admin", "authx"),
        ("admin", "backup"),
    ] {
        s.audit(&AuditEvent {
            actor,
            action,
            round_key: None,
            detail: serde_json::json!({ "out": "备份/sheping-2026.db", "ip": "127.0.0.1" }),
        })
        .unwrap();
    }
    let page = |action: Option<&str>, actor: Option<&str>, round: Option<&str>, limit, offset| {
        let p = s
            .search_audit(&AuditFilter {
                action: action.map(str::to_owned),
                actor: actor.map(str::to_owned),
                round_key: round.map(str::to_owned),
                limit,
                offset,
            })
            .unwrap();
        let ids: Vec<(i64, String)> = p.entries.iter().map(|e| (e.id, e.action.clone())).collect();
        format!("{} {ids:?}", p.total)
    };
    seen.push(page(None, None, None, 3, 0));
    seen.push(page(None, None, None, 3, 6));
    seen.push(page(Some("auth."), None, None, 10, 0));
    seen.push(page(Some("auth.signin"), Some("chen"), None, 10, 0));
    seen.push(page(None, Some("chen"), Some("2026"), 10, 0));
    seen.push(page(Some("nothing"), None, None, 10, 0));
    seen.push(format!("{:?}", s.audit_facets().unwrap()));
    seen.push(format!(
        "{:?}",
        s.backups_made_since(0)
            .unwrap()
            .iter()
            .map(|b| b.out.clone())
            .collect::<Vec<_>>()
    ));
    seen.push(format!(
        "{:?}",
        s.backups_made_since(i64::MAX).unwrap().len()
    ));
    seen.push(format!("{:?}", s.verify_audit().unwrap()));
    seen
}

#[test]
fn pg_contract_audit_search_facets_chain_and_backups_alike() {
    let Some(b) = backends("pg_contract_audit_search_facets_chain_and_backups_alike") else {
        return;
    };
    let on_sqlite = audit_scenario(&b.sqlite);
    let on_pg = audit_scenario(&b.pg);
    assert_eq!(on_sqlite, on_pg);
    assert_eq!(
        on_pg[0],
        r#"8 [(8, "backup"), (7, "authx"), (6, "auth.signout")]"#
    );
    assert_eq!(on_pg[1], r#"8 [(2, "round.create"), (1, "round.create")]"#);
    assert_eq!(
        on_pg[2],
        r#"3 [(6, "auth.signout"), (5, "auth.signin"), (4, "auth.signin")]"#
    );
    assert_eq!(on_pg[3], r#"1 [(5, "auth.signin")]"#);
    assert_eq!(on_pg[4], r#"1 [(3, "units.import")]"#);
    assert_eq!(on_pg[5], "0 []");
    assert_eq!(on_pg[7], r#"["备份/sheping-2026.db"]"#);
    assert_eq!(on_pg[9], "Ok(8)");

    // PostgreSQL has no file copy of its own: the refusal names pg_dump and the docs, and
    // nothing is logged or written.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("copy.db");
    let e = b.pg.backup_logged(&file, "copy.db", "admin").unwrap_err();
    assert_eq!(e.to_string(), NO_ONLINE_BACKUP);
    assert!(NO_ONLINE_BACKUP.contains("pg_dump") && NO_ONLINE_BACKUP.contains("docs/deploy.md"));
    assert!(!file.exists());
    assert_eq!(b.pg.audit_entries(None).unwrap().len(), 8);
    // SQLite's copy is logged and listed.
    b.sqlite.backup_logged(&file, "copy.db", "admin").unwrap();
    assert!(file.exists());
    assert_eq!(b.sqlite.backups_made_since(0).unwrap().len(), 2);

    // Tampering with an entry breaks PostgreSQL's chain where it happened.
    crate::pg_contract_rounds::sql_pg(&b.pg, "UPDATE audit_log SET detail = '{}' WHERE id = 4");
    let broken = b.pg.verify_audit().unwrap().unwrap_err();
    assert_eq!(
        broken,
        sheping::domain::audit::ChainBreak::Altered { id: 4 }
    );
}
