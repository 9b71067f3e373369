//! The `codebook` export: every column of every data export, with its label, type and values.

use crate::domain::survey::Survey;

use super::ExportKind;
use super::columns::{Columns, Var, VarType, variables};

/// The data exports the codebook describes, in its order.
const DESCRIBED: [ExportKind; 7] = [
    ExportKind::Responses,
    ExportKind::Distributions,
    ExportKind::Scores,
    ExportKind::Dispositions,
    ExportKind::Attempts,
    ExportKind::Onsite,
    ExportKind::Operators,
];

/// One column of a data export.
pub(super) struct Described {
    kind: ExportKind,
    var: Var,
}

pub(super) fn columns() -> Columns<Described> {
    use VarType::*;
    Columns::<Described>::new()
        .col("file", "导出文件(export 种类)", Text, |r| {
            r.kind.key().to_string()
        })
        .col("variable", "变量名(列名)", Text, |r| {
            r.var.name.clone()
        })
        .col("label", "变量说明", Text, |r| r.var.label.clone())
        .col("type", "类型(string/integer/number)", Text, |r| {
            r.var.kind.key().to_string()
        })
        .col("values", "取值及含义", Text, |r| {
            let values: Vec<String> = r
                .var
                .values
                .iter()
                .map(|(c, l)| format!("{c}={l}"))
                .collect();
            values.join("; ")
        })
}

pub(super) fn rows(survey: &Survey, with_comments: bool) -> Vec<Described> {
    DESCRIBED
        .into_iter()
        .flat_map(|kind| {
            variables(kind, survey, with_comments)
                .into_iter()
                .map(move |var| Described { kind, var })
        })
        .collect()
}
