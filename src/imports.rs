//! Importers: read a spreadsheet, validate it with the domain rules, and store it all at once
//! (or only the valid rows when the user asked to skip bad ones). Shared by CLI and web.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::domain::import::Rejection;
use crate::domain::roster::{self, RosterOptions, UnitPanel};
use crate::domain::unit::{UNIT_COLUMNS, validate_units};
use crate::storage::{RoundRecord, Storage, StorageError};
use crate::tabular::{self, ReadOptions, Table, TableError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("{0}")]
    Header(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot write the rejects file {path}: {error}")]
    Rejects { path: String, error: String },
}

/// The result of an import, printed as text or JSON and returned by the web console.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ImportReport {
    /// Rows stored (0 when anything was rejected and skipping was not asked for).
    pub imported: usize,
    pub rejected: Vec<Rejection>,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<UnitPanel>,
    /// Whether anything was stored.
    pub applied: bool,
    pub encoding: Option<String>,
    #[serde(skip)]
    pub headers: Vec<String>,
}

impl ImportReport {
    /// Writes the rejected rows as they were, plus an error column (UTF-8 CSV with BOM).
    pub fn write_rejects(&self, path: &Path) -> Result<(), ImportError> {
        let mut headers: Vec<&str> = self.headers.iter().map(String::as_str).collect();
        headers.push("错误");
        let rows = self.rejected.iter().map(|r| {
            let mut cells = r.cells.clone();
            cells.resize(self.headers.len(), String::new());
            cells.push(format!("第{}行 {}:{}", r.line, r.field, r.error));
            cells
        });
        let file = std::fs::File::create(path).map_err(|e| ImportError::Rejects {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        tabular::write_csv(std::io::BufWriter::new(file), &headers, rows, true).map_err(|e| {
            ImportError::Rejects {
                path: path.display().to_string(),
                error: e.to_string(),
            }
        })
    }
}

fn rows(table: &Table) -> impl Iterator<Item = (usize, &[String])> {
    table.rows.iter().map(|r| (r.line, r.cells.as_slice()))
}

pub fn units_import(
    store: &dyn Storage,
    round: &RoundRecord,
    table: &Table,
    skip_invalid: bool,
    actor: &str,
) -> Result<ImportReport, ImportError> {
    let find = |i: usize| table.find_column(UNIT_COLUMNS[i].aliases);
    let columns = [find(0), find(1), find(2), find(3)];
    let missing: Vec<String> = UNIT_COLUMNS
        .iter()
        .zip(&columns)
        .filter(|(c, idx)| c.required && idx.is_none())
        .map(|(c, _)| format!("{}(可用列名:{})", c.field, c.aliases.join("/")))
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::Header(format!(
            "表头缺少必需的列:{}",
            missing.join(";")
        )));
    }
    let existing: BTreeSet<String> = store.units(round.id)?.into_iter().map(|u| u.name).collect();
    let (units, rejected) = validate_units(rows(table), &columns, &existing);
    let mut report = ImportReport {
        rejected,
        encoding: table.encoding.map(|e| e.name().to_string()),
        headers: table.headers.clone(),
        ..Default::default()
    };
    let known: Vec<&[&str]> = UNIT_COLUMNS.iter().map(|c| c.aliases).collect();
    for col in table.unknown_columns(&known) {
        report.warnings.push(format!("忽略未识别的列“{col}”"));
    }
    if report.rejected.is_empty() || skip_invalid {
        report.imported = store.add_units(round, &units, actor)?;
        report.applied = true;
    }
    Ok(report)
}

pub struct RosterImport<'a> {
    pub area_code: Option<&'a str>,
    pub skip_invalid: bool,
    pub replace: bool,
}

pub fn roster_import(
    store: &dyn Storage,
    round: &RoundRecord,
    table: &Table,
    opts: &RosterImport,
    actor: &str,
) -> Result<ImportReport, ImportError> {
    let (columns, unknown) = roster::map_columns(&table.headers).map_err(ImportError::Header)?;
    let units = store.roster_units(round.id)?;
    let check = roster::check_roster(
        rows(table),
        &columns,
        &units,
        &RosterOptions {
            area_code: opts.area_code.map(str::to_string),
            replace: opts.replace,
            panel_size: round.survey.panel_size as usize,
        },
    );
    let mut warnings: Vec<String> = unknown
        .iter()
        .map(|c| format!("忽略未识别的列“{c}”(不会保存)"))
        .collect();
    warnings.extend(check.warnings);
    let mut report = ImportReport {
        rejected: check.rejected,
        warnings,
        units: check.units,
        encoding: table.encoding.map(|e| e.name().to_string()),
        headers: table.headers.clone(),
        ..Default::default()
    };
    if report.rejected.is_empty() || opts.skip_invalid {
        report.imported = store.add_members(round, &check.members, &check.replace_units, actor)?;
        report.applied = true;
    }
    Ok(report)
}

pub fn read_file(path: &Path, encoding: Option<&str>) -> Result<Table, ImportError> {
    let mut opts = ReadOptions::default();
    if let Some(name) = encoding {
        opts.encoding = Some(tabular::Encoding::parse(name).ok_or_else(|| {
            ImportError::Header(format!(
                "不认识的编码“{name}”:可用 utf-8、utf-16、gbk、gb18030"
            ))
        })?);
    }
    Ok(tabular::read_table_file(path, &opts)?)
}

// ---------------------------------------------------------------------------------------------
// Offline and migrated call attempts.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use crate::domain::disposition::{AttemptFact, MemberHistory, Outcome, disposition, validate_attempt};
use crate::domain::import::{clean_cell, closest};
use crate::domain::phone::parse_phone;
use crate::domain::user::Role;
use crate::engine::{Store, member_statuses};
use crate::storage::ImportedAttempt;

/// Reads a local date-time as people write it (`2023-02-28 10:15`, ISO 8601 with or without
/// an offset) in the survey's time zone.
pub fn parse_local_time(text: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let t = clean_cell(text);
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt) {
            return tz.from_local_datetime(&naive).earliest().map(|d| d.with_timezone(&Utc));
        }
    }
    None
}

struct AttemptColumns {
    unit: usize,
    phone: usize,
    operator: usize,
    outcome: usize,
    at: usize,
    comment: Option<usize>,
    appointment: Option<usize>,
    /// Column per dimension, in the survey's order.
    dimensions: Vec<Option<usize>>,
}

pub fn attempts_import(
    store: &dyn Store,
    round: &RoundRecord,
    table: &Table,
    skip_invalid: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    let survey = &round.survey;
    let need = |aliases: &[&str], field: &str| {
        table.find_column(aliases).ok_or_else(|| ImportError::Header(format!("表头缺少必需的列 {field}(可用列名:{})", aliases.join("/"))))
    };
    let cols = AttemptColumns {
        unit: need(&["unit", "参评单位", "单位"], "unit")?,
        phone: need(&["phone", "contact", "联系电话", "电话", "手机"], "phone")?,
        operator: need(&["operator", "话务员", "调查员"], "operator")?,
        outcome: need(&["outcome", "结果", "拨打结果"], "outcome")?,
        at: need(&["at", "时间", "拨打时间"], "at")?,
        comment: table.find_column(&["comment", "意见建议", "备注"]),
        appointment: table.find_column(&["appointment", "预约时间"]),
        dimensions: survey.dimensions.iter().map(|d| table.find_column(&[d.key.as_str(), d.label.as_str()])).collect(),
    };
    let tz = survey.timezone();
    let field = round.field_period();
    let units: BTreeMap<String, i64> = store.units(round.id)?.into_iter().map(|u| (u.name, u.id)).collect();
    let members = store.members(round.id, None)?;
    let mut by_phone: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for m in &members {
        for p in [&m.phone, &m.phone_alt].into_iter().flatten() {
            by_phone.insert((m.unit_id, p.clone()), m.id);
        }
    }
    let operators: Vec<_> = store.users()?.into_iter().filter(|u| u.role == Role::Operator).collect();
    let mut histories: BTreeMap<i64, (Vec<AttemptFact>, Option<DateTime<Utc>>)> = member_statuses(store, round, now)
        .map_err(|e| ImportError::Header(e.to_string()))?
        .into_iter()
        .map(|(id, s)| (id, (s.facts, s.reopened_at)))
        .collect();

    let mut report = ImportReport { encoding: table.encoding.map(|e| e.name().to_string()), headers: table.headers.clone(), ..Default::default() };
    // Parse every row first, then validate in time order per member (history matters).
    let mut parsed: Vec<(usize, ImportedAttempt, Vec<String>)> = Vec::new();
    for row in &table.rows {
        let get = |c: usize| clean_cell(row.get(c));
        let reject = |field: &str, error: String| Rejection::new(row.line, field, error, &row.cells);
        let Some(&unit_id) = units.get(get(cols.unit)) else {
            let hint = closest(get(cols.unit), units.keys().map(String::as_str)).map(|c| format!(",是否应为“{c}”?")).unwrap_or_default();
            report.rejected.push(reject("unit", format!("单位“{}”不在本轮参评单位中{hint}", get(cols.unit))));
            continue;
        };
        let member_id = match parse_phone(get(cols.phone), None) {
            Ok(p) => match by_phone.get(&(unit_id, p.canonical().to_string())) {
                Some(id) => *id,
                None => {
                    report.rejected.push(reject("phone", format!("号码 {} 不在该单位的代表名单中", p.masked())));
                    continue;
                }
            },
            Err(e) => {
                report.rejected.push(reject("phone", e.to_string()));
                continue;
            }
        };
        let op_text = get(cols.operator);
        let Some(op) = operators.iter().find(|u| u.login == op_text || u.name == op_text) else {
            report.rejected.push(reject("operator", format!("话务员“{op_text}”不存在:请填写话务员的登录名或姓名")));
            continue;
        };
        let Some(outcome) = Outcome::parse(get(cols.outcome)) else {
            let keys: Vec<&str> = Outcome::all().iter().map(|o| o.key()).collect();
            report.rejected.push(reject("outcome", format!("拨打结果“{}”无法识别:可填 {}", get(cols.outcome), keys.join("、"))));
            continue;
        };
        let Some(at) = parse_local_time(get(cols.at), tz) else {
            report.rejected.push(reject("at", format!("时间“{}”无法识别:请写成 2023-02-28 10:15", get(cols.at))));
            continue;
        };
        if at > now {
            report.rejected.push(reject("at", "拨打时间晚于现在".into()));
            continue;
        }
        if !field.contains(tz, at) {
            report.rejected.push(reject("at", format!("拨打时间不在调查期({} 至 {})内", field.start, field.end)));
            continue;
        }
        let mut answers = Vec::new();
        let mut bad = None;
        for (d, col) in cols.dimensions.iter().enumerate() {
            let text = col.map(|c| get(c)).unwrap_or("");
            if text.is_empty() {
                answers.push(None);
            } else if let Some(level) = survey.find_level(text) {
                answers.push(Some(level));
            } else {
                bad = Some((survey.dimensions[d].key.clone(), text.to_string()));
                break;
            }
        }
        if let Some((key, text)) = bad {
            report.rejected.push(reject(&key, format!("答案“{text}”无法识别:请填等级名称(如 满意)或序号 1–{}", survey.levels.len())));
            continue;
        }
        if answers.iter().all(Option::is_none) {
            answers.clear();
        }
        let appointment = match cols.appointment.map(|c| get(c)).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => match parse_local_time(t, tz) {
                Some(a) => Some(a),
                None => {
                    report.rejected.push(reject("appointment", format!("预约时间“{t}”无法识别:请写成 2023-02-28 10:15")));
                    continue;
                }
            },
        };
        let comment = cols.comment.map(|c| get(c).to_string()).filter(|c| !c.is_empty());
        parsed.push((
            row.line,
            ImportedAttempt { member_id, operator_id: op.id, recorded_at: at, outcome, answers, comment, appointment },
            row.cells.clone(),
        ));
    }
    parsed.sort_by_key(|(line, a, _)| (a.recorded_at, *line));
    let mut ok = Vec::new();
    for (line, a, cells) in parsed {
        let (facts, reopened) = histories.entry(a.member_id).or_default();
        let current = disposition(&MemberHistory { attempts: facts, reopened_at: *reopened }, survey.calling.max_attempts, false);
        let answers: Vec<Option<usize>> =
            if a.answers.is_empty() { Vec::new() } else { a.answers.clone() };
        match validate_attempt(
            a.outcome,
            &answers,
            survey.dimensions.len(),
            survey.levels.len(),
            a.appointment,
            a.recorded_at,
            Some(field.ends_at(tz)),
            &current,
        ) {
            Ok(()) => {
                facts.push(AttemptFact { outcome: a.outcome, at: a.recorded_at, appointment: a.appointment });
                ok.push(a);
            }
            Err(e) => report.rejected.push(Rejection::new(line, "outcome", e.to_string(), &cells)),
        }
    }
    report.rejected.sort_by_key(|r| r.line);
    if report.rejected.is_empty() || skip_invalid {
        report.imported = store.import_attempts(round, &ok, actor, now)?;
        report.applied = true;
    }
    Ok(report)
}
