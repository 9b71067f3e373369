//! Survey definitions (`surveys/*.toml`): the questions, the answer levels and their scores,
//! the scoring contract and the calling rules of a round.
//!
//! A round stores the TOML text it was created with, so the definition here is always parsed
//! from text and validated as a whole; later edits of the file never change a round's history.

use std::collections::BTreeSet;

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

/// "09:00": `NaiveTime::parse_from_str(text, "%H:%M")` with the format parsed once. The windows
/// are read on every claim and every call screen, and parsing the format string each time was
/// most of that.
fn hour_minute(text: &str) -> Option<NaiveTime> {
    use chrono::format::{Item, Numeric, Pad, Parsed, parse};
    const HOUR_MINUTE: [Item<'static>; 3] = [
        Item::Numeric(Numeric::Hour, Pad::Zero),
        Item::Literal(":"),
        Item::Numeric(Numeric::Minute, Pad::Zero),
    ];
    let mut parsed = Parsed::new();
    parse(&mut parsed, text, HOUR_MINUTE.iter()).ok()?;
    parsed.to_naive_time().ok()
}

/// Placeholders that may appear in `intro` and in questions.
pub const KNOWN_PLACEHOLDERS: &[&str] = &["unit", "name", "operator"];

/// Default scores of a four-level scale, best to worst (满意, 比较满意, 基本满意, 不满意).
pub const DEFAULT_FOUR_LEVEL_SCORES: [f64; 4] = [100.0, 80.0, 60.0, 0.0];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Survey {
    pub title: String,
    #[serde(default = "default_panel_size")]
    pub panel_size: u32,
    /// The operator's script, read before the questions; `{unit}` is replaced by the unit's name.
    pub intro: String,
    /// Answer levels, best first.
    pub levels: Vec<Level>,
    pub dimensions: Vec<Dimension>,
    #[serde(default)]
    pub scoring: Scoring,
    #[serde(default)]
    pub calling: Calling,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    pub key: String,
    pub label: String,
    /// Filled from [`DEFAULT_FOUR_LEVEL_SCORES`] when omitted on a four-level scale.
    #[serde(default)]
    pub score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    pub key: String,
    pub label: String,
    pub question: String,
    /// Equal weights (1/k) when omitted on every dimension.
    #[serde(default)]
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    /// Maximum points of the phone part of the social-evaluation score.
    #[serde(default = "default_points")]
    pub phone_points: f64,
    /// Maximum points of the on-site part; the social-evaluation score is the sum of both parts.
    #[serde(default = "default_points")]
    pub onsite_points: f64,
    /// Level keys counted as satisfied for the 满意率; empty means the top three levels.
    #[serde(default)]
    pub satisfied_levels: Vec<String>,
    #[serde(default = "default_min_completes")]
    pub min_completes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calling {
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_retry_after")]
    pub retry_after_minutes: u32,
    /// Call windows in local time of `timezone`, e.g. `"09:00-11:30"`.
    #[serde(default = "default_windows")]
    pub windows: Vec<String>,
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// How long an operator holds a claimed contact before it returns to the queue.
    #[serde(default = "default_lease")]
    pub lease_minutes: u32,
}

fn default_panel_size() -> u32 {
    45
}
fn default_points() -> f64 {
    10.0
}
fn default_min_completes() -> u32 {
    30
}
fn default_max_attempts() -> u32 {
    5
}
fn default_retry_after() -> u32 {
    60
}
fn default_windows() -> Vec<String> {
    vec!["09:00-11:30".into(), "14:30-17:30".into()]
}
fn default_timezone() -> String {
    "Asia/Shanghai".into()
}
fn default_lease() -> u32 {
    15
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            phone_points: default_points(),
            onsite_points: default_points(),
            satisfied_levels: Vec::new(),
            min_completes: default_min_completes(),
        }
    }
}

impl Default for Calling {
    fn default() -> Self {
        Calling {
            max_attempts: default_max_attempts(),
            retry_after_minutes: default_retry_after(),
            windows: default_windows(),
            timezone: default_timezone(),
            lease_minutes: default_lease(),
        }
    }
}

/// A call window in local time, `start <= t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl CallWindow {
    pub fn contains(&self, t: NaiveTime) -> bool {
        self.start <= t && t < self.end
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SurveyError {
    #[error("survey definition is not valid TOML: {0}")]
    Syntax(String),
    #[error("survey definition: `{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> SurveyError {
    SurveyError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

impl Survey {
    /// Parses and validates a survey definition, filling default scores and weights.
    pub fn from_toml_str(text: &str) -> Result<Survey, SurveyError> {
        let mut survey: Survey =
            toml::from_str(text).map_err(|e| SurveyError::Syntax(e.to_string()))?;
        survey.fill_defaults();
        survey.validate()?;
        Ok(survey)
    }

    /// The definition as TOML, with every default written out.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).expect("a validated survey always serialises")
    }

    fn fill_defaults(&mut self) {
        if self.levels.len() == DEFAULT_FOUR_LEVEL_SCORES.len() {
            for (level, default) in self.levels.iter_mut().zip(DEFAULT_FOUR_LEVEL_SCORES) {
                level.score.get_or_insert(default);
            }
        }
        if !self.dimensions.is_empty() && self.dimensions.iter().all(|d| d.weight.is_none()) {
            let w = 1.0 / self.dimensions.len() as f64;
            for d in &mut self.dimensions {
                d.weight = Some(w);
            }
        }
        if self.scoring.satisfied_levels.is_empty() {
            self.scoring.satisfied_levels =
                self.levels.iter().take(3).map(|l| l.key.clone()).collect();
        }
    }

    pub fn validate(&self) -> Result<(), SurveyError> {
        if self.title.trim().is_empty() {
            return Err(invalid("title", "must not be empty"));
        }
        if !(1..=1000).contains(&self.panel_size) {
            return Err(invalid("panel_size", "must be between 1 and 1000"));
        }
        check_placeholders("intro", &self.intro)?;
        if !(2..=7).contains(&self.levels.len()) {
            return Err(invalid(
                "levels",
                format!("needs 2 to 7 levels, found {}", self.levels.len()),
            ));
        }
        let mut keys = BTreeSet::new();
        let mut labels = BTreeSet::new();
        let mut previous: Option<f64> = None;
        for (i, level) in self.levels.iter().enumerate() {
            let at = format!("levels[{i}]");
            check_key(&format!("{at}.key"), &level.key)?;
            if level.label.trim().is_empty() {
                return Err(invalid(format!("{at}.label"), "must not be empty"));
            }
            if !keys.insert(level.key.as_str()) {
                return Err(invalid(
                    format!("{at}.key"),
                    format!("duplicate level key `{}`", level.key),
                ));
            }
            if !labels.insert(level.label.as_str()) {
                return Err(invalid(
                    format!("{at}.label"),
                    format!("duplicate level label `{}`", level.label),
                ));
            }
            let Some(score) = level.score else {
                return Err(invalid(
                    format!("{at}.score"),
                    "is required unless the scale has exactly four levels (default 100/80/60/0)",
                ));
            };
            if !score.is_finite() || score < 0.0 {
                return Err(invalid(
                    format!("{at}.score"),
                    "must be a finite number ≥ 0",
                ));
            }
            if let Some(p) = previous
                && score >= p
            {
                return Err(invalid(
                    format!("{at}.score"),
                    "levels must be listed best first, with strictly decreasing scores",
                ));
            }
            previous = Some(score);
        }
        if self.max_score() <= 0.0 {
            return Err(invalid(
                "levels[0].score",
                "the best level's score must be > 0",
            ));
        }
        if self.dimensions.is_empty() || self.dimensions.len() > 20 {
            return Err(invalid("dimensions", "needs 1 to 20 dimensions"));
        }
        let mut dim_keys = BTreeSet::new();
        let mut weight_sum = 0.0;
        for (i, dim) in self.dimensions.iter().enumerate() {
            let at = format!("dimensions[{i}]");
            check_key(&format!("{at}.key"), &dim.key)?;
            if !dim_keys.insert(dim.key.as_str()) {
                return Err(invalid(
                    format!("{at}.key"),
                    format!("duplicate dimension key `{}`", dim.key),
                ));
            }
            if dim.label.trim().is_empty() {
                return Err(invalid(format!("{at}.label"), "must not be empty"));
            }
            if dim.question.trim().is_empty() {
                return Err(invalid(format!("{at}.question"), "must not be empty"));
            }
            check_placeholders(&format!("{at}.question"), &dim.question)?;
            let Some(w) = dim.weight else {
                return Err(invalid(
                    format!("{at}.weight"),
                    "give a weight on every dimension or on none (equal weights)",
                ));
            };
            if !w.is_finite() || w <= 0.0 {
                return Err(invalid(format!("{at}.weight"), "must be > 0"));
            }
            weight_sum += w;
        }
        if (weight_sum - 1.0).abs() > 1e-9 {
            return Err(invalid(
                "dimensions.weight",
                format!("weights must sum to 1, they sum to {weight_sum}"),
            ));
        }
        let s = &self.scoring;
        for (key, v) in [
            ("scoring.phone_points", s.phone_points),
            ("scoring.onsite_points", s.onsite_points),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(key, "must be a finite number ≥ 0"));
            }
        }
        if s.phone_points + s.onsite_points <= 0.0 {
            return Err(invalid(
                "scoring",
                "phone_points + onsite_points must be > 0",
            ));
        }
        let mut seen = BTreeSet::new();
        for k in &s.satisfied_levels {
            if !keys.contains(k.as_str()) {
                return Err(invalid(
                    "scoring.satisfied_levels",
                    format!("unknown level key `{k}`"),
                ));
            }
            if !seen.insert(k.as_str()) {
                return Err(invalid(
                    "scoring.satisfied_levels",
                    format!("level `{k}` listed twice"),
                ));
            }
        }
        if s.satisfied_levels.len() >= self.levels.len() {
            return Err(invalid(
                "scoring.satisfied_levels",
                "at least one level must count as not satisfied",
            ));
        }
        if s.min_completes < 2 {
            return Err(invalid("scoring.min_completes", "must be at least 2"));
        }
        let c = &self.calling;
        if !(1..=50).contains(&c.max_attempts) {
            return Err(invalid("calling.max_attempts", "must be between 1 and 50"));
        }
        if c.retry_after_minutes == 0 || c.retry_after_minutes > 60 * 24 * 14 {
            return Err(invalid(
                "calling.retry_after_minutes",
                "must be between 1 and 20160",
            ));
        }
        if !(1..=240).contains(&c.lease_minutes) {
            return Err(invalid(
                "calling.lease_minutes",
                "must be between 1 and 240",
            ));
        }
        if c.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid(
                "calling.timezone",
                format!(
                    "unknown time zone `{}` (use an IANA name such as Asia/Shanghai)",
                    c.timezone
                ),
            ));
        }
        self.windows()?;
        Ok(())
    }

    /// The call windows, parsed, sorted and checked not to overlap.
    pub fn windows(&self) -> Result<Vec<CallWindow>, SurveyError> {
        if self.calling.windows.is_empty() {
            return Err(invalid(
                "calling.windows",
                "needs at least one window like \"09:00-11:30\"",
            ));
        }
        let mut out = Vec::new();
        for (i, w) in self.calling.windows.iter().enumerate() {
            let key = || format!("calling.windows[{i}]");
            let bad = || invalid(key(), format!("`{w}` is not a window like \"09:00-11:30\""));
            let (a, b) = w.split_once('-').ok_or_else(bad)?;
            let start = hour_minute(a.trim()).ok_or_else(bad)?;
            let end = hour_minute(b.trim()).ok_or_else(bad)?;
            if start >= end {
                return Err(invalid(key(), format!("`{w}` ends before it starts")));
            }
            out.push(CallWindow { start, end });
        }
        out.sort();
        for pair in out.windows(2) {
            if pair[1].start < pair[0].end {
                return Err(invalid("calling.windows", "windows overlap"));
            }
        }
        Ok(out)
    }

    pub fn timezone(&self) -> chrono_tz::Tz {
        self.calling
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Asia::Shanghai)
    }

    /// The best level's score (`max` in the scoring contract).
    pub fn max_score(&self) -> f64 {
        self.levels.first().and_then(|l| l.score).unwrap_or(0.0)
    }

    pub fn level_score(&self, index: usize) -> Option<f64> {
        self.levels.get(index).and_then(|l| l.score)
    }

    pub fn weight(&self, dimension: usize) -> f64 {
        self.dimensions[dimension].weight.unwrap_or(0.0)
    }

    /// Whether the level at `index` (0 = best) counts as satisfied.
    pub fn is_satisfied(&self, index: usize) -> bool {
        self.levels
            .get(index)
            .is_some_and(|l| self.scoring.satisfied_levels.contains(&l.key))
    }

    /// Finds a level by key, Chinese label or 1-based number (as spreadsheets give it).
    pub fn find_level(&self, text: &str) -> Option<usize> {
        let t = text.trim();
        if let Some(i) = self.levels.iter().position(|l| l.key == t || l.label == t) {
            return Some(i);
        }
        let n: usize = t.strip_suffix(".0").unwrap_or(t).parse().ok()?;
        (1..=self.levels.len()).contains(&n).then(|| n - 1)
    }

    /// Finds a dimension by key or label.
    pub fn find_dimension(&self, text: &str) -> Option<usize> {
        let t = text.trim();
        self.dimensions
            .iter()
            .position(|d| d.key == t || d.label == t)
    }

    /// Fills the placeholders of a script line. A title the script already says before
    /// `{operator}` is not said twice when the operator's name carries it too
    /// ("话务员{operator}" with "话务员王静" reads "话务员王静", not "话务员话务员王静").
    pub fn render(template: &str, unit: &str, name: &str, operator: &str) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(at) = rest.find("{operator}") {
            let before = &rest[..at];
            out.push_str(before);
            let said = OPERATOR_TITLES
                .iter()
                .find(|t| before.ends_with(*t) && operator.starts_with(*t));
            out.push_str(match said {
                Some(t) => &operator[t.len()..],
                None => operator,
            });
            rest = &rest[at + "{operator}".len()..];
        }
        out.push_str(rest);
        out.replace("{unit}", unit).replace("{name}", name)
    }
}

/// Titles an operator's display name may begin with, as scripts also say them.
const OPERATOR_TITLES: [&str; 3] = ["话务员", "接线员", "工作人员"];

fn check_key(at: &str, key: &str) -> Result<(), SurveyError> {
    let ok = !key.is_empty()
        && key.len() <= 40
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            at,
            format!(
                "`{key}` is not a key: use lower-case ASCII letters, digits and _ (it names export columns)"
            ),
        ))
    }
}

fn check_placeholders(at: &str, text: &str) -> Result<(), SurveyError> {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(invalid(at, "has a `{` without a closing `}`"));
        };
        let name = &after[..close];
        if !KNOWN_PLACEHOLDERS.contains(&name) {
            return Err(invalid(
                at,
                format!(
                    "unknown placeholder `{{{name}}}`; known: {}",
                    KNOWN_PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_never_says_the_operators_title_twice() {
        let t = "我是12345政务服务便民热线话务员{operator}。请您就{unit}作出评价";
        assert_eq!(
            Survey::render(t, "教育局", "张三", "话务员王静"),
            "我是12345政务服务便民热线话务员王静。请您就教育局作出评价"
        );
        assert_eq!(
            Survey::render(t, "教育局", "张三", "王静"),
            "我是12345政务服务便民热线话务员王静。请您就教育局作出评价"
        );
        // Without the title in the script, the name is said as it is.
        assert_eq!(
            Survey::render("我是{operator},{operator}", "u", "n", "话务员王静"),
            "我是话务员王静,话务员王静"
        );
        // A placeholder in a name or unit is not expanded again.
        assert_eq!(
            Survey::render("{name}", "u", "{operator}", "x"),
            "{operator}"
        );
    }

    pub const DEFAULT: &str = include_str!("../../surveys/default.toml");

    #[test]
    fn default_survey_is_the_articles_survey() {
        let s = Survey::from_toml_str(DEFAULT).unwrap();
        let labels: Vec<_> = s.dimensions.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "职能职责履行",
                "办事效率",
                "服务质量",
                "作风形象",
                "社会反响"
            ]
        );
        let levels: Vec<_> = s
            .levels
            .iter()
            .map(|l| (l.label.as_str(), l.score.unwrap()))
            .collect();
        assert_eq!(
            levels,
            [
                ("满意", 100.0),
                ("比较满意", 80.0),
                ("基本满意", 60.0),
                ("不满意", 0.0)
            ]
        );
        assert!(s.dimensions.iter().all(|d| d.weight == Some(0.2)));
        assert_eq!(s.panel_size, 45);
        assert_eq!(
            s.scoring.satisfied_levels,
            ["satisfied", "fairly_satisfied", "basically_satisfied"]
        );
        assert_eq!(s.scoring.min_completes, 30);
        assert_eq!(s.timezone(), chrono_tz::Asia::Shanghai);
        assert!(s.intro.contains("{unit}"));
        // Round trip: the stored copy parses to the same definition.
        assert_eq!(Survey::from_toml_str(&s.to_toml_string()).unwrap(), s);
    }

    fn with(replace: &str, by: &str) -> Result<Survey, SurveyError> {
        assert!(DEFAULT.contains(replace), "fixture lacks {replace}");
        Survey::from_toml_str(&DEFAULT.replacen(replace, by, 1))
    }

    fn key_of(r: Result<Survey, SurveyError>) -> String {
        match r {
            Err(SurveyError::Invalid { key, .. }) => key,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn bad_definitions_name_the_key() {
        assert_eq!(
            key_of(with("weight = 0.2", "weight = 0.3")),
            "dimensions.weight"
        );
        assert_eq!(
            key_of(with("key = \"efficiency\"", "key = \"duties\"")),
            "dimensions[1].key"
        );
        assert_eq!(key_of(with("{unit}", "{unti}")), "intro");
        assert_eq!(
            key_of(with(
                "timezone = \"Asia/Shanghai\"",
                "timezone = \"Mars/Base\""
            )),
            "calling.timezone"
        );
        assert_eq!(
            key_of(with("\"09:00-11:30\"", "\"11:30-09:00\"")),
            "calling.windows[0]"
        );
        assert_eq!(key_of(with("score = 80", "score = 100")), "levels[1].score");
        assert_eq!(
            key_of(with(
                "satisfied_levels = [",
                "satisfied_levels = [\"nope\", "
            )),
            "scoring.satisfied_levels"
        );
    }

    #[test]
    fn level_count_and_syntax_errors() {
        let one_level = r#"
title = "t"
intro = "x"
[[levels]]
key = "a"
label = "A"
score = 1
[[dimensions]]
key = "d"
label = "D"
question = "q"
"#;
        assert_eq!(key_of(Survey::from_toml_str(one_level)), "levels");
        assert!(matches!(
            Survey::from_toml_str("title = "),
            Err(SurveyError::Syntax(_))
        ));
        // A typo in a key name is refused, not silently ignored.
        assert!(matches!(
            Survey::from_toml_str(&DEFAULT.replacen("panel_size", "panel_sise", 1)),
            Err(SurveyError::Syntax(_))
        ));
    }

    #[test]
    fn finds_levels_by_key_label_or_number() {
        let s = Survey::from_toml_str(DEFAULT).unwrap();
        assert_eq!(s.find_level("满意"), Some(0));
        assert_eq!(s.find_level("basically_satisfied"), Some(2));
        assert_eq!(s.find_level("4"), Some(3));
        assert_eq!(s.find_level("4.0"), Some(3));
        assert_eq!(s.find_level("5"), None);
        assert_eq!(s.find_level("0"), None);
        assert_eq!(s.find_dimension("办事效率"), Some(1));
        assert!(s.is_satisfied(2) && !s.is_satisfied(3));
    }

    proptest::proptest! {
        // The window parser with its format parsed once reads every text exactly as chrono's
        // `parse_from_str(text, "%H:%M")` does: the same times, the same refusals.
        #[test]
        fn hour_minute_reads_as_parse_from_str(text in "[0-9: +-]{0,7}") {
            proptest::prop_assert_eq!(
                hour_minute(&text),
                NaiveTime::parse_from_str(&text, "%H:%M").ok()
            );
        }
    }
}
