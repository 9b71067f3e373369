//! Headless Chromium driven through Debian's chromedriver (never a downloaded browser), for the
//! browser tests only; the HTTP helpers they share with `tests/it` are in `tests/common`.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::browser::PASSWORD;

/// One browser at a time across the whole binary (every test file): two cores, and Chromium is
/// heavy. A tokio lock, so a panicking test does not poison it for the next.
pub static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where screenshots for a reviewer go: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Headless Chromium at 1366×768 behind its own chromedriver; both end when dropped.
pub struct Browser {
    pub driver: Option<thirtyfour::WebDriver>,
    chromedriver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start(javascript: bool) -> Browser {
        use thirtyfour::prelude::*;
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: install Debian's chromium and chromium-driver (bash tests/run.sh does)"
            );
        }
        let port = free_port();
        // Its own process group, so that dropping the browser also ends the Chromium it started.
        let chromedriver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM).expect("binary");
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-extensions",
            "--password-store=basic",
            "--lang=zh-CN",
            "--window-size=1366,768",
            &format!("--user-data-dir={}", profile.path().display()),
        ] {
            caps.add_arg(arg).expect("arg");
        }
        if !javascript {
            caps.add_arg("--blink-settings=scriptEnabled=false")
                .expect("arg");
            caps.add_experimental_option(
                "prefs",
                serde_json::json!({ "profile.managed_default_content_settings.javascript": 2 }),
            )
            .expect("prefs");
        }
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .expect("start Chromium through chromedriver");
        Browser {
            driver: Some(driver),
            chromedriver,
            _profile: profile,
        }
    }

    pub fn d(&self) -> &thirtyfour::WebDriver {
        self.driver.as_ref().expect("driver")
    }

    pub async fn quit(mut self) {
        if let Some(d) = self.driver.take() {
            let _ = d.quit().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.chromedriver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

/// The first element matching `css`, waited for up to 15 s.
pub async fn wait_for(d: &thirtyfour::WebDriver, css: &str) -> thirtyfour::WebElement {
    use thirtyfour::prelude::*;
    d.query(By::Css(css))
        .wait(Duration::from_secs(15), Duration::from_millis(50))
        .first()
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
}

/// Signs in through the sign-in page with the fixture's password.
pub async fn sign_in(d: &thirtyfour::WebDriver, url: &str, login: &str) {
    sign_in_with(d, url, login, PASSWORD).await;
}

/// Signs in through the sign-in page and waits for the console's header.
pub async fn sign_in_with(d: &thirtyfour::WebDriver, url: &str, login: &str, password: &str) {
    use thirtyfour::prelude::*;
    d.goto(format!("{url}/login")).await.unwrap();
    wait_for(d, "input[name=login]")
        .await
        .send_keys(login)
        .await
        .unwrap();
    d.find(By::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    d.find(By::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(d, "header nav .who").await;
}

/// Presses keys on whatever has the focus (the page), like an operator at the keyboard.
pub async fn press(d: &thirtyfour::WebDriver, key: impl Into<thirtyfour::prelude::TypingData>) {
    d.action_chain().send_keys(key).perform().await.unwrap();
}
