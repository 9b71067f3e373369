//! Evaluated units (参评单位) and the validation of a units file.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::import::{Column, Rejection, clean_cell, refuse_control};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnitKind {
    /// 党政机关: Party or government organ.
    Organ,
    /// 事业单位: public institution.
    Institution,
}

impl UnitKind {
    pub fn label(self) -> &'static str {
        match self {
            UnitKind::Organ => "党政机关",
            UnitKind::Institution => "事业单位",
        }
    }

    /// The kind whose label is exactly `label` (what the database stores); no synonyms.
    pub fn from_stored_label(label: &str) -> Option<UnitKind> {
        [UnitKind::Organ, UnitKind::Institution]
            .into_iter()
            .find(|k| k.label() == label)
    }

    pub fn parse(text: &str) -> Option<UnitKind> {
        match clean_cell(text) {
            "党政机关" | "机关" | "行政机关" | "organ" => Some(UnitKind::Organ),
            "事业单位" | "事业" | "institution" => Some(UnitKind::Institution),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewUnit {
    pub name: String,
    pub kind: UnitKind,
    pub sector: String,
    pub code: Option<String>,
    pub line: usize,
}

pub const UNIT_COLUMNS: &[Column] = &[
    Column {
        field: "name",
        aliases: &["单位名称", "参评单位", "单位", "name", "unit"],
        required: true,
    },
    Column {
        field: "kind",
        aliases: &["单位类型", "类型", "单位性质", "kind"],
        required: true,
    },
    Column {
        field: "sector",
        aliases: &["系统", "领域", "sector"],
        required: false,
    },
    Column {
        field: "code",
        aliases: &["单位代码", "代码", "code"],
        required: false,
    },
];

/// Longest unit name accepted; real names are far shorter, this stops garbage early.
const MAX_NAME_CHARS: usize = 100;

/// Validates the rows of a units file against the names the round already has.
pub fn validate_units<'a>(
    rows: impl IntoIterator<Item = (usize, &'a [String])>,
    columns: &[Option<usize>; 4],
    existing: &BTreeSet<String>,
) -> (Vec<NewUnit>, Vec<Rejection>) {
    let mut ok = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = BTreeSet::new();
    for (line, cells) in rows {
        let text_columns = [
            ("name", "单位名称", columns[0]),
            ("kind", "单位类型", columns[1]),
            ("sector", "系统", columns[2]),
            ("code", "单位代码", columns[3]),
        ];
        if let Some(r) = refuse_control(line, cells, &text_columns) {
            rejected.push(r);
            continue;
        }
        let get = |i: usize| {
            columns[i]
                .and_then(|c| cells.get(c))
                .map(|s| clean_cell(s))
                .unwrap_or("")
        };
        let name = get(0);
        if name.is_empty() {
            rejected.push(Rejection::new(
                line,
                "name",
                "单位名称为空:请填写参评单位的全称",
                cells,
            ));
            continue;
        }
        if name.chars().count() > MAX_NAME_CHARS {
            rejected.push(Rejection::new(
                line,
                "name",
                format!("单位名称超过 {MAX_NAME_CHARS} 个字"),
                cells,
            ));
            continue;
        }
        let Some(kind) = UnitKind::parse(get(1)) else {
            rejected.push(Rejection::new(
                line,
                "kind",
                format!("单位类型“{}”无法识别:请填写“党政机关”或“事业单位”", get(1)),
                cells,
            ));
            continue;
        };
        if existing.contains(name) {
            rejected.push(Rejection::new(
                line,
                "name",
                format!("单位“{name}”已在本轮评估中"),
                cells,
            ));
            continue;
        }
        if !seen.insert(name.to_string()) {
            rejected.push(Rejection::new(
                line,
                "name",
                format!("单位“{name}”在文件中重复出现"),
                cells,
            ));
            continue;
        }
        let code = Some(get(3).to_string()).filter(|c| !c.is_empty());
        ok.push(NewUnit {
            name: name.to_string(),
            kind,
            sector: get(2).to_string(),
            code,
            line,
        });
    }
    (ok, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn validates_kinds_names_and_duplicates() {
        let rows = [
            row(&["汉滨区教育体育局", "党政机关", "教体", "A1"]),
            row(&["", "事业单位", "教体", ""]),
            row(&["汉滨区第一中学", "学校", "教体", ""]),
            row(&["汉滨区教育体育局", "党政机关", "教体", ""]),
            row(&["汉滨区住建局", "党政机关", "住建", ""]),
        ];
        let existing = BTreeSet::from(["汉滨区住建局".to_string()]);
        let (ok, rej) = validate_units(
            rows.iter().enumerate().map(|(i, r)| (i + 2, r.as_slice())),
            &[Some(0), Some(1), Some(2), Some(3)],
            &existing,
        );
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].kind, UnitKind::Organ);
        assert_eq!(ok[0].code.as_deref(), Some("A1"));
        let lines: Vec<_> = rej.iter().map(|r| (r.line, r.field.as_str())).collect();
        assert_eq!(lines, [(3, "name"), (4, "kind"), (5, "name"), (6, "name")]);
    }
}
