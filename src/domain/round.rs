//! What a round's key and title may hold. Both come from an administrator (CLI or web form)
//! and end up in URLs, file names, terminal output, the audit log, report pages and the SPSS
//! syntax handed to statisticians, so they are checked once, here, before anything is stored.
//!
//! A **key** is 1–40 characters: ASCII letters and digits, Chinese characters (CJK unified
//! ideographs), `-`, `_` and `.`, starting with a letter, digit or Chinese character (so it is
//! never `.`/`..` in a path or URL, nor read as a command-line option). Everything else is
//! refused: spaces, `/`, `\`, `?`, `#`, `%`, quotes, control characters (tab, newline, …),
//! invisible or look-alike characters (zero-width spaces, full-width letters).
//!
//! A **title** is free text of 1–100 characters without control characters (line breaks and
//! tabs included) or Unicode line/paragraph separators. The same one-line rule holds for the
//! labels of a new round's survey (its title, level and dimension labels), which end up in
//! export headers, chart legends and SPSS value labels; the operator's script (`intro`,
//! questions) may span lines. Only new rounds are checked: a stored round is read as it is.

/// Longest key, in characters.
pub const MAX_KEY_CHARS: usize = 40;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;

const KEY_RULE: &str = "轮次代码只能由英文字母、数字、汉字和 - _ . 组成,以字母、数字或汉字开头,\
                        最长 40 个字符(例如 2022 或 2022-下半年)";

/// Why a key or title was refused; the message says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoundTextError {
    #[error("请填写轮次代码:{KEY_RULE}")]
    EmptyKey,
    #[error("轮次代码有 {0} 个字符,太长了:{KEY_RULE}")]
    KeyTooLong(usize),
    #[error("轮次代码的第 {position} 个字符是{what},不能使用:{KEY_RULE}")]
    KeyChar { position: usize, what: String },
    #[error("轮次代码不能以{what}开头:{KEY_RULE}")]
    KeyStart { what: String },
    #[error("请填写轮次名称(例如 2022年度履职评估)")]
    EmptyTitle,
    #[error("轮次名称有 {0} 个字符,太长了:请缩短到 {MAX_TITLE_CHARS} 个字符以内")]
    TitleTooLong(usize),
    #[error(
        "轮次名称的第 {position} 个字符是{what},不能使用:轮次名称须写在一行内,\
         请删去换行、制表符等控制字符"
    )]
    TitleChar { position: usize, what: String },
    #[error(
        "问卷定义中 {field} 的第 {position} 个字符是{what},不能使用:标题和选项、维度名称须写在一行内,\
         请在问卷文件中删去换行、制表符等控制字符后重新上传"
    )]
    SurveyLabelChar {
        field: String,
        position: usize,
        what: String,
    },
}

/// Why a field period was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldPeriodError {
    #[error(
        "调查期的开始日期 {from} 晚于结束日期 {to}:请把开始日期改为不晚于结束日期的日子\
         (命令行:--from 不能晚于 --to)"
    )]
    Reversed {
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    },
}

/// The one rule of a field period (CLI `round create`/`round field` and the web form): it
/// may be one day long, never negative.
pub fn check_field_period(
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<(), FieldPeriodError> {
    if from > to {
        return Err(FieldPeriodError::Reversed { from, to });
    }
    Ok(())
}

/// A Chinese character (CJK unified ideographs and their extensions, compatibility
/// ideographs).
fn is_chinese(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}'
        | '\u{30000}'..='\u{3134F}')
}

fn key_body_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || is_chinese(c) || matches!(c, '-' | '_' | '.')
}

fn key_start_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || is_chinese(c)
}

/// A line break or any other character that would end a line, or a character refused in
/// every text (controls, bidi overrides: `domain::text`).
fn is_line_or_control(c: char) -> bool {
    super::text::is_refused(c, super::text::Lines::Single) || matches!(c, '\u{2028}' | '\u{2029}')
}

pub use super::text::describe_char;

/// Checks a round key as typed (nothing is trimmed: a key with a leading space is refused, not
/// silently changed).
pub fn validate_round_key(key: &str) -> Result<(), RoundTextError> {
    let n = key.chars().count();
    if n == 0 {
        return Err(RoundTextError::EmptyKey);
    }
    if let Some((i, c)) = key.chars().enumerate().find(|(_, c)| !key_body_char(*c)) {
        return Err(RoundTextError::KeyChar {
            position: i + 1,
            what: describe_char(c),
        });
    }
    if n > MAX_KEY_CHARS {
        return Err(RoundTextError::KeyTooLong(n));
    }
    let first = key.chars().next().expect("not empty");
    if !key_start_char(first) {
        return Err(RoundTextError::KeyStart {
            what: describe_char(first),
        });
    }
    Ok(())
}

/// Checks a round title: not blank, at most [`MAX_TITLE_CHARS`] characters, one line.
pub fn validate_round_title(title: &str) -> Result<(), RoundTextError> {
    if let Some((i, c)) = title
        .chars()
        .enumerate()
        .find(|(_, c)| is_line_or_control(*c))
    {
        return Err(RoundTextError::TitleChar {
            position: i + 1,
            what: describe_char(c),
        });
    }
    if title.trim().is_empty() {
        return Err(RoundTextError::EmptyTitle);
    }
    let n = title.chars().count();
    if n > MAX_TITLE_CHARS {
        return Err(RoundTextError::TitleTooLong(n));
    }
    Ok(())
}

/// Checks that the labels of a new round's survey are one line each (see the module docs).
pub fn validate_survey_labels(
    survey: &crate::domain::survey::Survey,
) -> Result<(), RoundTextError> {
    let labels = std::iter::once(("title".to_string(), survey.title.as_str()))
        .chain(
            survey
                .levels
                .iter()
                .map(|l| (format!("levels.{}.label", l.key), l.label.as_str())),
        )
        .chain(
            survey
                .dimensions
                .iter()
                .map(|d| (format!("dimensions.{}.label", d.key), d.label.as_str())),
        );
    for (field, text) in labels {
        if let Some((i, c)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| is_line_or_control(*c))
        {
            return Err(RoundTextError::SurveyLabelChar {
                field,
                position: i + 1,
                what: describe_char(c),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_period_may_be_one_day_but_not_reversed() {
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(check_field_period(d("2022-11-01"), d("2022-11-01")), Ok(()));
        let e = check_field_period(d("2022-11-30"), d("2022-11-01")).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("2022-11-30") && m.contains("晚于结束日期"),
            "{m}"
        );
    }

    #[test]
    fn survey_labels_are_one_line_each() {
        let text = include_str!("../../surveys/default.toml");
        let mut survey = crate::domain::survey::Survey::from_toml_str(text).unwrap();
        assert_eq!(validate_survey_labels(&survey), Ok(()));
        // The script may span lines.
        survey.intro.push_str("\n第二行");
        assert_eq!(validate_survey_labels(&survey), Ok(()));
        survey.dimensions[1].label = "履职\n尽责".into();
        let key = survey.dimensions[1].key.clone();
        let err = validate_survey_labels(&survey).unwrap_err();
        assert_eq!(
            err,
            RoundTextError::SurveyLabelChar {
                field: format!("dimensions.{key}.label"),
                position: 3,
                what: "换行符".into(),
            }
        );
        assert!(err.to_string().contains("换行符"), "{err}");
        survey.dimensions[1].label = "履职尽责".into();
        survey.levels[0].label = "满意\u{2028}".into();
        assert!(validate_survey_labels(&survey).is_err());
        survey.levels[0].label = "满意".into();
        survey.title = "标题\t".into();
        assert!(validate_survey_labels(&survey).is_err());
    }

    #[test]
    fn keys_of_letters_digits_chinese_and_separators_pass() {
        for k in [
            "2022",
            "t",
            "2022-下半年",
            "round_2.1",
            "汉滨2022",
            "t..",
            "A-b_c.d",
            &"9".repeat(40),
            &"汉".repeat(40),
        ] {
            assert_eq!(validate_round_key(k), Ok(()), "{k:?}");
        }
    }

    #[test]
    fn keys_with_anything_else_are_refused_naming_the_character() {
        let cases: &[(&str, &str)] = &[
            ("a\u{1}b", "第 2 个字符是控制字符 U+0001"),
            ("a\tb", "第 2 个字符是制表符"),
            ("2022\n", "第 5 个字符是换行符"),
            ("a\rb", "回车符"),
            ("a\\b", "反斜杠"),
            ("a/b", "斜杠“/”"),
            ("20 23", "第 3 个字符是空格"),
            (" 2022", "第 1 个字符是空格"),
            ("a\u{3000}b", "全角空格"),
            ("a\u{200B}b", "不可见字符 U+200B"),
            ("a\u{202E}b", "不可见字符 U+202E"),
            ("a\u{7F}b", "控制字符 U+007F"),
            ("a\u{85}b", "控制字符 U+0085"),
            ("%2e%2e", "“%”"),
            ("a?b", "“?”"),
            ("a#b", "“#”"),
            ("a'b", "“'”"),
            ("ｔ", "“ｔ”"),
            ("é", "“é”"),
        ];
        for (k, want) in cases {
            let e = validate_round_key(k).unwrap_err().to_string();
            assert!(e.contains(want), "{k:?}: {e}");
            assert!(e.contains("只能由英文字母、数字、汉字"), "{k:?}: {e}");
            assert!(!e.chars().any(|c| c.is_control()), "{k:?}: {e:?}");
        }
    }

    #[test]
    fn keys_must_start_with_a_letter_digit_or_chinese_and_fit() {
        for k in [".", "..", ".hidden", "-x", "_x", "-..."] {
            let e = validate_round_key(k).unwrap_err();
            assert!(matches!(e, RoundTextError::KeyStart { .. }), "{k:?}: {e}");
            assert!(e.to_string().contains("不能以"), "{e}");
        }
        assert_eq!(validate_round_key(""), Err(RoundTextError::EmptyKey));
        assert_eq!(
            validate_round_key(&"9".repeat(41)),
            Err(RoundTextError::KeyTooLong(41))
        );
    }

    #[test]
    fn titles_are_one_line_of_text() {
        for t in [
            "2022年度履职评估",
            "x",
            "“引号” 'quote' ; . * -- /x\\y",
            &"汉".repeat(100),
        ] {
            assert_eq!(validate_round_title(t), Ok(()), "{t:?}");
        }
        let cases: &[(&str, &str)] = &[
            ("x.\nERASE FILE='a'.", "第 3 个字符是换行符"),
            ("a\rb", "回车符"),
            ("a\tb", "制表符"),
            ("a\u{1}", "控制字符 U+0001"),
            ("a\u{2028}b", "换行符 U+2028"),
            ("a\u{85}b", "控制字符 U+0085"),
        ];
        for (t, want) in cases {
            let e = validate_round_title(t).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("控制字符"), "{t:?}: {e}");
        }
        assert_eq!(validate_round_title(""), Err(RoundTextError::EmptyTitle));
        assert_eq!(validate_round_title("   "), Err(RoundTextError::EmptyTitle));
        assert_eq!(
            validate_round_title(&"x".repeat(101)),
            Err(RoundTextError::TitleTooLong(101))
        );
    }
}
