//! Helpers of the web-console tests: a round that can be called now, the real server with
//! chosen settings and signed-in HTTP clients. Chromium itself is in `tests/browser/chromium.rs`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use super::Sheping;

pub const ROUND: &str = "t";
pub const PASSWORD: &str = "test-password-1";
pub const UNITS: [&str; 3] = [
    "汉滨区教育体育局",
    "汉滨区住房和城乡建设局",
    "汉滨区公路管理段",
];
pub const MEMBERS_PER_UNIT: usize = 5;

/// The fixture's phone numbers, canonical: four mobiles and one landline per unit.
pub fn fixture_phones() -> Vec<String> {
    let mut out = Vec::new();
    for u in 0..UNITS.len() {
        for k in 0..MEMBERS_PER_UNIT {
            out.push(if k == MEMBERS_PER_UNIT - 1 {
                format!("0915-32{u}{k}456")
            } else {
                format!("1391{u}{k}45678")
            });
        }
    }
    out
}

/// Round `t` (field period around today, calls allowed all day) with three units of five
/// representatives, users admin/op1/op2/stat/eval (password [`PASSWORD`]) and a plan.
pub fn fixture() -> Sheping {
    let sp = Sheping::new();
    let survey =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/surveys/default.toml"))
            .expect("default survey")
            .replace(
                r#"windows = ["09:00-11:30", "14:30-17:30"]"#,
                r#"windows = ["00:00-23:59"]"#,
            );
    assert!(survey.contains("00:00-23:59"), "survey windows replaced");
    let file = sp.write("allday.toml", survey.as_bytes());
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let from = (today - chrono::Duration::days(3)).to_string();
    let to = (today + chrono::Duration::days(20)).to_string();
    sp.ok(&[
        "round",
        "create",
        ROUND,
        "--title",
        "测试轮次",
        "--survey",
        file.to_str().unwrap(),
        "--from",
        &from,
        "--to",
        &to,
    ]);
    let mut units = String::from("单位名称,单位类型,系统,单位代码\n");
    for (i, u) in UNITS.iter().enumerate() {
        units.push_str(&format!(
            "{u},{},测试,U{i}\n",
            if i == 2 {
                "事业单位"
            } else {
                "党政机关"
            }
        ));
    }
    let units = sp.write("units.csv", units.as_bytes());
    sp.ok(&["units", "import", "--round", ROUND, units.to_str().unwrap()]);
    let mut roster = String::from("参评单位,姓名,联系电话,代表类别,工作单位及职务\n");
    let phones = fixture_phones();
    for (u, unit) in UNITS.iter().enumerate() {
        for k in 0..MEMBERS_PER_UNIT {
            roster.push_str(&format!(
                "{unit},代表{u}{k},{},{},社区居民\n",
                phones[u * MEMBERS_PER_UNIT + k],
                if k == 0 { "人大代表" } else { "" }
            ));
        }
    }
    let roster = sp.write("roster.csv", roster.as_bytes());
    sp.ok(&[
        "roster",
        "import",
        "--round",
        ROUND,
        roster.to_str().unwrap(),
    ]);
    for (login, name, role) in [
        ("admin", "管理员", "admin"),
        ("op1", "话务员一", "operator"),
        ("op2", "话务员二", "operator"),
        ("stat", "统计员", "statistician"),
        ("eval", "评估员", "evaluator"),
    ] {
        let out = sp
            .command()
            .env("PW", PASSWORD)
            .args([
                "user",
                "add",
                "--login",
                login,
                "--name",
                name,
                "--role",
                role,
                "--password-env",
                "PW",
            ])
            .output()
            .expect("user add");
        assert!(out.status.success(), "user add {login}: {out:?}");
    }
    sp.ok(&["calls", "generate", "--round", ROUND, "--seed", "7"]);
    sp
}

/// The real server (`sheping serve`) with extra environment; killed when dropped.
pub struct WebServer {
    pub child: Child,
    pub url: String,
}

impl WebServer {
    pub fn start(sp: &Sheping, env: &[(&str, &str)]) -> WebServer {
        let mut cmd = sp.command();
        cmd.args(["serve", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn server");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let url = loop {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("read stdout") == 0 {
                panic!("server exited before printing its URL");
            }
            if let Some(start) = line.find("http://") {
                let rest = &line[start..];
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                break rest[..end].trim_end_matches('/').to_string();
            }
        };
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        WebServer { child, url }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A browser-like HTTP client: its own cookie jar, redirects not followed (tests look at them).
pub struct Web {
    pub url: String,
    pub client: reqwest::Client,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub async fn from(r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = r.text().await.unwrap_or_default();
        Page {
            status,
            location,
            headers,
            body,
        }
    }

    /// The value of the first input named `name`.
    pub fn input(&self, name: &str) -> Option<String> {
        input_value(&self.body, name)
    }

    /// The call screen's own address (`data-url`), which the page shows in the address bar
    /// also when it answers a form.
    pub fn page_url(&self) -> Option<String> {
        let needle = "id=\"page-url\" data-url=\"";
        let start = self.body.find(needle)? + needle.len();
        let end = self.body[start..].find('"')?;
        Some(
            self.body[start..start + end]
                .replace("&#38;", "&")
                .replace("&amp;", "&"),
        )
    }

    /// The attempt a call screen confirms (`done=` in its own address).
    pub fn done_id(&self) -> Option<i64> {
        self.page_url()?.split("done=").nth(1)?.parse().ok()
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }
}

pub fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

impl Web {
    pub fn new(url: &str) -> Web {
        Web {
            url: url.to_string(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        Page::from(
            self.client
                .get(format!("{}{path}", self.url))
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = self.client.get(format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Page::from(req.send().await.expect("GET")).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, &[]).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self.client.post(format!("{}{path}", self.url)).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Page::from(req.send().await.expect("POST")).await
    }

    /// Opens the sign-in page and signs in; returns the answer to the POST.
    pub async fn sign_in(&self, login: &str, password: &str) -> Page {
        self.sign_in_with(login, password, &[]).await
    }

    pub async fn sign_in_with(
        &self,
        login: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> Page {
        let page = self.get("/login").await;
        let token = page.input("token").expect("sign-in token");
        self.post_with(
            "/login",
            &[
                ("login", login),
                ("password", password),
                ("token", &token),
                ("next", ""),
            ],
            headers,
        )
        .await
    }

    /// Signs in and insists it worked.
    pub async fn signed_in(url: &str, login: &str) -> Web {
        let web = Web::new(url);
        let page = web.sign_in(login, PASSWORD).await;
        assert_eq!(page.status, 303, "sign-in of {login}: {}", page.body);
        web
    }

    /// The session's form token (from a page every signed-in user may open).
    pub async fn csrf(&self) -> String {
        self.get("/account/password")
            .await
            .input("csrf")
            .expect("csrf on the password page")
    }
}
