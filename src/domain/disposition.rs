//! Call outcomes, AAPOR final dispositions and outcome rates (应答率).
//!
//! Operators record one [`Outcome`] per call attempt. A panel member's disposition is *derived*
//! from its attempt history by [`disposition`] every time it is needed, never stored as a second
//! copy, so the rates can always be recomputed from the raw attempts and defended.
//!
//! # Outcomes
//!
//! | key | 中文 | AAPOR | category | ends the member? |
//! |---|---|---|---|---|
//! | `complete` | 完成 | 1.1 | I | yes, for good |
//! | `partial` | 部分完成 | 1.2 | P | once attempts run out (a later call may complete it) |
//! | `refused` | 拒访 | 2.11 | R | yes, unless an admin reopens it |
//! | `break_off` | 中途挂断 | 2.12 | R | yes, unless an admin reopens it |
//! | `respondent_unavailable` | 本人不在/不便 | 2.21 | NC | no |
//! | `voicemail` | 语音信箱/留言 | 2.22 | NC | no |
//! | `no_answer` | 无人接听 | 3.13 | UH | no |
//! | `busy` | 占线 | 3.12 | UH | no |
//! | `appointment` | 预约回访 | 2.21 | NC | no (called back at the agreed time) |
//! | `wrong_number` | 号码错误/非本人 | 3.90 | UO | yes, until the number is corrected |
//! | `not_in_service` | 空号/停机 | 3.90 | UO | yes, until the number is corrected |
//! | `unable` | 无法访问(健康/语言) | 2.30 | O | yes |
//!
//! A member never called is "not attempted": UH, AAPOR 3.11.
//!
//! # Refinements of the AAPOR mapping, and why
//!
//! * **Eligibility, e = 1.** The sample is a roster of *named* representatives (服务对象代表),
//!   chosen by the organising office, so every member is eligible by design and no case is coded
//!   4.x (not eligible). The phone number is only how we reach the person; it is not the sampling
//!   unit as in RDD, so AAPOR's 4.3x "non-working number" does not make a *person* ineligible.
//!   With e = 1 every unknown-eligibility case (UH, UO) stays in the denominators in full.
//! * **Wrong and dead numbers are UO (3.90), not O (2.30).** AAPOR's "other" (2.3x) means the
//!   eligible respondent was reached but could not be interviewed (death, illness, language), and
//!   its contact rate CON1 counts O as contacted and its cooperation rate COOP1 puts O in the
//!   denominator. A number that is dead (空号/停机) or reaches someone else (号码错误/非本人)
//!   never reached the respondent: coding it O would inflate the contact rate and depress the
//!   cooperation rate. AAPOR's tables for surveys of specifically named persons put an
//!   undeliverable contact address under unknown eligibility (3.x); we do the same with the
//!   generic "other" code 3.90. With e = 1, RR1/RR2/REF1 are the same as they would be with O.
//!   "非本人" may occasionally be a respondent dodging the call; the operator cannot know it, and
//!   the roster names the person, so we do not code it as a refusal or as not eligible.
//! * **`unable` is 2.30**, the heading of AAPOR's "other" group, because the outcome covers both
//!   illness/incapacity (2.32) and language (2.33); split the outcome if a report needs the two.
//! * **`break_off` (2.12) has no answers.** A respondent who hangs up after answering some
//!   questions is recorded as `partial` with those answers; `break_off` is hanging up before the
//!   first answer. `partial` means at least one but not all dimensions answered.
//! * **`appointment` is 2.21** (respondent not available now) and stays NC until a later call
//!   completes the interview.
//! * `busy` (3.12) and `no_answer` (3.13) take their codes from the last attempt; AAPOR's
//!   "always busy" is approximated by "busy on the last call". Both are UH, so no rate changes.
//!
//! # The disposition of a member
//!
//! The category is the best of I, P, R reached in *any* attempt, in that order: a completed
//! interview is never overwritten, and no later no-answer, max-attempts rule, field closing or
//! reopening hides a partial or a refusal. Among attempts of the best category the latest one
//! names the outcome and code (e.g. break-off then refusal → 2.11). Without any I, P or R, the
//! last attempt's outcome decides.
//!
//! The state ([`MemberState`]) says whether more attempts are allowed:
//! * a complete anywhere in the history is final, whatever happened afterwards;
//! * when the field period is closed, every member is final with its category, including a
//!   member never attempted (3.11), so nothing more can be recorded after the close;
//! * otherwise the member is final when an attempt *since the last reopening* ended it
//!   ([`Outcome::is_final`]) or when `max_attempts` attempts were made since the reopening —
//!   unless the last of them made an appointment, which earns the one agreed call-back
//!   ([`attempts_exhausted`]).
//!
//! # Reopening
//!
//! An administrator reopens a member after correcting its phone number, or to call back a
//! refusal (with a reason, recorded elsewhere). `reopened_at` is the time of the latest
//! reopening. Attempts recorded strictly after it are "since the reopening": only they count
//! towards `max_attempts` and only a final outcome among them closes the member again. An
//! attempt recorded at the very instant of the reopening counts as before it, because a
//! reopening always follows the attempt it reopens.
//!
//! The category is still computed over the whole history, so the precedence survives a
//! reopening: a complete stays complete (a reopening cannot undo it); a reopened refusal is no
//! longer final, but if the later calls reach nothing better the member stays R (2.11) and is
//! counted as a refusal, never as a no-answer. A member whose number was corrected keeps the
//! category of its last attempt (UO, wrong number) until the new number is called: that is
//! what happened, and it is provisional as long as the member is open.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// AAPOR code of a member that was never called.
pub const NOT_ATTEMPTED_CODE: &str = "3.11";
/// Label shown for a member that was never called.
pub const NOT_ATTEMPTED_LABEL: &str = "未拨打";

/// AAPOR outcome categories as used in the rate formulas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
    /// Complete interview.
    I,
    /// Partial interview.
    P,
    /// Refusal and break-off.
    R,
    /// Non-contact (eligible).
    NC,
    /// Other (eligible).
    O,
    /// Unknown if reachable: not attempted, no answer, busy.
    UH,
    /// Unknown eligibility, other: here dead or wrong numbers.
    UO,
    /// Not eligible; never produced by this service (e = 1), kept for complete AAPOR tables.
    NE,
}

impl Category {
    pub fn all() -> &'static [Category] {
        use Category::*;
        &[I, P, R, NC, O, UH, UO, NE]
    }

    /// Chinese label for reports and the UI.
    pub fn label(self) -> &'static str {
        match self {
            Category::I => "完成访问",
            Category::P => "部分完成",
            Category::R => "拒访/中断",
            Category::NC => "未接触到本人",
            Category::O => "其他原因未访问",
            Category::UH => "未接通",
            Category::UO => "号码无效/其他",
            Category::NE => "不符合资格",
        }
    }

    /// Rank in the I > P > R precedence; `None` for the other categories.
    fn precedence(self) -> Option<u8> {
        match self {
            Category::I => Some(0),
            Category::P => Some(1),
            Category::R => Some(2),
            _ => None,
        }
    }
}

/// What one call attempt produced, as the operator records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Complete,
    Partial,
    Refused,
    BreakOff,
    RespondentUnavailable,
    Voicemail,
    NoAnswer,
    Busy,
    Appointment,
    WrongNumber,
    NotInService,
    Unable,
}

impl Outcome {
    /// Every outcome, in the order the operator's form lists them.
    pub fn all() -> &'static [Outcome] {
        use Outcome::*;
        &[
            Complete,
            Partial,
            Refused,
            BreakOff,
            RespondentUnavailable,
            Voicemail,
            NoAnswer,
            Busy,
            Appointment,
            WrongNumber,
            NotInService,
            Unable,
        ]
    }

    /// Stable English key, used in exports, imports and serde.
    pub fn key(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Partial => "partial",
            Outcome::Refused => "refused",
            Outcome::BreakOff => "break_off",
            Outcome::RespondentUnavailable => "respondent_unavailable",
            Outcome::Voicemail => "voicemail",
            Outcome::NoAnswer => "no_answer",
            Outcome::Busy => "busy",
            Outcome::Appointment => "appointment",
            Outcome::WrongNumber => "wrong_number",
            Outcome::NotInService => "not_in_service",
            Outcome::Unable => "unable",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Complete => "完成",
            Outcome::Partial => "部分完成",
            Outcome::Refused => "拒访",
            Outcome::BreakOff => "中途挂断",
            Outcome::RespondentUnavailable => "本人不在/不便",
            Outcome::Voicemail => "语音信箱/留言",
            Outcome::NoAnswer => "无人接听",
            Outcome::Busy => "占线",
            Outcome::Appointment => "预约回访",
            Outcome::WrongNumber => "号码错误/非本人",
            Outcome::NotInService => "空号/停机",
            Outcome::Unable => "无法访问(健康/语言)",
        }
    }

    /// AAPOR final disposition code (see the module docs for the refinements).
    pub fn aapor_code(self) -> &'static str {
        match self {
            Outcome::Complete => "1.1",
            Outcome::Partial => "1.2",
            Outcome::Refused => "2.11",
            Outcome::BreakOff => "2.12",
            Outcome::RespondentUnavailable | Outcome::Appointment => "2.21",
            Outcome::Voicemail => "2.22",
            Outcome::NoAnswer => "3.13",
            Outcome::Busy => "3.12",
            Outcome::WrongNumber | Outcome::NotInService => "3.90",
            Outcome::Unable => "2.30",
        }
    }

    pub fn category(self) -> Category {
        match self {
            Outcome::Complete => Category::I,
            Outcome::Partial => Category::P,
            Outcome::Refused | Outcome::BreakOff => Category::R,
            Outcome::RespondentUnavailable | Outcome::Voicemail | Outcome::Appointment => {
                Category::NC
            }
            Outcome::NoAnswer | Outcome::Busy => Category::UH,
            Outcome::WrongNumber | Outcome::NotInService => Category::UO,
            Outcome::Unable => Category::O,
        }
    }

    /// Whether this outcome by itself ends the calling of a member (until a reopening).
    /// `partial` is not: it becomes final only when the attempts run out.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Outcome::Complete
                | Outcome::Refused
                | Outcome::BreakOff
                | Outcome::WrongNumber
                | Outcome::NotInService
                | Outcome::Unable
        )
    }

    /// Whether the attempt carries answers (complete: all, partial: some).
    pub fn needs_answers(self) -> bool {
        matches!(self, Outcome::Complete | Outcome::Partial)
    }

    /// The outcome whose stable key is exactly `key` (what the database stores); unlike
    /// `parse`, no label, code or spelling variant is accepted.
    pub fn from_key(key: &str) -> Option<Outcome> {
        Outcome::all().iter().copied().find(|o| o.key() == key)
    }

    /// Reads an outcome as people write it in spreadsheets: the key (case, spaces and dashes
    /// tolerated), the Chinese label, either half of an "a/b" label, the label without its
    /// bracketed note, or an AAPOR code that names exactly one outcome ("2.21" and "3.90" name
    /// two and give `None`). Full-width characters are read as their ASCII forms.
    pub fn parse(text: &str) -> Option<Outcome> {
        let t = normalize(text);
        if t.is_empty() {
            return None;
        }
        let key = t.to_ascii_lowercase().replace([' ', '-'], "_");
        if let Some(o) = Outcome::all().iter().find(|o| o.key() == key) {
            return Some(*o);
        }
        if let Some(o) = Outcome::all().iter().find(|o| label_matches(o.label(), &t)) {
            return Some(*o);
        }
        let mut by_code = Outcome::all().iter().filter(|o| o.aapor_code() == t);
        match (by_code.next(), by_code.next()) {
            (Some(o), None) => Some(*o),
            _ => None,
        }
    }
}

/// Trims and maps full-width ASCII (as typed with a Chinese IME) to half-width.
fn normalize(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .collect::<String>()
        .trim()
        .to_string()
}

fn label_matches(label: &str, t: &str) -> bool {
    if label == t {
        return true;
    }
    // "无法访问(健康/语言)": the bracket is a note, its slash does not split the label.
    let base = label.split('(').next().unwrap_or(label);
    base == t || base.split('/').any(|half| half == t)
}

/// One recorded attempt, as far as the disposition needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptFact {
    pub outcome: Outcome,
    /// When the attempt was recorded.
    pub at: DateTime<Utc>,
    /// The agreed callback time of an `appointment`.
    pub appointment: Option<DateTime<Utc>>,
}

/// A member's attempt history, the only input of its disposition.
#[derive(Debug, Clone, Copy)]
pub struct MemberHistory<'a> {
    /// Oldest first.
    pub attempts: &'a [AttemptFact],
    /// The latest reopening: phone number corrected, or a refusal reopened by an admin.
    pub reopened_at: Option<DateTime<Utc>>,
}

impl MemberHistory<'_> {
    /// Whether an attempt was made after the latest reopening (all are, without one).
    fn is_current(&self, a: &AttemptFact) -> bool {
        self.reopened_at.is_none_or(|r| a.at > r)
    }

    /// Attempts since the latest reopening: the count compared with `max_attempts`.
    pub fn attempts_since_reopen(&self) -> u32 {
        let n = self.attempts.iter().filter(|a| self.is_current(a)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// This history's disposition (see [`disposition`]).
    pub fn disposition(&self, max_attempts: u32, field_closed: bool) -> Disposition {
        disposition(self, max_attempts, field_closed)
    }

    /// The last attempt since the latest reopening, the one the next call is scheduled from.
    pub fn last_since_reopen(&self) -> Option<&AttemptFact> {
        self.attempts.last().filter(|a| self.is_current(a))
    }
}

/// Whether a member may be called (again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    NotAttempted,
    /// More attempts are allowed.
    Open,
    Final,
}

/// A member's AAPOR disposition, derived from its history by [`disposition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Disposition {
    pub category: Category,
    /// AAPOR code: "1.1", "2.11", "3.11" (not attempted), ...
    pub code: &'static str,
    /// The attempt outcome the category comes from; `None` when never attempted.
    pub outcome: Option<Outcome>,
    pub state: MemberState,
}

impl Disposition {
    pub fn is_final(&self) -> bool {
        self.state == MemberState::Final
    }

    /// Chinese label of the deciding outcome, or 未拨打.
    pub fn label(&self) -> &'static str {
        self.outcome.map_or(NOT_ATTEMPTED_LABEL, Outcome::label)
    }
}

/// Whether the attempts since the latest reopening have used up the member's calls:
/// `max_attempts` of them, or one more when the last allowed attempt made an appointment. The
/// respondent asked to be called back at an agreed time; that one call is honoured (an
/// appointment made on it again does not earn another).
pub fn attempts_exhausted(
    attempts_since_reopen: u32,
    last_since_reopen: Option<&AttemptFact>,
    max_attempts: u32,
) -> bool {
    match attempts_since_reopen.cmp(&max_attempts) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => !last_since_reopen
            .is_some_and(|a| a.outcome == Outcome::Appointment && a.appointment.is_some()),
        std::cmp::Ordering::Greater => true,
    }
}

/// Derives a member's disposition (see the module docs for the rules).
pub fn disposition(h: &MemberHistory, max_attempts: u32, field_closed: bool) -> Disposition {
    let Some(last) = h.attempts.last() else {
        return Disposition {
            category: Category::UH,
            code: NOT_ATTEMPTED_CODE,
            outcome: None,
            state: if field_closed {
                MemberState::Final
            } else {
                MemberState::NotAttempted
            },
        };
    };
    // Best of I > P > R over the whole history; the latest among equals names the outcome.
    let mut best: Option<(u8, Outcome)> = None;
    for a in h.attempts {
        if let Some(rank) = a.outcome.category().precedence()
            && best.is_none_or(|(b, _)| rank <= b)
        {
            best = Some((rank, a.outcome));
        }
    }
    let outcome = best.map_or(last.outcome, |(_, o)| o);

    let completed = h.attempts.iter().any(|a| a.outcome == Outcome::Complete);
    let closed_since_reopen = h
        .attempts
        .iter()
        .any(|a| h.is_current(a) && a.outcome.is_final());
    let state = if completed
        || field_closed
        || closed_since_reopen
        || attempts_exhausted(
            h.attempts_since_reopen(),
            h.last_since_reopen(),
            max_attempts,
        ) {
        MemberState::Final
    } else {
        MemberState::Open
    };
    Disposition {
        category: outcome.category(),
        code: outcome.aapor_code(),
        outcome: Some(outcome),
        state,
    }
}

/// Members per category; serialised with the AAPOR letters as keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispositionCounts {
    #[serde(rename = "I")]
    pub i: u32,
    #[serde(rename = "P")]
    pub p: u32,
    #[serde(rename = "R")]
    pub r: u32,
    #[serde(rename = "NC")]
    pub nc: u32,
    #[serde(rename = "O")]
    pub o: u32,
    #[serde(rename = "UH")]
    pub uh: u32,
    #[serde(rename = "UO")]
    pub uo: u32,
    #[serde(rename = "NE")]
    pub ne: u32,
}

impl DispositionCounts {
    pub fn add(&mut self, c: Category) {
        *self.slot(c) += 1;
    }

    pub fn get(&self, c: Category) -> u32 {
        match c {
            Category::I => self.i,
            Category::P => self.p,
            Category::R => self.r,
            Category::NC => self.nc,
            Category::O => self.o,
            Category::UH => self.uh,
            Category::UO => self.uo,
            Category::NE => self.ne,
        }
    }

    /// All members counted, not-eligible included.
    pub fn total(&self) -> u32 {
        Category::all().iter().map(|c| self.get(*c)).sum()
    }

    fn slot(&mut self, c: Category) -> &mut u32 {
        match c {
            Category::I => &mut self.i,
            Category::P => &mut self.p,
            Category::R => &mut self.r,
            Category::NC => &mut self.nc,
            Category::O => &mut self.o,
            Category::UH => &mut self.uh,
            Category::UO => &mut self.uo,
            Category::NE => &mut self.ne,
        }
    }
}

impl FromIterator<Category> for DispositionCounts {
    fn from_iter<T: IntoIterator<Item = Category>>(iter: T) -> Self {
        let mut counts = DispositionCounts::default();
        for c in iter {
            counts.add(c);
        }
        counts
    }
}

/// AAPOR outcome rates with e = 1; `None` where the denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ResponseRates {
    pub rr1: Option<f64>,
    pub rr2: Option<f64>,
    pub coop1: Option<f64>,
    pub ref1: Option<f64>,
    pub con1: Option<f64>,
}

/// The rates of no calls at all: every rate undefined.
impl Default for ResponseRates {
    fn default() -> Self {
        ResponseRates::from_counts(&DispositionCounts::default())
    }
}

impl ResponseRates {
    pub fn from_counts(c: &DispositionCounts) -> ResponseRates {
        // u64 so that sums of u32 counts cannot overflow.
        let [i, p, r, nc, o, uh, uo] = [c.i, c.p, c.r, c.nc, c.o, c.uh, c.uo].map(u64::from);
        // e = 1: every unknown-eligibility case counts as eligible; NE is outside every rate.
        let eligible = (i + p) + (r + nc + o) + (uh + uo);
        let contacted = (i + p) + r + o;
        ResponseRates {
            rr1: ratio(i, eligible),
            rr2: ratio(i + p, eligible),
            coop1: ratio(i, contacted),
            ref1: ratio(r, eligible),
            con1: ratio(contacted, eligible),
        }
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The answers of one attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerSet {
    /// Per dimension, the level index (0 = best); `None` when not answered.
    pub levels: Vec<Option<usize>>,
}

impl AnswerSet {
    /// Number of dimensions answered.
    pub fn answered(&self) -> usize {
        self.levels.iter().filter(|l| l.is_some()).count()
    }
}

/// Why an attempt cannot be recorded. Messages are shown to operators as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    #[error("该代表已完成访问,不再接受新的拨打记录")]
    AlreadyComplete,
    #[error(
        "该代表已结束拨打({label},AAPOR {code}),不再接受拨打记录;如号码已更正或需重新联系,请由管理员重新开放"
    )]
    AlreadyFinal {
        label: &'static str,
        code: &'static str,
    },
    #[error("答案数量不符:问卷共 {expected} 个维度,收到 {found} 个")]
    WrongAnswerCount { expected: usize, found: usize },
    #[error("第 {dimension} 个维度的答案超出范围:共 {n_levels} 个等级,收到第 {level} 级")]
    LevelOutOfRange {
        /// 1-based, as shown to the operator.
        dimension: usize,
        /// 1-based.
        level: usize,
        n_levels: usize,
    },
    #[error(
        "「完成」须回答全部 {expected} 个维度,还有 {missing} 个未答;只答了部分请记为「部分完成」"
    )]
    IncompleteAnswers { expected: usize, missing: usize },
    #[error("「部分完成」须至少回答一个维度;一个都没答请按实际情况记为「中途挂断」或「拒访」")]
    PartialWithoutAnswers,
    #[error("全部 {0} 个维度均已回答,请记为「完成」而不是「部分完成」")]
    PartialIsComplete(usize),
    #[error("「{label}」不应填写答案;已回答部分问题请记为「部分完成」")]
    UnexpectedAnswers { label: &'static str },
    #[error("「预约回访」须填写回访时间")]
    AppointmentMissing,
    #[error("回访时间须晚于当前时间")]
    AppointmentNotInFuture {
        appointment: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("回访时间超出了调查期,调查期结束后不能再回访")]
    AppointmentAfterFieldEnd {
        appointment: DateTime<Utc>,
        field_end: DateTime<Utc>,
    },
    #[error("只有「预约回访」可以填写回访时间,「{label}」不需要")]
    AppointmentNotExpected { label: &'static str },
    #[error(transparent)]
    CommentChar(#[from] super::text::TextError),
}

/// Checks the respondent's comment (意见建议) of an attempt: the one text rule of
/// `domain::text` (line breaks and tabs allowed, as always).
pub fn validate_comment(comment: Option<&str>) -> Result<(), AttemptError> {
    if let Some(c) = comment {
        super::text::check("意见建议", c, super::text::Lines::Multi)?;
    }
    Ok(())
}

/// Checks an attempt before it is recorded; the web form, the CLI and the attempts import all
/// call this, so the three cannot disagree.
///
/// `answers` is empty or has one entry per dimension. `field_end` is the exclusive end instant
/// of the field period (see `schedule::FieldPeriod::ends_at`); `None` means no end is known.
/// `current` is the member's disposition before this attempt: it carries reopenings and the
/// field closing, so this function needs no history of its own.
#[allow(clippy::too_many_arguments)] // the signature is shared by three callers, keep it flat
pub fn validate_attempt(
    outcome: Outcome,
    answers: &[Option<usize>],
    n_dimensions: usize,
    n_levels: usize,
    appointment: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    field_end: Option<DateTime<Utc>>,
    current: &Disposition,
) -> Result<(), AttemptError> {
    check_still_open(current)?;
    validate_record(
        outcome,
        answers,
        n_dimensions,
        n_levels,
        appointment,
        now,
        field_end,
    )
}

/// The member's side of [`validate_attempt`]: a member already complete or final takes no
/// further attempt (a late record excepted: see [`validate_record`]).
pub fn check_still_open(current: &Disposition) -> Result<(), AttemptError> {
    if current.category == Category::I {
        return Err(AttemptError::AlreadyComplete);
    }
    if current.is_final() {
        return Err(AttemptError::AlreadyFinal {
            label: current.label(),
            code: current.code,
        });
    }
    Ok(())
}

/// The checks of [`validate_attempt`] on the attempt itself, without the member's state: a
/// late record (an interview that happened while the claim had lapsed) is stored even when the
/// member became final meanwhile, but it must still be a well-formed attempt.
pub fn validate_record(
    outcome: Outcome,
    answers: &[Option<usize>],
    n_dimensions: usize,
    n_levels: usize,
    appointment: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    field_end: Option<DateTime<Utc>>,
) -> Result<(), AttemptError> {
    if !answers.is_empty() && answers.len() != n_dimensions {
        return Err(AttemptError::WrongAnswerCount {
            expected: n_dimensions,
            found: answers.len(),
        });
    }
    for (d, level) in answers.iter().enumerate() {
        if let Some(l) = *level
            && l >= n_levels
        {
            return Err(AttemptError::LevelOutOfRange {
                dimension: d + 1,
                level: l + 1,
                n_levels,
            });
        }
    }
    let answered = answers.iter().filter(|l| l.is_some()).count();
    match outcome {
        Outcome::Complete if answered < n_dimensions => {
            return Err(AttemptError::IncompleteAnswers {
                expected: n_dimensions,
                missing: n_dimensions - answered,
            });
        }
        Outcome::Partial if answered == 0 => return Err(AttemptError::PartialWithoutAnswers),
        Outcome::Partial if answered == n_dimensions => {
            return Err(AttemptError::PartialIsComplete(n_dimensions));
        }
        o if !o.needs_answers() && answered > 0 => {
            return Err(AttemptError::UnexpectedAnswers { label: o.label() });
        }
        _ => {}
    }
    match (outcome, appointment) {
        (Outcome::Appointment, None) => Err(AttemptError::AppointmentMissing),
        (Outcome::Appointment, Some(at)) if at <= now => {
            Err(AttemptError::AppointmentNotInFuture {
                appointment: at,
                now,
            })
        }
        (Outcome::Appointment, Some(at)) => match field_end {
            Some(end) if at >= end => Err(AttemptError::AppointmentAfterFieldEnd {
                appointment: at,
                field_end: end,
            }),
            _ => Ok(()),
        },
        (o, Some(_)) => Err(AttemptError::AppointmentNotExpected { label: o.label() }),
        (_, None) => Ok(()),
    }
}

/// What is wrong with a stored attempt, judged against its round's survey (`sheping check` and
/// the results ask this of every attempt, so bad data is named instead of breaking a
/// computation). `answers` is the stored JSON as parsed: `Err` carries the parse error.
pub fn stored_attempt_problem(
    outcome_key: &str,
    aapor_code: &str,
    answers: Result<&[Option<usize>], &str>,
    n_dimensions: usize,
    n_levels: usize,
) -> Option<String> {
    let Some(outcome) = Outcome::parse(outcome_key).filter(|o| o.key() == outcome_key) else {
        return Some(format!("拨打结果 `{outcome_key}` 不是已知的结果代码"));
    };
    if aapor_code != outcome.aapor_code() {
        return Some(format!(
            "AAPOR 代码 `{aapor_code}` 与拨打结果「{}」不符(应为 {})",
            outcome.label(),
            outcome.aapor_code()
        ));
    }
    let answers = match answers {
        Ok(a) => a,
        Err(e) => return Some(format!("答案不是有效的数据:{e}")),
    };
    if !answers.is_empty() && answers.len() != n_dimensions {
        return Some(format!(
            "有 {} 个答案,而本轮问卷有 {n_dimensions} 个维度",
            answers.len()
        ));
    }
    if let Some((d, l)) = answers
        .iter()
        .enumerate()
        .find_map(|(d, l)| l.filter(|l| *l >= n_levels).map(|l| (d, l)))
    {
        return Some(format!(
            "第 {} 个维度的答案为第 {} 级,而本轮问卷只有 {n_levels} 个等级",
            d + 1,
            l + 1
        ));
    }
    let answered = answers.iter().filter(|l| l.is_some()).count();
    match outcome {
        Outcome::Complete if answered < n_dimensions => Some(format!(
            "「完成」只有 {answered} 个答案,问卷有 {n_dimensions} 个维度"
        )),
        Outcome::Partial if answered == 0 => Some("「部分完成」没有任何答案".to_string()),
        o if !o.needs_answers() && answered > 0 => {
            Some(format!("「{}」不应有答案,却存有 {answered} 个", o.label()))
        }
        _ => None,
    }
}

/// Why edited answers are refused; the message is shown to the administrator.
pub fn check_edited_answers(
    outcome: Outcome,
    answers: &[Option<usize>],
    n_dimensions: usize,
    n_levels: usize,
) -> std::result::Result<(), String> {
    if !outcome.needs_answers() {
        return Err(format!(
            "这次拨打的结果是“{}”,没有答案可以修改",
            outcome.label()
        ));
    }
    if answers.len() != n_dimensions {
        return Err(format!(
            "答案数量不符:问卷共 {n_dimensions} 个维度,收到 {} 个",
            answers.len()
        ));
    }
    if let Some((d, l)) = answers
        .iter()
        .enumerate()
        .find_map(|(d, l)| l.filter(|l| *l >= n_levels).map(|l| (d, l)))
    {
        return Err(format!(
            "第 {} 个维度的答案超出范围:共 {n_levels} 个等级,收到第 {} 级",
            d + 1,
            l + 1
        ));
    }
    let answered = answers.iter().filter(|a| a.is_some()).count();
    match outcome {
        Outcome::Complete if answered < n_dimensions => Err(format!(
            "完成访问必须回答全部 {n_dimensions} 个维度,还缺 {} 个",
            n_dimensions - answered
        )),
        Outcome::Partial if answered == 0 => Err("部分完成至少要有一个维度的答案".into()),
        Outcome::Partial if answered == n_dimensions => Err(format!(
            "{n_dimensions} 个维度都有答案就不是部分完成;如确属完成访问,请说明情况后由统计人员处理"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    #[test]
    fn edited_answers_follow_the_outcome() {
        let all = vec![Some(0), Some(1), Some(2), Some(3), Some(0)];
        assert!(check_edited_answers(Outcome::Complete, &all, 5, 4).is_ok());
        assert!(check_edited_answers(Outcome::Partial, &all, 5, 4).is_err());
        let some = vec![Some(0), None, None, None, None];
        assert!(check_edited_answers(Outcome::Partial, &some, 5, 4).is_ok());
        assert!(check_edited_answers(Outcome::Complete, &some, 5, 4).is_err());
        assert!(check_edited_answers(Outcome::Partial, &[None; 5], 5, 4).is_err());
        assert!(check_edited_answers(Outcome::Refused, &all, 5, 4).is_err());
        assert!(check_edited_answers(Outcome::Complete, &all[..4], 5, 4).is_err());
        let out = vec![Some(0), Some(1), Some(2), Some(4), Some(0)];
        let e = check_edited_answers(Outcome::Complete, &out, 5, 4).unwrap_err();
        assert!(e.contains("第 4 个维度"), "{e}");
    }

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 6, 1, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn facts(outcomes: &[Outcome]) -> Vec<AttemptFact> {
        outcomes
            .iter()
            .enumerate()
            .map(|(k, o)| AttemptFact {
                outcome: *o,
                at: t(60 * k as i64),
                appointment: None,
            })
            .collect()
    }

    fn disp(outcomes: &[Outcome]) -> Disposition {
        let a = facts(outcomes);
        disposition(
            &MemberHistory {
                attempts: &a,
                reopened_at: None,
            },
            5,
            false,
        )
    }

    use MemberState::{Final, NotAttempted, Open};
    use Outcome::*;

    #[test]
    fn outcome_table() {
        // key, label, code, category, final by itself, needs answers
        #[rustfmt::skip]
        let table = [
            (Complete, "complete", "完成", "1.1", Category::I, true, true),
            (Partial, "partial", "部分完成", "1.2", Category::P, false, true),
            (Refused, "refused", "拒访", "2.11", Category::R, true, false),
            (BreakOff, "break_off", "中途挂断", "2.12", Category::R, true, false),
            (RespondentUnavailable, "respondent_unavailable", "本人不在/不便", "2.21", Category::NC, false, false),
            (Voicemail, "voicemail", "语音信箱/留言", "2.22", Category::NC, false, false),
            (NoAnswer, "no_answer", "无人接听", "3.13", Category::UH, false, false),
            (Busy, "busy", "占线", "3.12", Category::UH, false, false),
            (Appointment, "appointment", "预约回访", "2.21", Category::NC, false, false),
            (WrongNumber, "wrong_number", "号码错误/非本人", "3.90", Category::UO, true, false),
            (NotInService, "not_in_service", "空号/停机", "3.90", Category::UO, true, false),
            (Unable, "unable", "无法访问(健康/语言)", "2.30", Category::O, true, false),
        ];
        assert_eq!(Outcome::all().len(), table.len());
        for (row, (o, key, label, code, cat, fin, answers)) in table.into_iter().enumerate() {
            assert_eq!(Outcome::all()[row], o);
            assert_eq!(o.key(), key);
            assert_eq!(o.label(), label);
            assert_eq!(o.aapor_code(), code);
            assert_eq!(o.category(), cat, "{key}");
            assert_eq!(o.is_final(), fin, "{key}");
            assert_eq!(o.needs_answers(), answers, "{key}");
            // serde uses the key
            assert_eq!(serde_json::to_string(&o).unwrap(), format!("\"{key}\""));
        }
    }

    #[test]
    fn every_outcome_alone_gives_its_category_and_state() {
        for &o in Outcome::all() {
            let d = disp(&[o]);
            assert_eq!(d.category, o.category(), "{o:?}");
            assert_eq!(d.code, o.aapor_code());
            assert_eq!(d.outcome, Some(o));
            let expected = if o.is_final() { Final } else { Open };
            assert_eq!(d.state, expected, "{o:?}");
            // and every open one becomes final when the field closes
            let a = facts(&[o]);
            let closed = disposition(
                &MemberHistory {
                    attempts: &a,
                    reopened_at: None,
                },
                5,
                true,
            );
            assert_eq!(closed.state, Final);
            assert_eq!(closed.category, o.category());
        }
    }

    #[test]
    fn from_key_reads_stored_keys_only() {
        for o in Outcome::all() {
            assert_eq!(Outcome::from_key(o.key()), Some(*o));
            assert_eq!(Outcome::from_key(o.label()), None, "{}", o.label());
        }
        for text in ["No Answer", "no-answer", " no_answer", "1.1", "maybe", ""] {
            assert_eq!(Outcome::from_key(text), None, "{text}");
        }
    }

    #[test]
    fn parse_reads_keys_labels_halves_and_unambiguous_codes() {
        for &o in Outcome::all() {
            assert_eq!(Outcome::parse(o.key()), Some(o));
            assert_eq!(Outcome::parse(o.label()), Some(o));
            assert_eq!(Outcome::parse(&format!("  {}\t", o.label())), Some(o));
        }
        assert_eq!(Outcome::parse("语音信箱"), Some(Voicemail));
        assert_eq!(Outcome::parse("留言"), Some(Voicemail));
        assert_eq!(Outcome::parse("非本人"), Some(WrongNumber));
        assert_eq!(Outcome::parse("号码错误"), Some(WrongNumber));
        assert_eq!(Outcome::parse("空号"), Some(NotInService));
        assert_eq!(Outcome::parse("停机"), Some(NotInService));
        assert_eq!(Outcome::parse("本人不在"), Some(RespondentUnavailable));
        assert_eq!(Outcome::parse("无法访问"), Some(Unable));
        assert_eq!(Outcome::parse("无法访问（健康／语言）"), Some(Unable));
        assert_eq!(Outcome::parse("No Answer"), Some(NoAnswer));
        assert_eq!(Outcome::parse("break-off"), Some(BreakOff));
        assert_eq!(Outcome::parse("ＢＵＳＹ"), Some(Busy));
        assert_eq!(Outcome::parse("1.1"), Some(Complete));
        assert_eq!(Outcome::parse("2.11"), Some(Refused));
        assert_eq!(Outcome::parse("3.12"), Some(Busy));
        assert_eq!(Outcome::parse("2.30"), Some(Unable));
        // two outcomes share these codes
        assert_eq!(Outcome::parse("2.21"), None);
        assert_eq!(Outcome::parse("3.90"), None);
        // not attempted is no outcome
        assert_eq!(Outcome::parse("3.11"), None);
        assert_eq!(Outcome::parse(""), None);
        assert_eq!(Outcome::parse("健康"), None);
        assert_eq!(Outcome::parse("满意"), None);
    }

    #[test]
    fn not_attempted() {
        let h = MemberHistory {
            attempts: &[],
            reopened_at: None,
        };
        let d = disposition(&h, 5, false);
        assert_eq!(
            d,
            Disposition {
                category: Category::UH,
                code: "3.11",
                outcome: None,
                state: NotAttempted
            }
        );
        assert_eq!(d.label(), "未拨打");
        // the close of the field makes it final too, so nothing can be recorded afterwards
        let closed = disposition(&h, 5, true);
        assert_eq!((closed.category, closed.code), (Category::UH, "3.11"));
        assert_eq!(closed.state, Final);
    }

    #[test]
    fn precedence_i_then_p_then_r() {
        // complete then refusal stays I (imported histories may contain such rows)
        let d = disp(&[Complete, Refused]);
        assert_eq!((d.category, d.code, d.state), (Category::I, "1.1", Final));
        // refusal then no answer stays R
        let d = disp(&[Refused, NoAnswer]);
        assert_eq!(
            (d.category, d.outcome, d.state),
            (Category::R, Some(Refused), Final)
        );
        // partial then complete is I
        let d = disp(&[Partial, Complete]);
        assert_eq!((d.category, d.state), (Category::I, Final));
        // partial beats a later refusal
        let d = disp(&[Partial, Refused]);
        assert_eq!((d.category, d.code, d.state), (Category::P, "1.2", Final));
        // among refusals the latest names the code
        assert_eq!(disp(&[BreakOff, Refused]).code, "2.11");
        assert_eq!(disp(&[Refused, BreakOff]).code, "2.12");
        // otherwise the last attempt decides
        let d = disp(&[Voicemail, Busy]);
        assert_eq!((d.category, d.code, d.state), (Category::UH, "3.12", Open));
        let d = disp(&[NoAnswer, RespondentUnavailable]);
        assert_eq!((d.category, d.code), (Category::NC, "2.21"));
    }

    #[test]
    fn partial_stays_open_until_attempts_run_out() {
        let mut outcomes = vec![Partial];
        for n in 2..=5 {
            outcomes.push(NoAnswer);
            let d = disp(&outcomes);
            assert_eq!(d.category, Category::P);
            assert_eq!(d.outcome, Some(Partial));
            assert_eq!(
                d.state,
                if n < 5 { Open } else { Final },
                "after {n} attempts"
            );
        }
    }

    #[test]
    fn max_attempts_ends_the_member_with_its_last_category() {
        let d = disp(&[NoAnswer; 4]);
        assert_eq!(d.state, Open);
        let d = disp(&[NoAnswer, NoAnswer, Voicemail, NoAnswer, Busy]);
        assert_eq!((d.category, d.code, d.state), (Category::UH, "3.12", Final));
        // An appointment on the last allowed attempt earns the agreed call-back…
        let appt = |o: Outcome, n: u32| AttemptFact {
            outcome: o,
            at: Utc.with_ymd_and_hms(2022, 11, 2, 10, n, 0).unwrap(),
            appointment: (o == Appointment)
                .then(|| Utc.with_ymd_and_hms(2022, 11, 3, 7, 0, 0).unwrap()),
        };
        let mut a: Vec<AttemptFact> = (0..4).map(|i| appt(NoAnswer, i)).collect();
        a.push(appt(Appointment, 4));
        let h = MemberHistory {
            attempts: &a,
            reopened_at: None,
        };
        let d = disposition(&h, 5, false);
        assert_eq!((d.category, d.code, d.state), (Category::NC, "2.21", Open));
        // …one only: whatever that call gives, the member is then final.
        for last in [NoAnswer, Appointment] {
            let mut b = a.clone();
            b.push(appt(last, 5));
            let h = MemberHistory {
                attempts: &b,
                reopened_at: None,
            };
            assert_eq!(disposition(&h, 5, false).state, Final, "{last:?}");
        }
        // An appointment without an agreed time (`facts` sets none) earns nothing.
        let d = disp(&[NoAnswer, NoAnswer, NoAnswer, NoAnswer, Appointment]);
        assert_eq!((d.category, d.code, d.state), (Category::NC, "2.21", Final));
        // a smaller maximum from the survey
        let a = facts(&[Busy, Busy]);
        let h = MemberHistory {
            attempts: &a,
            reopened_at: None,
        };
        assert_eq!(disposition(&h, 2, false).state, Final);
        assert_eq!(disposition(&h, 3, false).state, Open);
    }

    #[test]
    fn field_closing_finalises_open_members_with_their_category() {
        let a = facts(&[NoAnswer, Appointment]);
        let h = MemberHistory {
            attempts: &a,
            reopened_at: None,
        };
        let open = disposition(&h, 5, false);
        let closed = disposition(&h, 5, true);
        assert_eq!(open.state, Open);
        assert_eq!(closed.state, Final);
        assert_eq!((closed.category, closed.code), (open.category, open.code));
        let a = facts(&[Partial]);
        let h = MemberHistory {
            attempts: &a,
            reopened_at: None,
        };
        let closed = disposition(&h, 5, true);
        assert_eq!((closed.category, closed.state), (Category::P, Final));
    }

    #[test]
    fn reopening_after_a_number_correction_resets_the_count() {
        // 4 no-answers then a wrong number: final
        let mut outcomes = vec![NoAnswer, NoAnswer, NoAnswer, NoAnswer, WrongNumber];
        let a = facts(&outcomes);
        let before = MemberHistory {
            attempts: &a,
            reopened_at: None,
        };
        assert_eq!(disposition(&before, 5, false).state, Final);
        // corrected after the 5th attempt: open, still showing what happened
        let reopened = t(4 * 60 + 10);
        let h = MemberHistory {
            attempts: &a,
            reopened_at: Some(reopened),
        };
        let d = disposition(&h, 5, false);
        assert_eq!((d.category, d.code, d.state), (Category::UO, "3.90", Open));
        assert_eq!(h.attempts_since_reopen(), 0);
        assert_eq!(h.last_since_reopen(), None);
        // four attempts on the new number: still open (10 in all, 4 since the reopening)
        outcomes.extend([NoAnswer; 4]);
        let a = facts(&outcomes);
        let h = MemberHistory {
            attempts: &a,
            reopened_at: Some(reopened),
        };
        assert_eq!(h.attempts_since_reopen(), 4);
        let d = disposition(&h, 5, false);
        assert_eq!((d.category, d.state), (Category::UH, Open));
        // the fifth since the reopening ends it
        outcomes.push(Busy);
        let a = facts(&outcomes);
        let h = MemberHistory {
            attempts: &a,
            reopened_at: Some(reopened),
        };
        assert_eq!(disposition(&h, 5, false).state, Final);
    }

    #[test]
    fn reopened_refusal_is_open_but_never_hidden() {
        let reopened = t(30);
        let run = |outcomes: &[Outcome]| {
            let a = facts(outcomes);
            disposition(
                &MemberHistory {
                    attempts: &a,
                    reopened_at: Some(reopened),
                },
                5,
                false,
            )
        };
        let d = run(&[Refused]);
        assert_eq!((d.category, d.code, d.state), (Category::R, "2.11", Open));
        // nothing better reached: still a refusal, final when the attempts since run out
        let d = run(&[Refused, NoAnswer, NoAnswer, NoAnswer, NoAnswer]);
        assert_eq!((d.category, d.state), (Category::R, Open));
        let d = run(&[Refused, NoAnswer, NoAnswer, NoAnswer, NoAnswer, NoAnswer]);
        assert_eq!((d.category, d.code, d.state), (Category::R, "2.11", Final));
        // something better reached: it counts
        let d = run(&[Refused, Complete]);
        assert_eq!((d.category, d.state), (Category::I, Final));
        let d = run(&[Refused, Partial]);
        assert_eq!((d.category, d.state), (Category::P, Open));
        // refusing again closes it again
        let d = run(&[Refused, Busy, Refused]);
        assert_eq!((d.category, d.state), (Category::R, Final));
    }

    #[test]
    fn reopening_never_undoes_a_complete() {
        let a = facts(&[Complete]);
        let h = MemberHistory {
            attempts: &a,
            reopened_at: Some(t(30)),
        };
        let d = disposition(&h, 5, false);
        assert_eq!((d.category, d.state), (Category::I, Final));
    }

    #[test]
    fn an_attempt_at_the_reopening_instant_counts_as_before_it() {
        let a = facts(&[WrongNumber]);
        let h = MemberHistory {
            attempts: &a,
            reopened_at: Some(a[0].at),
        };
        assert_eq!(h.attempts_since_reopen(), 0);
        assert_eq!(disposition(&h, 5, false).state, Open);
    }

    #[test]
    fn rates_against_a_hand_worked_example() {
        let c = DispositionCounts {
            i: 20,
            p: 3,
            r: 5,
            nc: 4,
            o: 2,
            uh: 10,
            uo: 1,
            ne: 7, // outside every rate
        };
        // denominator (I+P)+(R+NC+O)+(UH+UO) = (20+3)+(5+4+2)+(10+1) = 23+11+11 = 45
        // contacted (I+P)+R+O = 23+5+2 = 30
        let r = ResponseRates::from_counts(&c);
        assert_eq!(r.rr1, Some(20.0 / 45.0)); // I / 45
        assert_eq!(r.rr2, Some(23.0 / 45.0)); // (20+3) / 45
        assert_eq!(r.coop1, Some(20.0 / 30.0)); // I / 30
        assert_eq!(r.ref1, Some(5.0 / 45.0)); // R / 45
        assert_eq!(r.con1, Some(30.0 / 45.0)); // 30 / 45
        assert_eq!(c.total(), 52);
    }

    #[test]
    fn zero_denominators_give_none_not_nan() {
        let r = ResponseRates::from_counts(&DispositionCounts::default());
        assert_eq!(
            r,
            ResponseRates {
                rr1: None,
                rr2: None,
                coop1: None,
                ref1: None,
                con1: None
            }
        );
        // nobody contacted: cooperation undefined, the others zero
        let c: DispositionCounts = [Category::UH, Category::NC, Category::UO]
            .into_iter()
            .collect();
        let r = ResponseRates::from_counts(&c);
        assert_eq!((r.rr1, r.coop1, r.con1), (Some(0.0), None, Some(0.0)));
        // only not-eligible cases: nothing defined
        let r = ResponseRates::from_counts(&DispositionCounts {
            ne: 3,
            ..Default::default()
        });
        assert_eq!(r.rr1, None);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"rr1\":null"), "{json}");
    }

    #[test]
    fn counts_serialise_with_aapor_letters() {
        let mut c = DispositionCounts::default();
        for &cat in Category::all() {
            c.add(cat);
        }
        c.add(Category::I);
        assert_eq!((c.get(Category::I), c.total()), (2, 9));
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"I":2,"P":1,"R":1,"NC":1,"O":1,"UH":1,"UO":1,"NE":1}"#
        );
        assert_eq!(serde_json::to_string(&Category::NC).unwrap(), "\"NC\"");
        let back: DispositionCounts =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    fn open() -> Disposition {
        disp(&[NoAnswer])
    }

    fn check(
        outcome: Outcome,
        answers: &[Option<usize>],
        appointment: Option<DateTime<Utc>>,
    ) -> Result<(), AttemptError> {
        validate_attempt(
            outcome,
            answers,
            5,
            4,
            appointment,
            t(0),
            Some(t(24 * 60)),
            &open(),
        )
    }

    #[test]
    fn validate_answers_per_outcome() {
        let all = [Some(0), Some(1), Some(2), Some(3), Some(0)];
        let some = [Some(0), None, Some(2), None, None];
        let none = [None; 5];
        assert_eq!(check(Complete, &all, None), Ok(()));
        assert_eq!(
            check(Complete, &some, None),
            Err(AttemptError::IncompleteAnswers {
                expected: 5,
                missing: 3
            })
        );
        assert_eq!(
            check(Complete, &[], None),
            Err(AttemptError::IncompleteAnswers {
                expected: 5,
                missing: 5
            })
        );
        assert_eq!(check(Partial, &some, None), Ok(()));
        assert_eq!(
            check(Partial, &all, None),
            Err(AttemptError::PartialIsComplete(5))
        );
        assert_eq!(
            check(Partial, &none, None),
            Err(AttemptError::PartialWithoutAnswers)
        );
        for &o in Outcome::all().iter().filter(|o| !o.needs_answers()) {
            let appt = (o == Appointment).then(|| t(120));
            assert_eq!(check(o, &[], appt), Ok(()), "{o:?}");
            assert_eq!(check(o, &none, appt), Ok(()), "{o:?}");
            assert_eq!(
                check(o, &some, appt),
                Err(AttemptError::UnexpectedAnswers { label: o.label() })
            );
        }
        assert_eq!(
            check(Complete, &all[..4], None),
            Err(AttemptError::WrongAnswerCount {
                expected: 5,
                found: 4
            })
        );
        let err = check(
            Complete,
            &[Some(0), Some(4), Some(0), Some(0), Some(0)],
            None,
        );
        assert_eq!(
            err,
            Err(AttemptError::LevelOutOfRange {
                dimension: 2,
                level: 5,
                n_levels: 4
            })
        );
        assert!(err.unwrap_err().to_string().contains("第 2 个维度"));
    }

    #[test]
    fn validate_appointments() {
        assert_eq!(check(Appointment, &[], Some(t(30))), Ok(()));
        assert_eq!(
            check(Appointment, &[], None),
            Err(AttemptError::AppointmentMissing)
        );
        assert!(matches!(
            check(Appointment, &[], Some(t(0))),
            Err(AttemptError::AppointmentNotInFuture { .. })
        ));
        assert!(matches!(
            check(Appointment, &[], Some(t(24 * 60))),
            Err(AttemptError::AppointmentAfterFieldEnd { .. })
        ));
        // no known field end: only the future is required
        let later = t(100 * 24 * 60);
        assert_eq!(
            validate_attempt(Appointment, &[], 5, 4, Some(later), t(0), None, &open()),
            Ok(())
        );
        assert_eq!(
            check(NoAnswer, &[], Some(t(30))),
            Err(AttemptError::AppointmentNotExpected {
                label: "无人接听"
            })
        );
    }

    #[test]
    fn validate_refuses_final_members_unless_reopened() {
        let all = [Some(0); 5];
        let done = disp(&[Complete]);
        assert_eq!(
            validate_attempt(Complete, &all, 5, 4, None, t(0), None, &done),
            Err(AttemptError::AlreadyComplete)
        );
        let refused = disp(&[Refused]);
        let err = validate_attempt(NoAnswer, &[], 5, 4, None, t(0), None, &refused).unwrap_err();
        assert_eq!(
            err,
            AttemptError::AlreadyFinal {
                label: "拒访",
                code: "2.11"
            }
        );
        assert!(err.to_string().contains("管理员重新开放"));
        // the same refusal reopened: accepted
        let a = facts(&[Refused]);
        let reopened = disposition(
            &MemberHistory {
                attempts: &a,
                reopened_at: Some(t(10)),
            },
            5,
            false,
        );
        assert_eq!(
            validate_attempt(Complete, &all, 5, 4, None, t(20), None, &reopened),
            Ok(())
        );
        // not attempted yet: accepted; after the field closed: refused
        let h = MemberHistory {
            attempts: &[],
            reopened_at: None,
        };
        let fresh = disposition(&h, 5, false);
        assert_eq!(
            validate_attempt(Busy, &[], 5, 4, None, t(0), None, &fresh),
            Ok(())
        );
        let closed = disposition(&h, 5, true);
        assert_eq!(
            validate_attempt(Busy, &[], 5, 4, None, t(0), None, &closed),
            Err(AttemptError::AlreadyFinal {
                label: "未拨打",
                code: "3.11"
            })
        );
    }

    fn outcome_strategy() -> impl Strategy<Value = Outcome> {
        (0..Outcome::all().len()).prop_map(|k| Outcome::all()[k])
    }

    #[test]
    fn stored_attempts_are_judged_against_their_survey() {
        let ok: &[Option<usize>] = &[Some(0), Some(1), Some(2)];
        assert_eq!(
            stored_attempt_problem("complete", "1.1", Ok(ok), 3, 4),
            None
        );
        assert_eq!(
            stored_attempt_problem("no_answer", "3.13", Ok(&[]), 3, 4),
            None
        );
        // Five answers in a three-question round (the form's round trusted over the claim).
        let five = [Some(0); 5];
        let p = stored_attempt_problem("complete", "1.1", Ok(&five), 3, 4).unwrap();
        assert!(p.contains("5 个答案") && p.contains("3 个维度"), "{p}");
        let p = stored_attempt_problem("complete", "1.1", Ok(&[Some(0), Some(9), Some(0)]), 3, 4)
            .unwrap();
        assert!(p.contains("第 2 个维度") && p.contains("4 个等级"), "{p}");
        let p = stored_attempt_problem("complete", "2.11", Ok(ok), 3, 4).unwrap();
        assert!(p.contains("AAPOR"), "{p}");
        let p = stored_attempt_problem("maybe", "1.1", Ok(ok), 3, 4).unwrap();
        assert!(p.contains("maybe"), "{p}");
        let p = stored_attempt_problem("complete", "1.1", Err("expected value"), 3, 4).unwrap();
        assert!(p.contains("expected value"), "{p}");
        let p =
            stored_attempt_problem("complete", "1.1", Ok(&[Some(0), None, Some(0)]), 3, 4).unwrap();
        assert!(p.contains("2 个答案"), "{p}");
        let p =
            stored_attempt_problem("refused", "2.11", Ok(&[Some(0), None, None]), 3, 4).unwrap();
        assert!(p.contains("不应有答案"), "{p}");
    }

    proptest! {
        #[test]
        fn precedence_holds_for_any_history(
            outcomes in proptest::collection::vec(outcome_strategy(), 0..12),
            max in 1u32..8,
            closed in any::<bool>(),
        ) {
            let a = facts(&outcomes);
            let d = disposition(&MemberHistory { attempts: &a, reopened_at: None }, max, closed);
            let has = |c: Category| outcomes.iter().any(|o| o.category() == c);
            let expected = if has(Category::I) {
                Category::I
            } else if has(Category::P) {
                Category::P
            } else if has(Category::R) {
                Category::R
            } else {
                outcomes.last().map_or(Category::UH, |o| o.category())
            };
            prop_assert_eq!(d.category, expected);
            if has(Category::I) || closed || outcomes.len() >= max as usize {
                prop_assert_eq!(d.state, Final);
            }
            if outcomes.is_empty() && !closed {
                prop_assert_eq!(d.state, NotAttempted);
            }
        }

        #[test]
        fn rates_are_never_nan_and_within_0_1(
            counts in proptest::array::uniform8(0u32..1000),
        ) {
            let [i, p, r, nc, o, uh, uo, ne] = counts;
            let c = DispositionCounts { i, p, r, nc, o, uh, uo, ne };
            let rates = ResponseRates::from_counts(&c);
            for v in [rates.rr1, rates.rr2, rates.coop1, rates.ref1, rates.con1].into_iter().flatten() {
                prop_assert!((0.0..=1.0).contains(&v));
            }
            if let (Some(a), Some(b)) = (rates.rr1, rates.rr2) {
                prop_assert!(a <= b);
            }
        }
    }
}
