//! Where the database is: `--db` / `SHEPING_DB` names either a SQLite file or, with a
//! `postgres://` or `postgresql://` URL, a PostgreSQL database (issue 22).

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The database a command or server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A SQLite file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresUrl),
}

/// A PostgreSQL connection URL that tokio-postgres accepts. Shown (`Display`, `Debug`) with its
/// password replaced by `***`, so it can go into messages and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error(
        "数据库地址 {url} 不是有效的 PostgreSQL 连接地址:{reason}。格式:postgres://用户@主机:端口/数据库名(经 Unix 套接字连接时写 postgres://用户@/数据库名?host=/套接字目录)"
    )]
    InvalidPostgresUrl { url: String, reason: String },
}

/// The URL schemes that select PostgreSQL: the two libpq (and tokio-postgres) accept.
const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

impl DatabaseLocation {
    /// Reads a `--db` value. A value that is not UTF-8 can only be a file path.
    pub fn from_os_str(value: &OsStr) -> Result<DatabaseLocation, LocationError> {
        match value.to_str() {
            Some(text) => text.parse(),
            None => Ok(DatabaseLocation::Sqlite(PathBuf::from(value))),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DatabaseLocation::Postgres(_))
    }
}

impl FromStr for DatabaseLocation {
    type Err = LocationError;

    fn from_str(value: &str) -> Result<DatabaseLocation, LocationError> {
        // Only these exact (lower-case) prefixes, as libpq reads them; a file whose path happens
        // to start so is still reachable as `./postgres://…`.
        if POSTGRES_SCHEMES.iter().any(|s| value.starts_with(s)) {
            PostgresUrl::parse(value).map(DatabaseLocation::Postgres)
        } else {
            Ok(DatabaseLocation::Sqlite(PathBuf::from(value)))
        }
    }
}

impl fmt::Display for DatabaseLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseLocation::Sqlite(path) => write!(f, "{}", path.display()),
            DatabaseLocation::Postgres(url) => write!(f, "{url}"),
        }
    }
}

impl PostgresUrl {
    pub fn parse(url: &str) -> Result<PostgresUrl, LocationError> {
        match tokio_postgres::Config::from_str(url) {
            Ok(_) => Ok(PostgresUrl(url.to_owned())),
            Err(e) => Err(LocationError::InvalidPostgresUrl {
                url: redact(url),
                reason: e.to_string(),
            }),
        }
    }

    /// The URL as given, password included: for connecting only, never for printing.
    pub fn secret_str(&self) -> &str {
        &self.0
    }

    /// The connection settings (validated when parsed).
    pub fn config(&self) -> tokio_postgres::Config {
        tokio_postgres::Config::from_str(&self.0).expect("validated when parsed")
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({})", redact(&self.0))
    }
}

/// The URL with the password (in `user:password@` or a `password=` parameter) replaced by `***`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme_end);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, hosts) = authority.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{hosts}", &userinfo[..colon]),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let (path, query) = tail.split_at(q + 1);
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key == "password" => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{head}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(value: &str) -> DatabaseLocation {
        value.parse().unwrap()
    }

    #[test]
    fn postgres_urls_select_postgres_and_everything_else_is_a_sqlite_path() {
        for url in [
            "postgres://sheping@db.internal:5432/sheping",
            "postgresql://sheping@db.internal/sheping",
            "postgresql://postgres@/postgres?host=/tmp/sheping-pg.x&port=5432",
            "postgresql://postgres@%2Ftmp%2Fsheping-pg.x:5432/postgres",
            "postgres:///sheping",
        ] {
            let DatabaseLocation::Postgres(parsed) = location(url) else {
                panic!("{url} should select PostgreSQL");
            };
            assert_eq!(parsed.secret_str(), url);
        }
        for path in [
            "data/sheping.db",
            "/var/lib/sheping/sheping.db",
            "sheping.db",
            "./postgres://x",
            "Postgres://not-a-scheme-we-read",
            "postgres:/one-slash",
            "host=/tmp port=5432",
            "",
        ] {
            assert_eq!(
                location(path),
                DatabaseLocation::Sqlite(PathBuf::from(path))
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let raw = OsStr::from_bytes(b"data/\xff.db");
            assert_eq!(
                DatabaseLocation::from_os_str(raw).unwrap(),
                DatabaseLocation::Sqlite(PathBuf::from(raw))
            );
        }
    }

    #[test]
    fn the_socket_and_port_of_a_url_reach_the_client() {
        let DatabaseLocation::Postgres(url) =
            location("postgresql://postgres@/sheping?host=/tmp/sheping-pg.x&port=6543")
        else {
            panic!("not PostgreSQL");
        };
        let config = url.config();
        assert_eq!(config.get_ports(), &[6543]);
        assert_eq!(config.get_dbname(), Some("sheping"));
        assert_eq!(config.get_user(), Some("postgres"));
        assert!(
            matches!(
                config.get_hosts(),
                [tokio_postgres::config::Host::Unix(p)] if p == std::path::Path::new("/tmp/sheping-pg.x")
            ),
            "{:?}",
            config.get_hosts()
        );
    }

    #[test]
    fn a_bad_postgres_url_is_an_error_that_does_not_show_the_password() {
        let err = "postgres://sheping:hunter2@db:notaport/sheping"
            .parse::<DatabaseLocation>()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("不是有效的 PostgreSQL 连接地址"), "{text}");
        assert!(
            text.contains("postgres://sheping:***@db:notaport/sheping"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn a_url_is_shown_without_its_password() {
        let url =
            location("postgres://sheping:hunter2@db:5432/sheping?sslmode=disable&password=x2");
        assert_eq!(
            url.to_string(),
            "postgres://sheping:***@db:5432/sheping?sslmode=disable&password=***"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(
            location("postgres://sheping@db/sheping").to_string(),
            "postgres://sheping@db/sheping"
        );
    }
}
