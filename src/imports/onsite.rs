//! On-site evaluation (现场评价) results: ballots cast at each unit's evaluation meeting, or one
//! score per unit. Two file shapes, told apart by their columns:
//!
//! * **ballots**: `unit`, `ballot` (the ballot's id), then one column per dimension (key or
//!   label) and/or a single `overall` column; each cell a level (key, Chinese label or 1-based
//!   number). A row fills every dimension or only `overall`.
//! * **direct scores**: `unit`, `score` on the level-score scale (0 ..= the best level's score).
//!
//! Validated completely, then stored all at once (or only the valid rows with `skip_invalid`),
//! with every rejected row named by its physical line.

use std::collections::{BTreeMap, BTreeSet};

use super::{ImportError, ImportPreview, ImportReport, PREVIEW_ROWS, batch_digest};
use crate::domain::import::{Rejection, TextColumn, clean_cell, closest, refuse_control};
use crate::engine::Store;
use crate::storage::RoundRecord;
use crate::storage::results::{OnsiteBatch, StoredBallot, StoredOnsite};
use crate::tabular::{Format, Row, Table};

pub const UNIT_ALIASES: &[&str] = &["unit", "参评单位", "单位名称", "单位"];
pub const BALLOT_ALIASES: &[&str] = &["ballot", "ballot_id", "选票编号", "票号", "选票号", "编号"];
pub const OVERALL_ALIASES: &[&str] = &["overall", "总体评价", "总体满意度", "综合评价", "总体"];
pub const SCORE_ALIASES: &[&str] = &["score", "现场评价得分", "现场得分", "得分", "分数"];

#[derive(Debug, Clone, Copy, Default)]
pub struct OnsiteImport {
    /// Store the valid rows and skip the rejected ones.
    pub skip_invalid: bool,
    /// Delete the stored on-site data of the units in the file first.
    pub replace: bool,
}

enum Shape {
    Ballots {
        ballot: usize,
        /// Column per dimension, in the survey's order (all present, or none).
        dimensions: Option<Vec<usize>>,
        overall: Option<usize>,
    },
    Direct {
        score: usize,
    },
}

fn single(table: &Table, aliases: &[&str], field: &str) -> Result<Option<usize>, ImportError> {
    let found = table.find_columns(aliases);
    if found.len() > 1 {
        let names: Vec<&str> = found.iter().map(|&i| table.headers[i].as_str()).collect();
        return Err(ImportError::Header(format!(
            "有 {} 列都可作为 {field}({}),请只保留一列",
            found.len(),
            names.join("、")
        )));
    }
    Ok(found.first().copied())
}

fn shape(table: &Table, round: &RoundRecord) -> Result<(usize, Shape), ImportError> {
    let survey = &round.survey;
    let unit = single(table, UNIT_ALIASES, "unit")?.ok_or_else(|| {
        ImportError::Header(format!(
            "表头缺少必需的列 unit(可用列名:{})",
            UNIT_ALIASES.join("/")
        ))
    })?;
    let ballot = single(table, BALLOT_ALIASES, "ballot")?;
    let score = single(table, SCORE_ALIASES, "score")?;
    let overall = single(table, OVERALL_ALIASES, "overall")?;
    let dims: Vec<Option<usize>> = survey
        .dimensions
        .iter()
        .map(|d| table.find_column(&[d.key.as_str(), d.label.as_str()]))
        .collect();
    match (ballot, score) {
        (Some(_), Some(_)) => Err(ImportError::Header(
            "同时有选票编号(ballot)列和得分(score)列,无法判断格式:逐张选票的文件用 unit、ballot 和各维度(或 overall)列;直接给分的文件只用 unit 和 score 列".into(),
        )),
        (None, None) => Err(ImportError::Header(format!(
            "无法判断现场评价文件的格式:逐张选票请用列 unit、ballot({})以及各维度列或 overall 列;直接给分请用列 unit、score({})",
            BALLOT_ALIASES.join("/"),
            SCORE_ALIASES.join("/")
        ))),
        (None, Some(score)) => Ok((unit, Shape::Direct { score })),
        (Some(ballot), None) => {
            let present = dims.iter().filter(|d| d.is_some()).count();
            let dimensions = if present == dims.len() {
                Some(dims.iter().flatten().copied().collect())
            } else if present == 0 {
                None
            } else {
                let missing: Vec<String> = survey
                    .dimensions
                    .iter()
                    .zip(&dims)
                    .filter(|(_, c)| c.is_none())
                    .map(|(d, _)| format!("{}({})", d.key, d.label))
                    .collect();
                return Err(ImportError::Header(format!(
                    "选票文件缺少维度列:{};请给出全部 {} 个维度的列,或只用一列 overall 填总体评价",
                    missing.join("、"),
                    dims.len()
                )));
            };
            if dimensions.is_none() && overall.is_none() {
                return Err(ImportError::Header(format!(
                    "选票文件需要各维度列({})或一列 overall(总体评价)",
                    survey
                        .dimensions
                        .iter()
                        .map(|d| d.label.as_str())
                        .collect::<Vec<_>>()
                        .join("、")
                )));
            }
            Ok((
                unit,
                Shape::Ballots {
                    ballot,
                    dimensions,
                    overall,
                },
            ))
        }
    }
}

/// Reads a number as people type it (full-width digits and point allowed).
fn parse_score(text: &str) -> Option<f64> {
    let t: String = text
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '．' => '.',
            c => c,
        })
        .collect();
    let v: f64 = t.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// Validates and stores an on-site file (the CLI's `onsite import`): [`onsite_check`] then
/// [`onsite_apply`].
pub fn onsite_import(
    store: &dyn Store,
    round: &RoundRecord,
    table: &Table,
    opts: &OnsiteImport,
    actor: &str,
) -> Result<ImportReport, ImportError> {
    let checked = onsite_check(store, round, table, opts)?;
    onsite_apply(store, round, checked, opts.skip_invalid, actor)
}

/// An on-site file validated against the round, nothing stored yet.
#[derive(Debug)]
pub struct OnsiteChecked {
    pub report: ImportReport,
    pub batch: OnsiteBatch,
    pub preview: ImportPreview,
}

/// Stores a checked file when it has no rejected rows (or `skip_invalid`); otherwise stores
/// nothing. The report says which.
pub fn onsite_apply(
    store: &dyn Store,
    round: &RoundRecord,
    checked: OnsiteChecked,
    skip_invalid: bool,
    actor: &str,
) -> Result<ImportReport, ImportError> {
    super::ensure_open(round)?;
    let OnsiteChecked {
        mut report, batch, ..
    } = checked;
    if report.rejected.is_empty() || skip_invalid {
        report.imported = store.store_onsite(round, &batch, actor)?;
        report.applied = true;
        let with_data: BTreeSet<i64> = store.onsite(round.id)?.into_keys().collect();
        let missing = store
            .units(round.id)?
            .iter()
            .filter(|u| !with_data.contains(&u.id))
            .count();
        if missing > 0 {
            report.warnings.push(format!(
                "本轮还有 {missing} 个单位没有现场评价数据(结果中标记 onsite_missing,不参与排名)"
            ));
        }
    }
    Ok(report)
}

/// Validates an on-site file against the round and its stored data; stores nothing.
pub fn onsite_check(
    store: &dyn Store,
    round: &RoundRecord,
    table: &Table,
    opts: &OnsiteImport,
) -> Result<OnsiteChecked, ImportError> {
    super::ensure_open(round)?;
    let survey = &round.survey;
    let (unit_col, shape) = shape(table, round)?;
    let units: BTreeMap<String, i64> = store
        .units(round.id)?
        .into_iter()
        .map(|u| (u.name, u.id))
        .collect();
    let stored = store.onsite(round.id)?;
    let mut report = ImportReport {
        encoding: table.encoding.map(|e| e.name().to_string()),
        headers: table.headers.clone(),
        ..Default::default()
    };
    let mut known: Vec<&[&str]> = vec![UNIT_ALIASES];
    let dim_names: Vec<[&str; 2]> = survey
        .dimensions
        .iter()
        .map(|d| [d.key.as_str(), d.label.as_str()])
        .collect();
    match &shape {
        Shape::Ballots { .. } => {
            known.push(BALLOT_ALIASES);
            known.push(OVERALL_ALIASES);
            known.extend(dim_names.iter().map(|n| n.as_slice()));
        }
        Shape::Direct { .. } => known.push(SCORE_ALIASES),
    }
    for col in table.unknown_columns(&known) {
        report.warnings.push(format!("忽略未识别的列“{col}”"));
    }

    let mut batch = OnsiteBatch::default();
    let find_unit = |row: &Row, report: &mut ImportReport| -> Option<i64> {
        let name = clean_cell(row.get(unit_col));
        match units.get(name) {
            Some(id) => Some(*id),
            None => {
                let hint = closest(name, units.keys().map(String::as_str))
                    .map(|c| format!(",是否应为“{c}”?"))
                    .unwrap_or_default();
                report.rejected.push(Rejection::new(
                    row.line,
                    "unit",
                    if name.is_empty() {
                        "单位名称为空".to_string()
                    } else {
                        format!("单位“{name}”不在本轮参评单位中{hint}")
                    },
                    &row.cells,
                ));
                None
            }
        }
    };
    // Every column the file's shape reads is checked for refused characters first.
    let mut text_columns: Vec<TextColumn> = vec![("unit", "单位", Some(unit_col))];
    match &shape {
        Shape::Ballots {
            ballot,
            dimensions,
            overall,
        } => {
            text_columns.push(("ballot", "选票编号", Some(*ballot)));
            text_columns.push(("overall", "总体评价", *overall));
            for (d, &c) in dimensions.iter().flatten().enumerate() {
                text_columns.push((
                    &survey.dimensions[d].key,
                    &survey.dimensions[d].label,
                    Some(c),
                ));
            }
        }
        Shape::Direct { score } => text_columns.push(("score", "得分", Some(*score))),
    }
    // Errors name the columns by the file's own headers.
    report.field_headers = text_columns
        .iter()
        .filter_map(|(field, _, c)| Some((field.to_string(), table.headers.get((*c)?)?.clone())))
        .collect();
    let refused = |row: &Row, report: &mut ImportReport| -> bool {
        match refuse_control(row.line, &row.cells, &text_columns) {
            Some(r) => {
                report.rejected.push(r);
                true
            }
            None => false,
        }
    };
    let has_stored = |unit: i64| !opts.replace && stored.contains_key(&unit);
    match shape {
        Shape::Ballots {
            ballot,
            dimensions,
            overall,
        } => {
            let levels_hint = survey
                .levels
                .iter()
                .enumerate()
                .map(|(i, l)| format!("{}={}", i + 1, l.label))
                .collect::<Vec<_>>()
                .join("、");
            // (unit, ballot id) -> first line, within the file
            let mut seen: BTreeMap<(i64, String), usize> = BTreeMap::new();
            for row in &table.rows {
                if refused(row, &mut report) {
                    continue;
                }
                let Some(unit) = find_unit(row, &mut report) else {
                    continue;
                };
                let reject =
                    |field: &str, error: String| Rejection::new(row.line, field, error, &row.cells);
                let id = clean_cell(row.get(ballot)).to_string();
                if id.is_empty() {
                    report
                        .rejected
                        .push(reject("ballot", "选票编号为空".into()));
                    continue;
                }
                if let Some(first) = seen.get(&(unit, id.clone())) {
                    report.rejected.push(reject(
                        "ballot",
                        format!("选票编号“{id}”在该单位重复(与第 {first} 行相同)"),
                    ));
                    continue;
                }
                match stored.get(&unit) {
                    Some(StoredOnsite::Direct(_)) if has_stored(unit) => {
                        report.rejected.push(reject(
                            "unit",
                            "该单位已导入现场评价直接得分,不能再导入选票;如需改为选票,请选择替换(控制台勾选“替换文件中各单位原有的现场评价数据”,命令行加 --replace)".into(),
                        ));
                        continue;
                    }
                    Some(StoredOnsite::Ballots(b))
                        if has_stored(unit) && b.iter().any(|b| b.ballot == id) =>
                    {
                        report.rejected.push(reject(
                            "ballot",
                            format!(
                                "选票编号“{id}”已导入过;如需重新导入该单位的选票,请选择替换(控制台勾选“替换…”,命令行加 --replace)"
                            ),
                        ));
                        continue;
                    }
                    _ => {}
                }
                let cell = |c: usize| clean_cell(row.get(c));
                let overall_text = overall.map(cell).unwrap_or("");
                let dim_texts: Vec<&str> = dimensions
                    .as_ref()
                    .map(|cols| cols.iter().map(|&c| cell(c)).collect())
                    .unwrap_or_default();
                let filled = dim_texts.iter().filter(|t| !t.is_empty()).count();
                let parsed = if filled > 0 {
                    if !overall_text.is_empty() {
                        report.rejected.push(reject(
                            "overall",
                            "同一张选票既填了各维度又填了总体评价:只能填其中一种".into(),
                        ));
                        continue;
                    }
                    let mut levels = Vec::with_capacity(dim_texts.len());
                    let mut bad = None;
                    for (d, text) in dim_texts.iter().enumerate() {
                        let key = &survey.dimensions[d].key;
                        if text.is_empty() {
                            bad = Some((
                                key.clone(),
                                format!(
                                    "维度“{}”未填写:选票须填写全部 {} 个维度,或只填总体评价",
                                    survey.dimensions[d].label,
                                    dim_texts.len()
                                ),
                            ));
                            break;
                        }
                        match survey.find_level(text) {
                            Some(l) => levels.push(l),
                            None => {
                                bad = Some((
                                    key.clone(),
                                    format!(
                                        "“{text}”不是有效的等级:请填等级名称或序号({levels_hint})"
                                    ),
                                ));
                                break;
                            }
                        }
                    }
                    if let Some((field, error)) = bad {
                        report.rejected.push(reject(&field, error));
                        continue;
                    }
                    StoredBallot {
                        ballot: id.clone(),
                        levels,
                        overall: false,
                    }
                } else if !overall_text.is_empty() {
                    match survey.find_level(overall_text) {
                        Some(l) => StoredBallot {
                            ballot: id.clone(),
                            levels: vec![l],
                            overall: true,
                        },
                        None => {
                            report.rejected.push(reject(
                                "overall",
                                format!(
                                    "“{overall_text}”不是有效的等级:请填等级名称或序号({levels_hint})"
                                ),
                            ));
                            continue;
                        }
                    }
                } else {
                    report.rejected.push(reject(
                        if dimensions.is_some() {
                            &survey.dimensions[0].key
                        } else {
                            "overall"
                        },
                        "选票未填写任何评价等级".into(),
                    ));
                    continue;
                };
                seen.insert((unit, id), row.line);
                batch.ballots.push((unit, parsed, row.line));
            }
        }
        Shape::Direct { score } => {
            let max = survey.max_score();
            let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
            for row in &table.rows {
                if refused(row, &mut report) {
                    continue;
                }
                let Some(unit) = find_unit(row, &mut report) else {
                    continue;
                };
                let reject =
                    |field: &str, error: String| Rejection::new(row.line, field, error, &row.cells);
                if let Some(first) = seen.get(&unit) {
                    report.rejected.push(reject(
                        "unit",
                        format!("该单位在文件中出现两次(第 {first} 行已给出得分)"),
                    ));
                    continue;
                }
                if has_stored(unit) {
                    report.rejected.push(reject(
                        "unit",
                        "该单位已有现场评价数据;如需替换,请选择替换(控制台勾选“替换…”,命令行加 --replace)".into(),
                    ));
                    continue;
                }
                let text = clean_cell(row.get(score));
                match parse_score(text) {
                    Some(v) if (0.0..=max).contains(&v) => {
                        seen.insert(unit, row.line);
                        batch.scores.push((unit, v, row.line));
                    }
                    Some(v) => report.rejected.push(reject(
                        "score",
                        format!("得分 {v} 超出范围:应在 0 到 {max} 之间(与等级分值同一量纲)"),
                    )),
                    None => report.rejected.push(reject(
                        "score",
                        if text.is_empty() {
                            "得分为空".to_string()
                        } else {
                            format!("得分“{text}”不是数字")
                        },
                    )),
                }
            }
        }
    }
    report.rejected.sort_by_key(|r| r.line);
    if opts.replace {
        let touched: BTreeSet<i64> = batch
            .ballots
            .iter()
            .map(|(u, _, _)| *u)
            .chain(batch.scores.iter().map(|(u, _, _)| *u))
            .collect();
        let replaced: Vec<i64> = touched
            .into_iter()
            .filter(|u| stored.contains_key(u))
            .collect();
        if !replaced.is_empty() {
            report.warnings.push(format!(
                "替换了 {} 个单位原有的现场评价数据",
                replaced.len()
            ));
        }
        batch.replace_units = replaced;
    }
    let preview = onsite_preview(round, &units, &stored, &batch, opts);
    Ok(OnsiteChecked {
        report,
        batch,
        preview,
    })
}

fn onsite_preview(
    round: &RoundRecord,
    units: &BTreeMap<String, i64>,
    stored: &BTreeMap<i64, StoredOnsite>,
    batch: &OnsiteBatch,
    opts: &OnsiteImport,
) -> ImportPreview {
    let survey = &round.survey;
    let names: BTreeMap<i64, &str> = units.iter().map(|(n, id)| (*id, n.as_str())).collect();
    let name = |id: i64| names.get(&id).copied().unwrap_or("").to_string();
    let mut ballots: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    for (unit, b, _) in &batch.ballots {
        let e = ballots.entry(*unit).or_default();
        if b.overall {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    }
    let mut per_unit = Vec::new();
    for (unit, (full, overall)) in &ballots {
        let mut what = format!("{} 张选票", full + overall);
        if *overall > 0 {
            what.push_str(&format!("(其中 {overall} 张只填总体评价)"));
        }
        if !opts.replace
            && let Some(StoredOnsite::Ballots(b)) = stored.get(unit)
        {
            what.push_str(&format!(",另有已导入的 {} 张", b.len()));
        }
        per_unit.push((name(*unit), what));
    }
    for (unit, score, _) in &batch.scores {
        per_unit.push((name(*unit), format!("直接得分 {score}")));
    }
    per_unit.sort();
    let level = |l: usize| survey.levels.get(l).map_or("", |l| l.label.as_str());
    let (columns, rows): (Vec<String>, Vec<(usize, Vec<String>)>) = if batch.scores.is_empty() {
        let mut columns = vec!["单位".to_string(), "选票编号".to_string()];
        columns.extend(survey.dimensions.iter().map(|d| d.label.clone()));
        columns.push("总体评价".to_string());
        let rows = batch
            .ballots
            .iter()
            .take(PREVIEW_ROWS)
            .map(|(unit, b, line)| {
                let mut cells = vec![name(*unit), b.ballot.clone()];
                if b.overall {
                    cells.extend(std::iter::repeat_n(String::new(), survey.dimensions.len()));
                    cells.push(b.levels.first().map_or("", |&l| level(l)).to_string());
                } else {
                    cells.extend(b.levels.iter().map(|&l| level(l).to_string()));
                    cells.push(String::new());
                }
                (*line, cells)
            })
            .collect();
        (columns, rows)
    } else {
        let rows = batch
            .scores
            .iter()
            .take(PREVIEW_ROWS)
            .map(|(unit, score, line)| (*line, vec![name(*unit), score.to_string()]))
            .collect();
        (vec!["单位".to_string(), "现场评价得分".to_string()], rows)
    };
    let mut with_data: BTreeSet<i64> = stored.keys().copied().collect();
    with_data.extend(ballots.keys());
    with_data.extend(batch.scores.iter().map(|(u, _, _)| *u));
    let missing = units.values().filter(|u| !with_data.contains(u)).count();
    let mut notes = Vec::new();
    if missing > 0 {
        notes.push(format!(
            "保存后本轮还有 {missing} 个单位没有现场评价数据(结果中标记 onsite_missing,不参与排名)"
        ));
    }
    ImportPreview {
        per_unit,
        columns,
        rows,
        total: batch.ballots.len() + batch.scores.len(),
        notes,
        digest: batch_digest(batch),
    }
}

/// Demo on-site data: ballots for most of the demo round's units and a direct score for a few,
/// passed through the real importer. Deterministic; returns the rows stored. Does nothing when
/// the round already has on-site data.
pub fn demo_onsite(
    store: &dyn Store,
    round: &RoundRecord,
    actor: &str,
) -> Result<usize, ImportError> {
    use rand::RngExt;
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::SeedableRng;

    if !store.onsite(round.id)?.is_empty() {
        return Ok(0);
    }
    let survey = &round.survey;
    let units = store.units(round.id)?;
    let mut rng = ChaCha8Rng::from_seed([5; 32]);
    let mut ballot_rows = Vec::new();
    let mut score_rows = Vec::new();
    let n_levels = survey.levels.len();
    for (i, u) in units.iter().enumerate() {
        // Units differ in how well they are rated (as in the demo's simulated calls).
        let quality = 0.85 - 0.25 * i as f64 / units.len().max(1) as f64;
        let draw = |rng: &mut ChaCha8Rng| -> usize {
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
            level.min(n_levels - 1)
        };
        if i % 10 == 9 {
            let score =
                survey.max_score() * (0.6 + 0.4 * quality) - rng.random_range(0..10u32) as f64;
            score_rows.push(vec![u.name.clone(), format!("{:.1}", score.max(0.0))]);
            continue;
        }
        let ballots = 12 + rng.random_range(0..10usize);
        for b in 0..ballots {
            let mut row = vec![u.name.clone(), format!("{:02}-{:03}", i + 1, b + 1)];
            if b % 5 == 4 {
                row.extend(std::iter::repeat_n(String::new(), survey.dimensions.len()));
                row.push(survey.levels[draw(&mut rng)].label.clone());
            } else {
                row.extend(
                    (0..survey.dimensions.len())
                        .map(|_| survey.levels[draw(&mut rng)].label.clone()),
                );
                row.push(String::new());
            }
            ballot_rows.push(row);
        }
    }
    let to_table = |headers: Vec<String>, rows: Vec<Vec<String>>| Table {
        headers,
        rows: rows
            .into_iter()
            .enumerate()
            .map(|(i, cells)| Row { line: i + 2, cells })
            .collect(),
        encoding: None,
        format: Format::Csv,
    };
    let mut headers = vec!["参评单位".to_string(), "选票编号".to_string()];
    headers.extend(survey.dimensions.iter().map(|d| d.label.clone()));
    headers.push("总体评价".to_string());
    let mut stored = 0;
    for table in [
        to_table(headers, ballot_rows),
        to_table(vec!["参评单位".into(), "现场评价得分".into()], score_rows),
    ] {
        if table.rows.is_empty() {
            continue;
        }
        let report = onsite_import(store, round, &table, &OnsiteImport::default(), actor)?;
        if let Some(r) = report.rejected.first() {
            return Err(ImportError::Header(format!(
                "demo on-site data invalid: line {} [{}] {}",
                r.line, r.field, r.error
            )));
        }
        stored += report.imported;
    }
    Ok(stored)
}
