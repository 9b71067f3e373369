//! Corroborating records (佐证依据): one row per unit and kind — 12345 complaints, petitions,
//! disciplinary cases — with the count, optionally the unit's volume of cases, and where the
//! count comes from. Validated completely, then stored all at once (never in part), with every
//! rejected row named by its physical line.

use std::collections::BTreeMap;

use super::{ImportError, ImportReport};
use crate::domain::evidence::{EvidenceKind, EvidenceRecord};
use crate::domain::import::{Rejection, clean_cell, closest};
use crate::engine::Store;
use crate::storage::RoundRecord;
use crate::storage::results::EvidenceBatch;
use crate::tabular::Table;

pub const UNIT_ALIASES: &[&str] = &["unit", "参评单位", "单位名称", "单位"];
pub const KIND_ALIASES: &[&str] = &["kind", "类别", "类型"];
pub const COUNT_ALIASES: &[&str] = &["count", "数量", "件数"];
pub const VOLUME_ALIASES: &[&str] = &["volume", "业务量", "办件量"];
pub const SOURCE_ALIASES: &[&str] = &["source", "来源", "数据来源"];
pub const NOTE_ALIASES: &[&str] = &["note", "备注", "说明"];

#[derive(Debug, Clone, Copy, Default)]
pub struct EvidenceImport {
    /// Delete all of the round's stored evidence first: the file is the whole set.
    pub replace: bool,
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

fn required(table: &Table, aliases: &[&str], field: &str) -> Result<usize, ImportError> {
    single(table, aliases, field)?.ok_or_else(|| {
        ImportError::Header(format!(
            "表头缺少必需的列 {field}(可用列名:{})",
            aliases.join("/")
        ))
    })
}

/// A non-negative integer as people type it (full-width digits, thousands separators).
fn parse_int(text: &str) -> Option<u64> {
    let t: String = text
        .chars()
        .filter(|c| *c != ',' && *c != '\u{ff0c}')
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            c => c,
        })
        .collect();
    t.trim().parse().ok()
}

pub fn evidence_import(
    store: &dyn Store,
    round: &RoundRecord,
    table: &Table,
    opts: &EvidenceImport,
    actor: &str,
) -> Result<ImportReport, ImportError> {
    super::ensure_open(round)?;
    let unit_col = required(table, UNIT_ALIASES, "unit")?;
    let kind_col = required(table, KIND_ALIASES, "kind")?;
    let count_col = required(table, COUNT_ALIASES, "count")?;
    let volume_col = single(table, VOLUME_ALIASES, "volume")?;
    let source_col = single(table, SOURCE_ALIASES, "source")?;
    let note_col = single(table, NOTE_ALIASES, "note")?;
    let mut report = ImportReport {
        encoding: table.encoding.map(|e| e.name().to_string()),
        headers: table.headers.clone(),
        ..Default::default()
    };
    for col in table.unknown_columns(&[
        UNIT_ALIASES,
        KIND_ALIASES,
        COUNT_ALIASES,
        VOLUME_ALIASES,
        SOURCE_ALIASES,
        NOTE_ALIASES,
    ]) {
        report.warnings.push(format!("忽略未识别的列“{col}”"));
    }
    let units = store.units(round.id)?;
    let by_name: BTreeMap<&str, i64> = units.iter().map(|u| (u.name.as_str(), u.id)).collect();
    let by_code: BTreeMap<&str, i64> = units
        .iter()
        .filter_map(|u| Some((u.code.as_deref()?, u.id)))
        .collect();
    let stored = if opts.replace {
        BTreeMap::new()
    } else {
        store.evidence(round.id)?
    };
    let mut seen: BTreeMap<(i64, EvidenceKind), usize> = BTreeMap::new();
    let mut batch = EvidenceBatch {
        replace: opts.replace,
        ..Default::default()
    };
    for row in &table.rows {
        let cell = |c: usize| clean_cell(row.get(c));
        let reject =
            |field: &str, error: String| Rejection::new(row.line, field, error, &row.cells);
        if row.cells.iter().all(|c| clean_cell(c).is_empty()) {
            continue;
        }
        let name = cell(unit_col);
        let Some(&unit) = by_name.get(name).or_else(|| by_code.get(name)) else {
            let hint = closest(name, by_name.keys().copied())
                .map(|c| format!(",是否应为“{c}”?"))
                .unwrap_or_default();
            report.rejected.push(reject(
                "unit",
                if name.is_empty() {
                    "单位为空:请填参评单位名称或单位代码".to_string()
                } else {
                    format!("单位“{name}”不在本轮参评单位中(按名称或单位代码查找){hint}")
                },
            ));
            continue;
        };
        let kind_text = cell(kind_col);
        let Some(kind) = EvidenceKind::parse(kind_text) else {
            report.rejected.push(reject(
                "kind",
                format!(
                    "类别“{kind_text}”无法识别:请填 complaint/12345投诉、petition/信访 或 discipline/违纪违法案件"
                ),
            ));
            continue;
        };
        if let Some(first) = seen.get(&(unit, kind)) {
            report.rejected.push(reject(
                "kind",
                format!(
                    "该单位的{}在文件中出现两次(第 {first} 行已给出):每个单位每个类别只填一行",
                    kind.label()
                ),
            ));
            continue;
        }
        if stored
            .get(&unit)
            .is_some_and(|rs| rs.iter().any(|r| r.kind == kind))
        {
            report.rejected.push(reject(
                "kind",
                format!(
                    "该单位的{}已导入过;如需用本文件替换本轮全部佐证数据,请加 --replace",
                    kind.label()
                ),
            ));
            continue;
        }
        let count_text = cell(count_col);
        let Some(count) = parse_int(count_text) else {
            report.rejected.push(reject(
                "count",
                if count_text.is_empty() {
                    "数量为空:请填 0 或正整数".to_string()
                } else {
                    format!("数量“{count_text}”不是非负整数:请填 0 或正整数")
                },
            ));
            continue;
        };
        let volume_text = volume_col.map(cell).unwrap_or("");
        let volume = if volume_text.is_empty() {
            None
        } else {
            match parse_int(volume_text) {
                Some(v) if v > 0 => Some(v),
                _ => {
                    report.rejected.push(reject(
                        "volume",
                        format!("业务量“{volume_text}”不是正整数:请填该单位本期办理的件数,或留空"),
                    ));
                    continue;
                }
            }
        };
        seen.insert((unit, kind), row.line);
        batch.records.push((
            unit,
            EvidenceRecord {
                kind,
                count,
                volume,
                source: source_col.map(cell).unwrap_or("").to_string(),
                note: note_col.map(cell).unwrap_or("").to_string(),
            },
            row.line,
        ));
    }
    report.rejected.sort_by_key(|r| r.line);
    // All or nothing, like the roster: a partly imported set of counts would mislead.
    if report.rejected.is_empty() {
        if batch.records.is_empty() {
            report.warnings.push("文件中没有数据行".into());
            return Ok(report);
        }
        report.imported = store.store_evidence(round, &batch, actor)?;
        report.applied = true;
    }
    Ok(report)
}

/// Demo corroborating records for the demo round: 12345 complaints (with each unit's volume)
/// for every unit, petitions for most, disciplinary cases for a few, passed through the real
/// importer. Deterministic; complaints loosely follow the units' simulated quality, so the
/// check and the flag have something to show. Does nothing when the round has evidence.
pub fn demo_evidence(
    store: &dyn Store,
    round: &RoundRecord,
    actor: &str,
) -> Result<usize, ImportError> {
    use rand::RngExt;
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::SeedableRng;

    if !store.evidence(round.id)?.is_empty() {
        return Ok(0);
    }
    let units = store.units(round.id)?;
    let mut rng = ChaCha8Rng::from_seed([21; 32]);
    let mut rows = Vec::new();
    for (i, u) in units.iter().enumerate() {
        // Later demo units are simulated as rated lower: more complaints per case, with noise.
        let volume = rng.random_range(400..6000u64);
        let per_mille =
            0.5 + 3.0 * i as f64 / units.len().max(1) as f64 + rng.random::<f64>() * 2.5;
        let complaints = (volume as f64 * per_mille / 1000.0).round() as u64;
        let row = |kind: &str, count: u64, source: &str, note: &str| {
            vec![
                u.name.clone(),
                kind.to_string(),
                count.to_string(),
                volume.to_string(),
                source.to_string(),
                note.to_string(),
            ]
        };
        rows.push(row(
            "12345投诉",
            complaints,
            "区行政审批服务局 汉审函〔2022〕31号(演示)",
            "",
        ));
        if i % 6 != 5 {
            rows.push(row(
                "信访",
                rng.random_range(0..4u64),
                "区信访局 汉信函〔2022〕8号(演示)",
                "",
            ));
        }
        if i % 4 == 3 {
            rows.push(row(
                "违纪违法案件",
                rng.random_range(0..2u64),
                "区纪委监委 汉纪函〔2022〕5号(演示)",
                "演示数据(虚构)",
            ));
        }
    }
    let table = Table {
        headers: ["参评单位", "类别", "数量", "业务量", "来源", "备注"]
            .map(String::from)
            .to_vec(),
        rows: rows
            .into_iter()
            .enumerate()
            .map(|(i, cells)| crate::tabular::Row { line: i + 2, cells })
            .collect(),
        encoding: None,
        format: crate::tabular::Format::Csv,
    };
    let report = evidence_import(store, round, &table, &EvidenceImport::default(), actor)?;
    if let Some(r) = report.rejected.first() {
        return Err(ImportError::Header(format!(
            "demo evidence invalid: line {} [{}] {}",
            r.line, r.field, r.error
        )));
    }
    Ok(report.imported)
}
