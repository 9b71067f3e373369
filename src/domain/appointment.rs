//! Appointment times as operators key them on the call screen, in the round's local time:
//! a full `2026-12-08 15:30` (or the picker's `2026-12-08T15:30`), a day and time `12-08 15:30`,
//! or only a time `15:30` (today, or tomorrow once that time has passed). Plus the few times
//! operators choose most, offered as one-key presets.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// Why a typed appointment time was not understood; the message says what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppointmentError {
    #[error(
        "预约时间“{0}”的年份不是四位数字。请输入如 2026-12-08 15:30,或只输入 12-08 15:30、15:30。"
    )]
    Year(String),
    #[error("预约时间“{0}”不是存在的日期或时刻。请检查月、日(1–31)和时:分(00:00–23:59)。")]
    NoSuchTime(String),
    #[error(
        "预约时间“{0}”无法识别。请输入 时:分(如 15:30)、月-日 时:分(如 12-08 15:30)或 年-月-日 时:分。"
    )]
    Unreadable(String),
}

/// Reads a typed appointment time relative to `now` (local time of the round).
pub fn parse_appointment(
    text: &str,
    now: NaiveDateTime,
) -> Result<NaiveDateTime, AppointmentError> {
    let t = text.trim();
    let unreadable = || AppointmentError::Unreadable(t.to_string());
    let no_such = || AppointmentError::NoSuchTime(t.to_string());
    // "date time" with a T (the picker) or spaces between them.
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, tm)) => (Some(d.trim()), tm.trim()),
        None => (None, t),
    };
    let time = parse_time(time).ok_or_else(|| {
        if time.split(':').count() == 2 && time.split(':').all(is_digits) {
            no_such()
        } else {
            unreadable()
        }
    })?;
    let Some(date) = date else {
        // Only a time: the next time the clock shows it.
        let today = now.date().and_time(time);
        return Ok(if today > now {
            today
        } else {
            today + Duration::days(1)
        });
    };
    let parts: Vec<&str> = date.split(['-', '/', '.']).collect();
    if !parts.iter().all(|p| is_digits(p)) {
        return Err(unreadable());
    }
    let number = |p: &str| p.parse::<u32>().map_err(|_| unreadable());
    match parts.as_slice() {
        [y, m, d] => {
            if y.len() != 4 {
                return Err(AppointmentError::Year(t.to_string()));
            }
            let year = y.parse::<i32>().map_err(|_| unreadable())?;
            let day = NaiveDate::from_ymd_opt(year, number(m)?, number(d)?).ok_or_else(no_such)?;
            Ok(day.and_time(time))
        }
        [m, d] => {
            let (m, d) = (number(m)?, number(d)?);
            let this_year = NaiveDate::from_ymd_opt(now.year(), m, d).map(|day| day.and_time(time));
            match this_year {
                // A day already past this year means next year's (keyed in December for January).
                Some(at) if at.date() >= now.date() => Ok(at),
                _ => NaiveDate::from_ymd_opt(now.year() + 1, m, d)
                    .map(|day| day.and_time(time))
                    .ok_or_else(no_such),
            }
        }
        _ => Err(unreadable()),
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.split_once([':', '：'])?;
    let m = m.split(':').next()?;
    if !is_digits(h) || !is_digits(m) || h.len() > 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

/// A one-key choice on the call screen: its label and its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    pub label: String,
    pub at: NaiveDateTime,
}

/// The times operators choose most: in an hour (on the minute), this afternoon at 14:30 (or
/// tomorrow's once it has passed), tomorrow at 09:00.
pub fn presets(now: NaiveDateTime) -> Vec<Preset> {
    let on_minute = now.with_second(0).and_then(|t| t.with_nanosecond(0));
    let in_an_hour = on_minute.unwrap_or(now) + Duration::minutes(61);
    let afternoon = NaiveTime::from_hms_opt(14, 30, 0).unwrap_or_default();
    let today_afternoon = now.date().and_time(afternoon);
    let (afternoon_label, afternoon_at) = if today_afternoon > now {
        ("今天 14:30", today_afternoon)
    } else {
        ("明天 14:30", today_afternoon + Duration::days(1))
    };
    let tomorrow_morning = (now.date() + Duration::days(1))
        .and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default());
    vec![
        Preset {
            label: "1 小时后".into(),
            at: in_an_hour,
        },
        Preset {
            label: afternoon_label.into(),
            at: afternoon_at,
        },
        Preset {
            label: "明天 09:00".into(),
            at: tomorrow_morning,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn the_forms_operators_type() {
        let now = at("2026-12-07 10:00");
        let p = |s| parse_appointment(s, now);
        assert_eq!(p("2026-12-08T15:30"), Ok(at("2026-12-08 15:30")));
        assert_eq!(p("2026-12-08 15:30"), Ok(at("2026-12-08 15:30")));
        assert_eq!(p("2026-12-08T15:30:00"), Ok(at("2026-12-08 15:30")));
        assert_eq!(p("12-08 15:30"), Ok(at("2026-12-08 15:30")));
        assert_eq!(p("01-05 9:00"), Ok(at("2027-01-05 09:00")), "next year's");
        assert_eq!(p("15:30"), Ok(at("2026-12-07 15:30")), "later today");
        assert_eq!(p("09:30"), Ok(at("2026-12-08 09:30")), "passed: tomorrow");
        assert_eq!(
            p(" 15：30 "),
            Ok(at("2026-12-07 15:30")),
            "full-width colon"
        );
    }

    #[test]
    fn what_is_wrong_is_named() {
        let now = at("2026-12-07 10:00");
        let p = |s| parse_appointment(s, now);
        // Chrome's picker takes a six-digit year.
        assert!(matches!(
            p("202603-12-08T03:00"),
            Err(AppointmentError::Year(_))
        ));
        assert!(matches!(
            p("2026-02-30 10:00"),
            Err(AppointmentError::NoSuchTime(_))
        ));
        assert!(matches!(p("25:00"), Err(AppointmentError::NoSuchTime(_))));
        assert!(matches!(
            p("明天上午"),
            Err(AppointmentError::Unreadable(_))
        ));
        assert!(matches!(p(""), Err(AppointmentError::Unreadable(_))));
        let e = p("202603-12-08T03:00").unwrap_err().to_string();
        assert!(
            e.contains("202603-12-08T03:00") && e.contains("四位"),
            "{e}"
        );
    }

    #[test]
    fn presets_follow_the_clock() {
        let p = presets(at("2026-12-07 10:00") + Duration::seconds(42));
        assert_eq!(p[0].at, at("2026-12-07 11:01"));
        assert_eq!(
            (p[1].label.as_str(), p[1].at),
            ("今天 14:30", at("2026-12-07 14:30"))
        );
        assert_eq!(p[2].at, at("2026-12-08 09:00"));
        let late = presets(at("2026-12-07 16:00"));
        assert_eq!(
            (late[1].label.as_str(), late[1].at),
            ("明天 14:30", at("2026-12-08 14:30"))
        );
    }
}
