//! A prepared statement that binds text without copying it, for the roster import's
//! many-row INSERT.
//!
//! rusqlite binds every text as `SQLITE_TRANSIENT`: SQLite frees the parameter's previous
//! buffer, allocates a new one and copies the text into it, for every parameter of every
//! row. On a million members that was 14 % of the import's writing thread (five texts a row;
//! `perf`, BENCHMARKS.md, twelfth session). `SQLITE_STATIC` makes SQLite read the caller's
//! bytes in place, which is sound only while they live: [`BorrowedBinds::execute`] binds,
//! runs the statement to its end, resets it and clears its bindings within one call, so the
//! borrowed values need to outlive that call only, which the borrow checker enforces.
//!
//! rusqlite offers no static binding, so this is the one place that speaks to SQLite's C API
//! directly.

use std::ffi::{c_char, c_int};
use std::ptr::NonNull;

use rusqlite::{Connection, ffi};

/// A parameter value, borrowed for one execution.
#[derive(Clone, Copy, Debug)]
pub(super) enum Param<'a> {
    Int(i64),
    Text(&'a str),
    Null,
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(value: &'a Option<String>) -> Self {
        value.as_deref().map_or(Param::Null, Param::Text)
    }
}

/// The same value bound the usual (copying) way, for a statement run through rusqlite.
impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Int(v) => ValueRef::Integer(v),
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Null => ValueRef::Null,
        }))
    }
}

/// A statement prepared on `conn`, finalized when dropped (before `conn` can close, as it
/// borrows it).
pub(super) struct BorrowedBinds<'c> {
    conn: &'c Connection,
    stmt: NonNull<ffi::sqlite3_stmt>,
    params: usize,
}

impl<'c> BorrowedBinds<'c> {
    pub(super) fn prepare(conn: &'c Connection, sql: &str) -> rusqlite::Result<Self> {
        let len = c_int::try_from(sql.len()).map_err(|_| rusqlite::Error::InvalidQuery)?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: the connection handle is valid while `conn` is borrowed; SQLite reads `len`
        // bytes of `sql` (no NUL needed) and writes the new statement's pointer to `stmt`.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                conn.handle(),
                sql.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(conn, rc));
        }
        let stmt = NonNull::new(stmt).ok_or(rusqlite::Error::InvalidQuery)?;
        // SAFETY: `stmt` is the live statement just prepared.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) };
        Ok(BorrowedBinds {
            conn,
            stmt,
            params: usize::try_from(params).unwrap_or(0),
        })
    }

    /// Binds `values` to parameters `1..=values.len()` (which must be all of them), runs the
    /// statement to its end and returns the rows it changed. Whatever happens, the statement
    /// is reset and its bindings cleared before this returns: it keeps no pointer into
    /// `values`.
    pub(super) fn execute(&mut self, values: &[Param<'_>]) -> rusqlite::Result<usize> {
        if values.len() != self.params {
            return Err(rusqlite::Error::InvalidParameterCount(
                values.len(),
                self.params,
            ));
        }
        let stmt = self.stmt.as_ptr();
        let result = (|| {
            for (i, value) in values.iter().enumerate() {
                let index = c_int::try_from(i + 1).map_err(|_| rusqlite::Error::InvalidQuery)?;
                // SAFETY: `stmt` is live and `index` within its parameters; a text is bound
                // as SQLITE_STATIC, read in place until the bindings are cleared below,
                // before `values` can go out of scope.
                let rc = unsafe {
                    match *value {
                        Param::Int(v) => ffi::sqlite3_bind_int64(stmt, index, v),
                        Param::Null => ffi::sqlite3_bind_null(stmt, index),
                        Param::Text(s) => ffi::sqlite3_bind_text64(
                            stmt,
                            index,
                            s.as_ptr().cast::<c_char>(),
                            s.len() as u64,
                            ffi::SQLITE_STATIC(),
                            ffi::SQLITE_UTF8 as u8,
                        ),
                    }
                };
                if rc != ffi::SQLITE_OK {
                    return Err(error(self.conn, rc));
                }
            }
            // SAFETY: `stmt` is live with every parameter bound.
            match unsafe { ffi::sqlite3_step(stmt) } {
                ffi::SQLITE_DONE => Ok(self.conn.changes() as usize),
                ffi::SQLITE_ROW => Err(rusqlite::Error::ExecuteReturnedResults),
                rc => Err(error(self.conn, rc)),
            }
        })();
        // SAFETY: `stmt` is live. Reset returns the step's error again, already taken above;
        // clearing the bindings drops every pointer into `values`.
        unsafe {
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
        }
        result
    }
}

impl Drop for BorrowedBinds<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is live and used by nobody else; it is not used again.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

/// The connection's error for a failed call, as rusqlite reports it (so callers can match on
/// `sqlite_error_code()` as for any other statement).
fn error(conn: &Connection, rc: c_int) -> rusqlite::Error {
    // SAFETY: the handle is valid while `conn` is borrowed; the message is a NUL-terminated
    // string owned by SQLite, copied out at once.
    let (code, message) = unsafe {
        let db = conn.handle();
        let code = ffi::sqlite3_extended_errcode(db);
        let message = std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(db))
            .to_string_lossy()
            .into_owned();
        (if code == 0 { rc } else { code }, message)
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a INTEGER, b TEXT UNIQUE, c TEXT)")
            .unwrap();
        c
    }

    #[test]
    fn the_rows_hold_the_values_after_their_strings_are_gone() {
        let c = conn();
        {
            let mut insert =
                BorrowedBinds::prepare(&c, "INSERT INTO t VALUES (?1, ?2, ?3), (?4, ?5, ?6)")
                    .unwrap();
            for round in 0..3 {
                // Fresh strings each time, dropped before the next round binds: the rows
                // must hold copies SQLite made while running, not pointers to these.
                let texts: Vec<String> = (0..2).map(|i| format!("文本{round}-{i}")).collect();
                let n = insert
                    .execute(&[
                        Param::Int(round),
                        Param::Text(&texts[0]),
                        Param::Null,
                        Param::Int(round + 10),
                        Param::Text(&texts[1]),
                        Param::Text(""),
                    ])
                    .unwrap();
                assert_eq!(n, 2);
            }
        }
        let rows: Vec<(i64, String, Option<String>)> = c
            .prepare("SELECT a, b, c FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[0], (0, "文本0-0".into(), None));
        assert_eq!(rows[1], (10, "文本0-1".into(), Some(String::new())));
        assert_eq!(rows[5], (12, "文本2-1".into(), Some(String::new())));
    }

    #[test]
    fn a_constraint_error_is_reported_as_rusqlite_reports_it_and_the_statement_goes_on() {
        let c = conn();
        let mut insert = BorrowedBinds::prepare(&c, "INSERT INTO t VALUES (?1, ?2, ?3)").unwrap();
        insert
            .execute(&[Param::Int(1), Param::Text("x"), Param::Null])
            .unwrap();
        let e = insert
            .execute(&[Param::Int(2), Param::Text("x"), Param::Null])
            .unwrap_err();
        assert_eq!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation)
        );
        assert!(e.to_string().contains("UNIQUE"), "{e}");
        // The failed run was reset: the statement runs again.
        insert
            .execute(&[Param::Int(3), Param::Text("y"), Param::Null])
            .unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn a_wrong_number_of_values_is_refused_before_anything_is_bound() {
        let c = conn();
        let mut insert = BorrowedBinds::prepare(&c, "INSERT INTO t VALUES (?1, ?2, ?3)").unwrap();
        assert!(matches!(
            insert.execute(&[Param::Int(1)]),
            Err(rusqlite::Error::InvalidParameterCount(1, 3))
        ));
        assert!(BorrowedBinds::prepare(&c, "INSERT INTO nowhere VALUES (1)").is_err());
    }
}
