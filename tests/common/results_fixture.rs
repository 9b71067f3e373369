//! A small round recorded through the real store (claims, recording, imports, on-site data),
//! shared by the results, exports, on-site and API tests. Every figure it leads to is worked
//! out by hand in `tests/it/results_store.rs`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sheping::domain::disposition::Outcome;
use sheping::domain::roster::{MemberCategory, NewMember};
use sheping::domain::survey::Survey;
use sheping::domain::unit::{NewUnit, UnitKind};
use sheping::domain::user::Role;
use sheping::engine;
use sheping::storage::Store;
use sheping::storage::results::{OnsiteBatch, StoredBallot};
use sheping::storage::{AttemptInput, NewRound, NewUser, RoundRecord, UnitRecord, UserRecord};

pub const ROUND: &str = "2022";
pub const PER_UNIT: usize = 5;

/// 2022-11-02 at `h:m:s` in Shanghai.
pub fn local(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 11, 2, h, m, s).unwrap() - Duration::hours(8)
}

/// When the results are computed: the same afternoon (field period still open).
pub fn now() -> DateTime<Utc> {
    local(16, 0, 0)
}

/// One scripted call: the outcome, the answers (level index, 0 = best), how long it took
/// (claim to record, seconds) and when each answer was keyed (ms after the claim).
#[derive(Clone, Debug)]
pub struct Call {
    pub outcome: Outcome,
    pub answers: Vec<usize>,
    pub secs: i64,
    pub answer_ms: Vec<i64>,
    pub comment: Option<String>,
}

pub fn complete(answers: [usize; 5], secs: i64) -> Call {
    Call {
        outcome: Outcome::Complete,
        answers: answers.to_vec(),
        secs,
        // Keyed 10 s apart, starting 20 s into the call.
        answer_ms: (0..5).map(|d| 20_000 + 10_000 * d).collect(),
        comment: None,
    }
}

pub fn other(outcome: Outcome) -> Call {
    Call {
        outcome,
        answers: Vec::new(),
        secs: 30,
        answer_ms: Vec::new(),
        comment: None,
    }
}

pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub round: RoundRecord,
    pub units: Vec<UnitRecord>,
    pub ops: Vec<UserRecord>,
    /// (name, phone) of every member, to scan exports for.
    pub personal: Vec<(String, String)>,
}

pub const UNITS: [&str; 5] = [
    "汉滨区甲局",   // A: 3 completes (100, 80, 68), ballots 100/80/80
    "汉滨区乙局",   // B: 1 complete (96), direct on-site score 90, RR1 0.2
    "汉滨区丙中心", // C: 2 identical completes (80, 80), no on-site data
    "汉滨区丁站",   // D: 0 completes, ballots
    "汉滨区戊所",   // E: the same answers and ballots as A (a tie)
];

/// The script per unit (members are called in plan order; within a unit the multiset of
/// calls is what matters).
pub fn scripts() -> Vec<Vec<Call>> {
    let mut fast = complete([0, 1, 2, 3, 0], 120);
    // Five answers keyed one second apart: median gap 1 s < 2 s.
    fast.answer_ms = vec![20_000, 21_000, 22_000, 23_000, 24_000];
    let mut short = complete([1, 1, 1, 1, 1], 45);
    short.comment = Some("COMMENT_MARKER 请回电".into());
    let a = vec![
        complete([0, 0, 0, 0, 0], 120),
        short,
        fast,
        other(Outcome::Refused),
        other(Outcome::NoAnswer),
    ];
    let b = vec![
        complete([1, 0, 0, 0, 0], 150),
        other(Outcome::Refused),
        other(Outcome::Refused),
        other(Outcome::NoAnswer),
        other(Outcome::WrongNumber),
    ];
    let c = vec![
        complete([1, 1, 1, 1, 1], 100),
        complete([1, 1, 1, 1, 1], 100),
        other(Outcome::NoAnswer),
        other(Outcome::Busy),
        other(Outcome::Voicemail),
    ];
    let d = vec![other(Outcome::NoAnswer); 5];
    let e = vec![
        complete([0, 0, 0, 0, 0], 120),
        complete([1, 1, 1, 1, 1], 90),
        complete([0, 1, 2, 3, 0], 90),
        other(Outcome::Refused),
        other(Outcome::NoAnswer),
    ];
    vec![a, b, c, d, e]
}

pub fn survey() -> Survey {
    let mut s = Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap();
    s.panel_size = PER_UNIT as u32;
    s.scoring.min_completes = 2;
    s
}

/// Creates the round on a test's database (whichever backend the run selected), records
/// every scripted call through the engine (claim, record), and stores the on-site data.
pub fn build_for(sp: &super::Sheping) -> Fixture {
    build_on(sp.store())
}

/// [`build_for`] on a thread of its own, the store closed there too: for async tests (the
/// PostgreSQL store blocks on a runtime of its own, which must not start or end on a thread
/// driving another).
pub fn build_in(sp: &super::Sheping) {
    std::thread::scope(|s| {
        s.spawn(|| drop(build_for(sp)))
            .join()
            .expect("the fixture's thread")
    });
}

/// [`build_for`] through any store.
pub fn build_on(store: Arc<dyn Store>) -> Fixture {
    let round = store
        .create_round(
            &NewRound {
                key: ROUND.into(),
                title: "2022年度履职评估(测试)".into(),
                survey: survey(),
                survey_source: "test".into(),
                field: Some((
                    chrono::NaiveDate::from_ymd_opt(2022, 11, 1).unwrap(),
                    chrono::NaiveDate::from_ymd_opt(2022, 11, 30).unwrap(),
                )),
            },
            "test",
        )
        .unwrap();
    let new_units: Vec<NewUnit> = UNITS
        .iter()
        .enumerate()
        .map(|(i, name)| NewUnit {
            name: name.to_string(),
            kind: if i == 0 {
                UnitKind::Organ
            } else {
                UnitKind::Institution
            },
            sector: "测试".into(),
            code: Some(format!("U{i}")),
            line: i + 2,
        })
        .collect();
    store.add_units(&round, &new_units, "test").unwrap();
    let units = store.units(round.id).unwrap();
    let mut members = Vec::new();
    let mut personal = Vec::new();
    for (u, unit) in units.iter().enumerate() {
        for k in 0..PER_UNIT {
            let name = format!(
                "代表{}{}",
                ["张", "王", "李", "赵", "钱"][u],
                ["一", "二", "三", "四", "五"][k]
            );
            let phone = format!("1390915{u:02}{k:02}");
            personal.push((name.clone(), phone.clone()));
            members.push(NewMember {
                unit_id: unit.id,
                name,
                phone,
                phone_alt: None,
                category: if k == 0 {
                    MemberCategory::NpcDeputy
                } else {
                    MemberCategory::ServiceRecipient
                },
                organization: None,
                note: None,
                line: members.len() + 2,
            });
        }
    }
    store.add_members(&round, &members, &[], "test").unwrap();
    let ops: Vec<UserRecord> = (0..2)
        .map(|i| {
            store
                .add_user(
                    &NewUser {
                        login: format!("op{i}"),
                        name: format!("话务员{i}"),
                        role: Role::Operator,
                        password_hash: "x".into(),
                    },
                    "test",
                )
                .unwrap()
        })
        .collect();
    engine::generate_plan(
        store.as_ref(),
        &round,
        ops.iter().map(|o| o.login.clone()).collect(),
        11,
        "test",
    )
    .unwrap();

    let index: BTreeMap<i64, usize> = units.iter().enumerate().map(|(i, u)| (u.id, i)).collect();
    let mut queues: Vec<VecDeque<Call>> = scripts().into_iter().map(VecDeque::from).collect();
    // Calls start at 09:00 and are 100 s apart, so no retry of a no-answer falls due (60 min).
    let mut t = local(9, 0, 0);
    let mut idle = 0;
    let mut turn = 0;
    while idle < ops.len() {
        let op = &ops[turn % ops.len()];
        turn += 1;
        let Some(claim) = store.claim_next(&round, op, t).unwrap() else {
            idle += 1;
            continue;
        };
        idle = 0;
        let u = index[&claim.member.unit_id];
        let call = queues[u]
            .pop_front()
            .expect("a scripted call for every member");
        let input = AttemptInput {
            outcome: Some(call.outcome),
            answers: call.answers.iter().map(|a| Some(*a)).collect(),
            answer_ms: call.answer_ms.iter().map(|m| Some(*m)).collect(),
            comment: call.comment.clone().map(|c| {
                // The operator typed the respondent's name and number into the comment.
                format!(
                    "{c} {} {}",
                    claim.member.name.clone().unwrap_or_default(),
                    claim.member.phone.clone().unwrap_or_default()
                )
            }),
            appointment: None,
        };
        let recorded = claim.claimed_at_ms + call.secs * 1000;
        let at = DateTime::from_timestamp_millis(recorded).unwrap();
        store.record(&round, &claim.token, op, &input, at).unwrap();
        t += Duration::seconds(100);
        assert!(t < local(9, 59, 0), "script too long for one hour");
    }
    assert!(
        queues.iter().all(VecDeque::is_empty),
        "every scripted call made"
    );

    // On-site: A and E ballots (overall 1st, 2nd, 2nd level), B a direct 90, D per-dimension
    // ballots, C nothing.
    let ballot = |id: &str, levels: Vec<usize>, overall: bool| StoredBallot {
        ballot: id.into(),
        levels,
        overall,
    };
    let mut batch = OnsiteBatch::default();
    for u in [0usize, 4] {
        for (i, l) in [0usize, 1, 1].iter().enumerate() {
            batch
                .ballots
                .push((units[u].id, ballot(&format!("b{i}"), vec![*l], true), i + 2));
        }
    }
    batch
        .ballots
        .push((units[3].id, ballot("d1", vec![0, 0, 1, 1, 2], false), 10));
    batch
        .ballots
        .push((units[3].id, ballot("d2", vec![3, 3, 3, 3, 3], false), 11));
    batch.scores.push((units[1].id, 90.0, 2));
    store.store_onsite(&round, &batch, "test").unwrap();
    Fixture {
        store,
        round,
        units,
        ops,
        personal,
    }
}
