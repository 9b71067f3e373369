//! When a member's next call is due.
//!
//! All rules work in the survey's time zone (`calling.timezone`, Asia/Shanghai by default):
//! call windows such as `09:00-11:30` are local wall-clock times, and the field period is a
//! range of local dates. Instants are stored and returned in UTC.
//!
//! # Rules of [`next_step`]
//!
//! 1. **Final** when the last outcome ends the member ([`Outcome::is_final`]), when
//!    `max_attempts` attempts were made since the last reopening, or when the field period is
//!    over at `now`. An appointment made on the last allowed attempt is not called back (see
//!    the suggestions below).
//! 2. **An appointment** is due at the agreed time, even outside the call windows (the
//!    respondent asked for it) and even sooner than `retry_after_minutes`, provided it lies
//!    inside the field period. One outside it is scheduled like any other non-final outcome.
//! 3. **Any other non-final outcome** is due no sooner than `retry_after_minutes` after the
//!    attempt, inside a call window and the field period. Calls rotate through the windows of
//!    the day: the first slot in a *different* window from the one the last attempt was made in
//!    is preferred (a morning no-answer is retried in the afternoon, an afternoon one the next
//!    morning). When no such slot is left before the end of the field period, or the last
//!    attempt was made outside every window (e.g. an appointment at 19:00), the earliest slot is
//!    taken. When no slot is left at all, the member is final.
//!
//! The result is deterministic: it depends only on the survey, the field period, the last
//! attempt, the count and (for "the field is over") `now`. A due time earlier than `now` means
//! the call may be made right away; the queue orders members by it.
//!
//! Weekends and holidays are not skipped.
//!
//! Local times that do not exist (a daylight-saving gap, not in China but possible in a
//! configured zone) are moved to the first minute after the gap; ambiguous ones take the
//! earlier instant.
//!
//! # Suggestions (not implemented)
//!
//! * A `calling.weekdays` option in the survey definition, for rounds that must not call on
//!   weekends; the slot enumeration here is the one place that would read it.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::disposition::{AttemptFact, MemberHistory, Outcome, attempts_exhausted, disposition};
use super::survey::{CallWindow, Survey};

/// The field period of a round: inclusive local dates in the survey's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldPeriod {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl FieldPeriod {
    /// Local midnight at the start of the first day.
    pub fn starts_at(&self, tz: Tz) -> DateTime<Utc> {
        local_to_utc(tz, self.start.and_time(NaiveTime::MIN))
    }

    /// Local midnight after the last day (exclusive end): the `field_end` of
    /// [`validate_attempt`](super::disposition::validate_attempt).
    pub fn ends_at(&self, tz: Tz) -> DateTime<Utc> {
        match self.end.succ_opt() {
            Some(next) => local_to_utc(tz, next.and_time(NaiveTime::MIN)),
            None => DateTime::<Utc>::MAX_UTC,
        }
    }

    pub fn contains(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        self.starts_at(tz) <= t && t < self.ends_at(tz)
    }

    pub fn is_over(&self, tz: Tz, now: DateTime<Utc>) -> bool {
        now >= self.ends_at(tz)
    }
}

/// What happens next with a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// The next attempt may be made from this instant on.
    Due(DateTime<Utc>),
    /// No further attempt.
    Final,
}

impl NextStep {
    pub fn due(self) -> Option<DateTime<Utc>> {
        match self {
            NextStep::Due(t) => Some(t),
            NextStep::Final => None,
        }
    }
}

/// When the attempt after `last` is due (see the module docs for the rules).
///
/// `last` is the latest attempt since the latest reopening and `attempts_since_reopen` the
/// number of attempts since then, both as `MemberHistory` gives them. A member with no attempt
/// since a reopening is scheduled like a first call: use [`member_next_step`].
pub fn next_step(
    survey: &Survey,
    field: &FieldPeriod,
    last: &AttemptFact,
    attempts_since_reopen: u32,
    now: DateTime<Utc>,
) -> NextStep {
    let tz = survey.timezone();
    let max = survey.calling.max_attempts;
    if last.outcome.is_final()
        || attempts_exhausted(attempts_since_reopen, Some(last), max)
        || field.is_over(tz, now)
    {
        return NextStep::Final;
    }
    if last.outcome == Outcome::Appointment
        && let Some(at) = last.appointment
        && field.contains(tz, at)
    {
        return NextStep::Due(at);
    }
    if attempts_since_reopen >= max {
        // The extra call of an appointment made on the last attempt is the agreed one only.
        return NextStep::Final;
    }
    // A validated survey always has windows; without them nothing can be scheduled.
    let Ok(windows) = survey.windows() else {
        return NextStep::Final;
    };
    let earliest = last.at + Duration::minutes(i64::from(survey.calling.retry_after_minutes));
    let last_window = window_at(&windows, tz, last.at);
    let mut first = None;
    for slot in slots(&windows, tz, field, earliest) {
        if last_window.is_none_or(|w| w != slot.window) {
            return NextStep::Due(slot.start);
        }
        first.get_or_insert(slot.start);
    }
    first.map_or(NextStep::Final, NextStep::Due)
}

/// The next step of a member from its whole history: final when its disposition is, a first
/// call (or the first call after a reopening) at the next window from `now`, otherwise
/// [`next_step`] from its last attempt since the reopening.
pub fn member_next_step(
    survey: &Survey,
    field: &FieldPeriod,
    history: &MemberHistory,
    now: DateTime<Utc>,
) -> NextStep {
    let field_closed = field.is_over(survey.timezone(), now);
    if disposition(history, survey.calling.max_attempts, field_closed).is_final() {
        return NextStep::Final;
    }
    match history.last_since_reopen() {
        Some(last) => next_step(survey, field, last, history.attempts_since_reopen(), now),
        None => next_window_start(survey, field, now).map_or(NextStep::Final, NextStep::Due),
    }
}

/// Whether a first call may be offered at `now` (inside the field period and a call window).
pub fn may_call_now(survey: &Survey, field: &FieldPeriod, now: DateTime<Utc>) -> bool {
    next_window_start(survey, field, now) == Some(now)
}

/// The earliest instant >= t that lies inside a call window and the field period, or None when
/// the period is over.
pub fn next_window_start(
    survey: &Survey,
    field: &FieldPeriod,
    t: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let windows = survey.windows().ok()?;
    slots(&windows, survey.timezone(), field, t)
        .next()
        .map(|s| s.start)
}

/// The part of one day's call window that is still usable.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Index of the window in the survey's sorted windows: "which window of the day".
    window: usize,
    /// The later of the window's start and the `from` instant.
    start: DateTime<Utc>,
}

/// The windows of the field period's days that still have time at or after `from`, in order.
/// Windows never cross midnight (the survey checks start < end), so the days before the local
/// date of `from` cannot contribute.
fn slots<'w>(
    windows: &'w [CallWindow],
    tz: Tz,
    field: &FieldPeriod,
    from: DateTime<Utc>,
) -> impl Iterator<Item = Slot> + 'w {
    let last_day = field.end;
    let first_day = from.with_timezone(&tz).date_naive().max(field.start);
    first_day
        .iter_days()
        .take_while(move |d| *d <= last_day)
        .flat_map(move |day| {
            windows.iter().enumerate().filter_map(move |(window, w)| {
                let start = local_to_utc(tz, day.and_time(w.start)).max(from);
                let end = local_to_utc(tz, day.and_time(w.end));
                (start < end).then_some(Slot { window, start })
            })
        })
}

/// The window whose local time range contains `t`, if any.
fn window_at(windows: &[CallWindow], tz: Tz, t: DateTime<Utc>) -> Option<usize> {
    let local = t.with_timezone(&tz).time();
    windows.iter().position(|w| w.contains(local))
}

/// A local wall-clock time as an instant: the earlier one when ambiguous, the first existing
/// minute after a daylight-saving gap when it does not exist.
fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    (0..=24 * 60)
        .find_map(|m| {
            tz.from_local_datetime(&(local + Duration::minutes(m)))
                .earliest()
        })
        .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::disposition::Outcome::*;
    use chrono_tz::Asia::Shanghai;
    use proptest::prelude::*;

    const DEFAULT: &str = include_str!("../../surveys/default.toml");

    fn survey() -> Survey {
        Survey::from_toml_str(DEFAULT).unwrap()
    }

    /// 2024-05-06 is a Monday; the field runs Monday to Friday.
    fn field() -> FieldPeriod {
        FieldPeriod {
            start: NaiveDate::from_ymd_opt(2024, 5, 6).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 5, 10).unwrap(),
        }
    }

    /// A Shanghai wall-clock time in May 2024.
    fn sh(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        Shanghai
            .with_ymd_and_hms(2024, 5, day, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn attempt(outcome: Outcome, at: DateTime<Utc>) -> AttemptFact {
        AttemptFact {
            outcome,
            at,
            appointment: None,
        }
    }

    fn next(s: &Survey, last: AttemptFact, n: u32) -> NextStep {
        next_step(s, &field(), &last, n, last.at)
    }

    #[test]
    fn morning_attempt_is_retried_in_the_afternoon_same_day() {
        let s = survey();
        assert_eq!(
            next(&s, attempt(NoAnswer, sh(6, 10, 0)), 1),
            NextStep::Due(sh(6, 14, 30))
        );
    }

    #[test]
    fn afternoon_attempt_is_retried_next_morning() {
        let s = survey();
        assert_eq!(
            next(&s, attempt(Busy, sh(6, 15, 0)), 1),
            NextStep::Due(sh(7, 9, 0))
        );
        // an attempt made at the last minute of a window counts as in that window
        assert_eq!(
            next(&s, attempt(Voicemail, sh(6, 17, 29)), 1),
            NextStep::Due(sh(7, 9, 0))
        );
    }

    #[test]
    fn last_day_of_field() {
        let s = survey();
        // a morning attempt on the last day still has the afternoon
        assert_eq!(
            next(&s, attempt(NoAnswer, sh(10, 10, 0)), 1),
            NextStep::Due(sh(10, 14, 30))
        );
        // no window left after the retry delay: final
        assert_eq!(
            next(&s, attempt(NoAnswer, sh(10, 16, 45)), 1),
            NextStep::Final
        );
        // the preferred (morning) window is gone: take the earliest allowed, same window
        assert_eq!(
            next(&s, attempt(NoAnswer, sh(10, 14, 40)), 1),
            NextStep::Due(sh(10, 15, 40))
        );
    }

    #[test]
    fn retry_after_longer_than_a_window_gap() {
        let mut s = survey();
        s.calling.retry_after_minutes = 240;
        // 11:00 + 4 h = 15:00, inside the afternoon window: not its 14:30 start
        assert_eq!(
            next(&s, attempt(NoAnswer, sh(6, 11, 0)), 1),
            NextStep::Due(sh(6, 15, 0))
        );
        // 11:20 + 4 h = 15:20
        assert_eq!(
            next(&s, attempt(NoAnswer, sh(6, 11, 20)), 1),
            NextStep::Due(sh(6, 15, 20))
        );
        // 16:00 + 20 h = next day 12:00: the next afternoon is the same window as the last
        // attempt, so the rotation prefers the morning after it
        s.calling.retry_after_minutes = 20 * 60;
        assert_eq!(
            next(&s, attempt(NoAnswer, sh(6, 16, 0)), 1),
            NextStep::Due(sh(8, 9, 0))
        );
        // never sooner than the delay, even across a night
        s.calling.retry_after_minutes = 17 * 60;
        assert_eq!(
            next(&s, attempt(NoAnswer, sh(6, 17, 0)), 1),
            NextStep::Due(sh(7, 10, 0))
        );
    }

    #[test]
    fn a_single_window_retries_in_the_same_window() {
        let mut s = survey();
        s.calling.windows = vec!["09:00-12:00".into()];
        assert_eq!(
            next(&s, attempt(NoAnswer, sh(6, 9, 30)), 1),
            NextStep::Due(sh(6, 10, 30))
        );
    }

    #[test]
    fn appointment_is_due_at_its_time() {
        let s = survey();
        let mut a = attempt(Appointment, sh(6, 10, 0));
        // 19:00 is outside every window, and 20 minutes is shorter than the retry delay
        a.appointment = Some(sh(6, 19, 0));
        assert_eq!(next(&s, a, 1), NextStep::Due(sh(6, 19, 0)));
        a.appointment = Some(sh(6, 10, 20));
        assert_eq!(next(&s, a, 1), NextStep::Due(sh(6, 10, 20)));
        // after the field period: scheduled like any other non-final outcome
        a.appointment = Some(sh(11, 10, 0));
        assert_eq!(next(&s, a, 1), NextStep::Due(sh(6, 14, 30)));
        // the call made at the appointment (19:00, outside the windows) went unanswered:
        // no window to rotate away from, so the earliest slot
        let last = attempt(NoAnswer, sh(6, 19, 0));
        assert_eq!(next(&s, last, 2), NextStep::Due(sh(7, 9, 0)));
    }

    #[test]
    fn max_attempts_and_final_outcomes() {
        let s = survey();
        assert_eq!(s.calling.max_attempts, 5);
        let last = attempt(NoAnswer, sh(6, 10, 0));
        assert!(matches!(next(&s, last, 4), NextStep::Due(_)));
        assert_eq!(next(&s, last, 5), NextStep::Final);
        // An appointment on the last allowed attempt: one more call, at the agreed time.
        let mut appt = attempt(Outcome::Appointment, sh(6, 10, 0));
        appt.appointment = Some(sh(7, 16, 0));
        assert_eq!(next(&s, appt, 5), NextStep::Due(sh(7, 16, 0)));
        assert_eq!(next(&s, appt, 6), NextStep::Final);
        // …but not at a time outside the field period: no retry in its place.
        appt.appointment = Some(sh(20, 16, 0));
        assert_eq!(next(&s, appt, 5), NextStep::Final);
        assert!(matches!(next(&s, appt, 4), NextStep::Due(_)));
        assert_eq!(next(&s, attempt(Partial, sh(6, 10, 0)), 5), NextStep::Final);
        assert_eq!(
            next(&s, attempt(Partial, sh(6, 10, 0)), 2),
            NextStep::Due(sh(6, 14, 30))
        );
        for &o in Outcome::all().iter().filter(|o| o.is_final()) {
            assert_eq!(
                next(&s, attempt(o, sh(6, 10, 0)), 1),
                NextStep::Final,
                "{o:?}"
            );
        }
        // the field is over when the scheduler runs
        assert_eq!(
            next_step(&s, &field(), &last, 1, sh(11, 0, 0)),
            NextStep::Final
        );
    }

    #[test]
    fn timezone_windows_are_local_times() {
        let s = survey();
        let f = field();
        // 01:30 UTC is 09:30 in Shanghai: inside the morning window
        let t = Utc.with_ymd_and_hms(2024, 5, 6, 1, 30, 0).unwrap();
        assert_eq!(t, sh(6, 9, 30));
        assert!(may_call_now(&s, &f, t));
        // 09:30 UTC is 17:30 in Shanghai: the afternoon window has just closed
        let t = Utc.with_ymd_and_hms(2024, 5, 6, 9, 30, 0).unwrap();
        assert!(!may_call_now(&s, &f, t));
        assert_eq!(
            next_window_start(&s, &f, t),
            Some(Utc.with_ymd_and_hms(2024, 5, 7, 1, 0, 0).unwrap())
        );
        // 04:00 UTC is 12:00 in Shanghai: between windows, next is 14:30 = 06:30 UTC
        let t = Utc.with_ymd_and_hms(2024, 5, 6, 4, 0, 0).unwrap();
        assert_eq!(
            next_window_start(&s, &f, t),
            Some(Utc.with_ymd_and_hms(2024, 5, 6, 6, 30, 0).unwrap())
        );
        // 23:30 UTC on the 5th is already 07:30 on the 6th (the first day) in Shanghai
        let t = Utc.with_ymd_and_hms(2024, 5, 5, 23, 30, 0).unwrap();
        assert_eq!(next_window_start(&s, &f, t), Some(sh(6, 9, 0)));
        assert_eq!(
            f.starts_at(Shanghai),
            Utc.with_ymd_and_hms(2024, 5, 5, 16, 0, 0).unwrap()
        );
        assert_eq!(
            f.ends_at(Shanghai),
            Utc.with_ymd_and_hms(2024, 5, 10, 16, 0, 0).unwrap()
        );
    }

    #[test]
    fn field_period_bounds_first_calls() {
        let s = survey();
        let f = field();
        assert!(!may_call_now(&s, &f, sh(5, 10, 0)));
        assert_eq!(next_window_start(&s, &f, sh(1, 10, 0)), Some(sh(6, 9, 0)));
        assert_eq!(
            next_window_start(&s, &f, sh(10, 17, 29)),
            Some(sh(10, 17, 29))
        );
        assert_eq!(next_window_start(&s, &f, sh(10, 17, 30)), None);
        assert!(!may_call_now(&s, &f, sh(11, 10, 0)));
        assert_eq!(next_window_start(&s, &f, sh(11, 10, 0)), None);
        // window starts are inclusive, ends exclusive
        assert!(may_call_now(&s, &f, sh(7, 14, 30)));
        assert!(!may_call_now(&s, &f, sh(7, 11, 30)));
    }

    #[test]
    fn weekends_are_not_skipped() {
        let s = survey();
        let f = FieldPeriod {
            start: NaiveDate::from_ymd_opt(2024, 5, 6).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 5, 31).unwrap(),
        };
        // Friday 10 May, 15:00 → Saturday 11 May, 09:00
        let last = attempt(NoAnswer, sh(10, 15, 0));
        assert_eq!(
            next_step(&s, &f, &last, 1, last.at),
            NextStep::Due(sh(11, 9, 0))
        );
        assert!(may_call_now(&s, &f, sh(12, 10, 0)));
    }

    #[test]
    fn a_window_starting_in_a_dst_gap_opens_after_the_gap() {
        let mut s = survey();
        s.calling.timezone = "America/New_York".into();
        s.calling.windows = vec!["02:30-04:00".into()];
        s.validate().unwrap();
        // 2024-03-10: 02:00 EST jumps to 03:00 EDT (07:00 UTC)
        let f = FieldPeriod {
            start: NaiveDate::from_ymd_opt(2024, 3, 10).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 3, 11).unwrap(),
        };
        let t = Utc.with_ymd_and_hms(2024, 3, 10, 5, 0, 0).unwrap();
        assert_eq!(
            next_window_start(&s, &f, t),
            Some(Utc.with_ymd_and_hms(2024, 3, 10, 7, 0, 0).unwrap())
        );
        // the next day the window starts at 02:30 EDT = 06:30 UTC
        let t = Utc.with_ymd_and_hms(2024, 3, 10, 9, 0, 0).unwrap();
        assert_eq!(
            next_window_start(&s, &f, t),
            Some(Utc.with_ymd_and_hms(2024, 3, 11, 6, 30, 0).unwrap())
        );
    }

    #[test]
    fn member_next_step_from_history() {
        let s = survey();
        let f = field();
        let now = sh(6, 12, 0);
        let none = MemberHistory {
            attempts: &[],
            reopened_at: None,
        };
        assert_eq!(
            member_next_step(&s, &f, &none, now),
            NextStep::Due(sh(6, 14, 30))
        );
        assert_eq!(
            member_next_step(&s, &f, &none, sh(11, 0, 0)),
            NextStep::Final
        );

        let wrong = [attempt(WrongNumber, sh(6, 9, 10))];
        let h = MemberHistory {
            attempts: &wrong,
            reopened_at: None,
        };
        assert_eq!(member_next_step(&s, &f, &h, now), NextStep::Final);
        // the number was corrected at 09:20: call the new number at once
        let h = MemberHistory {
            attempts: &wrong,
            reopened_at: Some(sh(6, 9, 20)),
        };
        assert_eq!(
            member_next_step(&s, &f, &h, sh(6, 9, 25)),
            NextStep::Due(sh(6, 9, 25))
        );

        let tried = [attempt(NoAnswer, sh(6, 9, 10))];
        let h = MemberHistory {
            attempts: &tried,
            reopened_at: None,
        };
        assert_eq!(
            member_next_step(&s, &f, &h, now),
            NextStep::Due(sh(6, 14, 30))
        );
        let done = [attempt(Complete, sh(6, 9, 10))];
        let h = MemberHistory {
            attempts: &done,
            reopened_at: Some(sh(6, 9, 20)),
        };
        assert_eq!(member_next_step(&s, &f, &h, now), NextStep::Final);
    }

    fn in_a_window(s: &Survey, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&s.timezone()).time();
        s.windows().unwrap().iter().any(|w| w.contains(local))
    }

    proptest! {
        #[test]
        fn due_times_respect_delay_windows_and_field(
            minute in 0i64..(7 * 24 * 60),
            retry in 1u32..(3 * 24 * 60),
            outcome in prop::sample::select(vec![NoAnswer, Busy, Voicemail, RespondentUnavailable, Partial]),
        ) {
            let mut s = survey();
            s.calling.retry_after_minutes = retry;
            let f = field();
            let last = attempt(outcome, sh(5, 0, 0) + Duration::minutes(minute));
            let step = next_step(&s, &f, &last, 1, last.at);
            if let NextStep::Due(t) = step {
                prop_assert!(t >= last.at + Duration::minutes(i64::from(retry)));
                prop_assert!(in_a_window(&s, t));
                prop_assert!(f.contains(Shanghai, t));
            } else {
                // final only when no slot at all is left after the delay
                let earliest = last.at + Duration::minutes(i64::from(retry));
                prop_assert_eq!(next_window_start(&s, &f, earliest), None);
            }
            // deterministic
            prop_assert_eq!(step, next_step(&s, &f, &last, 1, last.at));
        }

        #[test]
        fn next_window_start_is_the_earliest_callable_instant(minute in 0i64..(7 * 24 * 60)) {
            let s = survey();
            let f = field();
            let t = sh(5, 0, 0) + Duration::minutes(minute);
            match next_window_start(&s, &f, t) {
                Some(start) => {
                    prop_assert!(start >= t);
                    prop_assert!(may_call_now(&s, &f, start));
                    // nothing callable in between, checked minute by minute
                    let mut probe = t;
                    while probe < start {
                        prop_assert!(!may_call_now(&s, &f, probe));
                        probe += Duration::minutes(1);
                    }
                }
                None => prop_assert!(t >= sh(10, 17, 30)),
            }
        }
    }
}
