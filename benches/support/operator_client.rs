//! An operator driving the real web form over HTTP, as the browser does without JavaScript:
//! sign in, claim the next contact, record a complete interview. Shared by the HTTP benchmark
//! and the crash test.
#![allow(dead_code)]

use std::time::Duration;

#[derive(Debug)]
pub enum ClientError {
    Http(String),
    Page(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Http(e) => write!(f, "http: {e}"),
            ClientError::Page(e) => write!(f, "page: {e}"),
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        ClientError::Http(e.to_string())
    }
}

/// The value of the first `<input name="NAME" value="...">` in a page.
pub fn field(html: &str, name: &str) -> Option<String> {
    let pat = format!("name=\"{name}\" value=\"");
    let start = html.find(&pat)? + pat.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

pub struct OperatorClient {
    http: reqwest::Client,
    base: String,
    round: String,
    csrf: String,
    /// The claim token of the contact on screen.
    pub token: Option<String>,
}

impl OperatorClient {
    pub async fn sign_in(
        base: &str,
        login: &str,
        password: &str,
        round: &str,
    ) -> Result<OperatorClient, ClientError> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build()?;
        let page = http
            .get(format!("{base}/login"))
            .send()
            .await?
            .text()
            .await?;
        let token =
            field(&page, "token").ok_or_else(|| ClientError::Page("no sign-in token".into()))?;
        let resp = http
            .post(format!("{base}/login"))
            .form(&[
                ("token", token.as_str()),
                ("next", "/call"),
                ("login", login),
                ("password", password),
            ])
            .send()
            .await?;
        let page = resp.text().await?;
        let mut c = OperatorClient {
            http,
            base: base.to_string(),
            round: round.to_string(),
            csrf: String::new(),
            token: None,
        };
        c.absorb(&page)?;
        Ok(c)
    }

    fn absorb(&mut self, page: &str) -> Result<(), ClientError> {
        self.csrf = field(page, "csrf").ok_or_else(|| {
            ClientError::Page(format!(
                "no csrf field in: {}",
                &page[..page.len().min(300)]
            ))
        })?;
        self.token = field(page, "token").filter(|t| !t.is_empty());
        Ok(())
    }

    /// Claims the next contact when none is on screen; false when the queue is empty.
    pub async fn next(&mut self) -> Result<bool, ClientError> {
        if self.token.is_some() {
            return Ok(true);
        }
        let page = self
            .http
            .post(format!("{}/call/next", self.base))
            .form(&[("csrf", self.csrf.as_str()), ("round", self.round.as_str())])
            .send()
            .await?
            .text()
            .await?;
        self.absorb(&page)?;
        Ok(self.token.is_some())
    }

    /// Records a complete interview for the contact on screen (1-based levels); returns the
    /// recorded claim token once the server acknowledged it.
    pub async fn complete(&mut self, levels: &[usize]) -> Result<String, ClientError> {
        let token = self
            .token
            .clone()
            .ok_or_else(|| ClientError::Page("no contact on screen".into()))?;
        let mut form: Vec<(String, String)> = vec![
            ("csrf".into(), self.csrf.clone()),
            ("round".into(), self.round.clone()),
            ("token".into(), token.clone()),
            ("outcome".into(), "complete".into()),
        ];
        for (d, l) in levels.iter().enumerate() {
            form.push((format!("a{d}"), l.to_string()));
            form.push((format!("ms{d}"), ((d + 1) * 4000).to_string()));
        }
        let resp = self
            .http
            .post(format!("{}/call/record", self.base))
            .form(&form)
            .send()
            .await?;
        let status = resp.status();
        let page = resp.text().await?;
        if !status.is_success() {
            return Err(ClientError::Page(format!("record answered {status}")));
        }
        self.absorb(&page)?;
        Ok(token)
    }

    pub async fn healthz(&self) -> Result<(), ClientError> {
        self.http
            .get(format!("{}/healthz", self.base))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}
