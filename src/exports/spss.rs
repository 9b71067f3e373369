//! SPSS syntax (also run by GNU PSPP) for the responses export, and the one rule of which
//! exports bring it: the `spss` export is the syntax alone, a codebook brings it beside itself.

use crate::storage::RoundRecord;

use super::ExportKind;
use super::columns::{ExportTable, Measure, Var, VarType};

/// How an export relates to the SPSS syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Syntax {
    /// A table; no syntax.
    None,
    /// The syntax is the export (`spss`).
    Alone,
    /// A table with the syntax written beside it as `.sps` (`codebook`), so whoever reads the
    /// variable list also gets the file that declares it.
    Beside,
}

impl Syntax {
    pub(super) fn of(kind: ExportKind) -> Syntax {
        match kind {
            ExportKind::Spss => Syntax::Alone,
            ExportKind::Codebook => Syntax::Beside,
            _ => Syntax::None,
        }
    }
}

/// Value labels and the variables that share them.
type LabelGroup<'a> = (Vec<(String, String)>, Vec<&'a Var>);

/// Longest piece of user text on one line of SPSS syntax, in UTF-8 bytes. SPSS reads syntax
/// lines of up to 256 bytes; a piece doubled by quote escaping plus indentation, a variable
/// name and the quotes stays below that.
pub(super) const SPSS_PIECE_BYTES: usize = 80;
/// Longest comment line (after `* `), in UTF-8 bytes.
pub(super) const SPSS_COMMENT_BYTES: usize = 200;

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
pub(super) fn spss_quote(s: &str) -> String {
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
pub(super) fn spss_comment(out: &mut String, text: &str) {
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
pub(super) fn spss_syntax(
    round: &RoundRecord,
    responses: &ExportTable,
    responses_file: &str,
) -> String {
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
    let by_level = |measure: Measure| -> Vec<&str> {
        responses
            .vars
            .iter()
            .filter(|v| v.measure == Some(measure))
            .map(|v| v.name.as_str())
            .collect()
    };
    let ordinal = by_level(Measure::Ordinal);
    let nominal = by_level(Measure::Nominal);
    let scale = by_level(Measure::Scale);
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
