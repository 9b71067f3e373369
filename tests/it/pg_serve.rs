//! The server on PostgreSQL (issue 22): a round prepared on SQLite with the CLI and moved by
//! `sheping migrate`, two instances of `sheping serve` on the one database, 16 operators split
//! across them through the real web form (about 2,100 cycles), one instance SIGKILLed while its
//! operators are calling. Nothing acknowledged is lost or doubled, no contact is interviewed
//! twice, the other instance keeps serving, and a session made on one instance is valid on the
//! other (sessions live in the database).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common;

use common::Server;
use common::browser::PASSWORD;
use common::browser::{Page, Web};

const DEMO_ROUND: &str = "pg";
const UNITS: usize = 30;
const PER_UNIT: usize = 70;
const OPERATORS: usize = 16;

/// Round `pg` on SQLite: 30 units × 70 representatives, 16 operators, a plan; calls allowed
/// all day.
fn prepared_round() -> common::Sheping {
    let sp = common::Sheping::new_sqlite();
    let survey =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/surveys/default.toml"))
            .unwrap()
            .replace(
                r#"windows = ["09:00-11:30", "14:30-17:30"]"#,
                r#"windows = ["00:00-23:59"]"#,
            );
    let survey = sp.write("allday.toml", survey.as_bytes());
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let (from, to) = (
        (today - chrono::Duration::days(3)).to_string(),
        (today + chrono::Duration::days(20)).to_string(),
    );
    sp.ok(&[
        "round",
        "create",
        DEMO_ROUND,
        "--title",
        "多实例测试",
        "--survey",
        survey.to_str().unwrap(),
        "--from",
        &from,
        "--to",
        &to,
    ]);
    let mut units = String::from("单位名称,单位类型,系统,单位代码\n");
    let mut roster = String::from("参评单位,姓名,联系电话,代表类别,工作单位及职务\n");
    for u in 0..UNITS {
        units.push_str(&format!("测试单位{u:02},党政机关,测试,U{u:02}\n"));
        for k in 0..PER_UNIT {
            roster.push_str(&format!(
                "测试单位{u:02},代表{u}-{k},1390{u:03}{k:04},,社区居民\n"
            ));
        }
    }
    let units = sp.write("units.csv", units.as_bytes());
    sp.ok(&[
        "units",
        "import",
        "--round",
        DEMO_ROUND,
        units.to_str().unwrap(),
    ]);
    let roster = sp.write("roster.csv", roster.as_bytes());
    sp.ok(&[
        "roster",
        "import",
        "--round",
        DEMO_ROUND,
        roster.to_str().unwrap(),
    ]);
    for i in 0..OPERATORS {
        common::add_user(&sp, login(i), "operator");
    }
    sp.ok(&["calls", "generate", "--round", DEMO_ROUND, "--seed", "7"]);
    sp
}

fn login(i: usize) -> &'static str {
    Box::leak(format!("op{:02}", i + 1).into_boxed_str())
}

fn password(_login: &str) -> &'static str {
    PASSWORD
}

fn instance(command: &str, url: &str) -> Server {
    let mut c = Command::new(common::BIN);
    c.args([command, "--db", url])
        .env_remove("SHEPING_DB")
        .env("RUST_LOG", "error")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    Server::spawn(c)
}

struct Operator {
    web: Web,
    csrf: String,
    login: &'static str,
}

impl Operator {
    async fn sign_in(url: &str, login: &'static str) -> Operator {
        let web = Web::new(url);
        let page = web.sign_in(login, password(login)).await;
        assert_eq!(page.status, 303, "sign-in of {login}: {}", page.body);
        let csrf = web.csrf().await;
        Operator { web, csrf, login }
    }

    /// The contact the operator holds, claiming one when they hold none; `None` when the
    /// server does not answer (killed) or has nothing left.
    async fn token(&self) -> Option<String> {
        let url = format!("{}/call?round={DEMO_ROUND}", self.web.url);
        let held = Page::from(self.web.client.get(&url).send().await.ok()?).await;
        if let Some(t) = held.input("token") {
            return Some(t);
        }
        let form = [("csrf", self.csrf.as_str()), ("round", DEMO_ROUND)];
        self.web
            .client
            .post(format!("{}/call/next", self.web.url))
            .form(&form)
            .send()
            .await
            .ok()?;
        Page::from(self.web.client.get(&url).send().await.ok()?)
            .await
            .input("token")
    }

    /// Records a complete interview for `token`; the answer names the attempt stored
    /// (`done=`) and carries the next contact's token. `None`: no answer (the server died).
    async fn record(&self, token: &str) -> Option<(i64, Option<String>)> {
        let form = [
            ("csrf", self.csrf.as_str()),
            ("round", DEMO_ROUND),
            ("token", token),
            ("outcome", "complete"),
            ("a0", "1"),
            ("a1", "2"),
            ("a2", "1"),
            ("a3", "3"),
            ("a4", "2"),
        ];
        let r = self
            .web
            .client
            .post(format!("{}/call/record", self.web.url))
            .form(&form)
            .send()
            .await
            .ok()?;
        let page = Page::from(r).await;
        assert_eq!(page.status, 200, "{} record: {}", self.login, page.body);
        Some((
            page.done_id().expect("the attempt stored"),
            page.input("token"),
        ))
    }

    /// Calls until `stop` or `max` interviews; the ids of the attempts acknowledged.
    async fn call(&self, max: usize, stop: &AtomicBool) -> Vec<i64> {
        let mut done = Vec::new();
        let Some(mut token) = self.token().await else {
            return done;
        };
        while done.len() < max && !stop.load(Ordering::Relaxed) {
            match self.record(&token).await {
                Some((id, next)) => {
                    done.push(id);
                    match next {
                        Some(t) => token = t,
                        None => break,
                    }
                }
                None => break,
            }
        }
        done
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_share_the_calls_and_survive_one_killed() {
    let Some(db) = common::pg::fresh_db("pg_serve") else {
        return;
    };
    let sp = prepared_round();
    sp.ok(&[
        "migrate",
        "--from",
        sp.db.to_str().unwrap(),
        "--to",
        &db.url,
    ]);
    let mut a = instance("serve", &db.url);
    let b = instance("serve", &db.url);

    let store = sheping::storage::postgres::PgStore::connect(&db.url)
        .await
        .unwrap();
    let client = store.client().await.unwrap();
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT COUNT(*) FROM attempts").await, 0);

    // A session made on one instance is valid on the other.
    let first = Operator::sign_in(&a.url, login(0)).await;
    let via_b = Web {
        url: b.url.clone(),
        client: first.web.client.clone(),
    };
    let page = via_b.get(&format!("/call?round={DEMO_ROUND}")).await;
    assert_eq!(page.status, 200, "a session on the other instance");

    // Operators 1–8 call through instance A, 9–16 through B, all at once.
    let mut on_a = vec![first];
    for i in 1..OPERATORS / 2 {
        on_a.push(Operator::sign_in(&a.url, login(i)).await);
    }
    let mut on_b = Vec::new();
    for i in OPERATORS / 2..OPERATORS {
        on_b.push(Operator::sign_in(&b.url, login(i)).await);
    }
    let on_a: Vec<Arc<Operator>> = on_a.into_iter().map(Arc::new).collect();
    let on_b: Vec<Arc<Operator>> = on_b.into_iter().map(Arc::new).collect();
    let everyone: Vec<Arc<Operator>> = on_a.iter().chain(on_b.iter()).cloned().collect();
    let phase1 = all_call(&everyone, 40).await;
    assert!(
        phase1.iter().all(|d| d.len() == 40),
        "phase 1: {:?}",
        lens(&phase1)
    );

    // Instance A is SIGKILLed while its operators are calling, and B's too.
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let stop = stop.clone();
        let pid = a.child.id();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            stop.store(true, Ordering::Relaxed);
        })
    };
    let phase2 = all_call(&everyone, 100_000).await;
    killer.await.unwrap();
    let _ = a.child.wait();
    assert!(stop.load(Ordering::Relaxed));

    // B still answers, and A's operators carry on through it (held contacts resume) until
    // every contact is interviewed.
    assert_eq!(common::raw_http::get(&b.url, "/healthz", None).status, 200);
    let mut moved = Vec::new();
    for i in 0..OPERATORS / 2 {
        moved.push(Arc::new(Operator::sign_in(&b.url, login(i)).await));
    }
    let phase3 = all_call(&moved, 100_000).await;

    // Every acknowledged attempt is stored once, with its operator.
    let mut acked: Vec<(i64, &str)> = Vec::new();
    for (phase, ops) in [
        (&phase1, &everyone),
        (&phase2, &everyone),
        (&phase3, &moved),
    ] {
        for (ids, op) in phase.iter().zip(ops) {
            acked.extend(ids.iter().map(|id| (*id, op.login)));
        }
    }
    let mut ids: Vec<i64> = acked.iter().map(|(id, _)| *id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), acked.len(), "no attempt acknowledged twice");
    for (id, login) in &acked {
        let row = client
            .query_one(
                "SELECT u.login FROM attempts a JOIN users u ON u.id = a.operator_id WHERE a.id = $1",
                &[id],
            )
            .await
            .unwrap_or_else(|e| panic!("acknowledged attempt {id} is not stored: {e}"));
        assert_eq!(row.get::<_, String>(0), *login);
    }
    let stored = count("SELECT COUNT(*) FROM attempts").await;
    let members = (UNITS * PER_UNIT) as i64;
    // Every contact was interviewed once: a record in flight when A died either committed
    // (its operator found the next contact on B) or did not (the contact was called again).
    assert_eq!(stored, members, "one interview per representative");
    assert!(acked.len() as i64 >= members - (OPERATORS / 2) as i64);
    let twice = count(
        "SELECT COUNT(*) FROM (SELECT member_id FROM attempts GROUP BY member_id HAVING COUNT(*) > 1) t",
    )
    .await;
    assert_eq!(twice, 0, "a contact was interviewed twice");
    assert_eq!(
        count("SELECT COUNT(*) FROM queue").await,
        0,
        "the queue is empty"
    );
    let chain = sheping::storage::postgres::audit::verify(&client)
        .await
        .unwrap();
    assert!(chain.is_ok(), "audit chain: {chain:?}");
    eprintln!(
        "pg_serve: {} cycles acknowledged (phase 1 {}, until the kill {}, after it on B {})",
        acked.len(),
        lens(&phase1).iter().sum::<usize>(),
        lens(&phase2).iter().sum::<usize>(),
        lens(&phase3).iter().sum::<usize>()
    );
    drop(b);
}

fn lens(v: &[Vec<i64>]) -> Vec<usize> {
    v.iter().map(Vec::len).collect()
}

static NEVER: AtomicBool = AtomicBool::new(false);

/// Each operator calls (up to `max` interviews) on a task of its own, all at once.
async fn all_call(ops: &[Arc<Operator>], max: usize) -> Vec<Vec<i64>> {
    let tasks: Vec<_> = ops
        .iter()
        .map(|o| {
            let o = o.clone();
            tokio::spawn(async move { o.call(max, &NEVER).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
