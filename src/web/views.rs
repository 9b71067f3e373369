//! What every console page shows around its content, and formatting helpers for templates.

use chrono::TimeZone;
use chrono_tz::Tz;

use super::auth::{Session, role_bit};

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

/// The signed-in user, the session's form token and the role's menu.
pub struct Frame {
    pub login: String,
    pub name: String,
    pub role_label: &'static str,
    pub csrf: String,
    pub nav: Vec<NavItem>,
}

const MENU: &[(&str, &str, &str, u8)] = &[
    ("call", "/call", "拨打", super::auth::OPERATOR),
    ("list", "/call/list", "我的名单", super::auth::OPERATOR),
    ("admin", "/admin", "轮次管理", super::auth::ADMIN),
    ("users", "/admin/users", "用户", super::auth::ADMIN),
    ("tokens", "/admin/tokens", "API 令牌", super::auth::ADMIN),
    ("backup", "/admin/backup", "备份", super::auth::ADMIN),
    (
        "progress",
        "/progress",
        "调查进度",
        super::auth::SUPERVISORS,
    ),
    ("results", "/results", "评估结果", super::auth::RESULTS),
    ("audit", "/audit", "审计日志", super::auth::SUPERVISORS),
    (
        "password",
        "/account/password",
        "修改密码",
        super::auth::ANYONE,
    ),
];

impl Frame {
    pub fn new(session: &Session, active: &str) -> Frame {
        let bit = role_bit(session.user.role);
        Frame {
            login: session.user.login.clone(),
            name: session.user.name.clone(),
            role_label: session.user.role.label(),
            csrf: session.csrf.clone(),
            nav: MENU
                .iter()
                .filter(|(_, _, _, mask)| mask & bit != 0)
                .map(|(key, href, label, _)| NavItem {
                    href,
                    label,
                    active: *key == active,
                })
                .collect(),
        }
    }
}

/// Formats epoch milliseconds in a time zone. Each format string is parsed once per thread:
/// parsing it on every call was about 1% of the server's CPU under the operators' load (the
/// call screen formats a dozen times).
pub fn local_time(ms: i64, tz: Tz, format: &'static str) -> String {
    use chrono::format::{Item, StrftimeItems};
    thread_local! {
        static PARSED: std::cell::RefCell<std::collections::HashMap<&'static str, Vec<Item<'static>>>> =
            Default::default();
    }
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    let local = tz.from_utc_datetime(&t.naive_utc());
    PARSED.with(|parsed| {
        let mut parsed = parsed.borrow_mut();
        // A format chrono cannot parse is formatted as before (chrono reports it there).
        let items = parsed
            .entry(format)
            .or_insert_with(|| StrftimeItems::new(format).parse().unwrap_or_default());
        if items.is_empty() {
            local.format(format).to_string()
        } else {
            local.format_with_items(items.iter()).to_string()
        }
    })
}

/// "11-03 15:20" style, with the date only when it is not today.
pub fn short_time(ms: i64, tz: Tz, now_ms: i64) -> String {
    let day = |m: i64| local_time(m, tz, "%Y-%m-%d");
    if day(ms) == day(now_ms) {
        local_time(ms, tz, "今天 %H:%M")
    } else {
        local_time(ms, tz, "%m-%d %H:%M")
    }
}

/// Local midnight of `now` in `tz`, in epoch milliseconds.
pub fn local_midnight_ms(tz: Tz, now: chrono::DateTime<chrono::Utc>) -> i64 {
    let local = now.with_timezone(&tz).date_naive();
    tz.from_local_datetime(&local.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .map_or(now.timestamp_millis(), |t| t.timestamp_millis())
}

/// A rate as a percentage with one decimal, or "—".
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_string(), |r| format!("{:.1}%", r * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parsed_once_format_as_chrono_does() {
        let tz = chrono_tz::Asia::Shanghai;
        for ms in [0, 1_667_458_800_000, 1_700_000_123_456, -86_400_000] {
            let t = tz.from_utc_datetime(
                &chrono::DateTime::from_timestamp_millis(ms)
                    .unwrap()
                    .naive_utc(),
            );
            // Twice each: the second call uses the cached items.
            for _ in 0..2 {
                for format in [
                    "%H:%M",
                    "%H:%M:%S",
                    "%m月%d日 %H:%M",
                    "%Y-%m-%dT%H:%M",
                    "%Y-%m-%d",
                ] {
                    assert_eq!(local_time(ms, tz, format), t.format(format).to_string());
                }
            }
        }
        assert_eq!(local_time(i64::MAX, tz, "%H:%M"), "");
    }

    #[test]
    fn times_in_the_round_zone() {
        let tz = chrono_tz::Asia::Shanghai;
        // 2022-11-03 07:00 UTC = 15:00 in Shanghai
        let ms = 1_667_458_800_000;
        assert_eq!(local_time(ms, tz, "%Y-%m-%d %H:%M"), "2022-11-03 15:00");
        assert_eq!(short_time(ms, tz, ms), "今天 15:00");
        assert_eq!(short_time(ms, tz, ms + 86_400_000), "11-03 15:00");
        let now = chrono::DateTime::from_timestamp_millis(ms).unwrap();
        assert_eq!(
            local_time(local_midnight_ms(tz, now), tz, "%Y-%m-%d %H:%M"),
            "2022-11-03 00:00"
        );
        assert_eq!(percent(Some(0.5)), "50.0%");
        assert_eq!(percent(None), "—");
    }
}
