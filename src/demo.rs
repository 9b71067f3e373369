//! The demo round: shaped like the article's 2022 round (30 units: 10 教体, 10 住建,
//! 6 交通运输, 4 units that ranked low the year before), 45 synthetic representatives each.
//! Every name and number is made up and the round is titled as demo data.

use anyhow::{Context, Result};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::domain::roster::{self, RosterOptions};
use crate::domain::survey::Survey;
use crate::domain::unit::{NewUnit, UnitKind};
use crate::storage::{NewRound, Storage};

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

/// Creates the demo round when the database has no round yet; returns whether it did.
pub fn ensure_demo(store: &dyn Storage) -> Result<bool> {
    if !store.rounds()?.is_empty() {
        return Ok(false);
    }
    let survey =
        Survey::from_toml_str(include_str!("../surveys/default.toml")).context("default survey")?;
    let field = (
        chrono::NaiveDate::from_ymd_opt(2022, 11, 1).expect("valid date"),
        chrono::NaiveDate::from_ymd_opt(2022, 11, 30).expect("valid date"),
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
        "demo roster invalid: {:?}",
        check.rejected.first()
    );
    store.add_members(&round, &check.members, &[], ACTOR)?;
    Ok(true)
}
