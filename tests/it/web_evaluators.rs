//! Evaluators and the unit-level results (issue 18, point 3), over real HTTP against
//! `sheping serve` on the results fixture: they download the `scores` and `distributions`
//! exports as CSV and XLSX (session and token) with the statistician's values, the other
//! exports stay 403, the results page lists exactly their links, and a unit's page shows the
//! per-dimension subscores and the unit's charts. No operator login reaches them.

use crate::common;
use crate::common::results_fixture;

use std::io::Cursor;

use calamine::{Reader, Xlsx};
use common::browser::{Web, WebServer};
use common::{Sheping, add_user, api_token};
use results_fixture::{ROUND, UNITS, build_in};

struct Setup {
    sp: Sheping,
    server: WebServer,
    client: reqwest::Client,
    eval_token: String,
    stat_token: String,
    op_token: String,
}

fn start() -> Setup {
    let sp = Sheping::new();
    build_in(&sp);
    add_user(&sp, "eval", "evaluator");
    add_user(&sp, "stat", "statistician");
    let eval_token = api_token(&sp, "eval");
    let stat_token = api_token(&sp, "stat");
    let op_token = api_token(&sp, "op0");
    let server = WebServer::start(&sp, &[]);
    Setup {
        sp,
        server,
        client: reqwest::Client::new(),
        eval_token,
        stat_token,
        op_token,
    }
}

struct Got {
    status: u16,
    content_type: String,
    bytes: Vec<u8>,
}

impl Setup {
    async fn with_token(&self, path: &str, token: &str) -> Got {
        let r = self
            .client
            .get(format!("{}{path}", self.server.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        got(r).await
    }
}

async fn with_session(web: &Web, path: &str) -> Got {
    got(web
        .client
        .get(format!("{}{path}", web.url))
        .send()
        .await
        .unwrap())
    .await
}

async fn got(r: reqwest::Response) -> Got {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Got {
        status,
        content_type,
        bytes: r.bytes().await.unwrap().to_vec(),
    }
}

/// An XLSX download's one sheet as text cells.
fn xlsx_cells(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut wb = Xlsx::new(Cursor::new(bytes.to_vec())).unwrap();
    let sheet = wb.sheet_names()[0].clone();
    let range = wb.worksheet_range(&sheet).unwrap();
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// A CSV download (BOM first) as header → value maps.
fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").expect("a BOM");
    let mut r = csv::Reader::from_reader(body);
    let headers = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (headers, rows)
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

/// Operator logins (as whole words: "coop1" is a rate) and names of the fixture.
fn operator_identity_in(text: &str) -> Option<&'static str> {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    ["op0", "op1", "话务员0", "话务员1"].into_iter().find(|o| {
        text.match_indices(o).any(|(i, _)| {
            !o.is_ascii()
                || (!word(text[..i].chars().next_back())
                    && !word(text[i + o.len()..].chars().next()))
        })
    })
}

const DIMENSIONS: [&str; 5] = ["duties", "efficiency", "service", "conduct", "reputation"];

#[tokio::test(flavor = "multi_thread")]
async fn evaluators_download_scores_and_distributions_like_statisticians() {
    let s = start();
    let eval = Web::signed_in(&s.server.url, "eval").await;
    for kind in ["scores", "distributions"] {
        for format in ["csv", "xlsx"] {
            let path = format!("/api/v1/rounds/{ROUND}/exports/{kind}?format={format}");
            let by_token = s.with_token(&path, &s.eval_token).await;
            let by_session = with_session(&eval, &path).await;
            let stat = s.with_token(&path, &s.stat_token).await;
            for (who, g) in [
                ("token", &by_token),
                ("session", &by_session),
                ("stat", &stat),
            ] {
                assert_eq!(g.status, 200, "{path} by {who}");
                let want = if format == "csv" {
                    "text/csv"
                } else {
                    "application/vnd.openxml"
                };
                assert!(
                    g.content_type.starts_with(want),
                    "{path} by {who}: {}",
                    g.content_type
                );
            }
            if format == "csv" {
                // The same computation from the same stored data: the same file, byte for byte.
                assert_eq!(by_token.bytes, stat.bytes, "{path}");
                assert_eq!(by_session.bytes, stat.bytes, "{path}");
                let text = String::from_utf8(by_token.bytes.clone()).unwrap();
                assert_eq!(operator_identity_in(&text), None, "{path}");
            } else {
                let want = xlsx_cells(&stat.bytes);
                assert!(want.len() > 1, "{path}: rows");
                assert_eq!(xlsx_cells(&by_token.bytes), want, "{path}");
                assert_eq!(xlsx_cells(&by_session.bytes), want, "{path}");
            }
        }
    }

    // The scores export holds what the issue lists: the three kinds of points, each
    // dimension's mean and satisfaction rate with their intervals, the rank and its interval.
    let scores = s
        .with_token(
            &format!("/api/v1/rounds/{ROUND}/exports/scores"),
            &s.eval_token,
        )
        .await;
    let (headers, rows) = csv_rows(&scores.bytes);
    let mut required: Vec<String> = [
        "unit",
        "phone_points",
        "onsite_points",
        "social_points",
        "social_ci95_low",
        "social_ci95_high",
        "satisfaction_rate_ci95_low",
        "rank",
        "rank_ci95_low",
        "rank_ci95_high",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    for d in DIMENSIONS {
        for suffix in [
            "mean",
            "mean_ci95_low",
            "mean_ci95_high",
            "satisfaction_rate",
            "satisfaction_rate_ci95_low",
            "satisfaction_rate_ci95_high",
        ] {
            required.push(format!("{d}_{suffix}"));
        }
    }
    for h in &required {
        assert!(headers.contains(h), "scores lacks {h}: {headers:?}");
    }
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let a = rows.iter().find(|r| r[col("unit")] == UNITS[0]).unwrap();
    // Unit A's duties answers score 100, 80, 100: mean 93.33, t interval with 2 df.
    let scores_a = [100.0, 80.0, 100.0];
    let mean = scores_a.iter().sum::<f64>() / 3.0;
    let sd = (scores_a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let t975_df2 = 0.95 / (2.0 * 0.975 * 0.025f64).sqrt();
    let half = t975_df2 * sd / 3f64.sqrt();
    let num = |name: &str| a[col(name)].parse::<f64>().unwrap();
    assert!((num("duties_mean") - mean).abs() < 1e-9);
    assert!((num("duties_mean_ci95_low") - (mean - half)).abs() < 1e-9);
    assert!((num("duties_mean_ci95_high") - (mean + half)).abs() < 1e-9);
    // Unit D has no completes: no mean, no interval.
    let d = rows.iter().find(|r| r[col("unit")] == UNITS[3]).unwrap();
    assert_eq!(d[col("duties_mean_ci95_low")], "");

    // Respondent-level and operator exports stay with the statisticians, by token and session.
    for kind in [
        "responses",
        "attempts",
        "operators",
        "onsite",
        "dispositions",
        "codebook",
        "spss",
    ] {
        let path = format!("/api/v1/rounds/{ROUND}/exports/{kind}");
        for g in [
            s.with_token(&path, &s.eval_token).await,
            with_session(&eval, &path).await,
        ] {
            assert_eq!(g.status, 403, "{path}");
            let v: serde_json::Value = serde_json::from_slice(&g.bytes).unwrap();
            assert_eq!(v["error"]["code"], "forbidden", "{path}");
        }
        assert_eq!(
            s.with_token(&path, &s.stat_token).await.status,
            200,
            "{path}"
        );
    }
    // Operators download nothing, and learn nothing about the kinds.
    for kind in ["scores", "names"] {
        let path = format!("/api/v1/rounds/{ROUND}/exports/{kind}");
        assert_eq!(s.with_token(&path, &s.op_token).await.status, 403, "{path}");
    }
    // An unknown kind is named with the kinds this reader may download.
    let unknown = s
        .with_token(
            &format!("/api/v1/rounds/{ROUND}/exports/names"),
            &s.eval_token,
        )
        .await;
    assert_eq!(unknown.status, 404);
    let msg = String::from_utf8(unknown.bytes).unwrap();
    assert!(
        msg.contains("scores") && !msg.contains("responses"),
        "{msg}"
    );

    // Downloads and refusals are in the audit log under the evaluator's name.
    assert_eq!(
        s.sp.count(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('export.scores', 'export.distributions') AND actor = 'api:eval'"
        ),
        9
    );
    assert_eq!(
        s.sp.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'api.forbidden' AND actor = 'api:eval'"
        ),
        14
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_results_page_lists_what_each_reader_may_download() {
    let s = start();
    let eval = Web::signed_in(&s.server.url, "eval").await;
    let page = eval.get(&format!("/rounds/{ROUND}/results")).await;
    assert_eq!(page.status, 200);
    let links: Vec<String> = page
        .body
        .split("href=\"")
        .skip(1)
        .filter_map(|h| h.split('"').next())
        .filter(|h| h.contains("/exports/"))
        .map(|h| h.replace("&#38;", "&").replace("&amp;", "&"))
        .collect();
    let base = format!("/api/v1/rounds/{ROUND}/exports");
    assert_eq!(
        links,
        [
            format!("{base}/distributions"),
            format!("{base}/distributions?format=xlsx"),
            format!("{base}/scores"),
            format!("{base}/scores?format=xlsx"),
        ]
    );
    // Every link works with the page's own session.
    for l in &links {
        assert_eq!(with_session(&eval, l).await.status, 200, "{l}");
    }
    assert!(!page.body.contains("report.zip"));
    assert!(!page.body.contains("charts/operators.svg"));
    assert_eq!(operator_identity_in(&page.body), None);
    // The zip carries respondent-level rows and the operators' section: still refused.
    let zip = eval.get(&format!("/rounds/{ROUND}/report.zip")).await;
    assert_eq!(zip.status, 403);
    // Each unit's name leads to its page.
    for u in UNITS {
        assert!(
            page.body
                .contains(&format!("href=\"/rounds/{ROUND}/units/{}\"", enc(u))),
            "{u}"
        );
    }

    // Statisticians keep every export, the zip and the operators' chart.
    let stat = Web::signed_in(&s.server.url, "stat").await;
    let page = stat.get(&format!("/rounds/{ROUND}/results")).await;
    for needle in [
        "/exports/responses\"",
        "/exports/operators?format=xlsx",
        "/exports/spss",
        "report.zip",
        "charts/operators.svg",
    ] {
        assert!(page.body.contains(needle), "{needle}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unit_page_shows_the_subscores_and_the_units_charts() {
    let s = start();
    let eval = Web::signed_in(&s.server.url, "eval").await;
    let path = format!("/rounds/{ROUND}/units/{}", enc(UNITS[0]));
    let page = eval.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(body.contains(UNITS[0]));
    for label in [
        "职能职责履行",
        "办事效率",
        "服务质量",
        "作风形象",
        "社会反响",
    ] {
        assert!(body.contains(label), "{label}");
    }
    // Duties: 100, 80, 100 → mean 93.33, its t interval, all three satisfied (Wilson interval).
    let mean = 280.0 / 3.0;
    let sd = (((100.0f64 - mean).powi(2) * 2.0 + (80.0 - mean).powi(2)) / 2.0).sqrt();
    let half = 0.95 / (2.0 * 0.975 * 0.025f64).sqrt() * sd / 3f64.sqrt();
    let row = body
        .split("<tr>")
        .find(|r| r.contains("职能职责履行"))
        .unwrap();
    for cell in [
        "93.33".to_string(),
        format!("{:.2}–{:.2}", mean - half, mean + half),
        "100.0%".to_string(),
    ] {
        assert!(row.contains(&cell), "{cell} in {row}");
    }
    // Points, rank and rank interval as in the scores export.
    let (headers, rows) = csv_rows(
        &s.with_token(
            &format!("/api/v1/rounds/{ROUND}/exports/scores"),
            &s.stat_token,
        )
        .await
        .bytes,
    );
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let a = rows.iter().find(|r| r[col("unit")] == UNITS[0]).unwrap();
    let social = format!("{:.2}", a[col("social_points")].parse::<f64>().unwrap());
    assert!(body.contains(&format!("<b>{social}</b>")), "{social}");
    assert!(body.contains(&format!(
        "{}–{}",
        a[col("rank_ci95_low")],
        a[col("rank_ci95_high")]
    )));
    // The unit's charts, each an SVG the evaluator may fetch.
    let srcs: Vec<&str> = body
        .split("<img src=\"")
        .skip(1)
        .filter_map(|h| h.split('"').next())
        .collect();
    assert_eq!(srcs.len(), 3, "{srcs:?}");
    for chart in ["profile", "distribution", "position"] {
        let want = format!("{path}/charts/{chart}.svg");
        assert!(srcs.contains(&want.as_str()), "{want} in {srcs:?}");
        let svg = eval.get(&want).await;
        assert_eq!(svg.status, 200, "{want}");
        assert!(
            svg.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("image/svg+xml")
        );
        assert!(svg.body.contains("<svg"), "{want}");
        assert_eq!(operator_identity_in(&svg.body), None, "{want}");
    }
    assert_eq!(operator_identity_in(body), None);
    // By unit code too; unknown units and charts are 404.
    assert_eq!(
        eval.get(&format!("/rounds/{ROUND}/units/U0")).await.status,
        200
    );
    assert_eq!(
        eval.get(&format!("/rounds/{ROUND}/units/{}", enc("没有的局")))
            .await
            .status,
        404
    );
    assert_eq!(
        eval.get(&format!("{path}/charts/operators.svg"))
            .await
            .status,
        404
    );
    // (Operators and anonymous callers: tests/it/web_roles.rs, every route for every role.)
}
