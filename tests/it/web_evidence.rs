//! Corroborating records in the console over real HTTP: the administrator's upload (all or
//! nothing, rows named), and the evaluators' results page showing the counts with their sources.

use crate::common;

use common::browser::{ROUND, UNITS, Web, WebServer, fixture};
use reqwest::multipart::{Form, Part};

async fn upload(web: &Web, csrf: &str, body: &str, replace: bool) -> (u16, String) {
    let mut form = Form::new().text("csrf", csrf.to_string()).part(
        "file",
        Part::bytes(body.as_bytes().to_vec()).file_name("evidence.csv"),
    );
    if replace {
        form = form.text("replace", "1");
    }
    let r = web
        .client
        .post(format!("{}/admin/rounds/{ROUND}/evidence", web.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_uploads_evidence_and_evaluators_read_it_with_its_sources() {
    let sp = fixture();
    let server = WebServer::start(&sp, &[]);
    let admin = Web::signed_in(&server.url, "admin").await;
    let csrf = admin.csrf().await;
    let round_page = admin.get(&format!("/admin/rounds/{ROUND}")).await;
    assert!(
        round_page.body.contains("evidence-form"),
        "the upload form is offered"
    );

    // A bad row: nothing stored, the line and field named.
    let bad = format!(
        "参评单位,类别,数量,来源\n{},投诉,4,汉审函〔2022〕31号\n{},信访,两件,汉信函〔2022〕8号\n",
        UNITS[0], UNITS[1]
    );
    let (status, body) = upload(&admin, &csrf, &bad, false).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("<td class=\"num\">3</td><td>count</td>"),
        "{body}"
    );
    assert!(
        !body.contains("跳过有错误的行”"),
        "evidence is all or nothing"
    );
    assert_eq!(sp.count("SELECT COUNT(*) FROM evidence"), 0);

    // By code (U1) and by name; stored and audited.
    let good = format!(
        "参评单位,类别,数量,业务量,来源,备注\n{},12345投诉,4,800,汉审函〔2022〕31号,\nU1,信访,2,,汉信函〔2022〕8号,含重复信访1件\n",
        UNITS[0]
    );
    let (status, body) = upload(&admin, &csrf, &good, false).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("佐证数据导入结果"), "{body}");
    assert!(body.contains("已导入 2 行"), "{body}");
    assert_eq!(sp.count("SELECT COUNT(*) FROM evidence"), 2);
    assert_eq!(
        sp.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'evidence.import' AND actor = 'admin'"
        ),
        1
    );

    // The evaluators' results page.
    let eval = Web::signed_in(&server.url, "eval").await;
    let page = eval.get(&format!("/rounds/{ROUND}/results")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"evidence\""), "{}", page.body);
    assert!(page.body.contains("12345投诉:汉审函〔2022〕31号"));
    assert!(page.body.contains("信访:汉信函〔2022〕8号(含重复信访1件)"));
    assert!(
        page.body.contains("<td class=\"num\">5.00</td>"),
        "4 per 800 = 5 per 1,000"
    );
    // The same through the API (session cookie).
    let api = eval.get(&format!("/api/v1/rounds/{ROUND}/results")).await;
    assert_eq!(api.status, 200, "{}", api.body);
    let doc: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    let unit = |name: &str| {
        doc["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == name)
            .unwrap()["evidence"]
            .clone()
    };
    assert_eq!(unit(UNITS[0])["complaint"], 4);
    assert_eq!(unit(UNITS[0])["complaint_rate"].as_f64(), Some(5.0));
    assert_eq!(unit(UNITS[1])["petition"], 2);
    assert_eq!(unit(UNITS[1])["sources"][0]["note"], "含重复信访1件");
    assert_eq!(unit(UNITS[2])["complaint"], serde_json::Value::Null);
    // Evaluators may read but not upload.
    let (status, _) = upload(&eval, &eval.csrf().await, &good, true).await;
    assert_eq!(status, 403);
    assert_eq!(sp.count("SELECT COUNT(*) FROM evidence"), 2);
}
