//! The statisticians' exports: raw answers, distributions, scores, dispositions, call paradata
//! and a codebook with SPSS syntax. Every export is anonymised (a pseudonymous respondent id,
//! never a name or a phone number), has stable English column keys, and is written to the
//! audit log. Columns are documented in `docs/results.md` and in the codebook export itself.
//!
//! CSV is UTF-8 with a BOM (for Excel/WPS) unless asked otherwise; xlsx has one sheet named
//! after the export.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::domain::disposition::{Category, Outcome};
use crate::domain::progress::{self, MemberFacts, Tally};
use crate::domain::survey::Survey;
use crate::domain::user::Role;
use crate::engine::{self, EngineError, Store};
use crate::results::{self, ResultsDocument, ResultsError, ResultsOptions, RoundData};
use crate::storage::results::StoredOnsite;
use crate::storage::{AttemptRecord, AuditEvent, RoundRecord, StorageError};
use crate::tabular::{self, TableError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("无法写出文件 {path}:{error}")]
    Io { path: String, error: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportKind {
    Responses,
    Distributions,
    Scores,
    Dispositions,
    Attempts,
    /// The on-site data in the order the scoring reads it (ballots, direct scores).
    Onsite,
    /// Per operator: field figures (as on /progress) and the interviewer-effect checks.
    Operators,
    Codebook,
    /// SPSS syntax reading the responses CSV (also written beside a codebook).
    Spss,
}

impl ExportKind {
    pub fn all() -> &'static [ExportKind] {
        use ExportKind::*;
        &[
            Responses,
            Distributions,
            Scores,
            Dispositions,
            Attempts,
            Onsite,
            Operators,
            Codebook,
            Spss,
        ]
    }

    pub fn key(self) -> &'static str {
        match self {
            ExportKind::Responses => "responses",
            ExportKind::Distributions => "distributions",
            ExportKind::Scores => "scores",
            ExportKind::Dispositions => "dispositions",
            ExportKind::Attempts => "attempts",
            ExportKind::Onsite => "onsite",
            ExportKind::Operators => "operators",
            ExportKind::Codebook => "codebook",
            ExportKind::Spss => "spss",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ExportKind::Responses => "访问答案(每份访问一行)",
            ExportKind::Distributions => "各维度答案分布",
            ExportKind::Scores => "各单位得分",
            ExportKind::Dispositions => "各单位拨打结果与应答率",
            ExportKind::Attempts => "全部拨打记录(过程数据)",
            ExportKind::Onsite => "现场评价数据(选票与直接得分)",
            ExportKind::Operators => "各话务员进度与话务员效应检验",
            ExportKind::Codebook => "变量说明(codebook)",
            ExportKind::Spss => "SPSS 读取语法",
        }
    }

    /// The roles that may download this export: the one rule for the console, the API and the
    /// links on the results page. Evaluators get the unit-level tables (scores,
    /// distributions): nothing in them is respondent-level or names an operator. Everything
    /// else (interviews, call records, operators, on-site ballots, the codebook and syntax
    /// for the responses) stays with the statisticians and administrators.
    pub fn roles(self) -> &'static [Role] {
        match self {
            ExportKind::Scores | ExportKind::Distributions => {
                &[Role::Admin, Role::Statistician, Role::Evaluator]
            }
            _ => &[Role::Admin, Role::Statistician],
        }
    }

    pub fn downloadable_by(self, role: Role) -> bool {
        self.roles().contains(&role)
    }

    /// The exports `role` may download, in the usual order.
    pub fn for_role(role: Role) -> Vec<ExportKind> {
        ExportKind::all()
            .iter()
            .copied()
            .filter(|k| k.downloadable_by(role))
            .collect()
    }

    pub fn parse(text: &str) -> Option<ExportKind> {
        let t = text.trim().to_ascii_lowercase();
        ExportKind::all()
            .iter()
            .copied()
            .find(|k| k.key() == t || (t == "sps" && *k == ExportKind::Spss))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    #[default]
    Csv,
    Xlsx,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<ExportFormat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(ExportFormat::Csv),
            "xlsx" | "excel" => Some(ExportFormat::Xlsx),
            _ => None,
        }
    }

    /// From a file name's extension: `.xlsx` is xlsx, anything else CSV.
    pub fn from_path(path: &Path) -> ExportFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("xlsx") => ExportFormat::Xlsx,
            _ => ExportFormat::Csv,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub format: ExportFormat,
    /// UTF-8 BOM at the start of a CSV (for Excel/WPS).
    pub bom: bool,
    /// Include the operators' free-text comments (names and phone numbers in them are masked).
    pub with_comments: bool,
    /// The responses file the SPSS syntax reads.
    pub responses_file: String,
    pub results: ResultsOptions,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            format: ExportFormat::Csv,
            bom: true,
            with_comments: false,
            responses_file: "responses.csv".into(),
            results: ResultsOptions::default(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Variables: one definition gives the header, the codebook row and the SPSS declaration.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    Text,
    Integer,
    Number,
    /// Local date and time as `YYYY-MM-DD HH:MM:SS`.
    DateTime,
}

impl VarType {
    fn key(self) -> &'static str {
        match self {
            VarType::Text => "string",
            VarType::Integer => "integer",
            VarType::Number => "number",
            VarType::DateTime => "datetime",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub label: String,
    pub kind: VarType,
    /// Codes and their labels (level numbers, 0/1 indicators, outcome keys).
    pub values: Vec<(String, String)>,
}

fn var(name: impl Into<String>, label: impl Into<String>, kind: VarType) -> Var {
    Var {
        name: name.into(),
        label: label.into(),
        kind,
        values: Vec::new(),
    }
}

fn level_values(survey: &Survey) -> Vec<(String, String)> {
    survey
        .levels
        .iter()
        .enumerate()
        .map(|(i, l)| ((i + 1).to_string(), l.label.clone()))
        .collect()
}

fn outcome_values(outcomes: &[Outcome]) -> Vec<(String, String)> {
    outcomes
        .iter()
        .map(|o| (o.key().to_string(), o.label().to_string()))
        .collect()
}

fn yes_no() -> Vec<(String, String)> {
    vec![("1".into(), "是".into()), ("0".into(), "否".into())]
}

/// The operators' free-text comments. Not named `comment`: at the start of a line SPSS and
/// PSPP read that as the COMMENT command, even inside GET DATA's variable list.
fn remark_var() -> Var {
    var(
        "remark",
        "话务员记录的意见建议(姓名、号码已遮蔽)",
        VarType::Text,
    )
}

/// Members per AAPOR category, as `n_I` … `n_NE` (`NE` alone is an SPSS reserved word).
fn category_vars(whose: &str) -> Vec<Var> {
    Category::all()
        .iter()
        .map(|c| {
            var(
                format!("n_{c:?}"),
                format!("{whose}中 AAPOR {c:?}:{}(人数)", c.label()),
                VarType::Integer,
            )
        })
        .collect()
}

fn unit_vars() -> Vec<Var> {
    use VarType::*;
    vec![
        var("unit", "参评单位", Text),
        var("unit_code", "单位代码", Text),
        var("unit_kind", "单位类型(党政机关/事业单位)", Text),
        var("sector", "系统", Text),
    ]
}

/// The columns of an export (the codebook and SPSS syntax describe exactly these).
pub fn variables(kind: ExportKind, survey: &Survey, with_comments: bool) -> Vec<Var> {
    use VarType::*;
    let mut v = Vec::new();
    match kind {
        ExportKind::Responses => {
            v.push(var(
                "respondent_id",
                "受访者化名编号(本轮内稳定,不可反推身份)",
                Text,
            ));
            v.extend(unit_vars());
            v.push(var("category", "代表类别", Text));
            v.push(var("operator", "话务员(登录名)", Text));
            v.push(var("attempt_no", "该代表的第几次拨打", Integer));
            v.push(var("interview_at", "访问时间(本地时间)", DateTime));
            v.push(var(
                "duration_secs",
                "访问时长(秒,从领取到提交;导入的记录为空)",
                Number,
            ));
            let mut outcome = var("outcome", "拨打结果", Text);
            outcome.values = outcome_values(&[Outcome::Complete, Outcome::Partial]);
            v.push(outcome);
            v.push(var("aapor_code", "AAPOR 结果代码", Text));
            let mut scored = var("scored", "是否计入得分(1=是,0=否)", Integer);
            scored.values = vec![("1".into(), "计入".into()), ("0".into(), "不计入".into())];
            v.push(scored);
            for d in &survey.dimensions {
                let mut level = var(
                    format!("{}_level", d.key),
                    format!("{}:等级序号(1=最好)", d.label),
                    Integer,
                );
                level.values = level_values(survey);
                v.push(level);
                v.push(var(
                    format!("{}_score", d.key),
                    format!("{}:等级分值", d.label),
                    Number,
                ));
            }
            v.push(var(
                "respondent_score",
                "受访者得分(各维度分值加权和,完成访问才有)",
                Number,
            ));
            v.push(var(
                "satisfied_share",
                "满意答案占比(计为满意的等级,完成访问才有)",
                Number,
            ));
            if with_comments {
                v.push(remark_var());
            }
        }
        ExportKind::Distributions => {
            v.push(var("unit", "参评单位", Text));
            v.push(var("unit_code", "单位代码", Text));
            v.push(var("dimension", "维度(键)", Text));
            v.push(var("dimension_label", "维度", Text));
            let mut n = var("level_number", "等级序号(1=最好)", Integer);
            n.values = level_values(survey);
            v.push(n);
            v.push(var("level", "等级(键)", Text));
            v.push(var("level_label", "等级", Text));
            v.push(var("count", "回答该等级的完成访问数", Integer));
            v.push(var("completes", "完成访问数", Integer));
            v.push(var("percent", "占完成访问的百分比", Number));
        }
        ExportKind::Scores => {
            v.extend(unit_vars());
            v.push(var("panel", "代表人数", Integer));
            v.push(var("completes", "完成访问数", Integer));
            v.push(var("rr1", "应答率 RR1", Number));
            for (name, label) in [
                ("phone_mean", "电话调查平均分(0–满分)"),
                ("phone_sd", "电话调查得分标准差"),
                ("phone_ci95_low", "电话调查平均分 95% 置信区间下限"),
                ("phone_ci95_high", "电话调查平均分 95% 置信区间上限"),
                ("satisfaction_rate", "总体满意率"),
                ("satisfaction_rate_ci95_low", "总体满意率 95% 置信区间下限"),
                ("satisfaction_rate_ci95_high", "总体满意率 95% 置信区间上限"),
                ("cronbach_alpha", "Cronbach α"),
                ("phone_points", "电话调查得分(折算)"),
            ] {
                v.push(var(name, label, Number));
            }
            for d in &survey.dimensions {
                v.push(var(
                    format!("{}_mean", d.key),
                    format!("{}:平均分", d.label),
                    Number,
                ));
                v.push(var(
                    format!("{}_mean_ci95_low", d.key),
                    format!("{}:平均分 95% 置信区间下限", d.label),
                    Number,
                ));
                v.push(var(
                    format!("{}_mean_ci95_high", d.key),
                    format!("{}:平均分 95% 置信区间上限", d.label),
                    Number,
                ));
                v.push(var(
                    format!("{}_satisfaction_rate", d.key),
                    format!("{}:满意率", d.label),
                    Number,
                ));
                v.push(var(
                    format!("{}_satisfaction_rate_ci95_low", d.key),
                    format!("{}:满意率 Wilson 95% 区间下限", d.label),
                    Number,
                ));
                v.push(var(
                    format!("{}_satisfaction_rate_ci95_high", d.key),
                    format!("{}:满意率 Wilson 95% 区间上限", d.label),
                    Number,
                ));
            }
            let mut kind = var("onsite_kind", "现场评价形式(ballots/direct)", Text);
            kind.values = vec![
                ("ballots".into(), "逐张选票".into()),
                ("direct".into(), "直接给分".into()),
            ];
            v.push(kind);
            v.push(var("onsite_ballots", "现场评价选票数", Integer));
            for (name, label, t) in [
                ("onsite_mean", "现场评价平均分", Number),
                ("onsite_sd", "现场评价标准差", Number),
                ("onsite_ci95_low", "现场评价平均分 95% 置信区间下限", Number),
                (
                    "onsite_ci95_high",
                    "现场评价平均分 95% 置信区间上限",
                    Number,
                ),
                ("onsite_points", "现场评价得分(折算)", Number),
                ("social_points", "社会评价得分", Number),
                ("social_max_points", "社会评价满分", Number),
                ("social_ci95_low", "社会评价得分 95% 置信区间下限", Number),
                ("social_ci95_high", "社会评价得分 95% 置信区间上限", Number),
                ("rank", "排名", Integer),
                ("rank_ci95_low", "排名 95% 区间(最好)", Integer),
                ("rank_ci95_high", "排名 95% 区间(最差)", Integer),
                ("p_bottom", "落入倒数 k 名的概率", Number),
            ] {
                v.push(var(name, label, t));
            }
            v.push(var(
                "flags",
                "提示(few_completes、onsite_missing、low_response、evidence_mismatch,分号分隔)",
                Text,
            ));
            for (name, label, t) in [
                ("evidence_complaint", "佐证:12345投诉件数", Integer),
                ("evidence_petition", "佐证:信访事项件数", Integer),
                ("evidence_discipline", "佐证:违纪违法案件数", Integer),
                ("evidence_volume", "佐证:本期业务量(件)", Integer),
                (
                    "evidence_complaint_rate",
                    "佐证:每千件业务量的12345投诉",
                    Number,
                ),
                ("evidence_sources", "佐证:来源(分号分隔)", Text),
            ] {
                v.push(var(name, label, t));
            }
        }
        ExportKind::Dispositions => {
            v.extend(unit_vars());
            v.push(var("panel", "代表人数", Integer));
            v.extend(category_vars("代表"));
            for (name, label) in [
                ("rr1", "应答率 RR1"),
                ("rr2", "应答率 RR2"),
                ("coop1", "合作率 COOP1"),
                ("ref1", "拒访率 REF1"),
                ("con1", "接触率 CON1"),
            ] {
                v.push(var(name, label, Number));
            }
        }
        ExportKind::Attempts => {
            v.push(var("respondent_id", "受访者化名编号", Text));
            v.push(var("unit", "参评单位", Text));
            v.push(var("unit_code", "单位代码", Text));
            v.push(var("operator", "话务员(登录名)", Text));
            v.push(var("attempt_no", "该代表的第几次拨打", Integer));
            v.push(var(
                "claimed_at",
                "领取时间(本地时间;导入的记录为空)",
                DateTime,
            ));
            v.push(var("recorded_at", "记录时间(本地时间)", DateTime));
            v.push(var(
                "duration_secs",
                "时长(秒,从领取到提交;导入的记录为空)",
                Number,
            ));
            let mut outcome = var("outcome", "拨打结果", Text);
            outcome.values = outcome_values(Outcome::all());
            v.push(outcome);
            v.push(var("outcome_label", "拨打结果(中文)", Text));
            v.push(var("aapor_code", "AAPOR 结果代码", Text));
            v.push(var("aapor_category", "AAPOR 类别(I/P/R/NC/O/UH/UO)", Text));
            v.push(var("answers", "已回答的维度数", Integer));
            v.push(var("appointment_at", "预约回访时间(本地时间)", DateTime));
            v.push(var("source", "来源(web/cli/import)", Text));
            if with_comments {
                v.push(remark_var());
            }
        }
        ExportKind::Onsite => {
            v.push(var(
                "unit_no",
                "单位在本轮单位顺序中的序号(计分与自助法按此顺序)",
                Integer,
            ));
            v.extend(unit_vars());
            v.push(var("onsite_kind", "现场评价形式(ballots/direct)", Text));
            v.push(var(
                "ballot_no",
                "选票在该单位中的序号(自助法按此顺序抽取;直接得分为空)",
                Integer,
            ));
            v.push(var("ballot", "选票编号(导入时填写)", Text));
            let levels = level_values(survey);
            for d in &survey.dimensions {
                let mut l = var(
                    format!("{}_level", d.key),
                    format!("{}(等级序号,1 为最好;总体评价选票为空)", d.label),
                    Integer,
                );
                l.values = levels.clone();
                v.push(l);
            }
            let mut overall = var(
                "overall_level",
                "总体评价(等级序号,1 为最好;分维度选票为空)",
                Integer,
            );
            overall.values = levels;
            v.push(overall);
            v.push(var(
                "ballot_score",
                "选票得分(Σ 权重×等级分,或总体评价的等级分)",
                Number,
            ));
            v.push(var("direct_score", "直接给出的现场评价得分", Number));
        }
        ExportKind::Operators => {
            v.push(var("operator", "话务员(登录名)", Text));
            v.push(var("panel", "名下代表人数(当前分配给该话务员)", Integer));
            v.push(var("completes", "名下代表中已完成访问的人数", Integer));
            v.push(var("partials", "名下代表中部分完成的人数", Integer));
            v.push(var("pending", "名下代表中待拨的人数(含未拨打)", Integer));
            v.push(var("in_progress", "名下代表中正在通话的人数", Integer));
            v.push(var("final", "名下代表中已结束的人数", Integer));
            v.extend(category_vars("名下代表"));
            v.push(var("rr1", "名下代表的应答率 RR1", Number));
            v.push(var("attempts", "该话务员的拨打次数", Integer));
            v.push(var(
                "complete_attempts",
                "该话务员拨打中结果为完成的次数",
                Integer,
            ));
            v.push(var(
                "completion_rate",
                "每次拨打完成率(完成次数 ÷ 拨打次数)",
                Number,
            ));
            v.push(var(
                "scored_interviews",
                "该话务员访问的、计入得分的完成访问数",
                Integer,
            ));
            v.push(var(
                "mean_centred",
                "受访者得分减去所在单位平均分后的平均值",
                Number,
            ));
            v.push(var(
                "welch_t",
                "Welch t 检验(与其他话务员比较)的 t 值",
                Number,
            ));
            v.push(var("welch_df", "Welch t 检验的自由度", Number));
            v.push(var("p", "Welch t 检验的 p 值", Number));
            v.push(var("p_holm", "Holm 校正后的 p 值", Number));
            let mut flagged = var("flagged", "话务员效应提示(1=是,0=否)", Integer);
            flagged.values = yes_no();
            v.push(flagged);
            v.push(var(
                "straight_lines",
                "五个维度答案完全相同的完成访问数",
                Integer,
            ));
            v.push(var(
                "straight_line_p",
                "直线作答的二项检验 p 值(P(X ≥ 观察数))",
                Number,
            ));
            let mut sl = var("straight_line_flagged", "直线作答提示(1=是,0=否)", Integer);
            sl.values = yes_no();
            v.push(sl);
        }
        ExportKind::Codebook | ExportKind::Spss => {
            v.push(var("file", "导出文件(export 种类)", Text));
            v.push(var("variable", "变量名(列名)", Text));
            v.push(var("label", "变量说明", Text));
            v.push(var("type", "类型(string/integer/number)", Text));
            v.push(var("values", "取值及含义", Text));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Building the tables

/// An export as a table of text cells.
#[derive(Debug, Clone)]
pub struct ExportTable {
    pub kind: ExportKind,
    pub vars: Vec<Var>,
    pub rows: Vec<Vec<String>>,
}

impl ExportTable {
    pub fn headers(&self) -> Vec<&str> {
        self.vars.iter().map(|v| v.name.as_str()).collect()
    }
}

fn f(x: f64) -> String {
    // Rust prints the shortest text that reads back as the same f64, never in exponent form.
    format!("{x}")
}

fn of(x: Option<f64>) -> String {
    x.map(f).unwrap_or_default()
}

fn ou(x: Option<u32>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

fn lo(x: Option<[f64; 2]>) -> String {
    of(x.map(|v| v[0]))
}

fn hi(x: Option<[f64; 2]>) -> String {
    of(x.map(|v| v[1]))
}

pub use crate::domain::personal::scrub_comment;

/// Loaded data plus what only exports need.
struct Context<'a> {
    data: &'a RoundData,
    doc: &'a ResultsDocument,
    units: BTreeMap<i64, (&'a str, String, &'static str, &'a str)>,
    /// For masking comments only: member id -> name and phone numbers.
    personal: BTreeMap<i64, Vec<String>>,
}

impl<'a> Context<'a> {
    fn new(
        store: &dyn Store,
        data: &'a RoundData,
        doc: &'a ResultsDocument,
        with_comments: bool,
    ) -> Result<Context<'a>, ExportError> {
        let units = data
            .units
            .iter()
            .map(|u| {
                (
                    u.id,
                    (
                        u.name.as_str(),
                        u.code.clone().unwrap_or_default(),
                        u.kind.label(),
                        u.sector.as_str(),
                    ),
                )
            })
            .collect();
        let personal = if with_comments {
            store
                .members(data.round.id, None)?
                .into_iter()
                .map(|m| {
                    let v: Vec<String> = m
                        .name
                        .into_iter()
                        .chain(m.phone)
                        .chain(m.phone_alt)
                        .collect();
                    (m.id, v)
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        Ok(Context {
            data,
            doc,
            units,
            personal,
        })
    }

    fn unit(&self, id: i64) -> (&'a str, String, &'static str, &'a str) {
        self.units
            .get(&id)
            .cloned()
            .unwrap_or(("", String::new(), "", ""))
    }

    fn comment(&self, a: &AttemptRecord) -> String {
        let personal: Vec<&str> = self
            .personal
            .get(&a.member_id)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        a.comment
            .as_deref()
            .map(|c| scrub_comment(c, &personal))
            .unwrap_or_default()
    }
}

fn responses(cx: &Context, with_comments: bool) -> Vec<Vec<String>> {
    let data = cx.data;
    let survey = data.survey();
    let (scored, _) = data.interviews();
    let scored: std::collections::BTreeSet<i64> = scored.iter().map(|a| a.id).collect();
    let mut attempts: Vec<&AttemptRecord> = data
        .field
        .attempts
        .iter()
        .filter(|a| a.outcome.needs_answers() && a.answers.iter().any(Option::is_some))
        .collect();
    attempts.sort_by_key(|a| (a.recorded_at_ms, a.id));
    let k = survey.dimensions.len();
    attempts
        .into_iter()
        .map(|a| {
            let (unit, code, kind, sector) = cx.unit(a.unit_id);
            let mut row = vec![
                data.respondent_id(a.member_id),
                unit.to_string(),
                code,
                kind.to_string(),
                sector.to_string(),
                data.categories
                    .get(&a.member_id)
                    .map(|c| c.label().to_string())
                    .unwrap_or_default(),
                a.operator.clone(),
                a.attempt_no.to_string(),
                data.local_time(a.recorded_at_ms),
                of(results::duration_secs(a)),
                a.outcome.key().to_string(),
                a.aapor_code.clone(),
                u8::from(scored.contains(&a.id)).to_string(),
            ];
            let mut weighted = 0.0;
            let mut satisfied = 0usize;
            let mut complete = a.answers.len() == k;
            for d in 0..k {
                match a.answers.get(d).copied().flatten() {
                    Some(l) => {
                        let score = survey.level_score(l).unwrap_or(0.0);
                        // Same order of summation as the scoring (dimension order).
                        weighted += survey.weight(d) * score;
                        satisfied += usize::from(survey.is_satisfied(l));
                        row.push((l + 1).to_string());
                        row.push(f(score));
                    }
                    None => {
                        complete = false;
                        row.push(String::new());
                        row.push(String::new());
                    }
                }
            }
            let complete = complete && a.outcome == Outcome::Complete;
            row.push(if complete { f(weighted) } else { String::new() });
            row.push(if complete {
                f(satisfied as f64 / k as f64)
            } else {
                String::new()
            });
            if with_comments {
                row.push(cx.comment(a));
            }
            row
        })
        .collect()
}

fn distributions(cx: &Context) -> Vec<Vec<String>> {
    let survey = cx.data.survey();
    let mut rows = Vec::new();
    for (u, rec) in cx.doc.units.iter().zip(&cx.data.units) {
        let n = u.phone.completes;
        for (d, dim) in u.phone.dimensions.iter().enumerate() {
            for (l, level) in survey.levels.iter().enumerate() {
                let count = dim.counts.get(&level.key).copied().unwrap_or(0);
                rows.push(vec![
                    u.unit.clone(),
                    rec.code.clone().unwrap_or_default(),
                    dim.key.clone(),
                    survey.dimensions[d].label.clone(),
                    (l + 1).to_string(),
                    level.key.clone(),
                    level.label.clone(),
                    count.to_string(),
                    n.to_string(),
                    if n > 0 {
                        f(f64::from(count) / f64::from(n) * 100.0)
                    } else {
                        String::new()
                    },
                ]);
            }
        }
    }
    rows
}

fn scores(cx: &Context) -> Vec<Vec<String>> {
    cx.doc
        .units
        .iter()
        .zip(&cx.data.units)
        .map(|(u, rec)| {
            let p = &u.phone;
            let mut row = vec![
                u.unit.clone(),
                rec.code.clone().unwrap_or_default(),
                u.kind.to_string(),
                u.sector.clone(),
                u.panel.to_string(),
                p.completes.to_string(),
                of(u.rates.rr1),
                of(p.mean),
                of(p.sd),
                lo(p.ci95),
                hi(p.ci95),
                of(p.satisfaction_rate),
                lo(p.satisfaction_rate_ci95),
                hi(p.satisfaction_rate_ci95),
                of(p.cronbach_alpha),
                of(p.points),
            ];
            for d in &p.dimensions {
                row.push(of(d.mean));
                row.push(lo(d.ci95));
                row.push(hi(d.ci95));
                row.push(of(d.satisfaction_rate));
                row.push(lo(d.satisfaction_rate_ci95));
                row.push(hi(d.satisfaction_rate_ci95));
            }
            let o = u.onsite.as_ref();
            row.push(
                o.map(|o| match o.kind {
                    crate::domain::scoring::OnsiteKind::Ballots => "ballots",
                    crate::domain::scoring::OnsiteKind::Direct => "direct",
                })
                .unwrap_or_default()
                .to_string(),
            );
            row.push(ou(o.map(|o| o.ballots)));
            row.push(of(o.map(|o| o.mean)));
            row.push(of(o.and_then(|o| o.sd)));
            row.push(lo(o.and_then(|o| o.ci95)));
            row.push(hi(o.and_then(|o| o.ci95)));
            row.push(of(o.map(|o| o.points)));
            let s = &u.social;
            row.push(of(s.points));
            row.push(f(s.max_points));
            row.push(lo(s.ci95));
            row.push(hi(s.ci95));
            row.push(ou(s.rank));
            row.push(ou(s.rank_ci95.map(|r| r[0])));
            row.push(ou(s.rank_ci95.map(|r| r[1])));
            row.push(of(s.p_bottom));
            let flags: Vec<&str> = u.flags.iter().map(|f| results::flag_key(*f)).collect();
            row.push(flags.join(";"));
            let e = &u.evidence;
            for c in [e.complaint, e.petition, e.discipline, e.volume] {
                row.push(c.map(|v| v.to_string()).unwrap_or_default());
            }
            row.push(of(e.complaint_rate));
            row.push(results::evidence_sources(e));
            row
        })
        .collect()
}

fn dispositions(cx: &Context) -> Vec<Vec<String>> {
    cx.doc
        .units
        .iter()
        .zip(&cx.data.units)
        .map(|(u, rec)| {
            let mut row = vec![
                u.unit.clone(),
                rec.code.clone().unwrap_or_default(),
                u.kind.to_string(),
                u.sector.clone(),
                u.panel.to_string(),
            ];
            row.extend(
                Category::all()
                    .iter()
                    .map(|c| u.dispositions.get(*c).to_string()),
            );
            let r = &u.rates;
            row.extend([r.rr1, r.rr2, r.coop1, r.ref1, r.con1].map(of));
            row
        })
        .collect()
}

fn attempts(cx: &Context, with_comments: bool) -> Vec<Vec<String>> {
    let data = cx.data;
    let mut all: Vec<&AttemptRecord> = data.field.attempts.iter().collect();
    all.sort_by_key(|a| (a.recorded_at_ms, a.id));
    all.into_iter()
        .map(|a| {
            let (unit, code, _, _) = cx.unit(a.unit_id);
            let mut row = vec![
                data.respondent_id(a.member_id),
                unit.to_string(),
                code,
                a.operator.clone(),
                a.attempt_no.to_string(),
                a.claimed_at_ms
                    .map(|t| data.local_time(t))
                    .unwrap_or_default(),
                data.local_time(a.recorded_at_ms),
                of(results::duration_secs(a)),
                a.outcome.key().to_string(),
                a.outcome.label().to_string(),
                a.aapor_code.clone(),
                format!("{:?}", a.outcome.category()),
                a.answers.iter().flatten().count().to_string(),
                a.appointment_at_ms
                    .map(|t| data.local_time(t))
                    .unwrap_or_default(),
                a.source.clone(),
            ];
            if with_comments {
                row.push(cx.comment(a));
            }
            row
        })
        .collect()
}

/// One row per ballot, in the order the scoring and its bootstrap read them (units in the
/// round's unit order, ballots in import order), and one row per direct score.
fn onsite(cx: &Context) -> Vec<Vec<String>> {
    let data = cx.data;
    let survey = data.survey();
    let k = survey.dimensions.len();
    let mut rows = Vec::new();
    for (i, u) in data.units.iter().enumerate() {
        let Some(stored) = data.onsite.get(&u.id) else {
            continue;
        };
        let (unit, code, kind, sector) = cx.unit(u.id);
        let head = |onsite_kind: &str| {
            vec![
                (i + 1).to_string(),
                unit.to_string(),
                code.clone(),
                kind.to_string(),
                sector.to_string(),
                onsite_kind.to_string(),
            ]
        };
        match stored {
            StoredOnsite::Direct(x) => {
                let mut row = head("direct");
                row.extend(std::iter::repeat_n(String::new(), 2 + k + 2));
                row.push(f(*x));
                rows.push(row);
            }
            StoredOnsite::Ballots(ballots) => {
                for (j, b) in ballots.iter().enumerate() {
                    let mut row = head("ballots");
                    row.push((j + 1).to_string());
                    row.push(b.ballot.clone());
                    let score = if b.overall {
                        row.extend(std::iter::repeat_n(String::new(), k));
                        let l = b.levels.first().copied().unwrap_or(0);
                        row.push((l + 1).to_string());
                        survey.level_score(l).unwrap_or(0.0)
                    } else {
                        // Same order of summation as the scoring (dimension order).
                        let mut weighted = 0.0;
                        for (d, &l) in b.levels.iter().enumerate() {
                            weighted += survey.weight(d) * survey.level_score(l).unwrap_or(0.0);
                            row.push((l + 1).to_string());
                        }
                        row.extend(std::iter::repeat_n(
                            String::new(),
                            k.saturating_sub(b.levels.len()),
                        ));
                        row.push(String::new());
                        weighted
                    };
                    row.push(f(score));
                    row.push(String::new());
                    rows.push(row);
                }
            }
        }
    }
    rows
}

/// Per operator, the members assigned to them tallied as a panel (state, category, RR1), by
/// the same domain code as the units' tallies (the operators' table of `/progress`).
pub fn operator_panel_tallies(
    store: &dyn Store,
    round: &RoundRecord,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, Tally>, EngineError> {
    let statuses = engine::member_statuses(store, round, now)?;
    let mut logins: Vec<&str> = statuses
        .values()
        .filter_map(|m| m.operator.as_deref())
        .collect();
    logins.sort_unstable();
    logins.dedup();
    let index = |op: &str| {
        logins
            .iter()
            .position(|l| *l == op)
            .map_or(-1, |i| i as i64)
    };
    let ids: Vec<i64> = (0..logins.len() as i64).collect();
    let p = progress::progress(
        &ids,
        statuses
            .values()
            .filter(|m| m.operator.is_some())
            .map(|m| MemberFacts {
                unit_id: index(m.operator.as_deref().unwrap_or("")),
                operator: m.operator.as_deref(),
                attempts: &m.facts,
                reopened_at: m.reopened_at,
                in_progress: m.in_progress,
            }),
        std::iter::empty(),
        round.survey.calling.max_attempts,
        round.field_closed(now),
    );
    Ok(logins
        .iter()
        .enumerate()
        .map(|(i, l)| {
            (
                l.to_string(),
                p.units.get(&(i as i64)).cloned().unwrap_or_default(),
            )
        })
        .collect())
}

/// One row per operator who has members assigned, made attempts or conducted interviews: the
/// figures of `/progress` (`sheping progress --json`) and of the results' operator checks.
fn operators(
    store: &dyn Store,
    cx: &Context,
    now: DateTime<Utc>,
) -> Result<Vec<Vec<String>>, ExportError> {
    let round = &cx.data.round;
    let report = engine::progress(store, round, now)?;
    let panels = operator_panel_tallies(store, round, now)?;
    let checks = &cx.doc.quality.operator_effect.operators;
    let mut logins: Vec<&str> = panels
        .keys()
        .map(String::as_str)
        .chain(report.operators.iter().map(|o| o.operator.as_str()))
        .chain(checks.iter().map(|c| c.operator.as_str()))
        .collect();
    logins.sort_unstable();
    logins.dedup();
    let bit = |b: bool| u8::from(b).to_string();
    Ok(logins
        .into_iter()
        .map(|login| {
            let t = panels.get(login).cloned().unwrap_or_default();
            let o = report.operators.iter().find(|o| o.operator == login);
            let c = checks.iter().find(|c| c.operator == login);
            let mut row = vec![
                login.to_string(),
                t.panel.to_string(),
                t.completes.to_string(),
                t.partials.to_string(),
                t.pending.to_string(),
                t.in_progress.to_string(),
                t.final_.to_string(),
            ];
            row.extend(
                Category::all()
                    .iter()
                    .map(|k| t.dispositions.get(*k).to_string()),
            );
            row.push(of(t.rates.rr1));
            row.push(o.map_or(0, |o| o.attempts).to_string());
            row.push(o.map_or(0, |o| o.completes).to_string());
            row.push(of(o.and_then(|o| o.completion_rate)));
            row.push(c.map_or(0, |c| c.completes).to_string());
            row.push(of(c.and_then(|c| c.mean_centred)));
            row.push(of(c.and_then(|c| c.welch_t)));
            row.push(of(c.and_then(|c| c.welch_df)));
            row.push(of(c.and_then(|c| c.p)));
            row.push(of(c.and_then(|c| c.p_holm)));
            row.push(bit(c.is_some_and(|c| c.flagged)));
            row.push(c.map_or(0, |c| c.straight_lines).to_string());
            row.push(of(c.and_then(|c| c.straight_line_p)));
            row.push(bit(c.is_some_and(|c| c.straight_line_flagged)));
            row
        })
        .collect())
}

fn codebook(survey: &Survey, with_comments: bool) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for kind in [
        ExportKind::Responses,
        ExportKind::Distributions,
        ExportKind::Scores,
        ExportKind::Dispositions,
        ExportKind::Attempts,
        ExportKind::Onsite,
        ExportKind::Operators,
    ] {
        for v in variables(kind, survey, with_comments) {
            let values: Vec<String> = v.values.iter().map(|(c, l)| format!("{c}={l}")).collect();
            rows.push(vec![
                kind.key().to_string(),
                v.name,
                v.label,
                v.kind.key().to_string(),
                values.join("; "),
            ]);
        }
    }
    rows
}

/// Builds one export's table from loaded data (the SPSS kind gives the codebook's table).
pub fn build_table(
    store: &dyn Store,
    data: &RoundData,
    doc: &ResultsDocument,
    kind: ExportKind,
    with_comments: bool,
) -> Result<ExportTable, ExportError> {
    let survey = data.survey();
    let cx = Context::new(store, data, doc, with_comments)?;
    let rows = match kind {
        ExportKind::Responses => responses(&cx, with_comments),
        ExportKind::Distributions => distributions(&cx),
        ExportKind::Scores => scores(&cx),
        ExportKind::Dispositions => dispositions(&cx),
        ExportKind::Attempts => attempts(&cx, with_comments),
        ExportKind::Onsite => onsite(&cx),
        ExportKind::Operators => operators(store, &cx, data.now)?,
        ExportKind::Codebook | ExportKind::Spss => codebook(survey, with_comments),
    };
    Ok(ExportTable {
        kind,
        vars: variables(kind, survey, with_comments),
        rows,
    })
}

// ---------------------------------------------------------------------------------------------
// SPSS syntax

/// Value labels and the variables that share them.
type LabelGroup<'a> = (Vec<(String, String)>, Vec<&'a Var>);

/// Longest piece of user text on one line of SPSS syntax, in UTF-8 bytes. SPSS reads syntax
/// lines of up to 256 bytes; a piece doubled by quote escaping plus indentation, a variable
/// name and the quotes stays below that.
const SPSS_PIECE_BYTES: usize = 80;
/// Longest comment line (after `* `), in UTF-8 bytes.
const SPSS_COMMENT_BYTES: usize = 200;

/// User text as one line of syntax: control characters (line breaks, tabs, NUL, …) and Unicode
/// line/paragraph separators become spaces. A line break would end a comment or a quoted
/// string and let the rest of the text run as commands.
fn spss_one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Splits text into pieces of at most `max` bytes on character boundaries; with `at_space`,
/// a piece ends after a space when one is in its second half. Never returns an empty list.
fn spss_pieces(s: &str, max: usize, at_space: bool) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            // `max` smaller than one character: that character alone.
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        if at_space && let Some(sp) = rest[..cut].rfind(' ').filter(|&i| i >= max / 2) {
            cut = sp + 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

/// A quoted SPSS string holding `s` exactly (apart from control characters, which become
/// spaces): `'` doubled inside, long text split into pieces joined by `+` on their own lines
/// (SPSS and PSPP join them back into one string).
fn spss_quote(s: &str) -> String {
    let line = spss_one_line(s);
    spss_pieces(&line, SPSS_PIECE_BYTES, false)
        .into_iter()
        .map(|p| format!("'{}'", p.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join("\n    + ")
}

/// Writes text as comment lines. Every line starts with `*` and holds no line break, so
/// whatever the text holds (a period at a line's end, `ERASE FILE=…`), each line is read as a
/// comment, as the start of one or as the continuation of the one before: the text can
/// neither end the comment early nor run a command. The last comment before a command must
/// end with a period (the caller's fixed text).
fn spss_comment(out: &mut String, text: &str) {
    let line = spss_one_line(text);
    for p in spss_pieces(line.trim_end(), SPSS_COMMENT_BYTES, true) {
        out.push_str("* ");
        out.push_str(p.trim_end());
        out.push('\n');
    }
}

/// SPSS syntax (also run by GNU PSPP) that reads the responses CSV written by
/// `sheping export responses` with variable and value labels. String widths fit the data
/// (in bytes: a Chinese character takes three in UTF-8).
pub fn spss_syntax(round: &RoundRecord, responses: &ExportTable, responses_file: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    // The round's key and title and the file name are user text: they go only through
    // `spss_comment` and `spss_quote`, which keep each on its lines.
    spss_comment(&mut s, "Encoding: UTF-8.");
    spss_comment(
        &mut s,
        &format!(
            "sheping {}: reads the responses export of round {} ({}).",
            env!("CARGO_PKG_VERSION"),
            round.key,
            round.title
        ),
    );
    // The columns the syntax declares must be the file's: with the comments column exactly
    // when the file was written with comments.
    let with_comments = responses.vars.iter().any(|v| v.name == "remark");
    let flag = if with_comments {
        " --with-comments"
    } else {
        ""
    };
    spss_comment(
        &mut s,
        &format!(
            "Write it with: sheping export responses --round {}{flag} --out {}",
            round.key, responses_file
        ),
    );
    spss_comment(
        &mut s,
        &format!(
            "or download it from the console (results page) or the API: /api/v1/rounds/{}/exports/responses{}",
            round.key,
            if with_comments {
                "?with_comments=true"
            } else {
                ""
            }
        ),
    );
    spss_comment(
        &mut s,
        "Change the FILE path below if the CSV is elsewhere (relative paths are read from the current directory).",
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "GET DATA");
    let _ = writeln!(s, "  /TYPE=TXT");
    let _ = writeln!(s, "  /FILE={}", spss_quote(responses_file));
    let _ = writeln!(s, "  /ENCODING='UTF8'");
    let _ = writeln!(s, "  /ARRANGEMENT=DELIMITED");
    let _ = writeln!(s, "  /FIRSTCASE=2");
    let _ = writeln!(s, "  /DELIMITERS=\",\"");
    let _ = writeln!(s, "  /QUALIFIER='\"'");
    let _ = writeln!(s, "  /VARIABLES=");
    for (i, v) in responses.vars.iter().enumerate() {
        let format = match v.kind {
            VarType::Text => {
                let widest = responses
                    .rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, String::len))
                    .max()
                    .unwrap_or(0);
                format!("A{}", widest.clamp(8, 32767))
            }
            VarType::Integer => "F8.0".to_string(),
            VarType::Number => "F18.6".to_string(),
            // Reads `2022-11-03 10:15:07`; shown as DATETIME below.
            VarType::DateTime => "YMDHMS19".to_string(),
        };
        let _ = writeln!(s, "    {} {format}", v.name);
    }
    let _ = writeln!(s, ".");
    let _ = writeln!(s);
    let times: Vec<&str> = responses
        .vars
        .iter()
        .filter(|v| v.kind == VarType::DateTime)
        .map(|v| v.name.as_str())
        .collect();
    if !times.is_empty() {
        let _ = writeln!(s, "FORMATS {} (DATETIME20).", times.join(" "));
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "VARIABLE LABELS");
    let n = responses.vars.len();
    for (i, v) in responses.vars.iter().enumerate() {
        let end = if i + 1 == n { "." } else { "" };
        let _ = writeln!(s, "  {} {}{end}", v.name, spss_quote(&v.label));
    }
    let _ = writeln!(s);
    // Variables with the same value labels share one VALUE LABELS clause.
    let mut groups: Vec<LabelGroup> = Vec::new();
    for v in responses.vars.iter().filter(|v| !v.values.is_empty()) {
        match groups.iter_mut().find(|(vals, _)| *vals == v.values) {
            Some((_, vars)) => vars.push(v),
            None => groups.push((v.values.clone(), vec![v])),
        }
    }
    if !groups.is_empty() {
        let _ = writeln!(s, "VALUE LABELS");
        let last = groups.len() - 1;
        for (g, (values, vars)) in groups.iter().enumerate() {
            let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
            let slash = if g == 0 { " " } else { "/" };
            let _ = writeln!(s, " {slash}{}", names.join(" "));
            let text = vars[0].kind == VarType::Text;
            for (code, label) in values {
                let code = if text { spss_quote(code) } else { code.clone() };
                let _ = writeln!(s, "    {code} {}", spss_quote(label));
            }
            if g == last {
                let _ = writeln!(s, ".");
            }
        }
        let _ = writeln!(s);
    }
    let by_level = |pred: &dyn Fn(&Var) -> bool| -> Vec<&str> {
        responses
            .vars
            .iter()
            .filter(|v| pred(v))
            .map(|v| v.name.as_str())
            .collect()
    };
    let ordinal = by_level(&|v| v.name.ends_with("_level"));
    // Coded integers (`scored`: 1/0) are categories, not amounts.
    let nominal = by_level(&|v| {
        v.kind == VarType::Integer && !v.values.is_empty() && !v.name.ends_with("_level")
    });
    let scale = by_level(&|v| {
        matches!(v.kind, VarType::Number | VarType::DateTime) || v.name == "attempt_no"
    });
    if !nominal.is_empty() {
        let _ = writeln!(s, "VARIABLE LEVEL {} (NOMINAL).", nominal.join(" "));
    }
    if !ordinal.is_empty() {
        let _ = writeln!(s, "VARIABLE LEVEL {} (ORDINAL).", ordinal.join(" "));
    }
    if !scale.is_empty() {
        let _ = writeln!(s, "VARIABLE LEVEL {} (SCALE).", scale.join(" "));
    }
    let _ = writeln!(s, "EXECUTE.");
    s
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes a table as CSV (with or without BOM) or xlsx.
pub fn write_table(
    table: &ExportTable,
    path: &Path,
    format: ExportFormat,
    bom: bool,
) -> Result<(), ExportError> {
    let headers = table.headers();
    match format {
        ExportFormat::Csv => {
            let io = |e: std::io::Error| ExportError::Io {
                path: path.display().to_string(),
                error: e.to_string(),
            };
            let file = std::fs::File::create(path).map_err(io)?;
            tabular::write_csv(
                std::io::BufWriter::new(file),
                &headers,
                table.rows.iter().cloned(),
                bom,
            )
            .map_err(io)
        }
        ExportFormat::Xlsx => {
            let text: Vec<bool> = table
                .vars
                .iter()
                .map(|v| matches!(v.kind, VarType::Text | VarType::DateTime))
                .collect();
            Ok(tabular::write_xlsx_typed(
                path,
                table.kind.key(),
                &headers,
                &text,
                table.rows.iter().cloned(),
            )?)
        }
    }
}

/// Only `scores` shows the bootstrap's rank intervals; the other exports skip it.
fn doc_options(kind: ExportKind, base: &ResultsOptions) -> ResultsOptions {
    match kind {
        ExportKind::Scores => base.clone(),
        _ => ResultsOptions {
            replicates: Some(0),
            ..base.clone()
        },
    }
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportSummary {
    pub kind: &'static str,
    pub format: &'static str,
    pub rows: usize,
    pub files: Vec<PathBuf>,
}

fn sps_path(out: &Path) -> PathBuf {
    out.with_extension("sps")
}

/// Computes and writes one export (a codebook also writes its `.sps` beside it) and records
/// it in the audit log.
pub fn export_to_file(
    store: &dyn Store,
    round: &RoundRecord,
    kind: ExportKind,
    out: &Path,
    opts: &ExportOptions,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ExportSummary, ExportError> {
    let data = RoundData::load(store, round, now, actor)?;
    let doc = results::compute_from(&data, &doc_options(kind, &opts.results))?;
    let table = build_table(store, &data, &doc, kind, opts.with_comments)?;
    let mut files = Vec::new();
    let sps = match kind {
        ExportKind::Codebook | ExportKind::Spss => {
            let responses = build_table(
                store,
                &data,
                &doc,
                ExportKind::Responses,
                opts.with_comments,
            )?;
            Some(spss_syntax(round, &responses, &opts.responses_file))
        }
        _ => None,
    };
    let format = if kind == ExportKind::Spss {
        "sps"
    } else {
        opts.format.key()
    };
    let io = |p: &Path, e: std::io::Error| ExportError::Io {
        path: p.display().to_string(),
        error: e.to_string(),
    };
    if kind == ExportKind::Spss {
        let text = sps.unwrap_or_default();
        std::fs::write(out, text).map_err(|e| io(out, e))?;
        files.push(out.to_path_buf());
    } else {
        write_table(&table, out, opts.format, opts.bom)?;
        files.push(out.to_path_buf());
        if let Some(text) = sps {
            let p = sps_path(out);
            if let Err(e) = std::fs::write(&p, text) {
                let _ = std::fs::remove_file(out);
                return Err(io(&p, e));
            }
            files.push(p);
        }
    }
    // Logged once written; a file whose export cannot be logged is not left behind.
    if let Err(e) = audit_export(
        store,
        round,
        kind,
        format,
        table.rows.len(),
        opts.with_comments,
        actor,
        out.file_name().and_then(|n| n.to_str()),
    ) {
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        return Err(e);
    }
    Ok(ExportSummary {
        kind: kind.key(),
        format,
        rows: table.rows.len(),
        files,
    })
}

#[allow(clippy::too_many_arguments)]
fn audit_export(
    store: &dyn Store,
    round: &RoundRecord,
    kind: ExportKind,
    format: &str,
    rows: usize,
    with_comments: bool,
    actor: &str,
    file: Option<&str>,
) -> Result<(), ExportError> {
    store.audit(&AuditEvent {
        actor,
        action: &format!("export.{}", kind.key()),
        round_key: Some(&round.key),
        detail: serde_json::json!({
            "format": format,
            "rows": rows,
            "with_comments": with_comments,
            "file": file,
        }),
    })?;
    Ok(())
}

/// A round key (or any name) as part of a file name: letters, digits, `-` and `_` kept,
/// anything else (separators, dots, control characters, spaces) `_`. Keys with `/` are refused
/// when rounds are created, but a file name must never depend on that: `..`, `\` (a separator
/// for Windows and many unzip tools), NUL and absolute paths all come out as one plain
/// component.
pub fn file_name_part(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "_".to_string()
    } else {
        safe
    }
}

/// A download's file name without extension: `2022-responses`.
pub fn download_stem(round_key: &str, kind: ExportKind) -> String {
    format!("{}-{}", file_name_part(round_key), kind.key())
}

/// One export in memory (for an HTTP download): bytes, content type and a file name.
pub struct ExportBytes {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub file_name: String,
    pub rows: usize,
}

/// Computes one export into memory, after recording it in the audit log.
pub fn export_bytes(
    store: &dyn Store,
    round: &RoundRecord,
    kind: ExportKind,
    opts: &ExportOptions,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ExportBytes, ExportError> {
    let data = RoundData::load(store, round, now, actor)?;
    let doc = results::compute_from(&data, &doc_options(kind, &opts.results))?;
    let table = build_table(store, &data, &doc, kind, opts.with_comments)?;
    let stem = download_stem(&round.key, kind);
    let (bytes, content_type, file_name, format) = if kind == ExportKind::Spss {
        let responses = build_table(
            store,
            &data,
            &doc,
            ExportKind::Responses,
            opts.with_comments,
        )?;
        // The syntax reads the responses CSV under the name it is downloaded with.
        let responses_file = format!("{}.csv", download_stem(&round.key, ExportKind::Responses));
        (
            spss_syntax(round, &responses, &responses_file).into_bytes(),
            "text/plain; charset=utf-8",
            format!("{stem}.sps"),
            "sps",
        )
    } else {
        match opts.format {
            ExportFormat::Csv => {
                let mut buf = Vec::new();
                tabular::write_csv(
                    &mut buf,
                    &table.headers(),
                    table.rows.iter().cloned(),
                    opts.bom,
                )
                .map_err(|e| ExportError::Io {
                    path: stem.clone(),
                    error: e.to_string(),
                })?;
                (buf, "text/csv; charset=utf-8", format!("{stem}.csv"), "csv")
            }
            ExportFormat::Xlsx => {
                // rust_xlsxwriter writes to a path: a private temporary file, removed at once.
                let dir = std::env::temp_dir();
                let mut suffix = [0u8; 12];
                {
                    use rand::Rng;
                    rand::rng().fill_bytes(&mut suffix);
                }
                let tmp = dir.join(format!("sheping-export-{}.xlsx", hex::encode(suffix)));
                let written = write_table(&table, &tmp, ExportFormat::Xlsx, false).and_then(|()| {
                    std::fs::read(&tmp).map_err(|e| ExportError::Io {
                        path: tmp.display().to_string(),
                        error: e.to_string(),
                    })
                });
                let _ = std::fs::remove_file(&tmp);
                (
                    written?,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    format!("{stem}.xlsx"),
                    "xlsx",
                )
            }
        }
    };
    audit_export(
        store,
        round,
        kind,
        format,
        table.rows.len(),
        opts.with_comments,
        actor,
        Some(&file_name),
    )?;
    Ok(ExportBytes {
        bytes,
        content_type,
        file_name,
        rows: table.rows.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_formats_parse() {
        for k in ExportKind::all() {
            assert_eq!(ExportKind::parse(k.key()), Some(*k));
        }
        assert_eq!(ExportKind::parse("SPS"), Some(ExportKind::Spss));
        assert_eq!(ExportKind::parse("names"), None);
        assert_eq!(
            ExportKind::for_role(Role::Evaluator),
            vec![ExportKind::Distributions, ExportKind::Scores]
        );
        assert_eq!(ExportKind::for_role(Role::Statistician), ExportKind::all());
        assert_eq!(ExportKind::for_role(Role::Admin), ExportKind::all());
        assert!(ExportKind::for_role(Role::Operator).is_empty());
        assert_eq!(
            ExportFormat::from_path(Path::new("a/b.XLSX")),
            ExportFormat::Xlsx
        );
        assert_eq!(
            ExportFormat::from_path(Path::new("b.csv")),
            ExportFormat::Csv
        );
    }

    #[test]
    fn spss_text_stays_on_its_lines() {
        assert_eq!(spss_quote("O'Brien"), "'O''Brien'");
        assert_eq!(spss_quote(""), "''");
        assert_eq!(
            spss_quote("x.\nERASE FILE='a'.\r\n\t\u{0}\u{85}\u{2028}"),
            "'x. ERASE FILE=''a''.      '"
        );
        // Long text: pieces of at most 80 bytes joined by `+`, split between characters.
        let long = format!("{}'{}", "满意".repeat(30), "x".repeat(100));
        let q = spss_quote(&long);
        let lines: Vec<&str> = q.lines().collect();
        assert!(lines.len() > 2, "{q}");
        let mut joined = String::new();
        for (i, l) in lines.iter().enumerate() {
            assert!(l.len() <= 2 * SPSS_PIECE_BYTES + 8, "{l}");
            let piece = if i == 0 {
                *l
            } else {
                l.strip_prefix("    + ").unwrap()
            };
            let inner = piece
                .strip_prefix('\'')
                .unwrap()
                .strip_suffix('\'')
                .unwrap();
            joined.push_str(&inner.replace("''", "'"));
        }
        assert_eq!(joined, long);

        let mut c = String::new();
        spss_comment(&mut c, "round k (x.\nERASE FILE='a'.\n\n).");
        assert_eq!(c, "* round k (x. ERASE FILE='a'.  ).\n");
        let mut c = String::new();
        spss_comment(&mut c, &format!("{}.\n", "标题 ".repeat(60)));
        assert!(c.lines().count() > 1, "{c}");
        for l in c.lines() {
            assert!(
                l.starts_with("* ") && l.len() <= SPSS_COMMENT_BYTES + 2,
                "{l}"
            );
        }
    }

    #[test]
    fn every_export_has_unique_spss_safe_names() {
        let survey = Survey::from_toml_str(include_str!("../surveys/default.toml")).unwrap();
        for k in ExportKind::all() {
            let vars = variables(*k, &survey, true);
            let mut names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
            for n in &names {
                assert!(n.len() <= 64, "{n}");
                assert!(n.chars().next().unwrap().is_ascii_alphabetic(), "{n}");
                assert!(
                    n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{n}"
                );
            }
            names.sort();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "{k:?}");
        }
    }

    /// SPSS reserved words cannot name a variable; a name that is a command's first word
    /// (`comment`, `count`, `rank`, …) is read as that command at the start of a line of
    /// syntax. The responses file's variables are declared one per line in the `.sps`.
    #[test]
    fn variable_names_are_not_spss_keywords_or_commands() {
        const RESERVED: &[&str] = &[
            "ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH",
        ];
        const COMMANDS: &[&str] = &[
            "ADD",
            "AGGREGATE",
            "APPLY",
            "AUTORECODE",
            "BEGIN",
            "BREAK",
            "CACHE",
            "CD",
            "CLEAR",
            "CLOSE",
            "COMMENT",
            "COMPUTE",
            "CORRELATIONS",
            "COUNT",
            "CROSSTABS",
            "DATA",
            "DATAFILE",
            "DATASET",
            "DEFINE",
            "DELETE",
            "DESCRIPTIVES",
            "DISPLAY",
            "DO",
            "DOCUMENT",
            "DROP",
            "ECHO",
            "ELSE",
            "END",
            "ERASE",
            "EXAMINE",
            "EXECUTE",
            "EXIT",
            "EXPORT",
            "FACTOR",
            "FILE",
            "FILTER",
            "FINISH",
            "FLIP",
            "FORMATS",
            "FREQUENCIES",
            "GET",
            "GLM",
            "GRAPH",
            "HOST",
            "IF",
            "IMPORT",
            "INCLUDE",
            "INPUT",
            "INSERT",
            "KEEP",
            "LEAVE",
            "LIST",
            "LOGISTIC",
            "LOOP",
            "MATCH",
            "MATRIX",
            "MEANS",
            "MISSING",
            "MODIFY",
            "MRSETS",
            "N",
            "NEW",
            "NUMERIC",
            "ONEWAY",
            "OUTPUT",
            "PERMISSIONS",
            "PRESERVE",
            "PRINT",
            "QUICK",
            "RANK",
            "RECODE",
            "RECORD",
            "REGRESSION",
            "RELIABILITY",
            "RENAME",
            "REPEATING",
            "REREAD",
            "RESTORE",
            "ROC",
            "SAMPLE",
            "SAVE",
            "SELECT",
            "SET",
            "SHOW",
            "SORT",
            "SPLIT",
            "STRING",
            "SUBTITLE",
            "SYSFILE",
            "TEMPORARY",
            "TITLE",
            "UPDATE",
            "VALUE",
            "VARIABLE",
            "VECTOR",
            "WEIGHT",
            "WRITE",
            "XEXPORT",
            "XSAVE",
        ];
        let survey = Survey::from_toml_str(include_str!("../surveys/default.toml")).unwrap();
        for k in ExportKind::all() {
            for v in variables(*k, &survey, true) {
                let upper = v.name.to_ascii_uppercase();
                assert!(!RESERVED.contains(&upper.as_str()), "{k:?}: {}", v.name);
                if *k == ExportKind::Responses {
                    assert!(!COMMANDS.contains(&upper.as_str()), "{}", v.name);
                }
            }
        }
    }
}
