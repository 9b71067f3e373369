//! `sheping demo` from nothing: the first page lists the 30 units with 45 representatives each.

use crate::common;

use common::{Server, Sheping};

#[tokio::test(flavor = "multi_thread")]
async fn demo_starts_from_nothing_and_lists_30_units_of_45() {
    let sp = Sheping::new();
    let server = Server::start(&sp, &["demo"]);
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let page = client.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("2022年度履职评估(演示数据)"));
    // 30 units in 2022 and 30 in its previous round, 2021 (issue 21: the demo gains 2021).
    assert!(html.contains("2021年度履职评估(演示数据)"));
    let units = html.matches("class=\"unit-name\"").count();
    assert_eq!(units, 60, "30 units listed per round");
    let panels = html.matches("<td class=\"num panel\">45</td>").count();
    assert_eq!(panels, 30, "each with 45 representatives");
    for sector in ["教体", "住建", "交通运输"] {
        assert!(html.contains(sector));
    }
    // No phone number reaches the public page.
    let digits = regex_free_phone_scan(&html);
    assert!(
        digits.is_none(),
        "phone-like number on the page: {digits:?}"
    );
    drop(server);

    // Starting the demo again keeps the data (no further round beside 2022 and 2021).
    let _again = Server::start(&sp, &["demo"]);
    assert_eq!(sp.count("SELECT COUNT(*) FROM rounds"), 2);
    assert_eq!(sp.count("SELECT COUNT(*) FROM members m JOIN units u ON u.id = m.unit_id JOIN rounds r ON r.id = u.round_id WHERE r.key = '2022'"), 30 * 45);
    assert_eq!(
        sp.count("SELECT COUNT(*) FROM members m JOIN units u ON u.id = m.unit_id JOIN rounds r ON r.id = u.round_id WHERE r.key = '2022' AND m.category != '服务对象'"),
        30 * 9
    );
    // The demo has a generated plan and a realistic share of simulated calls, with members
    // still left for a newcomer to call.
    assert_eq!(sp.count("SELECT COUNT(*) FROM plans"), 1);
    assert_eq!(sp.count("SELECT COUNT(*) FROM assignments"), 30 * 45);
    let completes =
        sp.count("SELECT COUNT(DISTINCT a.member_id) FROM attempts a JOIN members m ON m.id = a.member_id JOIN units u ON u.id = m.unit_id JOIN rounds r ON r.id = u.round_id WHERE r.key = '2022' AND a.outcome = 'complete'");
    assert!(
        (30 * 30..30 * 42).contains(&completes),
        "completes: {completes}"
    );
    assert!(
        sp.count("SELECT COUNT(*) FROM queue") > 50,
        "members left to call"
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM users"), 6);
}

/// Finds a run of 11 digits starting with 1 (a mobile number) in text.
fn regex_free_phone_scan(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 11 && chars[start] == '1' {
                return Some(chars[start..i].iter().collect());
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The demo's operators are named as the README shows them (王静), and the call script says
/// the operator's title once.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_script_names_the_operator_once() {
    use common::browser::Web;
    let sp = Sheping::new();
    let server = Server::start(&sp, &["demo"]);
    let web = Web::new(&server.url);
    assert_eq!(web.sign_in("op1", "demo-op1-2022").await.status, 303);
    let csrf = web.csrf().await;
    let claimed = web
        .post("/call/next", &[("csrf", &csrf), ("round", "2022")])
        .await;
    assert_eq!(claimed.status, 303, "{}", claimed.body);
    let screen = web.get("/call?round=2022").await;
    assert_eq!(screen.status, 200);
    assert!(
        screen.body.contains("话务员王静。"),
        "the script names the operator: {}",
        screen.body
    );
    assert!(!screen.body.contains("话务员话务员"), "{}", screen.body);
    let name: String = sp
        .sql()
        .query_row("SELECT name FROM users WHERE login = 'op1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(name, "王静");
}
