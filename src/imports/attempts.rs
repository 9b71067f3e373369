//! Offline and migrated call attempts (paper forms during an outage, rounds run in spreadsheets):
//! validated by the same rules as the web form, stored all at once.

use std::collections::BTreeMap;

use super::{ImportError, ImportPreview, ImportReport, PREVIEW_ROWS, batch_digest};
use crate::domain::import::{Rejection, TextColumn, refuse_control};
use crate::storage::RoundRecord;
use crate::tabular::Table;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use crate::domain::disposition::{
    AttemptFact, MemberHistory, Outcome, disposition, validate_attempt,
};
use crate::domain::import::{clean_cell, closest};
use crate::domain::phone::{mask_canonical, parse_phone};
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
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt) {
            return tz
                .from_local_datetime(&naive)
                .earliest()
                .map(|d| d.with_timezone(&Utc));
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

/// Validates and stores a file of attempts (the CLI's `attempts import`): [`attempts_check`]
/// then [`attempts_apply`].
pub fn attempts_import(
    store: &dyn Store,
    round: &RoundRecord,
    table: &Table,
    skip_invalid: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    let checked = attempts_check(store, round, table, now)?;
    attempts_apply(store, round, checked, skip_invalid, actor, now)
}

/// A file of attempts validated against the round's members and histories, nothing stored.
#[derive(Debug)]
pub struct AttemptsChecked {
    pub report: ImportReport,
    pub attempts: Vec<ImportedAttempt>,
    pub preview: ImportPreview,
}

/// Stores the checked attempts when no row was rejected (or `skip_invalid`); otherwise
/// stores nothing.
pub fn attempts_apply(
    store: &dyn Store,
    round: &RoundRecord,
    checked: AttemptsChecked,
    skip_invalid: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    super::ensure_open(round)?;
    let AttemptsChecked {
        mut report,
        attempts,
        ..
    } = checked;
    if report.rejected.is_empty() || skip_invalid {
        report.imported = store.import_attempts(round, &attempts, actor, now)?;
        report.applied = true;
    }
    Ok(report)
}

/// Validates a file of attempts (each against the member's history, in time order); stores
/// nothing.
pub fn attempts_check(
    store: &dyn Store,
    round: &RoundRecord,
    table: &Table,
    now: DateTime<Utc>,
) -> Result<AttemptsChecked, ImportError> {
    super::ensure_open(round)?;
    let survey = &round.survey;
    let need = |aliases: &[&str], field: &str| {
        table.find_column(aliases).ok_or_else(|| {
            ImportError::Header(format!(
                "表头缺少必需的列 {field}(可用列名:{})",
                aliases.join("/")
            ))
        })
    };
    let cols = AttemptColumns {
        unit: need(&["unit", "参评单位", "单位"], "unit")?,
        phone: need(&["phone", "contact", "联系电话", "电话", "手机"], "phone")?,
        operator: need(&["operator", "话务员", "调查员"], "operator")?,
        outcome: need(&["outcome", "结果", "拨打结果"], "outcome")?,
        at: need(&["at", "时间", "拨打时间"], "at")?,
        comment: table.find_column(&["comment", "意见建议", "备注"]),
        appointment: table.find_column(&["appointment", "预约时间"]),
        dimensions: survey
            .dimensions
            .iter()
            .map(|d| table.find_column(&[d.key.as_str(), d.label.as_str()]))
            .collect(),
    };
    let tz = survey.timezone();
    let field = round.field_period();
    let units: BTreeMap<String, i64> = store
        .units(round.id)?
        .into_iter()
        .map(|u| (u.name, u.id))
        .collect();
    let members = store.members(round.id, None)?;
    let mut by_phone: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for m in &members {
        for p in [&m.phone, &m.phone_alt].into_iter().flatten() {
            by_phone.insert((m.unit_id, p.clone()), m.id);
        }
    }
    let operators: Vec<_> = store
        .users()?
        .into_iter()
        .filter(|u| u.role == Role::Operator)
        .collect();
    let mut histories: BTreeMap<i64, (Vec<AttemptFact>, Option<DateTime<Utc>>)> =
        member_statuses(store, round, now)
            .map_err(|e| ImportError::Header(e.to_string()))?
            .into_iter()
            .map(|(id, s)| (id, (s.facts, s.reopened_at)))
            .collect();

    let mut report = ImportReport {
        encoding: table.encoding.map(|e| e.name().to_string()),
        headers: table.headers.clone(),
        ..Default::default()
    };
    let mut text_columns: Vec<TextColumn> = vec![
        ("unit", "单位", Some(cols.unit)),
        ("phone", "联系电话", Some(cols.phone)),
        ("operator", "话务员", Some(cols.operator)),
        ("outcome", "拨打结果", Some(cols.outcome)),
        ("at", "拨打时间", Some(cols.at)),
        ("comment", "意见建议", cols.comment),
        ("appointment", "预约时间", cols.appointment),
    ];
    for (d, c) in cols.dimensions.iter().enumerate() {
        text_columns.push((&survey.dimensions[d].key, &survey.dimensions[d].label, *c));
    }
    // Errors name the columns by the file's own headers.
    report.field_headers = text_columns
        .iter()
        .filter_map(|(field, _, c)| Some((field.to_string(), table.headers.get((*c)?)?.clone())))
        .collect();
    // Parse every row first, then validate in time order per member (history matters).
    let mut parsed: Vec<(usize, ImportedAttempt, Vec<String>)> = Vec::new();
    for row in &table.rows {
        let get = |c: usize| clean_cell(row.get(c));
        let reject =
            |field: &str, error: String| Rejection::new(row.line, field, error, &row.cells);
        if let Some(r) = refuse_control(row.line, &row.cells, &text_columns) {
            report.rejected.push(r);
            continue;
        }
        let Some(&unit_id) = units.get(get(cols.unit)) else {
            let hint = closest(get(cols.unit), units.keys().map(String::as_str))
                .map(|c| format!(",是否应为“{c}”?"))
                .unwrap_or_default();
            report.rejected.push(reject(
                "unit",
                format!("单位“{}”不在本轮参评单位中{hint}", get(cols.unit)),
            ));
            continue;
        };
        let member_id = match parse_phone(get(cols.phone), None) {
            Ok(p) => match by_phone.get(&(unit_id, p.canonical().to_string())) {
                Some(id) => *id,
                None => {
                    report.rejected.push(reject(
                        "phone",
                        format!("号码 {} 不在该单位的代表名单中", p.masked()),
                    ));
                    continue;
                }
            },
            Err(e) => {
                report.rejected.push(reject("phone", e.to_string()));
                continue;
            }
        };
        let op_text = get(cols.operator);
        let Some(op) = operators
            .iter()
            .find(|u| u.login == op_text || u.name == op_text)
        else {
            report.rejected.push(reject(
                "operator",
                format!("话务员“{op_text}”不存在:请填写话务员的登录名或姓名"),
            ));
            continue;
        };
        let Some(outcome) = Outcome::parse(get(cols.outcome)) else {
            let keys: Vec<&str> = Outcome::all().iter().map(|o| o.key()).collect();
            report.rejected.push(reject(
                "outcome",
                format!(
                    "拨打结果“{}”无法识别:可填 {}",
                    get(cols.outcome),
                    keys.join("、")
                ),
            ));
            continue;
        };
        let Some(at) = parse_local_time(get(cols.at), tz) else {
            report.rejected.push(reject(
                "at",
                format!("时间“{}”无法识别:请写成 2023-02-28 10:15", get(cols.at)),
            ));
            continue;
        };
        if at > now {
            report
                .rejected
                .push(reject("at", "拨打时间晚于现在".into()));
            continue;
        }
        if !field.contains(tz, at) {
            report.rejected.push(reject(
                "at",
                format!("拨打时间不在调查期({} 至 {})内", field.start, field.end),
            ));
            continue;
        }
        let mut answers = Vec::new();
        let mut bad = None;
        for (d, col) in cols.dimensions.iter().enumerate() {
            let text = col.map(get).unwrap_or("");
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
            report.rejected.push(reject(
                &key,
                format!(
                    "答案“{text}”无法识别:请填等级名称(如 满意)或序号 1–{}",
                    survey.levels.len()
                ),
            ));
            continue;
        }
        if answers.iter().all(Option::is_none) {
            answers.clear();
        }
        let appointment = match cols.appointment.map(get).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => match parse_local_time(t, tz) {
                Some(a) => Some(a),
                None => {
                    report.rejected.push(reject(
                        "appointment",
                        format!("预约时间“{t}”无法识别:请写成 2023-02-28 10:15"),
                    ));
                    continue;
                }
            },
        };
        let comment = cols
            .comment
            .map(|c| get(c).to_string())
            .filter(|c| !c.is_empty());
        parsed.push((
            row.line,
            ImportedAttempt {
                member_id,
                operator_id: op.id,
                recorded_at: at,
                outcome,
                answers,
                comment,
                appointment,
            },
            row.cells.clone(),
        ));
    }
    parsed.sort_by_key(|(line, a, _)| (a.recorded_at, *line));
    let mut ok = Vec::new();
    let mut ok_lines = Vec::new();
    for (line, a, cells) in parsed {
        let (facts, reopened) = histories.entry(a.member_id).or_default();
        let current = disposition(
            &MemberHistory {
                attempts: facts,
                reopened_at: *reopened,
            },
            survey.calling.max_attempts,
            false,
        );
        let answers: Vec<Option<usize>> = if a.answers.is_empty() {
            Vec::new()
        } else {
            a.answers.clone()
        };
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
                facts.push(AttemptFact {
                    outcome: a.outcome,
                    at: a.recorded_at,
                    appointment: a.appointment,
                });
                ok.push(a);
                ok_lines.push(line);
            }
            Err(e) => report
                .rejected
                .push(Rejection::new(line, "outcome", e.to_string(), &cells)),
        }
    }
    report.rejected.sort_by_key(|r| r.line);
    // Preview: per unit, and the first rows in the order they will be stored.
    let unit_names: BTreeMap<i64, &str> = units.iter().map(|(n, id)| (*id, n.as_str())).collect();
    let member_unit: BTreeMap<i64, (i64, Option<&str>)> = members
        .iter()
        .map(|m| (m.id, (m.unit_id, m.phone.as_deref())))
        .collect();
    let op_names: BTreeMap<i64, &str> =
        operators.iter().map(|o| (o.id, o.login.as_str())).collect();
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for a in &ok {
        let unit = member_unit
            .get(&a.member_id)
            .and_then(|(u, _)| unit_names.get(u))
            .copied()
            .unwrap_or("");
        let e = counts.entry(unit).or_default();
        e.0 += 1;
        if a.outcome == Outcome::Complete {
            e.1 += 1;
        }
    }
    let level = |l: Option<usize>| {
        l.and_then(|l| survey.levels.get(l))
            .map_or(String::new(), |l| l.label.clone())
    };
    let mut columns: Vec<String> = ["单位", "联系电话", "话务员", "拨打结果", "拨打时间"]
        .map(String::from)
        .to_vec();
    columns.extend(survey.dimensions.iter().map(|d| d.label.clone()));
    columns.push("预约时间".into());
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let mut rows = Vec::new();
    for (line, a) in ok_lines.iter().zip(&ok).take(PREVIEW_ROWS) {
        let (unit, phone) = member_unit.get(&a.member_id).copied().unwrap_or((0, None));
        let mut cells = vec![
            unit_names.get(&unit).copied().unwrap_or("").to_string(),
            phone.map(mask_canonical).unwrap_or_default(),
            op_names
                .get(&a.operator_id)
                .copied()
                .unwrap_or("")
                .to_string(),
            a.outcome.label().to_string(),
            local(a.recorded_at),
        ];
        cells.extend(
            (0..survey.dimensions.len()).map(|d| level(a.answers.get(d).copied().flatten())),
        );
        cells.push(a.appointment.map(local).unwrap_or_default());
        rows.push((*line, cells));
    }
    let preview = ImportPreview {
        per_unit: counts
            .into_iter()
            .map(|(u, (n, c))| (u.to_string(), format!("{n} 条拨打记录,其中完成访问 {c} 条")))
            .collect(),
        columns,
        rows,
        total: ok.len(),
        notes: Vec::new(),
        digest: batch_digest(&ok),
    };
    Ok(AttemptsChecked {
        report,
        attempts: ok,
        preview,
    })
}
