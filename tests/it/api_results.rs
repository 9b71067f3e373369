//! The results API over real HTTP (`sheping serve` on a random loopback port): bearer tokens
//! and roles, JSON errors, the same document as the CLI, per-unit results, exports, the
//! session cookie, and the OpenAPI description.

use crate::common;
use crate::common::results_fixture;

use common::browser::{Web, WebServer};
use common::{Sheping, add_user, api_token};
use reqwest::StatusCode;
use serde_json::Value;

use results_fixture::{ROUND, UNITS, build_in};

struct Api {
    sp: Sheping,
    server: WebServer,
    client: reqwest::Client,
    eval: String,
    stat: String,
    admin: String,
    op: String,
}

fn start() -> Api {
    let sp = Sheping::new();
    build_in(&sp);
    add_user(&sp, "eval", "evaluator");
    add_user(&sp, "stat", "statistician");
    add_user(&sp, "admin", "admin");
    let eval = api_token(&sp, "eval");
    let stat = api_token(&sp, "stat");
    let admin = api_token(&sp, "admin");
    let op = api_token(&sp, "op0");
    let server = WebServer::start(&sp, &[]);
    Api {
        sp,
        server,
        client: reqwest::Client::new(),
        eval,
        stat,
        admin,
        op,
    }
}

impl Api {
    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.server.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    async fn json(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let r = self.get(path, token).await;
        let status = r.status();
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        (status, r.json().await.unwrap())
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn without_time(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("computed_at");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_get_the_same_document_as_the_cli() {
    let api = start();
    let path = format!("/api/v1/rounds/{ROUND}/results");
    let cli = without_time(api.sp.json(&["results", "--round", ROUND, "--json"]));
    // Evaluators get operators as anonymous codes in login order (issue 17), the rest as is.
    let mut anonymous = cli.clone();
    {
        let q = &mut anonymous["quality"];
        let mut logins: Vec<String> = q["operator_effect"]["operators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["operator"].as_str().unwrap().to_string())
            .collect();
        logins.sort();
        assert!(logins.len() >= 2, "{logins:?}");
        let code = |v: &mut Value| {
            let k = logins.iter().position(|l| v == l.as_str()).unwrap() as u8;
            *v = Value::from(format!("话务员{}", (b'A' + k) as char));
        };
        for o in q["operator_effect"]["operators"].as_array_mut().unwrap() {
            code(&mut o["operator"]);
        }
        for o in q["operator_effect"]["flagged_operators"]
            .as_array_mut()
            .unwrap()
        {
            code(o);
        }
        for x in q["suspicious"].as_array_mut().unwrap() {
            code(&mut x["operator"]);
        }
    }
    for (t, expected) in [
        (&api.eval, &anonymous),
        (&api.stat, &cli),
        (&api.admin, &cli),
    ] {
        let r = api.get(&path, Some(t)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            &without_time(v),
            expected,
            "same stored seed, same attempts: same document"
        );
    }
    let (_, v) = api.json(&path, Some(&api.eval)).await;
    // Unit A, worked out by hand: (100 + 80 + 68)/3 on the phone, (100 + 80 + 80)/3 on site.
    let a = &v["units"][0];
    assert_eq!(a["unit"], UNITS[0]);
    let mean = (100.0 + 80.0 + 68.0) / 3.0;
    assert!((a["phone"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!((a["social"]["points"].as_f64().unwrap() - (mean + 260.0 / 3.0) / 10.0).abs() < 1e-9);
    assert_eq!(a["dispositions"]["I"], 3);
    assert_eq!(a["rates"]["rr1"], 0.6);
    assert_eq!(v["units"][2]["phone"]["cronbach_alpha"], Value::Null);
    let stored = api
        .sp
        .count("SELECT CAST(bootstrap_seed AS BIGINT) FROM round_results");
    assert_eq!(v["bootstrap_seed"].as_i64(), Some(stored));
    // bottom_k is a parameter.
    let (s, v) = api
        .json(&format!("{path}?bottom_k=1"), Some(&api.eval))
        .await;
    assert_eq!((s.as_u16(), v["bottom_k"].as_u64()), (200, Some(1)));
    // B (ranked first) is rarely last; in every replicate some unit is last.
    assert!(v["units"][1]["social"]["p_bottom"].as_f64().unwrap() < 0.5);
    let total: f64 = [0, 1, 4]
        .iter()
        .map(|&i| v["units"][i]["social"]["p_bottom"].as_f64().unwrap())
        .sum();
    assert!(total >= 1.0 - 1e-12);
    let (s, v) = api
        .json(&format!("{path}?bottom_k=0"), Some(&api.eval))
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unit_results_by_name_or_code() {
    let api = start();
    let (_, round) = api
        .json(&format!("/api/v1/rounds/{ROUND}/results"), Some(&api.eval))
        .await;
    for key in [enc(UNITS[2]), "U2".to_string()] {
        let (s, v) = api
            .json(
                &format!("/api/v1/rounds/{ROUND}/units/{key}/results"),
                Some(&api.eval),
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(
            v["unit"], round["units"][2],
            "the unit's object as in the round's document"
        );
        assert_eq!(v["round"], ROUND);
        assert_eq!(v["bootstrap_seed"], round["bootstrap_seed"]);
        assert_eq!(
            v["unit"]["flags"],
            serde_json::json!(["onsite_missing", "low_response"])
        );
    }
    let (s, v) = api
        .json(
            &format!(
                "/api/v1/rounds/{ROUND}/units/{}/results",
                enc("汉滨区不存在局")
            ),
            Some(&api.eval),
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (s, v) = api
        .json("/api/v1/rounds/1999/results", Some(&api.eval))
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_unknown_revoked_and_expired_tokens_get_401_operators_403() {
    let api = start();
    let path = format!("/api/v1/rounds/{ROUND}/results");
    // No token, no session.
    let r = api.get(&path, None).await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    // A made-up token, and a malformed header.
    let (s, _) = api
        .json(
            &path,
            Some("shp_0000000000000000000000000000000000000000000000000000000000000000"),
        )
        .await;
    assert_eq!(s, 401);
    let r = api
        .client
        .get(format!("{}{path}", api.server.url))
        .header("authorization", "Basic ZXZhbDp4")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // An operator's valid token: 403, and the refusal is in the audit log.
    let (s, v) = api.json(&path, Some(&api.op)).await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(
        api.sp.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'api.forbidden' AND actor = 'api:op0'"
        ),
        1
    );
    let (s, _) = api.json("/api/v1/rounds", Some(&api.op)).await;
    assert_eq!(s, 403);
    // Only the hash is stored; the token was used just now.
    let stored: Vec<String> = {
        let conn = api.sp.sql();
        let mut stmt = conn.prepare("SELECT token_hash FROM api_tokens").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(stored.len(), 4);
    for t in [&api.eval, &api.stat, &api.admin, &api.op] {
        assert!(!stored.contains(t));
        assert!(stored.contains(&sheping::results::api_token_hash(t)));
    }
    assert_eq!(
        api.sp
            .count("SELECT COUNT(*) FROM api_tokens WHERE last_used_at IS NOT NULL"),
        1
    );

    // Revoked.
    let list = api.sp.json(&["token", "list", "--json"]);
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["login"] == "stat")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    api.sp.ok(&["token", "revoke", &id.to_string()]);
    let (s, v) = api.json(&path, Some(&api.stat)).await;
    assert_eq!(s, 401);
    assert!(v["error"]["message"].as_str().unwrap().contains("吊销"));
    // Expired.
    let (old, new) = sheping::results::new_api_token(
        "eval",
        "old",
        Some(chrono::Utc::now() - chrono::Duration::days(1)),
    );
    api.sp
        .with_store(|store| store.add_api_token(&new, "test"))
        .unwrap();
    let (s, v) = api.json(&path, Some(&old)).await;
    assert_eq!(s, 401);
    assert!(v["error"]["message"].as_str().unwrap().contains("过期"));
    // A disabled user's token.
    api.sp.ok(&["user", "disable", "admin"]);
    let (s, _) = api.json(&path, Some(&api.admin)).await;
    assert_eq!(s, 401);
    // The evaluator's token still works.
    let (s, _) = api.json(&path, Some(&api.eval)).await;
    assert_eq!(s, 200);
    let audit = api.sp.count(
        "SELECT COUNT(*) FROM audit_log WHERE action IN ('api_token.create', 'api_token.revoke')",
    );
    assert_eq!(audit, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_cookie_works_too() {
    let api = start();
    let web = Web::signed_in(&api.server.url, "eval").await;
    let page = web.get(&format!("/api/v1/rounds/{ROUND}/results")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let v: Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(v["units"].as_array().unwrap().len(), 5);
    let list = web.get("/api/v1/rounds").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains(ROUND));
}

#[tokio::test(flavor = "multi_thread")]
async fn statisticians_download_exports_evaluators_may_not() {
    let api = start();
    let path = format!("/api/v1/rounds/{ROUND}/exports/responses");
    let r = api.get(&path, Some(&api.stat)).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let cd = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cd.starts_with("attachment;") && cd.contains("2022-responses.csv"),
        "{cd}"
    );
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert_eq!(text.lines().count(), 10, "header and 9 interviews");
    let conn = api.sp.sql();
    let mut stmt = conn.prepare("SELECT name, phone FROM members").unwrap();
    let personal: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (name, phone) in &personal {
        assert!(!text.contains(name.as_str()) && !text.contains(phone.as_str()));
    }
    let r = api
        .get(
            &format!("/api/v1/rounds/{ROUND}/exports/scores?format=xlsx"),
            Some(&api.admin),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().starts_with(b"PK"));
    let r = api
        .get(
            &format!("/api/v1/rounds/{ROUND}/exports/spss"),
            Some(&api.stat),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("VALUE LABELS"));
    let (s, _) = api.json(&path, Some(&api.eval)).await;
    assert_eq!(s, 403);
    let (s, _) = api
        .json(
            &format!("/api/v1/rounds/{ROUND}/exports/names"),
            Some(&api.stat),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = api
        .json(&format!("{path}?format=pdf"), Some(&api.stat))
        .await;
    assert_eq!(s, 400);
    let logged = api.sp.count("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'export.%' AND actor IN ('api:stat', 'api:admin')");
    assert_eq!(logged, 3);
    drop(stmt);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_the_endpoints() {
    let api = start();
    let (s, v) = api.json("/api/v1/openapi.json", None).await;
    assert_eq!(s, 200, "public, no token needed");
    assert_eq!(v["openapi"], "3.1.0");
    for p in [
        "/api/v1/rounds/{key}/results",
        "/api/v1/rounds/{key}/units/{unit}/results",
        "/api/v1/rounds/{key}/exports/{kind}",
    ] {
        assert!(v["paths"][p]["get"]["responses"]["200"].is_object(), "{p}");
        assert!(v["paths"][p]["get"]["responses"]["401"].is_object(), "{p}");
    }
    assert_eq!(
        v["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    // Every $ref resolves, and the Unit schema lists the fields a unit has.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        out.push(x.as_str().unwrap().to_string());
                    }
                    refs(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&v, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(v["components"]["schemas"][name].is_object(), "{r}");
    }
    let (_, doc) = api
        .json(&format!("/api/v1/rounds/{ROUND}/results"), Some(&api.eval))
        .await;
    let unit_props = v["components"]["schemas"]["Unit"]["properties"]
        .as_object()
        .unwrap();
    for key in doc["units"][0].as_object().unwrap().keys() {
        assert!(unit_props.contains_key(key), "Unit schema lacks {key}");
    }
    let results_props = v["components"]["schemas"]["Results"]["properties"]
        .as_object()
        .unwrap();
    for key in doc.as_object().unwrap().keys() {
        assert!(
            results_props.contains_key(key),
            "Results schema lacks {key}"
        );
    }
    let _ = api.sp.dir.path();
    assert!(api.sp.with_store(|store| store.api_tokens()).unwrap().len() == 4);
}

/// Every ISO 8601 date-time in `text` (`YYYY-MM-DDTHH:MM…` with what follows it: seconds,
/// fraction, `Z` or an offset).
fn iso_times(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let pattern = b"dddd-dd-ddTdd:dd";
    let mut out = Vec::new();
    let mut i = 0;
    while i + pattern.len() <= b.len() {
        let matches = pattern.iter().enumerate().all(|(k, p)| match p {
            b'd' => b[i + k].is_ascii_digit(),
            c => b[i + k] == *c,
        });
        if matches {
            let end = (i..b.len())
                .find(|&j| !(b[j].is_ascii_digit() || b":+-.TZ".contains(&b[j])))
                .unwrap_or(b.len());
            out.push(text[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn times_are_the_rounds_clock_with_its_offset() {
    use chrono::{DateTime, NaiveDateTime, Utc};
    let api = start();
    let before = Utc::now() - chrono::Duration::seconds(1);
    let (s, doc) = api
        .json(&format!("/api/v1/rounds/{ROUND}/results"), Some(&api.eval))
        .await;
    assert_eq!(s, 200);
    let (s, unit) = api
        .json(
            &format!("/api/v1/rounds/{ROUND}/units/{}/results", enc(UNITS[0])),
            Some(&api.eval),
        )
        .await;
    assert_eq!(s, 200);
    let web = Web::signed_in(&api.server.url, "eval").await;
    let page = web.get(&format!("/rounds/{ROUND}/results")).await;
    assert_eq!(page.status, 200);
    let after = Utc::now() + chrono::Duration::seconds(1);
    let shanghai = chrono_tz::Asia::Shanghai;

    // JSON: the same keys; every time RFC 3339 with the round's offset, none in bare UTC.
    for v in [&doc, &unit] {
        let at = v["computed_at"].as_str().unwrap();
        assert!(at.ends_with("+08:00"), "{at}");
        let t = DateTime::parse_from_rfc3339(at).unwrap();
        assert_eq!(t.offset().local_minus_utc(), 8 * 3600, "{at}");
        let t = t.with_timezone(&Utc);
        assert!(
            before <= t && t <= after,
            "{at} is not the time of the request"
        );
        let text = v.to_string();
        let times = iso_times(&text);
        assert!(!times.is_empty());
        for x in &times {
            assert!(x.ends_with("+08:00"), "{x} in {text}");
        }
    }

    // The page: the same instant in Beijing time, as every other page writes a time.
    let shown = page
        .body
        .split("计算于 ")
        .nth(1)
        .unwrap_or_else(|| panic!("no 计算于 in {}", page.body))
        .split('<')
        .next()
        .unwrap()
        .trim();
    let local = NaiveDateTime::parse_from_str(shown, "%Y-%m-%d %H:%M:%S")
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    let t = local
        .and_local_timezone(shanghai)
        .unwrap()
        .with_timezone(&Utc);
    assert!(before <= t && t <= after, "{shown} is not Beijing time now");
    assert!(
        iso_times(&page.body).is_empty(),
        "no raw ISO times on the page: {:?}",
        iso_times(&page.body)
    );
}
