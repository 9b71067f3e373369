//! Hostile bodies for every state-changing route of the web console, over real HTTP against
//! the real server on a real SQLite file.
//!
//! Every POST route of `src/web/*.rs` (sign-in, sign-out, own password, the operator's call
//! forms, the administrator's uploads, plans, reassignment, lock, corrections, answer edits,
//! users, API tokens, the field period, the purge of contacts and the backup; the supervisor and API routes are read-only) gets proptest-generated bodies: a
//! plausible form mutated (fields dropped, values swapped for huge strings, unicode, NUL,
//! `../`, SQL fragments, odd numbers and dates, repeated fields) or pure noise, sent
//! url-encoded, malformed, as JSON, as text, without a content type, or as multipart (whole or
//! broken), with the session's form token most of the time, by a role that may use the route
//! and sometimes by one that may not. Requests go out byte for byte (`raw_http`), so paths like
//! `/admin/rounds/../units` reach the server as written.
//!
//! Checked: never a 5xx; refusals by role and by origin as documented; no answer shows
//! internals (driver names, panics, source paths, the database's path); afterwards every page
//! still renders, the server is up, and `PRAGMA integrity_check` and `sheping check` are clean.
//! The same runs once more on the locked round. The case budget is fixed (see `CASES`).

use crate::common;
use crate::common::raw_http;

use crate::common::fuzz;
use std::cell::RefCell;
use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

use common::Sheping;
use common::browser::{PASSWORD, ROUND, WebServer, fixture};
use common::db::Val;
use raw_http::{Resp, Session, encode, send, sign_in};

/// Cases while the round is open, and after it is locked.
const CASES: u32 = 1200;
const LOCKED_CASES: u32 = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anon,
    Admin,
    Operator,
    Statistician,
    Evaluator,
}

const WHO: [Who; 5] = [
    Who::Anon,
    Who::Admin,
    Who::Operator,
    Who::Statistician,
    Who::Evaluator,
];
const SIGNED_IN: &[Who] = &[Who::Admin, Who::Operator, Who::Statistician, Who::Evaluator];

fn login_of(w: Who) -> &'static str {
    match w {
        Who::Anon => "",
        Who::Admin => "admin",
        Who::Operator => "op1",
        Who::Statistician => "stat",
        Who::Evaluator => "eval",
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Form,
    Multipart,
}

struct Route {
    /// With `{key}`, `{member}`, `{attempt}`, `{login}` for path parameters.
    path: &'static str,
    allowed: &'static [Who],
    kind: Kind,
    /// A plausible body (values may be markers, see [`resolve`]).
    template: &'static [(&'static str, &'static str)],
    /// The uploaded file of a plausible body.
    file: Option<(&'static str, &'static str)>,
}

const UNITS_FILE: &str = "单位名称,单位类型,系统,单位代码\n汉滨区新单位,事业单位,测试,Z9\n";
/// On-site ballots and paper attempts for the fixture's units (the attempt's number is not in the
/// roster: a line the importer refuses).
const ONSITE_FILE: &str = "参评单位,选票编号,职能职责履行,办事效率,服务质量,作风形象,社会反响,总体评价\n\
     汉滨区教育体育局,1,满意,满意,比较满意,满意,满意,\n\
     汉滨区公路管理段,1,基本满意,比较满意,满意,满意,不满意,\n";
const ATTEMPTS_FILE: &str = "参评单位,联系电话,话务员,拨打结果,拨打时间,职能职责履行,办事效率,服务质量,作风形象,社会反响\n\
     汉滨区教育体育局,13900000000,op1,no_answer,2022-11-02 10:05,,,,,\n";
const ROSTER_FILE: &str =
    "参评单位,姓名,联系电话,代表类别\n汉滨区公路管理段,新代表,13955554444,人大代表\n";

/// Every POST route (`src/web/mod.rs`, `auth.rs`, `call.rs`, `admin.rs`; `supervise.rs`,
/// `charts.rs`, `pages.rs` and `api.rs` route GETs only).
const ROUTES: &[Route] = &[
    Route {
        path: "/login",
        allowed: &WHO,
        kind: Kind::Form,
        template: &[
            ("login", "stat"),
            ("password", "$PASSWORD"),
            ("token", "$SIGNIN"),
            ("next", "/results"),
        ],
        file: None,
    },
    Route {
        path: "/logout",
        allowed: SIGNED_IN,
        kind: Kind::Form,
        template: &[("csrf", "$CSRF")],
        file: None,
    },
    Route {
        path: "/account/password",
        allowed: SIGNED_IN,
        kind: Kind::Form,
        template: &[
            ("csrf", "$CSRF"),
            ("current", "wrong-password-9"),
            ("new", "another-password-2"),
            ("confirm", "another-password-2"),
        ],
        file: None,
    },
    Route {
        path: "/call/next",
        allowed: &[Who::Operator],
        kind: Kind::Form,
        template: &[("csrf", "$CSRF"), ("round", "$ROUND")],
        file: None,
    },
    Route {
        path: "/call/record",
        allowed: &[Who::Operator],
        kind: Kind::Form,
        template: &[
            ("csrf", "$CSRF"),
            ("round", "$ROUND"),
            ("token", "$TOKEN"),
            ("outcome", "complete"),
            ("a0", "2"),
            ("a1", "1"),
            ("a2", "3"),
            ("a3", "4"),
            ("a4", "1"),
            ("ms0", "1200"),
            ("ms1", "2300"),
            ("ms2", "3400"),
            ("ms3", "4500"),
            ("ms4", "5600"),
            ("comment", "服务很好"),
            ("appointment", "2099-01-01T10:00"),
        ],
        file: None,
    },
    Route {
        path: "/call/release",
        allowed: &[Who::Operator],
        kind: Kind::Form,
        template: &[("csrf", "$CSRF"), ("round", "$ROUND"), ("token", "$TOKEN")],
        file: None,
    },
    Route {
        path: "/admin/rounds",
        allowed: &[Who::Admin],
        kind: Kind::Multipart,
        template: &[
            ("csrf", "$CSRF"),
            ("key", "$NEWKEY"),
            ("title", "新一轮"),
            ("from", "2022-11-01"),
            ("to", "2022-11-30"),
        ],
        file: Some(("survey.toml", "$SURVEY")),
    },
    Route {
        path: "/admin/rounds/{key}/units",
        allowed: &[Who::Admin],
        kind: Kind::Multipart,
        template: &[("csrf", "$CSRF"), ("skip_invalid", "on")],
        file: Some(("units.csv", UNITS_FILE)),
    },
    Route {
        path: "/admin/rounds/{key}/roster",
        allowed: &[Who::Admin],
        kind: Kind::Multipart,
        template: &[
            ("csrf", "$CSRF"),
            ("area_code", "0915"),
            ("skip_invalid", "on"),
            ("replace", ""),
        ],
        file: Some(("roster.csv", ROSTER_FILE)),
    },
    Route {
        path: "/admin/rounds/{key}/plan",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[
            ("csrf", "$CSRF"),
            ("seed", "7"),
            ("operator", "op1"),
            ("operator", "op2"),
        ],
        file: None,
    },
    Route {
        path: "/admin/rounds/{key}/reassign",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[
            ("csrf", "$CSRF"),
            ("from", "op2"),
            ("to", "op1"),
            ("seed", "3"),
        ],
        file: None,
    },
    Route {
        path: "/admin/rounds/{key}/lock",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[("csrf", "$CSRF"), ("confirm", "$ROUND")],
        file: None,
    },
    Route {
        path: "/admin/rounds/{key}/members/{member}/phone",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[
            ("csrf", "$CSRF"),
            ("phone", "139 0000 1111"),
            ("area_code", "0915"),
            ("reason", "单位来函更正"),
        ],
        file: None,
    },
    Route {
        path: "/admin/rounds/{key}/members/{member}/reopen",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[("csrf", "$CSRF"), ("reason", "受访者来电同意受访")],
        file: None,
    },
    Route {
        path: "/admin/rounds/{key}/attempts/{attempt}/answers",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[
            ("csrf", "$CSRF"),
            ("reason", "复核录音"),
            ("a0", "1"),
            ("a1", "2"),
            ("a2", "3"),
            ("a3", "4"),
            ("a4", ""),
        ],
        file: None,
    },
    Route {
        path: "/admin/users",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[
            ("csrf", "$CSRF"),
            ("login", "$NEWLOGIN"),
            ("name", "新用户"),
            ("role", "operator"),
            ("password", ""),
        ],
        file: None,
    },
    // What was command-line only (issue 24).
    Route {
        path: "/admin/tokens",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[
            ("csrf", "$CSRF"),
            ("login", "eval"),
            ("label", "分析"),
            ("days", "30"),
        ],
        file: None,
    },
    Route {
        path: "/admin/tokens/1/revoke",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[("csrf", "$CSRF")],
        file: None,
    },
    Route {
        path: "/admin/rounds/{key}/field",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[
            ("csrf", "$CSRF"),
            ("from", "2022-11-01"),
            ("to", "2022-11-30"),
        ],
        file: None,
    },
    Route {
        path: "/admin/rounds/{key}/purge-contacts",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[("csrf", "$CSRF"), ("confirm", "$ROUND")],
        file: None,
    },
    Route {
        path: "/admin/backup",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[("csrf", "$CSRF")],
        file: None,
    },
    Route {
        path: "/admin/rounds/{key}/onsite",
        allowed: &[Who::Admin],
        kind: Kind::Multipart,
        template: &[("csrf", "$CSRF"), ("skip_invalid", "on"), ("replace", "")],
        file: Some(("ballots.csv", ONSITE_FILE)),
    },
    Route {
        path: "/admin/rounds/{key}/onsite/confirm",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[("csrf", "$CSRF"), ("token", "0123456789abcdef")],
        file: None,
    },
    Route {
        path: "/admin/rounds/{key}/attempts",
        allowed: &[Who::Admin],
        kind: Kind::Multipart,
        template: &[("csrf", "$CSRF"), ("skip_invalid", "on")],
        file: Some(("attempts.csv", ATTEMPTS_FILE)),
    },
    Route {
        path: "/admin/rounds/{key}/attempts/confirm",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[("csrf", "$CSRF"), ("token", "0123456789abcdef")],
        file: None,
    },
    Route {
        path: "/admin/rounds/{key}/exclusions",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[
            ("csrf", "$CSRF"),
            ("operator", "op1"),
            ("unit", "汉滨区公路管理段"),
        ],
        file: None,
    },
    Route {
        path: "/admin/rounds/{key}/exclusions/remove",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[
            ("csrf", "$CSRF"),
            ("operator", "op1"),
            ("unit", "汉滨区公路管理段"),
        ],
        file: None,
    },
    Route {
        path: "/admin/users/{login}/active",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[("csrf", "$CSRF"), ("active", "0")],
        file: None,
    },
    Route {
        path: "/admin/users/{login}/password",
        allowed: &[Who::Admin],
        kind: Kind::Form,
        template: &[("csrf", "$CSRF")],
        file: None,
    },
];

/// Hostile values. Markers (`$…`) are replaced when the request is made.
const VALUES: &[&str] = &[
    "",
    " ",
    "0",
    "1",
    "2",
    "4",
    "5",
    "-1",
    "1.5",
    "1e308",
    "NaN",
    "inf",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999999999",
    "on",
    "true",
    "complete",
    "refused",
    "appointment",
    "wrong_number",
    "partial",
    "Complete",
    "complete\0",
    "2022-11-02",
    "2022-02-30",
    "9999-12-31",
    "+275760-09-13",
    "2099-01-01T10:00",
    "1900-01-01T00:00",
    "262143-12-31T23:59",
    "-0001-01-01T00:00",
    "2022-13-45T25:61",
    "13912345678",
    "0915-3212345",
    "+86 138-0000-1111",
    "0915",
    "op1",
    "op2",
    "victim",
    "nobody",
    "operator",
    "statistician",
    "superuser",
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "..%2f..%2f",
    "%2e%2e/",
    "C:\\fakepath\\x.csv",
    "' OR 1=1 --",
    "'; DROP TABLE users; --",
    "\" OR \"\"=\"",
    "1; SELECT * FROM members",
    "$(reboot)",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "${jndi:ldap://x}",
    "%s%s%s%n",
    "汉滨区教育体育局",
    "🙂",
    "𠀀",
    "\u{202e}evil",
    "ｔ",
    "\u{0}",
    "a\u{0}b",
    "\r\n",
    "\u{feff}",
    "\u{fffd}",
    "$CSRF",
    "$CSRF",
    "$TOKEN",
    "$ROUND",
    "$MEMBER",
    "$ATTEMPT",
    "$LONG",
    "$BIG",
    "$HUGE",
];

const EXTRA_NAMES: &[&str] = &[
    "csrf", "csrf", "round", "token", "outcome", "a0", "a5", "a99", "ms0", "key", "login", "role",
    "reason", "operator", "to", "confirm", "", "a0[]", "名字", "\u{0}", "x\r\ny", "$LONG",
];

/// Path parameters.
const KEYS: &[&str] = &[
    "$ROUND",
    "$ROUND",
    "$ROUND",
    "nope",
    "..",
    ".",
    "%2e%2e",
    "t%00",
    "t%2F..%2F..",
    "%F0%9F%99%82",
    "'%20OR%201=1--",
    "t%20",
    "%E2%80%AEt",
    "T",
    "t%",
];
const MEMBERS: &[&str] = &[
    "$MEMBER",
    "$MEMBER",
    "$MEMBER",
    "0",
    "-1",
    "99999999999999999999",
    "abc",
    "1.5",
    "%00",
    "1e3",
];
const ATTEMPTS: &[&str] = &[
    "$ATTEMPT", "$ATTEMPT", "$ATTEMPT", "0", "-1", "999999", "x", "%2e%2e",
];
/// Never one of the test's own sessions' users (except the administrator's refused
/// self-deactivation).
const LOGINS: &[&str] = &[
    "op2",
    "victim",
    "victim",
    "nobody",
    "..",
    "%2e%2e%2f%2e%2e",
    "%00",
    "op2%00",
    "%E6%B1%89",
    "$SELF",
];

#[derive(Clone, Copy, Debug)]
enum Csrf {
    Valid,
    Missing,
    Wrong,
    /// A wrong token, then the right one.
    Twice,
    Empty,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Enc {
    Form,
    /// Names and values unencoded, raw bytes.
    FormRaw,
    /// Url-encoded with a malformed escape or separator spliced in.
    FormJunk,
    Json,
    TextPlain,
    NoType,
    Multipart,
    MultipartBroken,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Origin {
    Same,
    Evil,
    CrossSite,
}

#[derive(Clone, Debug)]
struct Case {
    route: usize,
    /// Someone allowed on the route, or anyone.
    allowed_pick: Index,
    any_who: Who,
    use_allowed: bool,
    path_picks: [Index; 2],
    /// Start from the route's plausible body (mutated), or from nothing.
    template: bool,
    /// Per template field: 0 keep, 1 drop, 2 replace the value.
    mutations: Vec<(u8, &'static str)>,
    extras: Vec<(Index, &'static str, &'static str)>,
    csrf: Csrf,
    /// For plain forms, and for uploads.
    enc: (Enc, Enc),
    file: Option<(&'static str, Vec<&'static str>)>,
    junk: (Index, &'static str),
    origin: Origin,
    pick: Index,
}

const FILE_NAMES: &[&str] = &[
    "units.csv",
    "roster.xlsx",
    "survey.toml",
    "名单.tsv",
    "../../etc/passwd",
    "C:\\fakepath\\名单.csv",
    "..\\..\\x.csv",
    "",
    "x.exe",
    "a\u{0}.csv",
    "\".csv",
];
const FILE_PARTS: &[&str] = &[
    UNITS_FILE,
    ROSTER_FILE,
    "$SURVEY",
    "参评单位,姓名,联系电话\n",
    "汉滨区教育体育局,",
    "张三,13912345678\n",
    "\u{feff}",
    "\u{0}",
    "PK\u{3}\u{4}",
    "\u{fffd}\u{fffd}",
    "=cmd|' /C calc'!A0,",
    "[[dimensions]]\nkey = \"x\"\n",
    "title = 1\n",
    "\"",
    "\n",
    "$BIG",
];
const JUNK: &[&str] = &[
    "%", "%zz", "%FF%FE", "&&", "==", "%00", "+", "%E6%B1", ";", "&=&", "%%",
];

fn case() -> impl Strategy<Value = Case> {
    // Plain forms mostly url-encoded, uploads mostly multipart; each sometimes anything.
    let enc_form = prop_oneof![
        14 => Just(Enc::Form),
        1 => Just(Enc::FormRaw),
        2 => Just(Enc::FormJunk),
        1 => Just(Enc::Json),
        1 => Just(Enc::TextPlain),
        1 => Just(Enc::NoType),
        1 => Just(Enc::Multipart),
    ];
    let enc_multipart = prop_oneof![
        8 => Just(Enc::Multipart),
        3 => Just(Enc::MultipartBroken),
        1 => Just(Enc::Form),
        1 => Just(Enc::Json),
        1 => Just(Enc::NoType),
    ];
    let enc = (enc_form, enc_multipart);
    let csrf = prop_oneof![
        12 => Just(Csrf::Valid),
        1 => Just(Csrf::Missing),
        1 => Just(Csrf::Wrong),
        1 => Just(Csrf::Twice),
        1 => Just(Csrf::Empty),
    ];
    let origin = prop_oneof![
        30 => Just(Origin::Same),
        1 => Just(Origin::Evil),
        1 => Just(Origin::CrossSite),
    ];
    let file = prop::option::weighted(
        0.9,
        (
            prop::sample::select(FILE_NAMES),
            prop::collection::vec(prop::sample::select(FILE_PARTS), 0..6),
        ),
    );
    (
        (
            0..ROUTES.len(),
            any::<Index>(),
            prop::sample::select(&WHO[..]),
            prop::bool::weighted(0.85),
            any::<[Index; 2]>(),
            prop::bool::weighted(0.6),
        ),
        prop::collection::vec(
            (
                prop_oneof![8 => Just(0u8), 1 => Just(1u8), 2 => Just(2u8)],
                prop::sample::select(VALUES),
            ),
            16,
        ),
        prop::collection::vec(
            (
                any::<Index>(),
                prop::sample::select(EXTRA_NAMES),
                prop::sample::select(VALUES),
            ),
            0..5,
        ),
        (csrf, enc, file),
        (
            (any::<Index>(), prop::sample::select(JUNK)),
            origin,
            any::<Index>(),
        ),
    )
        .prop_map(
            |(
                (route, allowed_pick, any_who, use_allowed, path_picks, template),
                mutations,
                extras,
                (csrf, enc, file),
                (junk, origin, pick),
            )| Case {
                route,
                allowed_pick,
                any_who,
                use_allowed,
                path_picks,
                template,
                mutations,
                extras,
                csrf,
                enc,
                file,
                junk,
                origin,
                pick,
            },
        )
}

/// Where the test stands: the server, the sessions, the phase.
struct Harness {
    sp: Sheping,
    url: String,
    db_path: String,
    sessions: RefCell<BTreeMap<Who, Session>>,
    /// A connection of the test's own to the server's database.
    conn: common::db::Db,
    locked: bool,
    sent: RefCell<usize>,
    statuses: RefCell<BTreeMap<(usize, u16), usize>>,
}

impl Harness {
    fn session(&self, who: Who) -> Option<Session> {
        if who == Who::Anon {
            return None;
        }
        let mut s = self.sessions.borrow_mut();
        Some(
            s.entry(who)
                .or_insert_with(|| sign_in(&self.url, login_of(who), PASSWORD))
                .clone(),
        )
    }

    /// Forgets a session that the request may have ended (sign-out, sign-in).
    fn forget(&self, who: Who) {
        self.sessions.borrow_mut().remove(&who);
    }

    fn ids(&self, sql: &str) -> Vec<String> {
        self.conn
            .rows(sql, [])
            .unwrap()
            .into_iter()
            .map(|v| match v.into_iter().next().unwrap() {
                Val::Int(i) => i.to_string(),
                Val::Text(t) => t,
                other => format!("{other:?}"),
            })
            .collect()
    }
}

fn pick_from(list: &[String], i: &Index, fallback: &str) -> String {
    if list.is_empty() {
        fallback.to_string()
    } else {
        list[i.index(list.len())].clone()
    }
}

/// What a request needs to resolve the markers.
struct Ctx {
    csrf: String,
    signin: String,
    token: String,
    member: String,
    attempt: String,
    is_login: bool,
    new_key: String,
    new_login: String,
}

fn resolve(v: &str, ctx: &Ctx) -> String {
    match v {
        "$CSRF" => ctx.csrf.clone(),
        "$SIGNIN" => ctx.signin.clone(),
        "$TOKEN" => ctx.token.clone(),
        "$ROUND" => ROUND.to_string(),
        "$MEMBER" => ctx.member.clone(),
        "$ATTEMPT" => ctx.attempt.clone(),
        // The real password only where it cannot change anything (never as the current
        // password of a password change).
        "$PASSWORD" if ctx.is_login => PASSWORD.to_string(),
        "$PASSWORD" => "not-the-password".to_string(),
        "$NEWKEY" => ctx.new_key.clone(),
        "$NEWLOGIN" => ctx.new_login.clone(),
        "$LONG" => "汉".repeat(3000),
        "$BIG" => "x".repeat(64 * 1024),
        // Beyond the 2 MiB body limit of plain forms, within the uploads' 32 MiB.
        "$HUGE" => "y".repeat(2 * 1024 * 1024 + 10),
        "$SURVEY" => include_str!("../../surveys/default.toml").to_string(),
        other => other.to_string(),
    }
}

fn multipart(
    boundary: &str,
    fields: &[(String, String)],
    file: Option<(String, Vec<u8>)>,
) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n")
                .as_bytes(),
        );
        b.extend_from_slice(v.as_bytes());
        b.extend_from_slice(b"\r\n");
    }
    if let Some((name, bytes)) = file {
        b.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(&bytes);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

/// Anything in an answer that would tell an attacker about the server's insides.
fn leak(text: &str, db_path: &str) -> Option<String> {
    let lower = text.to_lowercase();
    for m in [
        "rusqlite",
        "sqlite",
        "panicked",
        "src/",
        ".rs:",
        "thread '",
        "stack backtrace",
        "rust_backtrace",
        "target/debug",
        "/home/",
        "/root/",
        ".cargo/registry",
        "root:x:0:0",
    ] {
        if lower.contains(m) {
            return Some(m.to_string());
        }
    }
    for m in [db_path, env!("CARGO_MANIFEST_DIR")] {
        if text.contains(m) {
            return Some(m.to_string());
        }
    }
    None
}

fn run_case(h: &Harness, c: &Case) -> Result<(), TestCaseError> {
    let route = &ROUTES[c.route];
    let who = if c.use_allowed {
        route.allowed[c.allowed_pick.index(route.allowed.len())]
    } else {
        c.any_who
    };
    let session = h.session(who);
    let is_login = route.path == "/login";

    // The sign-in form's own token and cookie.
    let (signin_cookie, signin) = if is_login {
        let page = raw_http::get(&h.url, "/login", None);
        (
            page.set_cookie("sheping_signin"),
            raw_http::input_value(&page.text(), "token").unwrap_or_default(),
        )
    } else {
        (None, String::new())
    };
    let members = h.ids("SELECT id FROM members ORDER BY id");
    let attempts = h.ids("SELECT id FROM attempts ORDER BY id");
    let tokens = h.ids(
        "SELECT q.claim_token FROM queue q JOIN users u ON u.id = q.operator_id
         WHERE u.login = 'op1' AND q.claim_token IS NOT NULL",
    );
    let n = *h.sent.borrow();
    let ctx = Ctx {
        csrf: session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default(),
        signin,
        token: pick_from(&tokens, &c.pick, "no-claim-held"),
        member: pick_from(&members, &c.pick, "1"),
        attempt: pick_from(&attempts, &c.pick, "1"),
        is_login,
        new_key: format!("k{n}"),
        new_login: format!("user{n}"),
    };

    // The path.
    let mut path = route.path.to_string();
    let raw_param = |list: &[&'static str], i: usize| -> String {
        let v = list[c.path_picks[i].index(list.len())];
        match v {
            "$ROUND" => ROUND.to_string(),
            "$MEMBER" => ctx.member.clone(),
            "$ATTEMPT" => ctx.attempt.clone(),
            "$SELF" if route.path.ends_with("/active") => "admin".to_string(),
            "$SELF" => "victim".to_string(),
            other => other.to_string(),
        }
    };
    if path.contains("{key}") {
        path = path.replace("{key}", &raw_param(KEYS, 0));
    }
    if path.contains("{member}") {
        path = path.replace("{member}", &raw_param(MEMBERS, 1));
    }
    if path.contains("{attempt}") {
        path = path.replace("{attempt}", &raw_param(ATTEMPTS, 1));
    }
    if path.contains("{login}") {
        path = path.replace("{login}", &raw_param(LOGINS, 0));
    }

    // The fields.
    let mut fields: Vec<(String, String)> = Vec::new();
    if c.template {
        for (i, (k, v)) in route.template.iter().enumerate() {
            if *k == "csrf" {
                continue;
            }
            let (action, value) = c.mutations[i % c.mutations.len()];
            match action {
                0 => fields.push((k.to_string(), resolve(v, &ctx))),
                1 => {}
                _ => fields.push((k.to_string(), resolve(value, &ctx))),
            }
        }
    }
    for (at, name, value) in &c.extras {
        let at = at.index(fields.len() + 1);
        fields.insert(at, (resolve(name, &ctx), resolve(value, &ctx)));
    }
    let csrf_at = c.pick.index(fields.len() + 1);
    match c.csrf {
        Csrf::Valid => fields.insert(csrf_at, ("csrf".into(), ctx.csrf.clone())),
        Csrf::Missing => {}
        Csrf::Wrong => fields.insert(csrf_at, ("csrf".into(), "0".repeat(64))),
        Csrf::Twice => {
            fields.insert(csrf_at, ("csrf".into(), ctx.csrf.clone()));
            fields.insert(csrf_at, ("csrf".into(), "f".repeat(64)));
        }
        Csrf::Empty => fields.insert(csrf_at, ("csrf".into(), String::new())),
    }
    // While the round is open it stays open: the lock form never confirms it.
    if !h.locked && route.path.ends_with("/lock") {
        for (k, v) in fields.iter_mut() {
            if k == "confirm" && v.trim() == ROUND {
                v.push('x');
            }
        }
    }
    let file = if route.kind == Kind::Multipart {
        match (&c.file, route.file) {
            (Some((name, parts)), _) if !c.template || parts.len() > 2 => Some((
                name.to_string(),
                parts
                    .iter()
                    .map(|p| resolve(p, &ctx))
                    .collect::<String>()
                    .into_bytes(),
            )),
            (_, Some((name, content))) if c.template => {
                Some((name.to_string(), resolve(content, &ctx).into_bytes()))
            }
            _ => None,
        }
    } else {
        None
    };

    // The body and its content type.
    let boundary = "----shepingfuzz7MA4YWxkTrZu0gW";
    let enc = match route.kind {
        Kind::Form => c.enc.0,
        Kind::Multipart => c.enc.1,
    };
    let (content_type, body): (Option<String>, Vec<u8>) = match enc {
        Enc::Form => (
            Some("application/x-www-form-urlencoded".into()),
            fields
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k.as_bytes()), encode(v.as_bytes())))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes(),
        ),
        Enc::FormRaw | Enc::TextPlain | Enc::NoType => (
            match enc {
                Enc::FormRaw => Some("application/x-www-form-urlencoded".into()),
                Enc::TextPlain => Some("text/plain; charset=utf-8".into()),
                _ => None,
            },
            fields
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes(),
        ),
        Enc::FormJunk => {
            let mut s = fields
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k.as_bytes()), encode(v.as_bytes())))
                .collect::<Vec<_>>()
                .join("&");
            let mut at = c.junk.0.index(s.len() + 1);
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.insert_str(at, c.junk.1);
            (
                Some("application/x-www-form-urlencoded; charset=gbk".into()),
                s.into_bytes(),
            )
        }
        Enc::Json => (
            Some("application/json".into()),
            serde_json::to_vec(&fields.iter().cloned().collect::<BTreeMap<_, _>>()).unwrap(),
        ),
        Enc::Multipart => (
            Some(format!("multipart/form-data; boundary={boundary}")),
            multipart(boundary, &fields, file),
        ),
        Enc::MultipartBroken => {
            let mut body = multipart(boundary, &fields, file);
            let variant = c.junk.0.index(4);
            let ct = match variant {
                0 => {
                    body.truncate(c.pick.index(body.len() + 1));
                    format!("multipart/form-data; boundary={boundary}")
                }
                1 => "multipart/form-data; boundary=something-else".to_string(),
                2 => "multipart/form-data".to_string(),
                _ => {
                    let at = c.pick.index(body.len() + 1);
                    body.splice(at..at, c.junk.1.bytes().chain(*b"\r\n--"));
                    format!("multipart/form-data; boundary=\"{boundary}\"")
                }
            };
            (Some(ct), body)
        }
    };

    let mut cookie = session
        .as_ref()
        .map(|s| s.cookie.clone())
        .unwrap_or_default();
    if let Some(sc) = &signin_cookie {
        if !cookie.is_empty() {
            cookie.push_str("; ");
        }
        cookie.push_str(&format!("sheping_signin={sc}"));
    }
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if !cookie.is_empty() {
        headers.push(("Cookie", &cookie));
    }
    if let Some(ct) = &content_type {
        headers.push(("Content-Type", ct));
    }
    match c.origin {
        Origin::Same => {}
        Origin::Evil => headers.push(("Origin", "http://evil.example")),
        Origin::CrossSite => headers.push(("Sec-Fetch-Site", "cross-site")),
    }
    let resp: Resp = send(&h.url, "POST", path.as_bytes(), &headers, &body)
        .map_err(|e| TestCaseError::fail(format!("POST {path}: the server did not answer: {e}")))?;
    *h.sent.borrow_mut() += 1;
    *h.statuses
        .borrow_mut()
        .entry((c.route, resp.status))
        .or_default() += 1;
    if is_login || route.path == "/logout" {
        h.forget(who);
    }

    let text = resp.text();
    let shown = || text.chars().take(400).collect::<String>();
    prop_assert!(
        resp.status < 500,
        "POST {path} as {who:?} ({enc:?}, {} bytes): {} {}",
        body.len(),
        resp.status,
        shown()
    );
    // The backup download is the database itself (its header names SQLite): not an error
    // page, so not checked for what error pages must not show.
    let backup_file = resp
        .header("content-disposition")
        .is_some_and(|d| d.contains("sheping-backup-"));
    if !backup_file && let Some(m) = leak(&text, &h.db_path) {
        prop_assert!(
            false,
            "POST {path} as {who:?}: the answer shows `{m}`: {}",
            shown()
        );
    }
    if let Some(loc) = resp.header("location")
        && let Some(m) = leak(loc, &h.db_path)
    {
        prop_assert!(false, "POST {path}: Location shows `{m}`: {loc}");
    }
    // The documented refusals.
    if c.origin != Origin::Same {
        prop_assert_eq!(resp.status, 403, "cross-site POST {} as {:?}", path, who);
    } else if !route.allowed.contains(&who) {
        if who == Who::Anon {
            prop_assert_eq!(resp.status, 303, "anonymous POST {}", path);
            let loc = resp.header("location").unwrap_or("");
            prop_assert!(loc.starts_with("/login?next="), "{}", loc);
        } else {
            prop_assert_eq!(resp.status, 403, "POST {} as {:?}: {}", path, who, shown());
        }
    }
    if n.is_multiple_of(40) {
        let up = raw_http::get(&h.url, "/healthz", None);
        prop_assert_eq!(up.status, 200);
    }
    Ok(())
}

fn fuzz(h: &Harness, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        rng_seed: fuzz::seed(),
        max_shrink_iters: 64,
        ..Config::default()
    });
    if let Err(e) = runner.run(&case(), |c| run_case(h, &c)) {
        panic!("{e}");
    }
}

/// Every page, as each role, after the fuzzing: whatever was stored must still render.
fn pages_still_render(h: &Harness) {
    let members = h.ids("SELECT id FROM members ORDER BY id");
    let rounds = h.ids("SELECT key FROM rounds ORDER BY id");
    let mut paths: Vec<String> = [
        "/",
        "/console",
        "/account/password",
        "/call",
        "/call/list",
        "/progress",
        "/audit",
        "/audit?action=admin.&round=t",
        "/results",
        "/admin",
        "/admin/users",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for key in &rounds {
        let k = encode(key.as_bytes());
        for p in [
            format!("/call?round={k}"),
            format!("/rounds/{k}/progress"),
            format!("/rounds/{k}/progress/live"),
            format!("/rounds/{k}/results"),
            format!("/admin/rounds/{k}"),
            format!("/admin/rounds/{k}/members"),
            format!("/api/v1/rounds/{k}/results"),
        ] {
            paths.push(p);
        }
    }
    for m in &members {
        paths.push(format!("/admin/rounds/{ROUND}/members/{m}"));
    }
    for who in WHO {
        let s = h.session(who);
        for p in &paths {
            let r = raw_http::get(&h.url, p, s.as_ref().map(|s| s.cookie.as_str()));
            let text = r.text();
            assert!(
                r.status < 500,
                "GET {p} as {who:?} after the fuzzing: {} {}",
                r.status,
                text.chars().take(400).collect::<String>()
            );
            if let Some(m) = leak(&text, &h.db_path) {
                panic!("GET {p} as {who:?}: shows `{m}`");
            }
        }
    }
}

#[test]
fn hostile_forms_never_break_the_server_or_the_store() {
    let started = std::time::Instant::now();
    let sp = fixture();
    let out = sp
        .command()
        .env("PW", PASSWORD)
        .args([
            "user",
            "add",
            "--login",
            "victim",
            "--name",
            "被操作的用户",
            "--role",
            "operator",
            "--password-env",
            "PW",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let server = WebServer::start(
        &sp,
        &[
            ("SHEPING_SIGNIN_MAX_FAILURES", "1000000"),
            ("SHEPING_SIGNIN_MAX_IP_FAILURES", "1000000"),
        ],
    );
    let mut h = Harness {
        url: server.url.clone(),
        db_path: sp.db_arg().to_string_lossy().into_owned(),
        conn: sp.sql(),
        sp,
        sessions: RefCell::default(),
        locked: false,
        sent: RefCell::new(0),
        statuses: RefCell::default(),
    };
    // op1 holds a contact, so the call forms have a claim to work on.
    let op = h.session(Who::Operator).unwrap();
    let r = send(
        &h.url,
        "POST",
        b"/call/next",
        &[
            ("Cookie", &op.cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &raw_http::form(&[("csrf", &op.csrf), ("round", ROUND)]),
    )
    .unwrap();
    assert_eq!(r.status, 303);

    // Inputs the fuzzing found once, kept as fixed cases: a number correction for a member id
    // that does not exist (or is not in the round) answered 500 from a failed database lookup.
    let admin = h.session(Who::Admin).unwrap();
    for id in ["-1", "0", "99999999", "9223372036854775807"] {
        let r = send(
            &h.url,
            "POST",
            format!("/admin/rounds/{ROUND}/members/{id}/phone").as_bytes(),
            &[
                ("Cookie", &admin.cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &raw_http::form(&[
                ("csrf", &admin.csrf),
                ("phone", "139 0000 1111"),
                ("area_code", "0915"),
                ("reason", "单位来函更正"),
            ]),
        )
        .unwrap();
        assert_eq!(r.status, 404, "phone of member {id}: {}", r.text());
        assert!(r.text().contains("没有代表"), "{}", r.text());
    }

    fuzz(&h, CASES);
    let open_phase = *h.sent.borrow();
    pages_still_render(&h);

    // The same on the locked round: every write path refuses, nothing breaks.
    let admin = h.session(Who::Admin).unwrap();
    let r = send(
        &h.url,
        "POST",
        format!("/admin/rounds/{ROUND}/lock").as_bytes(),
        &[
            ("Cookie", &admin.cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &raw_http::form(&[("csrf", &admin.csrf), ("confirm", ROUND)]),
    )
    .unwrap();
    assert_eq!(r.status, 303, "{}", r.text());
    h.locked = true;
    let attempts_locked = h.sp.count("SELECT COUNT(*) FROM attempts");
    let members_locked = h.sp.count("SELECT COUNT(*) FROM members");
    fuzz(&h, LOCKED_CASES);
    assert_eq!(h.sp.count("SELECT COUNT(*) FROM attempts"), attempts_locked);
    let round_members = h.sp.count(
        "SELECT COUNT(*) FROM members m JOIN units u ON u.id = m.unit_id JOIN rounds r ON r.id = u.round_id WHERE r.key = 't'",
    );
    assert!(round_members <= members_locked);
    pages_still_render(&h);

    // The server is still up, and the store is sound.
    assert_eq!(raw_http::get(&h.url, "/healthz", None).status, 200);
    let mut server = server;
    assert!(server.child.try_wait().unwrap().is_none(), "server exited");
    drop(server);
    if !h.sp.is_postgres() {
        let integrity: String =
            h.sp.sqlite()
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
        assert_eq!(integrity, "ok");
    }
    let check = h.sp.run(&["check", "--json"]);
    assert!(
        check.status.success(),
        "sheping check: {}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // The fuzzing reached the routes' work, not only their refusals.
    let statuses = h.statuses.borrow();
    let reached = |route: &str, ok: &[u16]| -> usize {
        let i = ROUTES.iter().position(|r| r.path == route).unwrap();
        statuses
            .iter()
            .filter(|((r, s), _)| *r == i && ok.contains(s))
            .map(|(_, n)| n)
            .sum()
    };
    for (route, ok) in [
        ("/call/record", &[200u16, 409, 422][..]),
        ("/admin/rounds/{key}/members/{member}/phone", &[303, 422]),
        ("/admin/users", &[200, 409, 422]),
        ("/admin/rounds/{key}/roster", &[200, 422]),
        ("/admin/rounds", &[303, 422]),
        ("/admin/rounds/{key}/onsite", &[200, 422]),
        ("/admin/rounds/{key}/exclusions", &[200, 303, 422]),
    ] {
        assert!(reached(route, ok) > 0, "{route}: {statuses:?}");
    }
    eprintln!(
        "{} hostile requests ({open_phase} on the open round) in {:.1}s; (route, status) → count: {statuses:?}",
        *h.sent.borrow(),
        started.elapsed().as_secs_f64()
    );
}
