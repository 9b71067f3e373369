//! Test helpers: the real `sheping` binary on a temporary database, and the real server on a
//! random loopback port.
pub mod browser;
pub mod charts_support;
pub mod fuzz;
pub mod pg;
pub mod raw_http;
pub mod results_fixture;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_sheping");

pub struct Sheping {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl Sheping {
    pub fn new() -> Sheping {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("test.db");
        Sheping { dir, db }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write fixture");
        p
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--db")
            .arg(&self.db)
            .env_remove("SHEPING_DB")
            .env("RUST_LOG", "error");
        c.current_dir(env!("CARGO_MANIFEST_DIR"));
        c
    }

    /// Runs the command and returns its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run sheping")
    }

    /// Runs the command and insists it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "sheping {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "sheping {args:?}: stdout is not JSON ({e}):\n{}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// A connection to the same SQLite file, to check what was stored.
    pub fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).expect("open db")
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.sql().query_row(sql, [], |r| r.get(0)).expect(sql)
    }
}

/// A server process on a random loopback port; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// Starts `sheping <args> --addr 127.0.0.1:0` and waits for the URL it prints.
    pub fn start(sp: &Sheping, args: &[&str]) -> Server {
        let mut command = sp.command();
        command.args(args);
        Server::spawn(command)
    }

    /// Starts `command --addr 127.0.0.1:0` (a `sheping serve` or `demo` of the caller's making,
    /// e.g. on a PostgreSQL database) and waits for the URL it prints.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut printed = String::new();
        let url = loop {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("read stdout") == 0 {
                panic!("server exited before printing its URL:\n{printed}");
            }
            printed.push_str(&line);
            if let Some(start) = line.find("http://") {
                let rest = &line[start..];
                let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
                break rest[..end].trim_end_matches('/').to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Units file used by roster tests: three units of a round.
pub const UNITS_CSV: &str = "单位名称,单位类型,系统,单位代码\n汉滨区教育体育局,党政机关,教体,A01\n汉滨区住房和城乡建设局,党政机关,住建,A02\n汉滨区公路管理段,事业单位,交通运输,B01\n";

/// Creates round 2022 with the three units above.
pub fn round_with_units(sp: &Sheping) {
    sp.ok(&["round", "create", "2022", "--title", "2022年度履职评估"]);
    let units = sp.write("units.csv", UNITS_CSV.as_bytes());
    sp.ok(&[
        "units",
        "import",
        "--round",
        "2022",
        units.to_str().unwrap(),
    ]);
}

/// Adds a user with the web tests' password ([`browser::PASSWORD`]).
pub fn add_user(sp: &Sheping, login: &str, role: &str) {
    let out = sp
        .command()
        .env("PW", browser::PASSWORD)
        .args([
            "user",
            "add",
            "--login",
            login,
            "--name",
            login,
            "--role",
            role,
            "--password-env",
            "PW",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// A new API token for `login` (printed once by `token create`: `shp_` and 64 hex digits).
pub fn api_token(sp: &Sheping, login: &str) -> String {
    let t = sp
        .ok(&["token", "create", "--login", login, "--label", "test"])
        .trim()
        .to_string();
    assert!(t.starts_with("shp_") && t.len() == 68, "{t}");
    t
}
