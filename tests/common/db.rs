//! Direct SQL on a test's database, whichever backend it runs on: [`Db`] answers the few
//! rusqlite calls the tests use (`query_row`, `execute`, `prepare` + `query_map`,
//! `execute_batch`) on a SQLite file or a PostgreSQL database alike, so a test that checks
//! what was stored (or plants a row) runs unchanged on both. The SQL must be portable: `?N`
//! placeholders are rewritten to `$N` for PostgreSQL, nothing else is translated.

use std::fmt;
use std::path::PathBuf;

/// A value in or out of a query, the same on both backends (SQLite's storage classes).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// An error of a [`Db`] call (rusqlite's or tokio-postgres's text, or a conversion).
#[derive(Debug)]
pub enum DbError {
    NoRows,
    Backend(String),
    Type {
        column: usize,
        wanted: &'static str,
        got: Val,
    },
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::NoRows => write!(f, "the query returned no rows"),
            DbError::Backend(e) => write!(f, "{e}"),
            DbError::Type {
                column,
                wanted,
                got,
            } => write!(f, "column {column}: wanted {wanted}, got {got:?}"),
        }
    }
}

impl std::error::Error for DbError {}

pub type Result<T> = std::result::Result<T, DbError>;

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<&i64> for Val {
    fn from(v: &i64) -> Val {
        Val::Int(*v)
    }
}
impl From<i32> for Val {
    fn from(v: i32) -> Val {
        Val::Int(v.into())
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Int(v.into())
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::Real(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_owned())
    }
}
impl From<&&str> for Val {
    fn from(v: &&str) -> Val {
        Val::Text((*v).to_owned())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}
impl From<&i32> for Val {
    fn from(v: &i32) -> Val {
        Val::Int((*v).into())
    }
}
impl From<&bool> for Val {
    fn from(v: &bool) -> Val {
        Val::Int((*v).into())
    }
}
impl From<&f64> for Val {
    fn from(v: &f64) -> Val {
        Val::Real(*v)
    }
}
impl From<&Val> for Val {
    fn from(v: &Val) -> Val {
        v.clone()
    }
}
impl<T: Clone + Into<Val>> From<&Option<T>> for Val {
    fn from(v: &Option<T>) -> Val {
        v.clone().map_or(Val::Null, Into::into)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

/// Query parameters: `[]`, `[x]`, `[a, b]` of one type, or [`params!`](crate::params) for
/// mixed types.
pub trait Params {
    fn vals(self) -> Vec<Val>;
}

/// `[]`: one impl for the empty array, so it needs no annotation (as in rusqlite).
impl Params for [Val; 0] {
    fn vals(self) -> Vec<Val> {
        Vec::new()
    }
}

macro_rules! impl_params_for_arrays {
    ($($n:literal)+) => {$(
        impl<T: Into<Val>> Params for [T; $n] {
            fn vals(self) -> Vec<Val> {
                self.into_iter().map(Into::into).collect()
            }
        }
    )+};
}
impl_params_for_arrays!(1 2 3 4 5 6 7 8);

impl Params for Vec<Val> {
    fn vals(self) -> Vec<Val> {
        self
    }
}

/// Parameters of mixed types, as `rusqlite::params!`.
#[macro_export]
macro_rules! params {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::common::db::Val::from(&$v)),*]
    };
}

/// A value read out of a [`Row`].
pub trait FromVal: Sized {
    fn from_val(v: &Val) -> Option<Self>;
    const NAME: &'static str;
}

impl FromVal for i64 {
    const NAME: &'static str = "an integer";
    fn from_val(v: &Val) -> Option<i64> {
        match v {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromVal for i32 {
    const NAME: &'static str = "an integer";
    fn from_val(v: &Val) -> Option<i32> {
        match v {
            Val::Int(i) => i32::try_from(*i).ok(),
            _ => None,
        }
    }
}
impl FromVal for u32 {
    const NAME: &'static str = "an integer";
    fn from_val(v: &Val) -> Option<u32> {
        match v {
            Val::Int(i) => u32::try_from(*i).ok(),
            _ => None,
        }
    }
}
impl FromVal for usize {
    const NAME: &'static str = "an integer";
    fn from_val(v: &Val) -> Option<usize> {
        match v {
            Val::Int(i) => usize::try_from(*i).ok(),
            _ => None,
        }
    }
}
impl FromVal for bool {
    const NAME: &'static str = "a 0/1 flag";
    fn from_val(v: &Val) -> Option<bool> {
        match v {
            Val::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}
impl FromVal for f64 {
    const NAME: &'static str = "a number";
    fn from_val(v: &Val) -> Option<f64> {
        match v {
            Val::Real(f) => Some(*f),
            Val::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}
impl FromVal for String {
    const NAME: &'static str = "text";
    fn from_val(v: &Val) -> Option<String> {
        match v {
            Val::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}
impl FromVal for Vec<u8> {
    const NAME: &'static str = "a blob";
    fn from_val(v: &Val) -> Option<Vec<u8>> {
        match v {
            Val::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}
impl FromVal for Val {
    const NAME: &'static str = "any value";
    fn from_val(v: &Val) -> Option<Val> {
        Some(v.clone())
    }
}
impl<T: FromVal> FromVal for Option<T> {
    const NAME: &'static str = T::NAME;
    fn from_val(v: &Val) -> Option<Option<T>> {
        match v {
            Val::Null => Some(None),
            v => T::from_val(v).map(Some),
        }
    }
}

/// A column index (only `usize`, so a literal `0` needs no annotation).
pub trait RowIndex {
    fn index(self) -> usize;
}
impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One row of an answer.
pub struct Row(Vec<Val>);

impl Row {
    pub fn get<I: RowIndex, T: FromVal>(&self, idx: I) -> Result<T> {
        let column = idx.index();
        let v = self
            .0
            .get(column)
            .ok_or_else(|| DbError::Backend(format!("no column {column}")))?;
        T::from_val(v).ok_or_else(|| DbError::Type {
            column,
            wanted: T::NAME,
            got: v.clone(),
        })
    }
}

/// The database of a test: a SQLite file or a PostgreSQL URL.
#[derive(Clone, Debug)]
pub enum Target {
    Sqlite(PathBuf),
    Postgres(String),
}

/// A handle for direct SQL on a [`Target`]. On PostgreSQL one connection on a thread of its
/// own (so it works inside a test's Tokio runtime too), closed when the handle drops.
pub struct Db {
    inner: Inner,
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres(std::sync::mpsc::Sender<Job>),
}

/// One statement for the PostgreSQL thread, and where its answer goes.
struct Job {
    sql: String,
    params: Vec<Val>,
    kind: Kind,
    reply: std::sync::mpsc::Sender<Result<(Vec<Vec<Val>>, usize)>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Query,
    Execute,
    Batch,
}

impl Db {
    pub fn open(target: &Target) -> Db {
        let inner = match target {
            Target::Sqlite(path) => {
                Inner::Sqlite(rusqlite::Connection::open(path).expect("open the SQLite file"))
            }
            Target::Postgres(url) => {
                let (tx, rx) = std::sync::mpsc::channel::<Job>();
                let url = url.clone();
                std::thread::spawn(move || {
                    super::pg::block_on(async {
                        let client = super::pg::connect(&url).await;
                        // Blocking between jobs is fine: the connection only has work while
                        // a job's query is awaited.
                        while let Ok(job) = rx.recv() {
                            let answer = pg_run(&client, &job.sql, &job.params, job.kind).await;
                            let _ = job.reply.send(answer);
                        }
                    })
                });
                Inner::Postgres(tx)
            }
        };
        Db { inner }
    }

    fn pg(
        tx: &std::sync::mpsc::Sender<Job>,
        sql: &str,
        params: Vec<Val>,
        kind: Kind,
    ) -> Result<(Vec<Vec<Val>>, usize)> {
        let (reply, answer) = std::sync::mpsc::channel();
        let sql = if kind == Kind::Batch {
            sql.to_owned()
        } else {
            pg_sql(sql)
        };
        tx.send(Job {
            sql,
            params,
            kind,
            reply,
        })
        .expect("the PostgreSQL connection's thread");
        answer.recv().expect("the PostgreSQL connection's thread")
    }

    /// Every row of `sql`.
    pub fn rows(&self, sql: &str, params: impl Params) -> Result<Vec<Vec<Val>>> {
        let params = params.vals();
        match &self.inner {
            Inner::Sqlite(c) => sqlite_rows(c, sql, &params),
            Inner::Postgres(tx) => Db::pg(tx, sql, params, Kind::Query).map(|(r, _)| r),
        }
    }

    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        let row = self
            .rows(sql, params)?
            .into_iter()
            .next()
            .ok_or(DbError::NoRows)?;
        f(&Row(row))
    }

    /// Runs a writing statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        let params = params.vals();
        match &self.inner {
            Inner::Sqlite(c) => {
                let p: Vec<rusqlite::types::Value> = params.iter().map(to_sqlite).collect();
                c.execute(sql, rusqlite::params_from_iter(p))
                    .map_err(|e| DbError::Backend(e.to_string()))
            }
            Inner::Postgres(tx) => Db::pg(tx, sql, params, Kind::Execute).map(|(_, n)| n),
        }
    }

    /// Runs several statements (no parameters).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => c
                .execute_batch(sql)
                .map_err(|e| DbError::Backend(e.to_string())),
            Inner::Postgres(tx) => Db::pg(tx, sql, Vec::new(), Kind::Batch).map(|_| ()),
        }
    }

    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        Ok(Stmt {
            db: self,
            sql: sql.to_owned(),
        })
    }
}

/// A statement of [`Db::prepare`], for `query_map`.
pub struct Stmt<'a> {
    db: &'a Db,
    sql: String,
}

impl Stmt<'_> {
    pub fn query_map<T>(
        &mut self,
        params: impl Params,
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let rows = self.db.rows(&self.sql, params)?;
        Ok(rows
            .into_iter()
            .map(|r| f(&Row(r)))
            .collect::<Vec<_>>()
            .into_iter())
    }
}

fn to_sqlite(v: &Val) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        Val::Null => Value::Null,
        Val::Int(i) => Value::Integer(*i),
        Val::Real(f) => Value::Real(*f),
        Val::Text(t) => Value::Text(t.clone()),
        Val::Blob(b) => Value::Blob(b.clone()),
    }
}

fn sqlite_rows(c: &rusqlite::Connection, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>> {
    use rusqlite::types::Value;
    let e = |e: rusqlite::Error| DbError::Backend(e.to_string());
    let mut st = c.prepare(sql).map_err(e)?;
    let n = st.column_count();
    let p: Vec<Value> = params.iter().map(to_sqlite).collect();
    let rows = st
        .query_map(rusqlite::params_from_iter(p), |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get::<_, Value>(i)? {
                        Value::Null => Val::Null,
                        Value::Integer(i) => Val::Int(i),
                        Value::Real(f) => Val::Real(f),
                        Value::Text(t) => Val::Text(t),
                        Value::Blob(b) => Val::Blob(b),
                    })
                })
                .collect::<rusqlite::Result<Vec<Val>>>()
        })
        .map_err(e)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
}

/// `?N` → `$N`, and a bare `?` → the next `$k`, outside string literals.
pub fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut in_string = false;
    let mut next = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            in_string = !in_string;
            out.push(c);
        } else if c == '?' && !in_string {
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            if digits.is_empty() {
                next += 1;
                digits = next.to_string();
            }
            out.push('$');
            out.push_str(&digits);
        } else {
            out.push(c);
        }
    }
    out
}

fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Runs one statement with parameters converted to the types the server inferred for them.
async fn pg_run(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[Val],
    kind: Kind,
) -> Result<(Vec<Vec<Val>>, usize)> {
    use tokio_postgres::types::{ToSql, Type};
    let e = |e: tokio_postgres::Error| DbError::Backend(format!("{}: {sql}", pg_error(&e)));
    if kind == Kind::Batch {
        client.batch_execute(sql).await.map_err(e)?;
        return Ok((Vec::new(), 0));
    }
    {
        let st = client.prepare(sql).await.map_err(e)?;
        let mut boxed: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        for (v, ty) in params.iter().zip(st.params()) {
            let b: Box<dyn ToSql + Sync + Send> = match (v, ty) {
                (Val::Null, _) => match *ty {
                    Type::INT8 => Box::new(None::<i64>),
                    Type::INT4 => Box::new(None::<i32>),
                    Type::FLOAT8 => Box::new(None::<f64>),
                    Type::BYTEA => Box::new(None::<Vec<u8>>),
                    _ => Box::new(None::<String>),
                },
                (Val::Int(i), &Type::INT8) => Box::new(*i),
                (Val::Int(i), &Type::INT4) => Box::new(*i as i32),
                (Val::Int(i), &Type::INT2) => Box::new(*i as i16),
                (Val::Int(i), &Type::FLOAT8) => Box::new(*i as f64),
                (Val::Int(i), &Type::BOOL) => Box::new(*i != 0),
                (Val::Int(i), _) => Box::new(i.to_string()),
                (Val::Real(f), &Type::FLOAT4) => Box::new(*f as f32),
                (Val::Real(f), _) => Box::new(*f),
                (Val::Text(t), _) => Box::new(t.clone()),
                (Val::Blob(b), _) => Box::new(b.clone()),
            };
            boxed.push(b);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = boxed
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        if kind == Kind::Execute {
            let n = client.execute(&st, &refs).await.map_err(e)?;
            return Ok((Vec::new(), n as usize));
        }
        let rows = client.query(&st, &refs).await.map_err(e)?;
        let out = rows
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, PgVal>(i).0)
                    .collect::<Vec<Val>>()
            })
            .collect::<Vec<_>>();
        let n = out.len();
        Ok((out, n))
    }
}

/// Any PostgreSQL value as a [`Val`] (the schema's bigint, double precision, text, bytea;
/// `numeric` from `sum()`, `int4` from `CAST(… AS INTEGER)`, `boolean` from a comparison).
struct PgVal(Val);

impl<'a> tokio_postgres::types::FromSql<'a> for PgVal {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<PgVal, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::Type;
        Ok(PgVal(match *ty {
            Type::INT8 => Val::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Val::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Val::Int(i16::from_sql(ty, raw)?.into()),
            Type::OID => Val::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => Val::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Val::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Val::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => Val::Blob(Vec::<u8>::from_sql(ty, raw)?),
            Type::NUMERIC => numeric(raw)?,
            _ => Val::Text(String::from_utf8(raw.to_vec())?),
        }))
    }

    fn from_sql_null(
        _: &tokio_postgres::types::Type,
    ) -> std::result::Result<PgVal, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgVal(Val::Null))
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// PostgreSQL's binary `numeric` (base-10000 digits): an integer when it has no fraction,
/// else a double.
fn numeric(raw: &[u8]) -> std::result::Result<Val, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> std::result::Result<i16, Box<dyn std::error::Error + Sync + Send>> {
        Ok(i16::from_be_bytes(
            raw.get(i * 2..i * 2 + 2)
                .ok_or("short numeric")?
                .try_into()?,
        ))
    };
    let (ndigits, weight, sign, dscale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
    if sign == 0xC000 {
        return Ok(Val::Real(f64::NAN));
    }
    let mut value = 0f64;
    for k in 0..ndigits as usize {
        value += f64::from(word(4 + k)?) * 10000f64.powi(i32::from(weight) - k as i32);
    }
    if sign == 0x4000 {
        value = -value;
    }
    Ok(if dscale == 0 && value.abs() < 9.0e15 {
        Val::Int(value as i64)
    } else {
        Val::Real(value)
    })
}
