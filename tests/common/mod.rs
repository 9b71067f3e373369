//! Test helpers: the real `sheping` binary on a temporary database, and the real server on a
//! random loopback port.
pub mod browser;
pub mod charts_support;
pub mod db;
pub mod fuzz;
pub mod pg;
pub mod raw_http;
pub mod results_fixture;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_sheping");

/// The backend the CLI- and HTTP-driven tests run on: `SHEPING_TEST_BACKEND=postgres` puts
/// every [`Sheping`] on a fresh PostgreSQL database of the test cluster (tests/pg_cluster.sh),
/// anything else (or unset) on a SQLite file.
pub fn on_postgres() -> bool {
    match std::env::var("SHEPING_TEST_BACKEND").as_deref() {
        Ok("postgres") | Ok("postgresql") => true,
        Ok("") | Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("SHEPING_TEST_BACKEND={other}: use sqlite or postgres"),
    }
}

/// The running test's name (the harness names each test's thread after it).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_string()
}

/// For a test about the SQLite file itself: on a PostgreSQL run says loudly that the test
/// skips, and why (straight to the process's stderr: the harness swallows a passing test's
/// output), and returns true. `if common::sqlite_only("why") { return; }`
pub fn sqlite_only(reason: &str) -> bool {
    if !on_postgres() {
        return false;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED {} on PostgreSQL: SQLite-only ({reason}) !!!!!!!!",
        test_name()
    );
    true
}

pub struct Sheping {
    pub dir: tempfile::TempDir,
    /// The SQLite file (on PostgreSQL unused: see [`Sheping::target`]).
    pub db: PathBuf,
    /// The PostgreSQL database under `SHEPING_TEST_BACKEND=postgres`, dropped with `self`.
    pub pg: Option<pg::PgDb>,
}

impl Sheping {
    /// A new empty database on the backend the run selected (see [`on_postgres`]).
    pub fn new() -> Sheping {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("test.db");
        let pg = if on_postgres() {
            let name = test_name();
            Some(pg::fresh_db(&name).unwrap_or_else(|| {
                panic!("{name}: SHEPING_TEST_BACKEND=postgres needs SHEPING_TEST_PG (run it inside tests/pg_cluster.sh)")
            }))
        } else {
            None
        };
        Sheping { dir, db, pg }
    }

    /// A new SQLite database whatever the run selected, for a test that is about the SQLite
    /// file itself; `None` (after a loud skip naming `reason`) on a PostgreSQL run.
    pub fn sqlite_only(reason: &str) -> Option<Sheping> {
        if sqlite_only(reason) {
            return None;
        }
        Some(Sheping::new())
    }

    /// A new SQLite database whatever the run selected: the SQLite side of a test that moves
    /// data between the backends (tests/it/pg_*.rs).
    pub fn new_sqlite() -> Sheping {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("test.db");
        Sheping { dir, db, pg: None }
    }

    /// A SQLite database in a given file (a backup copy, a downloaded file).
    pub fn on_sqlite_file(db: PathBuf) -> Sheping {
        Sheping {
            dir: tempfile::tempdir().expect("tempdir"),
            db,
            pg: None,
        }
    }

    /// Whether to run a test's checks of the SQLite file itself (bytes on disk, PRAGMAs): true
    /// on SQLite; on PostgreSQL false, after a loud line naming the part skipped.
    pub fn sqlite_file_checks(&self, what: &str) -> bool {
        if self.is_postgres() {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! SKIPPED part of {} on PostgreSQL: {what} (SQLite-only) !!!!!!!!",
                test_name()
            );
            return false;
        }
        true
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// The database, as direct SQL ([`db::Db`]) and [`Sheping::store`] reach it.
    pub fn target(&self) -> db::Target {
        match &self.pg {
            Some(pg) => db::Target::Postgres(pg.url.clone()),
            None => db::Target::Sqlite(self.db.clone()),
        }
    }

    /// Runs `f` on the library's store on this database, on a thread of its own (so it works
    /// inside a test's Tokio runtime too: the PostgreSQL store blocks on a runtime of its own).
    pub fn with_store<T: Send>(
        &self,
        f: impl FnOnce(&dyn sheping::storage::Store) -> T + Send,
    ) -> T {
        let target = self.target();
        std::thread::scope(|s| {
            s.spawn(move || f(open_store(&target).as_ref()))
                .join()
                .expect("store thread")
        })
    }

    /// Fills this (empty) database from a SQLite file a fixture built: the file becomes the
    /// database on SQLite; on PostgreSQL `sheping migrate` copies it in.
    pub fn load_sqlite(&self, file: &std::path::Path) {
        match &self.pg {
            None => {
                std::fs::rename(file, &self.db).expect("move the fixture's file into place");
            }
            Some(pg) => {
                let out = Command::new(BIN)
                    .args(["migrate", "--from"])
                    .arg(file)
                    .args(["--to", &pg.url])
                    .env_remove("SHEPING_DB")
                    .env("RUST_LOG", "error")
                    .output()
                    .expect("run sheping migrate");
                assert!(out.status.success(), "sheping migrate: {out:?}");
            }
        }
    }

    /// The value of `--db`: the SQLite file or the PostgreSQL URL.
    pub fn db_arg(&self) -> std::ffi::OsString {
        match &self.pg {
            Some(pg) => pg.url.clone().into(),
            None => self.db.clone().into(),
        }
    }

    /// The library's store on this database (the backend the binary would open). Open it
    /// outside a Tokio runtime: the PostgreSQL store blocks on a runtime of its own.
    pub fn store(&self) -> std::sync::Arc<dyn sheping::storage::Store> {
        open_store(&self.target())
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
            .arg(self.db_arg())
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

    /// Direct SQL on the same database (either backend; the SQL must be portable).
    pub fn sql(&self) -> db::Db {
        db::Db::open(&self.target())
    }

    /// A rusqlite connection to the SQLite file, for the SQLite-only tests (PRAGMAs, the
    /// schema in `sqlite_master`, tampering the file).
    pub fn sqlite(&self) -> rusqlite::Connection {
        assert!(
            !self.is_postgres(),
            "{}: sp.sqlite() is for SQLite-only tests (see Sheping::sqlite_only)",
            test_name()
        );
        rusqlite::Connection::open(&self.db).expect("open db")
    }

    /// The first column of the first row, an integer (`SELECT COUNT(*) …`).
    pub fn count(&self, sql: &str) -> i64 {
        self.query_i64(sql, [])
    }

    /// The details (JSON) of the audit entries of `action`, oldest first.
    pub fn audit_details(&self, action: &str) -> Vec<serde_json::Value> {
        self.sql()
            .rows(
                "SELECT detail FROM audit_log WHERE action = ?1 ORDER BY id",
                [action],
            )
            .unwrap_or_else(|e| panic!("audit_log: {e}"))
            .into_iter()
            .map(|row| match &row[0] {
                db::Val::Text(t) => serde_json::from_str(t).expect("the detail is JSON"),
                other => panic!("audit detail {other:?}"),
            })
            .collect()
    }

    /// PostgreSQL: every row of every table of the database, as text (a purge test's view of
    /// "everything stored", where on SQLite it reads the file's bytes).
    pub fn pg_rows_as_text(&self) -> Vec<String> {
        assert!(self.is_postgres(), "pg_rows_as_text is for PostgreSQL");
        let db = self.sql();
        let tables = db
            .rows(
                "SELECT table_name FROM information_schema.tables
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                [],
            )
            .expect("the tables");
        let mut out = Vec::new();
        for t in tables {
            let db::Val::Text(table) = &t[0] else {
                panic!("table name {t:?}")
            };
            for row in db
                .rows(&format!("SELECT t::text FROM \"{table}\" t"), [])
                .expect("a table's rows")
            {
                if let db::Val::Text(text) = &row[0] {
                    out.push(format!("{table}: {text}"));
                }
            }
        }
        out
    }

    pub fn query_i64(&self, sql: &str, params: impl db::Params) -> i64 {
        self.sql()
            .query_row(sql, params, |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// Opens the library's store on `target` (SQLite file or PostgreSQL URL).
pub fn open_store(target: &db::Target) -> std::sync::Arc<dyn sheping::storage::Store> {
    match target {
        db::Target::Sqlite(path) => std::sync::Arc::new(
            sheping::storage::sqlite::SqliteStore::open(path).expect("open the SQLite store"),
        ),
        db::Target::Postgres(url) => std::sync::Arc::new(
            sheping::storage::postgres::PgBackend::open(url).expect("open the PostgreSQL store"),
        ),
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
