use super::spss::{SPSS_COMMENT_BYTES, SPSS_PIECE_BYTES, spss_comment, spss_quote};
use super::*;
use crate::domain::survey::Survey;

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
    let survey = Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap();
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

/// The measure each column declares (what `VARIABLE LEVEL` says in the `.sps`) follows one
/// rule, so a new column gets the right one: levels ordinal, coded integers nominal, amounts
/// and times scale, text none.
#[test]
fn every_column_declares_its_measure() {
    let survey = Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap();
    for k in ExportKind::all() {
        for v in variables(*k, &survey, true) {
            let want = match v.kind {
                VarType::Number | VarType::DateTime => Some(Measure::Scale),
                VarType::Text => None,
                VarType::Integer if v.name.ends_with("_level") => Some(Measure::Ordinal),
                VarType::Integer if !v.values.is_empty() => Some(Measure::Nominal),
                VarType::Integer if v.name == "attempt_no" => Some(Measure::Scale),
                VarType::Integer => None,
            };
            assert_eq!(v.measure, want, "{k:?}: {}", v.name);
            if v.measure == Some(Measure::Ordinal) {
                assert_eq!(v.values, columns::level_values(&survey), "{}", v.name);
            }
        }
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
    let survey = Survey::from_toml_str(include_str!("../../surveys/default.toml")).unwrap();
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
