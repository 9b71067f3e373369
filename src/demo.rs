//! The demo round: shaped like the article's 2022 round (30 units: 10 教体, 10 住建,
//! 6 交通运输, 4 units that ranked low the year before), 45 synthetic representatives each.
//! Every name and number is made up and the round is titled as demo data.

use anyhow::{Context, Result};
use rand::RngExt;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use chrono::{Duration, NaiveDate, TimeZone, Utc};

use crate::domain::disposition::Outcome;
use crate::domain::roster::{self, RosterOptions};
use crate::domain::survey::Survey;
use crate::domain::unit::{NewUnit, UnitKind};
use crate::domain::user::{Role, hash_password};
use crate::engine::{self, Store};
use crate::storage::{AttemptInput, NewRound, NewUser, RoundRecord};

pub const DEMO_ROUND: &str = "2022";
const ACTOR: &str = "demo";

/// (name, kind, sector)
pub const DEMO_UNITS: [(&str, UnitKind, &str); 30] = [
    ("汉滨区教育体育局", UnitKind::Organ, "教体"),
    ("汉滨区教学研究室", UnitKind::Institution, "教体"),
    ("汉滨区学生资助管理中心", UnitKind::Institution, "教体"),
    ("汉滨区体育运动中心", UnitKind::Institution, "教体"),
    ("汉滨区第一中学", UnitKind::Institution, "教体"),
    ("汉滨区第二中学", UnitKind::Institution, "教体"),
    ("汉滨区职业技术教育中心", UnitKind::Institution, "教体"),
    ("汉滨区实验小学", UnitKind::Institution, "教体"),
    ("汉滨区教师进修学校", UnitKind::Institution, "教体"),
    ("汉滨区青少年校外活动中心", UnitKind::Institution, "教体"),
    ("汉滨区住房和城乡建设局", UnitKind::Organ, "住建"),
    ("汉滨区房产管理中心", UnitKind::Institution, "住建"),
    ("汉滨区住房保障中心", UnitKind::Institution, "住建"),
    (
        "汉滨区建设工程质量安全监督站",
        UnitKind::Institution,
        "住建",
    ),
    ("汉滨区城市建设服务中心", UnitKind::Institution, "住建"),
    ("汉滨区物业管理服务中心", UnitKind::Institution, "住建"),
    ("汉滨区建筑市场服务中心", UnitKind::Institution, "住建"),
    ("汉滨区人民防空服务中心", UnitKind::Institution, "住建"),
    ("汉滨区村镇建设服务站", UnitKind::Institution, "住建"),
    ("汉滨区市政设施维护中心", UnitKind::Institution, "住建"),
    ("汉滨区交通运输局", UnitKind::Organ, "交通运输"),
    ("汉滨区公路管理段", UnitKind::Institution, "交通运输"),
    ("汉滨区道路运输服务中心", UnitKind::Institution, "交通运输"),
    ("汉滨区农村公路建设中心", UnitKind::Institution, "交通运输"),
    (
        "汉滨区交通运输综合执法大队",
        UnitKind::Institution,
        "交通运输",
    ),
    ("汉滨区航运管理站", UnitKind::Institution, "交通运输"),
    ("汉滨区市场监督管理局", UnitKind::Organ, "上年度考核靠后"),
    (
        "汉滨区月河灌区管理中心",
        UnitKind::Institution,
        "上年度考核靠后",
    ),
    (
        "汉滨区农业技术推广中心",
        UnitKind::Institution,
        "上年度考核靠后",
    ),
    ("汉滨区林业站", UnitKind::Institution, "上年度考核靠后"),
];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗", "梁", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董", "萧",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "建华", "志强", "海燕", "文", "欣怡", "子涵", "晓东",
    "红梅",
];
const ORGS: &[&str] = &[
    "社区居民",
    "个体工商户",
    "企业职工",
    "退休教师",
    "村民代表",
    "学生家长",
    "物业公司职员",
    "出租车司机",
];

/// Demo logins: (login, name, role, password). Demo data only; never use these elsewhere.
pub const DEMO_USERS: [(&str, &str, Role, &str); 6] = [
    ("admin", "编办管理员", Role::Admin, "demo-admin-2022"),
    ("op1", "王静", Role::Operator, "demo-op1-2022"),
    ("op2", "李娜", Role::Operator, "demo-op2-2022"),
    ("op3", "张敏", Role::Operator, "demo-op3-2022"),
    ("stat", "刘洋", Role::Statistician, "demo-stat-2022"),
    ("eval", "陈军", Role::Evaluator, "demo-eval-2022"),
];

/// Days of simulated calling before today.
const SIMULATED_DAYS: i64 = 5;

pub fn print_logins() {
    println!("演示账号(仅用于演示数据):");
    for (login, name, role, password) in DEMO_USERS {
        println!(
            "  {:<6} 密码 {:<16} {}({})",
            login,
            password,
            role.label(),
            name
        );
    }
}

/// Creates the demo round when the database has no round yet; returns whether it did.
pub fn ensure_demo(store: &dyn Store) -> Result<bool> {
    if !store.rounds()?.is_empty() {
        return Ok(false);
    }
    let mut survey =
        Survey::from_toml_str(include_str!("../surveys/default.toml")).context("default survey")?;
    // The demo must be usable at any hour a newcomer tries it.
    survey.calling.windows = vec!["00:00-23:59".into()];
    let today = Utc::now().with_timezone(&survey.timezone()).date_naive();
    let field = (
        today - Duration::days(SIMULATED_DAYS + 2),
        today + Duration::days(21),
    );
    let round = store.create_round(
        &NewRound {
            key: DEMO_ROUND.into(),
            title: "2022年度履职评估(演示数据)".into(),
            survey,
            survey_source: "surveys/default.toml".into(),
            field: Some(field),
        },
        ACTOR,
    )?;
    let units: Vec<NewUnit> = DEMO_UNITS
        .iter()
        .enumerate()
        .map(|(i, (name, kind, sector))| NewUnit {
            name: name.to_string(),
            kind: *kind,
            sector: sector.to_string(),
            code: Some(format!("DEMO{:02}", i + 1)),
            line: i + 2,
        })
        .collect();
    store.add_units(&round, &units, ACTOR)?;

    // Rows as a roster file would give them, validated by the same rules as a real import.
    let mut rng = ChaCha8Rng::from_seed([22; 32]);
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (name, _, _) in DEMO_UNITS {
        for k in 0..round.survey.panel_size {
            let person = format!(
                "{}{}",
                SURNAMES[rng.random_range(0..SURNAMES.len())],
                GIVEN[rng.random_range(0..GIVEN.len())]
            );
            let category = match k % 15 {
                0 => "党代表",
                1 => "人大代表",
                2 => "政协委员",
                _ => "",
            };
            let phone = if k % 9 == 8 {
                format!("0915-{}", rng.random_range(3_000_000..3_999_999))
            } else {
                format!(
                    "1{}{:09}",
                    rng.random_range(3..=9),
                    rng.random_range(0..1_000_000_000u64)
                )
            };
            rows.push(vec![
                name.to_string(),
                person,
                phone,
                category.to_string(),
                ORGS[rng.random_range(0..ORGS.len())].to_string(),
                "演示数据(虚构)".to_string(),
            ]);
        }
    }
    store_demo_roster(store, &round, &rows, "demo roster")?;

    for (login, name, role, password) in DEMO_USERS {
        store.add_user(
            &NewUser {
                login: login.into(),
                name: name.into(),
                role,
                password_hash: hash_password(password),
            },
            ACTOR,
        )?;
    }
    let operators: Vec<String> = DEMO_USERS
        .iter()
        .filter(|u| u.2 == Role::Operator)
        .map(|u| u.0.to_string())
        .collect();
    engine::generate_plan(store, &round, operators, 2022, ACTOR)?;
    simulate_calls(store, &round, today, &mut rng)?;
    // The evaluation meetings' on-site scores, so the social-evaluation score is complete.
    crate::imports::demo_onsite(store, &round, ACTOR)?;
    crate::imports::demo_evidence(store, &round, ACTOR)?;
    let previous = previous_round(store, &round)?;
    store.set_previous_round(&round, &previous, ACTOR)?;
    Ok(true)
}

/// Checks the demo's generated roster rows with the importers' rules and stores them.
fn store_demo_roster(
    store: &dyn Store,
    round: &RoundRecord,
    rows: &[Vec<String>],
    what: &str,
) -> Result<()> {
    let headers: Vec<String> = [
        "参评单位",
        "姓名",
        "联系电话",
        "代表类别",
        "工作单位及职务",
        "备注",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (columns, _) = roster::map_columns(&headers).map_err(anyhow::Error::msg)?;
    let check = roster::check_roster(
        rows.iter().enumerate().map(|(i, r)| (i + 2, r.as_slice())),
        &columns,
        &store.roster_units(round.id)?,
        &RosterOptions {
            area_code: Some("0915".into()),
            replace: false,
            panel_size: round.survey.panel_size as usize,
        },
    );
    anyhow::ensure!(
        check.rejected.is_empty(),
        "{what} invalid: {:?}",
        check.rejected.first()
    );
    store.add_members(round, &check.members, &[], ACTOR)?;
    Ok(())
}

/// The demo's previous round, 2021: the same units but one (which did not exist yet) and one
/// since merged away, 15 representatives each, its interviews imported as a finished round's
/// would be, its on-site data, and locked. Some units were rated clearly differently then, so
/// the comparison has changes to show.
pub const PREVIOUS_ROUND: &str = "2021";

fn previous_round(store: &dyn Store, current: &RoundRecord) -> Result<RoundRecord> {
    let round = store.create_round(
        &NewRound {
            key: PREVIOUS_ROUND.into(),
            title: "2021年度履职评估(演示数据)".into(),
            survey: (*current.survey).clone(),
            survey_source: current.survey_source.clone(),
            field: Some((
                NaiveDate::from_ymd_opt(2021, 11, 1).context("date")?,
                NaiveDate::from_ymd_opt(2021, 11, 30).context("date")?,
            )),
        },
        ACTOR,
    )?;
    let n = DEMO_UNITS.len();
    let mut units: Vec<NewUnit> = DEMO_UNITS[..n - 1]
        .iter()
        .enumerate()
        .map(|(i, (name, kind, sector))| NewUnit {
            name: name.to_string(),
            kind: *kind,
            sector: sector.to_string(),
            code: Some(format!("DEMO{:02}", i + 1)),
            line: i + 2,
        })
        .collect();
    units.push(NewUnit {
        name: "汉滨区城乡建设档案馆".into(),
        kind: UnitKind::Institution,
        sector: "住建".into(),
        code: Some("DEMO91".into()),
        line: n + 1,
    });
    store.add_units(&round, &units, ACTOR)?;
    let mut rng = ChaCha8Rng::from_seed([21; 32]);
    let per_unit = 15;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (u, unit) in units.iter().enumerate() {
        for k in 0..per_unit {
            rows.push(vec![
                unit.name.clone(),
                format!(
                    "{}{}",
                    SURNAMES[rng.random_range(0..SURNAMES.len())],
                    GIVEN[rng.random_range(0..GIVEN.len())]
                ),
                format!(
                    "1{}{:02}{k:02}{:05}",
                    3 + u % 7,
                    u,
                    rng.random_range(0..100_000u32)
                ),
                String::new(),
                ORGS[rng.random_range(0..ORGS.len())].to_string(),
                "演示数据(虚构)".to_string(),
            ]);
        }
    }
    store_demo_roster(store, &round, &rows, "demo 2021 roster")?;
    let operator = store
        .users()?
        .into_iter()
        .find(|u| u.role == Role::Operator)
        .context("demo operator")?;
    let unit_index: std::collections::BTreeMap<i64, usize> = store
        .units(round.id)?
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id, i))
        .collect();
    let start = Utc
        .with_ymd_and_hms(2021, 11, 8, 1, 0, 0)
        .single()
        .context("time")?;
    let dims = round.survey.dimensions.len();
    let mut attempts = Vec::new();
    for (k, m) in store.members(round.id, None)?.iter().enumerate() {
        let i = unit_index.get(&m.unit_id).copied().unwrap_or(0);
        // As in 2022, later units rated lower; the last group far lower in 2021, the first
        // four a little higher.
        let mut quality = 0.85 - 0.25 * i as f64 / n as f64;
        let mut fair = 0.95;
        if i >= n - 5 {
            (quality, fair) = (0.1, 0.75);
        } else if i < 4 {
            quality += 0.08;
        }
        let complete = rng.random::<f64>() < 0.7;
        let answers = if complete {
            (0..dims)
                .map(|_| {
                    let r: f64 = rng.random();
                    Some(if r < quality * 0.7 {
                        0
                    } else if r < quality {
                        1
                    } else if r < fair {
                        2
                    } else {
                        3
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        attempts.push(crate::storage::ImportedAttempt {
            member_id: m.id,
            operator_id: operator.id,
            recorded_at: start + Duration::minutes(7 * k as i64),
            outcome: if complete {
                Outcome::Complete
            } else {
                Outcome::NoAnswer
            },
            answers,
            comment: None,
            appointment: None,
        });
    }
    store.import_attempts(&round, &attempts, ACTOR, Utc::now())?;
    crate::imports::demo_onsite(store, &round, ACTOR)?;
    store.lock_round(&round, ACTOR)?;
    // A finished year's contacts are deleted once its results are final, as the office does
    // (个人信息保护法): the demo's 2021 round holds no names or numbers either.
    store.purge_contacts(&round, ACTOR)?;
    Ok(store.round(PREVIOUS_ROUND)?)
}

/// Plays the past days of the field period through the real engine (claim, then record), so
/// progress and results have something to show and about a third of the panel is left to call.
fn simulate_calls(
    store: &dyn Store,
    round: &RoundRecord,
    today: NaiveDate,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    let tz = round.survey.timezone();
    let ops: Vec<_> = store
        .users()?
        .into_iter()
        .filter(|u| u.role == Role::Operator)
        .collect();
    let n_units = DEMO_UNITS.len();
    for day in (1..=SIMULATED_DAYS).rev() {
        let date = today - Duration::days(day);
        for (k, op) in ops.iter().enumerate() {
            let start = tz
                .from_local_datetime(&date.and_hms_opt(9, 0, 0).expect("valid time"))
                .earliest()
                .expect("09:00 exists")
                .with_timezone(&Utc);
            let mut t = start + Duration::minutes(k as i64 * 2);
            for _ in 0..110 {
                let Some(claim) = store.claim_next(round, op, t)? else {
                    break;
                };
                let unit_index = DEMO_UNITS
                    .iter()
                    .position(|u| u.0 == claim.member.unit)
                    .unwrap_or(0);
                // Units differ in how well they are rated, so results have something to rank.
                let quality = 0.85 - 0.25 * unit_index as f64 / n_units as f64;
                let outcome = match rng.random::<f64>() {
                    r if r < 0.62 => Outcome::Complete,
                    r if r < 0.72 => Outcome::NoAnswer,
                    r if r < 0.78 => Outcome::Busy,
                    r if r < 0.82 => Outcome::Refused,
                    r if r < 0.85 => Outcome::RespondentUnavailable,
                    r if r < 0.87 => Outcome::WrongNumber,
                    r if r < 0.89 => Outcome::Partial,
                    r if r < 0.91 => Outcome::Voicemail,
                    _ => Outcome::Appointment,
                };
                let duration: i64 = match outcome {
                    Outcome::Complete => rng.random_range(95..320),
                    Outcome::Partial => rng.random_range(40..120),
                    _ => rng.random_range(15..60),
                };
                let mut input = AttemptInput {
                    outcome: Some(outcome),
                    ..Default::default()
                };
                let dims = round.survey.dimensions.len();
                let answered = match outcome {
                    Outcome::Complete => dims,
                    Outcome::Partial => rng.random_range(1..dims),
                    _ => 0,
                };
                if answered > 0 {
                    let mut ms = 25_000i64;
                    for d in 0..dims {
                        if d < answered {
                            let r: f64 = rng.random();
                            let level = if r < quality * 0.7 {
                                0
                            } else if r < quality {
                                1
                            } else if r < 0.97 {
                                2
                            } else {
                                3
                            };
                            ms += rng.random_range(8_000..30_000);
                            input.answers.push(Some(level));
                            input.answer_ms.push(Some(ms));
                        } else {
                            input.answers.push(None);
                            input.answer_ms.push(None);
                        }
                    }
                    if rng.random_range(0..6) == 0 {
                        input.comment = Some(
                            DEMO_COMMENTS[rng.random_range(0..DEMO_COMMENTS.len())].to_string(),
                        );
                    }
                }
                let end = t + Duration::seconds(duration);
                if outcome == Outcome::Appointment {
                    // Call-backs fall due from now on, so a newcomer sees one come back.
                    input.appointment =
                        Some(Utc::now() + Duration::minutes(rng.random_range(2..240)));
                }
                store.record(round, &claim.token, op, &input, end)?;
                t = end + Duration::seconds(rng.random_range(30..240));
            }
        }
    }
    Ok(())
}

const DEMO_COMMENTS: &[&str] = &[
    "办事流程比以前简化了,希望继续保持。",
    "窗口工作人员态度很好,但有时要跑两次。",
    "建议在网上公开办理进度。",
    "电话经常没人接,希望改进。",
    "整体满意,希望多下基层听取意见。",
];
