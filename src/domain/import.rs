//! What every importer reports: rejected rows (with their physical line, field and reason),
//! warnings, and how a batch is applied (all or nothing unless the user asked to skip bad rows).

use serde::Serialize;

/// A rejected input row. `line` is the physical line in the file (header = line 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    pub line: usize,
    /// Stable English field key (`unit`, `name`, `phone`, ...).
    pub field: String,
    /// What is wrong and what to do, in Chinese for the office staff.
    pub error: String,
    /// The row as it was in the file, for a rejects file.
    #[serde(skip)]
    pub cells: Vec<String>,
}

impl Rejection {
    pub fn new(line: usize, field: &str, error: impl Into<String>, cells: &[String]) -> Self {
        Rejection {
            line,
            field: field.to_string(),
            error: error.into(),
            cells: cells.to_vec(),
        }
    }
}

/// A column whose cells are checked by [`refuse_control`]: field key, its name for the user,
/// and where it is in the file (if it is).
pub type TextColumn<'a> = (&'a str, &'a str, Option<usize>);

/// The first cell of `columns` holding a character no text may hold (`domain::text`: controls
/// other than tab and line breaks, bidi overrides), as a rejection naming line and field.
/// Every importer checks its cells with this before anything else, so such a character is
/// neither stored nor echoed back in another message.
pub fn refuse_control(line: usize, cells: &[String], columns: &[TextColumn]) -> Option<Rejection> {
    columns.iter().find_map(|&(key, label, col)| {
        let cell = cells.get(col?)?;
        super::text::check(label, cell, super::text::Lines::Multi)
            .err()
            .map(|e| Rejection::new(line, key, e.to_string(), cells))
    })
}

/// Header aliases for one logical column.
pub struct Column {
    pub field: &'static str,
    pub aliases: &'static [&'static str],
    pub required: bool,
}

/// Trims a cell the way people expect: ASCII and full-width spaces, NBSP, zero-width marks.
pub fn clean_cell(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}')
}

/// The closest candidate by edit distance, offered when a name does not match exactly.
pub fn closest<'a>(needle: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::normalized_levenshtein(needle, c), c))
        .filter(|(score, _)| *score >= 0.3)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_full_width_spaces_and_bom() {
        assert_eq!(
            clean_cell("\u{feff}\u{3000} 汉滨区教体局\u{a0}"),
            "汉滨区教体局"
        );
    }

    #[test]
    fn suggests_the_closest_name() {
        let units = [
            "汉滨区教育体育局",
            "汉滨区住房和城乡建设局",
            "汉滨区交通运输局",
        ];
        assert_eq!(closest("汉滨区教育局", units), Some("汉滨区教育体育局"));
        assert_eq!(closest("交通局", units), Some("汉滨区交通运输局"));
        assert_eq!(closest("xyz", units), None);
    }
}
