//! No SQL is built from strings: every `format!` whose text is SQL may only splice in
//! compile-time constants (UPPER_CASE names) or an identifier chosen from a fixed set in code
//! (listed below with where it comes from). Values always go through `?` parameters.

use std::path::Path;

/// (file, placeholder): placeholders that are not constants but are picked from literals.
const ALLOWED: &[(&str, &str)] = &[
    // `column` is "login" or "ip", passed as literals by the throttling code.
    ("src/storage/sqlite/accounts.rs", "column"),
    // `values` is "(?2, …, ?9, ?1), (?10, …)": numbered placeholders generated from a row
    // count, the multi-row insert of a roster.
    ("src/storage/sqlite/mod.rs", "values"),
    // `sheping migrate`: `table`/`table_name` is one of the constant `copy::TABLES`, quoted;
    // `columns` and `order` are the column names both catalogues agree on, quoted.
    ("src/storage/postgres/copy.rs", "table"),
    ("src/storage/postgres/copy.rs", "table_name"),
    ("src/storage/postgres/copy.rs", "columns"),
    ("src/storage/postgres/copy.rs", "order"),
];

const SQL_WORDS: &[&str] = &[
    "SELECT ", "INSERT ", "UPDATE ", "DELETE ", " WHERE ", "CREATE ", "DROP ",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first string literal after each `format!(`, joined across lines.
fn format_literals(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find("format!(") {
        let after = &rest[i + 8..];
        if let Some(q) = after.find('"') {
            let lit_start = &after[q + 1..];
            let mut end = 0;
            let bytes = lit_start.as_bytes();
            while end < bytes.len()
                && !(bytes[end] == b'"' && (end == 0 || bytes[end - 1] != b'\\'))
            {
                end += 1;
            }
            let line = text[..offset + i].lines().count();
            out.push((line, lit_start[..end].to_string()));
        }
        offset += i + 8;
        rest = &rest[i + 8..];
    }
    out
}

fn placeholders(lit: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = lit;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        if let Some(escaped) = after.strip_prefix('{') {
            rest = escaped;
            continue;
        }
        let Some(j) = after.find('}') else { break };
        let name = after[..j]
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        names.push(name);
        rest = &after[j + 1..];
    }
    names
}

#[test]
fn sql_is_never_built_from_runtime_strings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut offenders = Vec::new();
    let mut checked = 0;
    for file in files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, lit) in format_literals(&text) {
            let upper = lit.to_uppercase();
            if !SQL_WORDS.iter().any(|w| upper.contains(w))
                || !lit.contains(" FROM ")
                    && !lit.contains("INTO ")
                    && !lit.contains("SET ")
                    && !lit.contains("WHERE")
            {
                continue;
            }
            checked += 1;
            for name in placeholders(&lit) {
                let constant = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                let allowed = ALLOWED.iter().any(|(f, n)| *f == rel && *n == name);
                if !constant && !allowed {
                    offenders.push(format!(
                        "{rel}:{line}: `{{{name}}}` spliced into SQL: {lit}"
                    ));
                }
            }
        }
    }
    assert!(
        checked > 0,
        "the scan found no SQL format! at all: the scanner is broken"
    );
    assert!(
        offenders.is_empty(),
        "SQL built from strings:\n{}",
        offenders.join("\n")
    );
}
