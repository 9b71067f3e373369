//! One rule for every text people type or import that is stored: unit names, person names,
//! organisations, notes, comments, ballot ids, reasons, user names, round titles.
//!
//! Refused everywhere: C0 control characters (U+0000–U+001F) other than the line characters a
//! field allows, DEL and the C1 controls (U+007F–U+009F), and the bidirectional override and
//! isolate characters (U+202A–U+202E, U+2066–U+2069). A NUL makes the SVG charts invalid XML,
//! an ESC reaches an administrator's terminal, and U+202E reverses what follows it in a file name or
//! a ranking. Tab, newline and carriage return stay as each field had them:
//! [`Lines::Multi`] (imported cells, reasons) keeps them, [`Lines::Single`] (titles, labels)
//! refuses them.
//!
//! Also here: what XML 1.0 cannot hold (for the SVG writers) and the safe form of a name used in
//! a file name.

use std::borrow::Cow;

/// Whether a field may hold tabs and line breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// One line: tab, newline and carriage return are refused too.
    Single,
    /// Tab, newline and carriage return are kept (as the field always allowed).
    Multi,
}

/// A refused character: which field, where (1-based, in characters) and what it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field}的第 {position} 个字符是{what},不能使用:控制字符和文字方向控制符会破坏显示和文件,\
     请删去该字符后重试"
)]
pub struct TextError {
    pub field: String,
    pub position: usize,
    pub what: String,
}

/// The bidirectional embedding/override (U+202A–U+202E) and isolate (U+2066–U+2069)
/// characters: they reorder what follows them on screen.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` is refused in a field with these line rules.
pub fn is_refused(c: char, lines: Lines) -> bool {
    if c.is_control() {
        !(lines == Lines::Multi && matches!(c, '\t' | '\n' | '\r'))
    } else {
        is_bidi_control(c)
    }
}

/// The first refused character (1-based position in characters), if any.
pub fn first_refused(text: &str, lines: Lines) -> Option<(usize, char)> {
    // Fast path: the refused characters are ASCII controls, or start with byte C2 (C1
    // controls) or E2 (the bidi controls); most text has none of these bytes.
    if !text
        .bytes()
        .any(|b| b < 0x20 || b == 0x7F || b == 0xC2 || b == 0xE2)
    {
        return None;
    }
    text.chars()
        .enumerate()
        .find(|(_, c)| is_refused(*c, lines))
        .map(|(i, c)| (i + 1, c))
}

/// Checks a field; `field` is its name as the user knows it (姓名, 单位名称, 原因 …).
pub fn check(field: &str, text: &str, lines: Lines) -> Result<(), TextError> {
    match first_refused(text, lines) {
        None => Ok(()),
        Some((position, c)) => Err(TextError {
            field: field.to_string(),
            position,
            what: describe_char(c),
        }),
    }
}

/// The reason an administrator gives for a correction, a reopening or an answer edit: free
/// text over several lines, not blank once trimmed (the caller says what is missing).
pub fn check_reason(reason: &str) -> Result<(), TextError> {
    check("原因", reason, Lines::Multi)
}

/// Names a refused character for a message, never echoing a control or invisible character
/// itself (it would garble a terminal or vanish on a page).
pub fn describe_char(c: char) -> String {
    match c {
        ' ' => "空格".into(),
        '\u{3000}' => "全角空格".into(),
        '\t' => "制表符(Tab)".into(),
        '\n' => "换行符".into(),
        '\r' => "回车符".into(),
        '\u{2028}' | '\u{2029}' => format!("换行符 U+{:04X}", u32::from(c)),
        '/' => "斜杠“/”".into(),
        '\\' => "反斜杠“\\”".into(),
        c if c.is_control() => format!("控制字符 U+{:04X}", u32::from(c)),
        c if c.is_whitespace() => format!("空白字符 U+{:04X}", u32::from(c)),
        // Format characters (zero-width spaces, direction marks and overrides) and other
        // invisibles.
        c if is_invisible(c) => format!("不可见字符 U+{:04X}", u32::from(c)),
        c => format!("“{c}”"),
    }
}

/// `text` safe to print on a terminal: each refused character (an ESC would reach the
/// terminal's control sequences, U+202E reorder the line) shown as `\u{…}` instead. For data
/// stored before the rule refused such characters.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if first_refused(text, Lines::Single).is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_refused(c, Lines::Single) {
            out.push_str(&format!("\\u{{{:04X}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Zero-width and direction-formatting characters: invisible on screen.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Whether XML 1.0 can hold `c` at all (its `Char` production); the rest cannot even be
/// escaped, so an XML writer must drop it.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `text` without the characters XML 1.0 forbids (borrowed when it has none).
pub fn xml_chars(text: &str) -> Cow<'_, str> {
    if text.chars().all(is_xml_char) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|&c| is_xml_char(c)).collect())
    }
}

/// Whether a character can stand in a file name made from a name: no path separators or
/// characters Windows refuses, no controls, no whitespace, nothing invisible or reordering.
pub fn is_file_name_char(c: char) -> bool {
    !(matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
        || c.is_control()
        || c.is_whitespace()
        || is_invisible(c)
        || !is_xml_char(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_shows_controls_as_escapes() {
        assert_eq!(for_terminal("王静"), "王静");
        assert_eq!(
            for_terminal("王\u{1b}[31m静\u{202E}"),
            "王\\u{001B}[31m静\\u{202E}"
        );
    }

    #[test]
    fn refuses_controls_and_bidi_keeping_the_field_line_rule() {
        for c in [
            '\u{0}', '\u{1B}', '\u{7F}', '\u{85}', '\u{9F}', '\u{202E}', '\u{2066}',
        ] {
            let text = format!("汉滨{c}区");
            assert_eq!(first_refused(&text, Lines::Multi), Some((3, c)), "{c:?}");
            assert_eq!(first_refused(&text, Lines::Single), Some((3, c)), "{c:?}");
        }
        for c in ['\t', '\n', '\r'] {
            let text = format!("a{c}b");
            assert_eq!(first_refused(&text, Lines::Multi), None);
            assert_eq!(first_refused(&text, Lines::Single), Some((2, c)));
        }
        // Ordinary text, Chinese punctuation (E2 lead bytes) and emoji pass.
        for ok in ["汉滨区教育体育局", "“张伟”—主任…", "🙂 x", "\u{200B}"] {
            assert_eq!(first_refused(ok, Lines::Single), None, "{ok}");
        }
        let e = check("姓名", "张\u{1B}[31m伟", Lines::Multi).unwrap_err();
        assert_eq!(e.position, 2);
        let msg = e.to_string();
        assert!(
            msg.starts_with("姓名的第 2 个字符是控制字符 U+001B"),
            "{msg}"
        );
        assert!(!msg.contains('\u{1B}'));
        assert!(
            check("单位名称", "a\u{202E}b", Lines::Multi)
                .unwrap_err()
                .to_string()
                .contains("不可见字符 U+202E")
        );
    }

    #[test]
    fn xml_drops_what_it_cannot_hold() {
        assert_eq!(xml_chars("a\u{0}b\u{FFFE}c\u{FFFF}\u{1}"), "abc");
        assert!(matches!(xml_chars("汉滨\t区"), Cow::Borrowed(_)));
        assert!(!is_file_name_char('\u{202E}'));
        assert!(!is_file_name_char('\u{0}'));
        assert!(is_file_name_char('汉'));
    }
}
