//! Column specifications. Each export kind is one list of [`Column`]s built with [`Columns`]:
//! the stable English key, the Chinese label, the type, the SPSS measure, the value labels and
//! the function giving the cell for a row, side by side. The header, the codebook's rows and
//! the SPSS declarations are read from the same list as the cells, so they cannot drift apart.

use std::collections::BTreeMap;

use crate::domain::disposition::{Category, Outcome};
use crate::domain::survey::Survey;
use crate::engine::Store;
use crate::results::{ResultsDocument, RoundData};
use crate::storage::AttemptRecord;

use super::{ExportError, ExportKind, codebook, interviews, onsite, operators, units};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    Text,
    Integer,
    Number,
    /// Local date and time as `YYYY-MM-DD HH:MM:SS`.
    DateTime,
}

impl VarType {
    /// As the codebook's `type` column shows it.
    pub fn key(self) -> &'static str {
        match self {
            VarType::Text => "string",
            VarType::Integer => "integer",
            VarType::Number => "number",
            VarType::DateTime => "datetime",
        }
    }
}

/// The measurement level SPSS gives a variable (`VARIABLE LEVEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Nominal,
    Ordinal,
    Scale,
}

/// What the codebook and the SPSS syntax say about one column.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub label: String,
    pub kind: VarType,
    /// `None` for text and plain counts: no `VARIABLE LEVEL` line names them.
    pub measure: Option<Measure>,
    /// Codes and their labels (level numbers, 0/1 indicators, outcome keys).
    pub values: Vec<(String, String)>,
}

/// One column: its description and the cell it shows for a row of type `R`.
pub(super) struct Column<R> {
    pub var: Var,
    pub cell: Box<dyn Fn(&R) -> String>,
}

/// One export kind's columns, in file order.
pub(super) struct Columns<R>(Vec<Column<R>>);

impl<R> Columns<R> {
    pub fn new() -> Self {
        Columns(Vec::new())
    }

    /// Adds a column. Numbers and times are measured on a scale; text and counts get no
    /// measure unless [`Columns::values`] or [`Columns::measure`] gives one.
    pub fn col(
        mut self,
        name: impl Into<String>,
        label: impl Into<String>,
        kind: VarType,
        cell: impl Fn(&R) -> String + 'static,
    ) -> Self {
        let measure = match kind {
            VarType::Number | VarType::DateTime => Some(Measure::Scale),
            VarType::Text | VarType::Integer => None,
        };
        self.0.push(Column {
            var: Var {
                name: name.into(),
                label: label.into(),
                kind,
                measure,
                values: Vec::new(),
            },
            cell: Box::new(cell),
        });
        self
    }

    /// Value labels for the column just added; coded integers become nominal (categories, not
    /// amounts) unless a measure is given after.
    pub fn values(mut self, values: Vec<(String, String)>) -> Self {
        if let Some(c) = self.0.last_mut() {
            if c.var.kind == VarType::Integer && c.var.measure.is_none() {
                c.var.measure = Some(Measure::Nominal);
            }
            c.var.values = values;
        }
        self
    }

    /// The measure of the column just added.
    pub fn measure(mut self, measure: Measure) -> Self {
        if let Some(c) = self.0.last_mut() {
            c.var.measure = Some(measure);
        }
        self
    }

    /// Adds the columns `add` gives when `yes`.
    pub fn when(self, yes: bool, add: impl FnOnce(Self) -> Self) -> Self {
        if yes { add(self) } else { self }
    }

    /// Adds columns for each item (a dimension, a category, …).
    pub fn each<T>(
        self,
        items: impl IntoIterator<Item = T>,
        add: impl FnMut(Self, T) -> Self,
    ) -> Self {
        items.into_iter().fold(self, add)
    }

    pub fn vars(&self) -> Vec<Var> {
        self.0.iter().map(|c| c.var.clone()).collect()
    }

    /// The table: one row of cells per row of data, in the columns' order.
    pub fn table(self, kind: ExportKind, rows: impl IntoIterator<Item = R>) -> ExportTable {
        let rows = rows
            .into_iter()
            .map(|r| self.0.iter().map(|c| (c.cell)(&r)).collect())
            .collect();
        ExportTable {
            kind,
            vars: self.0.into_iter().map(|c| c.var).collect(),
            rows,
        }
    }
}

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

/// The columns of an export (the codebook and SPSS syntax describe exactly these).
pub fn variables(kind: ExportKind, survey: &Survey, with_comments: bool) -> Vec<Var> {
    match kind {
        ExportKind::Responses => interviews::responses_columns(survey, with_comments).vars(),
        ExportKind::Attempts => interviews::attempts_columns(with_comments).vars(),
        ExportKind::Distributions => units::distributions_columns(survey).vars(),
        ExportKind::Scores => units::scores_columns(survey).vars(),
        ExportKind::Dispositions => units::dispositions_columns().vars(),
        ExportKind::Onsite => onsite::columns(survey).vars(),
        ExportKind::Operators => operators::columns().vars(),
        ExportKind::Codebook | ExportKind::Spss => codebook::columns().vars(),
    }
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
    Ok(match kind {
        ExportKind::Responses => interviews::responses_columns(survey, with_comments)
            .table(kind, interviews::responses_rows(&cx)),
        ExportKind::Attempts => {
            interviews::attempts_columns(with_comments).table(kind, interviews::attempts_rows(&cx))
        }
        ExportKind::Distributions => {
            units::distributions_columns(survey).table(kind, units::distributions_rows(&cx))
        }
        ExportKind::Scores => units::scores_columns(survey).table(kind, units::unit_rows(&cx)),
        ExportKind::Dispositions => {
            units::dispositions_columns().table(kind, units::unit_rows(&cx))
        }
        ExportKind::Onsite => onsite::columns(survey).table(kind, onsite::rows(&cx)),
        ExportKind::Operators => {
            operators::columns().table(kind, operators::rows(store, &cx, data.now)?)
        }
        ExportKind::Codebook | ExportKind::Spss => {
            codebook::columns().table(kind, codebook::rows(survey, with_comments))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// What the rows read

/// A unit as its four identifying columns show it.
#[derive(Debug, Clone, Default)]
pub(super) struct UnitCells<'a> {
    pub name: &'a str,
    pub code: String,
    pub kind: &'static str,
    pub sector: &'a str,
}

/// A row that belongs to a unit (for [`unit_columns`]).
pub(super) trait UnitRow {
    fn unit(&self) -> &UnitCells<'_>;
}

/// `unit`, `unit_code`, `unit_kind`, `sector`.
pub(super) fn unit_columns<R: UnitRow>(c: Columns<R>) -> Columns<R> {
    use VarType::Text;
    c.col("unit", "参评单位", Text, |r: &R| {
        r.unit().name.to_string()
    })
    .col("unit_code", "单位代码", Text, |r: &R| {
        r.unit().code.clone()
    })
    .col(
        "unit_kind",
        "单位类型(党政机关/事业单位)",
        Text,
        |r: &R| r.unit().kind.to_string(),
    )
    .col("sector", "系统", Text, |r: &R| {
        r.unit().sector.to_string()
    })
}

/// Loaded data plus what only exports need.
pub(super) struct Context<'a> {
    pub data: &'a RoundData,
    pub doc: &'a ResultsDocument,
    units: BTreeMap<i64, UnitCells<'a>>,
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
                    UnitCells {
                        name: u.name.as_str(),
                        code: u.code.clone().unwrap_or_default(),
                        kind: u.kind.label(),
                        sector: u.sector.as_str(),
                    },
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

    pub fn unit(&self, id: i64) -> UnitCells<'a> {
        self.units.get(&id).cloned().unwrap_or_default()
    }

    /// The operator's comment on an attempt, names and numbers of its member masked.
    pub fn comment(&self, a: &AttemptRecord) -> String {
        let personal: Vec<&str> = self
            .personal
            .get(&a.member_id)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        a.comment
            .as_deref()
            .map(|c| super::scrub_comment(c, &personal))
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Cells and value labels

pub(super) fn f(x: f64) -> String {
    // Rust prints the shortest text that reads back as the same f64, never in exponent form.
    format!("{x}")
}

pub(super) fn of(x: Option<f64>) -> String {
    x.map(f).unwrap_or_default()
}

pub(super) fn ou<T: ToString>(x: Option<T>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

pub(super) fn lo(x: Option<[f64; 2]>) -> String {
    of(x.map(|v| v[0]))
}

pub(super) fn hi(x: Option<[f64; 2]>) -> String {
    of(x.map(|v| v[1]))
}

pub(super) fn bit(b: bool) -> String {
    u8::from(b).to_string()
}

pub(super) fn level_values(survey: &Survey) -> Vec<(String, String)> {
    survey
        .levels
        .iter()
        .enumerate()
        .map(|(i, l)| ((i + 1).to_string(), l.label.clone()))
        .collect()
}

pub(super) fn outcome_values(outcomes: &[Outcome]) -> Vec<(String, String)> {
    outcomes
        .iter()
        .map(|o| (o.key().to_string(), o.label().to_string()))
        .collect()
}

pub(super) fn yes_no() -> Vec<(String, String)> {
    vec![("1".into(), "是".into()), ("0".into(), "否".into())]
}

/// Members per AAPOR category, as `n_I` … `n_NE` (`NE` alone is an SPSS reserved word), from
/// the row's counts.
pub(super) fn category_columns<R>(
    c: Columns<R>,
    whose: &str,
    count: impl Fn(&R, Category) -> u32 + Copy + 'static,
) -> Columns<R> {
    c.each(Category::all(), |c, &cat| {
        c.col(
            format!("n_{cat:?}"),
            format!("{whose}中 AAPOR {cat:?}:{}(人数)", cat.label()),
            VarType::Integer,
            move |r: &R| count(r, cat).to_string(),
        )
    })
}
