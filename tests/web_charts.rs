//! The console serves the report's charts as SVG to results readers (operator effects only to
//! statisticians and admins) and the whole report as a zip to statisticians and admins.

mod common;

use common::browser::Web;
use common::{Server, Sheping};

#[tokio::test(flavor = "multi_thread")]
async fn charts_and_report_zip_by_role() {
    let sp = Sheping::new();
    let server = Server::start(&sp, &["demo"]);
    let eval = Web::new(&server.url);
    assert_eq!(eval.sign_in("eval", "demo-eval-2022").await.status, 303);
    let page = eval.get("/rounds/2022/results").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/rounds/2022/charts/ranking.svg"));
    assert!(
        !page.body.contains("operators.svg"),
        "evaluators get no operator chart"
    );
    let svg = eval.get("/rounds/2022/charts/ranking.svg").await;
    assert_eq!(svg.status, 200);
    assert!(
        svg.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/svg+xml")
    );
    assert!(
        svg.body.starts_with("<svg") || svg.body.contains("<svg"),
        "an SVG document"
    );
    assert!(svg.body.contains("社会评价"), "Chinese labels in the SVG");
    assert_eq!(
        eval.get("/rounds/2022/charts/operators.svg").await.status,
        403
    );
    assert_eq!(eval.get("/rounds/2022/report.zip").await.status, 403);
    assert_eq!(eval.get("/rounds/2022/charts/nope.svg").await.status, 404);

    let op = Web::new(&server.url);
    assert_eq!(op.sign_in("op1", "demo-op1-2022").await.status, 303);
    assert_eq!(op.get("/rounds/2022/charts/ranking.svg").await.status, 403);

    let stat = Web::new(&server.url);
    assert_eq!(stat.sign_in("stat", "demo-stat-2022").await.status, 303);
    assert_eq!(
        stat.get("/rounds/2022/charts/operators.svg").await.status,
        200
    );
    let zip = stat.get("/rounds/2022/report.zip").await;
    assert_eq!(zip.status, 200);
    assert_eq!(zip.headers["content-type"], "application/zip");
    assert!(zip.body.starts_with("PK"), "a zip archive");
    let anonymous = Web::new(&server.url);
    assert_ne!(
        anonymous
            .get("/rounds/2022/charts/ranking.svg")
            .await
            .status,
        200
    );
}
