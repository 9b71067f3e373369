//! Crash test: many concurrent operators drive the real web form while the server is killed
//! with SIGKILL at random moments and restarted. Every acknowledged outcome must be stored
//! exactly once, nothing half-stored, the file sound and the engine's invariants intact. On
//! either backend (`SHEPING_TEST_BACKEND`).

use crate::common;
#[path = "../../benches/support/fixture.rs"]
mod fixture;
#[path = "../../benches/support/operator_client.rs"]
mod operator_client;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::{Server, Sheping};
use operator_client::OperatorClient;
use rand::{RngExt, SeedableRng};

const OPERATORS: usize = 12;

fn setup(sp: &Sheping) {
    let file = sp.path("fixture.db");
    drop(fixture::planned_round(&file, "2022", 1350, OPERATORS));
    sp.load_sqlite(&file);
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_outcome() {
    let sp = Sheping::new();
    setup(&sp);
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for _round in 0..5 {
        let mut server = Server::start(&sp, &["serve"]);
        let url = server.url.clone();
        let delay = std::time::Duration::from_millis(rng.random_range(1500..4000));
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..OPERATORS {
                let url = url.clone();
                let acknowledged = acknowledged.clone();
                tasks.push(tokio::spawn(async move {
                    let Ok(mut client) =
                        OperatorClient::sign_in(&url, &format!("op{i}"), fixture::PASSWORD, "2022")
                            .await
                    else {
                        return;
                    };
                    loop {
                        match client.next().await {
                            Ok(true) => {}
                            _ => return,
                        }
                        match client.complete(&[1, 2, 1, 1, 3]).await {
                            // Only what the server answered counts as acknowledged.
                            Ok(token) => acknowledged.lock().unwrap().push(token),
                            Err(_) => return,
                        }
                    }
                }));
            }
            tokio::time::sleep(delay).await;
            server.child.kill().unwrap();
            for t in tasks {
                let _ = t.await;
            }
        });
        let _ = server.child.wait();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    eprintln!(
        "acknowledged {} outcomes across 5 kills",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > 100,
        "the test must actually record under load: {}",
        acknowledged.len()
    );

    if sp.sqlite_file_checks("PRAGMA integrity_check") {
        let integrity: String = sp
            .sqlite()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
    }
    let conn = sp.sql();
    let mut stmt = conn
        .prepare("SELECT claim_token, outcome, answers FROM attempts")
        .unwrap();
    let stored: Vec<(Option<String>, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let tokens: BTreeSet<String> = stored.iter().filter_map(|s| s.0.clone()).collect();
    assert_eq!(tokens.len(), stored.len(), "no token stored twice");
    for token in &acknowledged {
        assert!(
            tokens.contains(token),
            "acknowledged outcome {token} was lost"
        );
    }
    let unique_ack: BTreeSet<&String> = acknowledged.iter().collect();
    assert_eq!(
        unique_ack.len(),
        acknowledged.len(),
        "no token acknowledged twice"
    );
    for (_, outcome, answers) in &stored {
        // Nothing half-stored: every attempt is whole.
        assert_eq!(outcome, "complete");
        assert_eq!(answers.as_deref(), Some("[0,1,0,0,2]"));
    }
    // The engine's invariants (queue, claims, attempt numbering) and the audit chain hold.
    let out = sp.run(&["check", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let unique_members: i64 = conn
        .query_row("SELECT COUNT(DISTINCT member_id) FROM attempts", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        unique_members as usize,
        stored.len(),
        "each member completed at most once"
    );
}
