//! Comparison with the previous round through the real binary and the real API: the demo's
//! 2022 round against its linked 2021 round (one unit new, one gone), each side's published
//! figures as that round's own results give them, differences, Welch tests and Holm.

use crate::common;

use common::Sheping;
use common::browser::{Web, WebServer};
use serde_json::Value;

fn demo() -> Sheping {
    let sp = Sheping::new();
    sp.with_store(|store| {
        assert!(sheping::demo::ensure_demo(store).unwrap());
        let round = store.round(sheping::demo::DEMO_ROUND).unwrap();
        assert_eq!(
            store.previous_round(round.id).unwrap().as_deref(),
            Some(sheping::demo::PREVIOUS_ROUND),
            "the demo links 2022 to 2021"
        );
    });
    sp
}

fn results(sp: &Sheping, round: &str) -> Value {
    sp.json(&["results", "--round", round, "--json", "--replicates", "0"])
}

fn by_name<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == name)
        .unwrap_or_else(|| panic!("{name}"))
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() <= 1e-9
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_compares_2022_with_2021_by_cli_and_api() {
    let sp = demo();
    let c = sp.json(&["compare", "--round", "2022", "--with", "2021", "--json"]);
    assert_eq!(c["round"], "2022");
    assert_eq!(c["with"], "2021");
    assert_eq!(c["survey_differences"], serde_json::json!([]));
    let units = c["units"].as_array().unwrap();
    assert_eq!(units.len(), 29);
    assert_eq!(c["unmatched_a"][0]["unit"], sheping::demo::DEMO_UNITS[29].0);
    assert_eq!(c["unmatched_b"][0]["unit"], "汉滨区城乡建设档案馆");
    let (ra, rb) = (results(&sp, "2022"), results(&sp, "2021"));
    let mut ps = Vec::new();
    for u in units {
        let name = u["unit"].as_str().unwrap();
        let (a, b) = (by_name(&ra, name), by_name(&rb, name));
        // Each side is what its round published.
        assert_eq!(u["a"]["completes"], a["phone"]["completes"]);
        assert_eq!(u["b"]["completes"], b["phone"]["completes"]);
        assert!(close(&u["a"]["mean"], a["phone"]["mean"].as_f64().unwrap()));
        assert!(close(
            &u["b"]["points"],
            b["social"]["points"].as_f64().unwrap()
        ));
        assert_eq!(u["b"]["rank"], b["social"]["rank"]);
        let d = |k: &str| u["a"][k].as_f64().unwrap() - u["b"][k].as_f64().unwrap();
        assert!(close(&u["diff"]["points"], d("points")));
        assert!(close(
            &u["diff"]["satisfaction_rate"],
            d("satisfaction_rate")
        ));
        assert_eq!(
            u["diff"]["rank"].as_i64().unwrap(),
            u["a"]["rank"].as_i64().unwrap() - u["b"]["rank"].as_i64().unwrap()
        );
        let p = u["welch"]["p"].as_f64().unwrap();
        let holm = u["p_holm"].as_f64().unwrap();
        assert!(holm >= p && holm <= 1.0);
        assert_eq!(u["significant"].as_bool().unwrap(), holm < 0.05);
        assert!(u["welch_rate"]["p"].as_f64().is_some());
        ps.push((p, holm));
    }
    // Holm: the smallest p is multiplied by the number of tests.
    let (pmin, hmin) = ps
        .iter()
        .copied()
        .min_by(|x, y| x.0.total_cmp(&y.0))
        .unwrap();
    assert!((hmin - (pmin * 29.0).min(1.0)).abs() < 1e-12);
    // The units rated far lower in 2021 changed significantly, for the better.
    for (name, ..) in &sheping::demo::DEMO_UNITS[25..29] {
        let u = by_name(&c, name);
        assert_eq!(u["significant"], true, "{u}");
        assert!(u["diff"]["points"].as_f64().unwrap() > 0.0);
    }

    // The text table names both rounds and the unmatched units.
    let text = sp.ok(&["compare", "--round", "2022", "--with", "2021"]);
    assert!(text.contains("轮次 2022 与 2021 比较"), "{text}");
    assert!(text.contains("仅对比轮有:汉滨区城乡建设档案馆"), "{text}");

    // The chart, SVG and PNG: every matched unit, the significant ones marked.
    let significant = units.iter().filter(|u| u["significant"] == true).count();
    assert!(significant >= 4);
    let svg = sp.path("change.svg");
    sp.ok(&[
        "compare",
        "--round",
        "2022",
        "--with",
        "2021",
        "--chart",
        svg.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.contains("社会评价得分:轮次 2022 与 2021 比较"));
    for u in units {
        let name = u["unit"].as_str().unwrap();
        assert!(svg.contains(name), "{name} in the chart");
    }
    assert!(svg.contains(&format!("共 {significant} 个单位")));
    assert_eq!(
        svg.lines().filter(|l| l.trim_end().ends_with(" *")).count(),
        significant,
        "one asterisk per significant unit"
    );
    let png = sp.path("change.png");
    sp.ok(&[
        "compare",
        "--round",
        "2022",
        "--with",
        "2021",
        "--chart",
        png.to_str().unwrap(),
    ]);
    let png = std::fs::read(png).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // The same document from the API.
    let server = WebServer::start(&sp, &[]);
    let eval = Web::new(&server.url);
    let signed = eval.sign_in("eval", "demo-eval-2022").await;
    assert!(signed.status < 400, "{}", signed.body);
    let page = eval.get("/api/v1/rounds/2022/compare/2021").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let api: Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(api["units"], c["units"]);
    assert_eq!(api["unmatched_b"], c["unmatched_b"]);
    let missing = eval.get("/api/v1/rounds/2022/compare/1999").await;
    assert_eq!(missing.status, 404);

    // The console: a link from the results page, the comparison page and its chart.
    let results_page = eval.get("/rounds/2022/results").await;
    assert!(
        results_page
            .body
            .contains("<a href=\"/rounds/2022/compare/2021\">轮次 2021</a>"),
        "{}",
        results_page.body
    );
    let page = eval.get("/rounds/2022/compare/2021").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.body.matches("<tr").count(),
        1 + 29,
        "a row per matched unit"
    );
    assert_eq!(
        page.body.matches("<tr class=\"significant\">").count(),
        significant
    );
    assert!(page.body.contains("仅轮次 2021 有:汉滨区城乡建设档案馆"));
    let chart = eval.get("/rounds/2022/compare/2021/chart.svg").await;
    assert_eq!(chart.status, 200);
    assert!(
        chart.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/svg+xml")
    );
    assert!(chart.body.contains("社会评价得分:轮次 2022 与 2021 比较"));
    // Operators do not see results.
    let op = Web::new(&server.url);
    op.sign_in("op1", "demo-op1-2022").await;
    let refused = op.get("/rounds/2022/compare/2021").await;
    assert!(
        refused.status == 403 || refused.status == 303,
        "{}",
        refused.status
    );
}

#[test]
fn round_create_links_the_previous_round_and_refuses_an_unknown_one() {
    let sp = Sheping::new();
    sp.ok(&["round", "create", "2021", "--title", "2021年度"]);
    let out = sp.run(&[
        "round",
        "create",
        "2022",
        "--title",
        "2022年度",
        "--previous",
        "2020",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM rounds"),
        1,
        "nothing created"
    );
    sp.ok(&[
        "round",
        "create",
        "2022",
        "--title",
        "2022年度",
        "--previous",
        "2021",
    ]);
    assert_eq!(
        sp.count(
            "SELECT COUNT(*) FROM round_previous p JOIN rounds a ON a.id = p.round_id JOIN rounds b ON b.id = p.previous_round_id WHERE a.key = '2022' AND b.key = '2021'"
        ),
        1
    );
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM audit_log WHERE action = 'round.previous'"),
        1
    );
}

fn feedback_page(sp: &Sheping, unit: &str, dir: &str) -> String {
    let out = sp.path(dir);
    sp.ok(&[
        "report",
        "--round",
        "2022",
        "--unit",
        unit,
        "--out",
        out.to_str().unwrap(),
    ]);
    let page = std::fs::read_dir(out.join("feedback"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "html"))
        .unwrap();
    std::fs::read_to_string(page).unwrap()
}

#[test]
fn the_feedback_page_compares_with_the_linked_previous_round() {
    let sp = demo();
    let c = sp.json(&["compare", "--round", "2022", "--with", "2021", "--json"]);
    let name = sheping::demo::DEMO_UNITS[26].0;
    let u = by_name(&c, name);
    let html = feedback_page(&sp, name, "one");
    assert!(html.contains("与上年度比较"), "{html}");
    assert!(html.contains("对比轮次 2021"));
    let row = format!(
        "<th>社会评价得分</th><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:+.2}</td>",
        u["a"]["points"].as_f64().unwrap(),
        u["b"]["points"].as_f64().unwrap(),
        u["diff"]["points"].as_f64().unwrap()
    );
    assert!(html.contains(&row), "{row}\n{html}");
    assert!(html.contains("在统计上显著"), "{html}");
    // A unit that did not exist in 2021 says so.
    let new_unit = sheping::demo::DEMO_UNITS[29].0;
    let html = feedback_page(&sp, new_unit, "two");
    assert!(
        html.contains("轮次 2021 中没有与本单位对应的单位"),
        "{html}"
    );
}
