//! `sheping migrate`: copies a SQLite database into an empty PostgreSQL database, row for row
//! with their ids, in one PostgreSQL transaction, and checks the copy before committing it.
//!
//! The steps: open the SQLite file read-only (one read transaction: one consistent state even
//! while a server writes to it), refuse it when its schema version is not this build's or its
//! audit chain does not verify; connect to PostgreSQL (which migrates its schema), refuse a
//! target holding any row; then in one transaction copy every table in foreign-key order with
//! `COPY … FROM STDIN (FORMAT binary)`, and verify on the target: the row count of every table,
//! a checksum of every table's rows (SHA-256 over the values in one canonical encoding, read
//! back in one order from both databases), and the audit chain (`audit::verify`) with the same
//! head. Only then move the identity sequences past the copied ids and commit. Any failure rolls
//! the transaction back: the target stays empty.
//!
//! Triggers stay on (no `session_replication_role`, which needs a superuser): the foreign keys
//! and the stored-value checks of 013 check every copied row. The tally triggers of 006 count
//! the copied queue rows and attempts a second time, so the tally tables are emptied after the
//! other tables are in and then copied as SQLite stored them (their checksums prove it). The
//! ended-claims triggers of 011 fire on updates and deletes only; a copy only inserts.

use std::path::Path;
use std::time::{Duration, Instant};

use deadpool_postgres::GenericClient;
use rusqlite::OpenFlags;
use rusqlite::types::Value;
use sha2::{Digest, Sha256};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::{PgBackend, PgError, audit, describe};
use crate::domain::audit::{AuditEntry, ChainBreak, verify_chain};

/// Every table of the schema, parents before children (foreign-key order); the two tallies
/// last (see the module's comment).
pub const TABLES: [&str; 26] = [
    "rounds",
    "round_previous",
    "units",
    "members",
    "users",
    "audit_log",
    "meta",
    "operator_exclusions",
    "plans",
    "plan_inputs",
    "assignments",
    "queue",
    "attempts",
    "reopenings",
    "ended_claims",
    "sessions",
    "signin_failures",
    "signin_refusals",
    "answer_edits",
    "onsite_ballots",
    "onsite_scores",
    "round_results",
    "api_tokens",
    "evidence",
    "queue_tally",
    "operator_tally",
];

/// The tables the triggers write as rows come in: emptied before they are copied.
const TALLIES: [&str; 2] = ["queue_tally", "operator_tally"];

/// Rows read back per round trip while checksumming the target.
const CHECKSUM_BATCH: i32 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("无法以只读方式打开 SQLite 数据库 {path}:{error}。请确认文件存在且可读")]
    OpenSource { path: String, error: String },
    #[error("读取 SQLite 数据库 {path} 失败:{error}")]
    Source { path: String, error: String },
    #[error(
        "SQLite 数据库 {path} 的结构版本为 {found},本程序的为 {known}。请先用本版本的 sheping 打开它一次(例如 `sheping --db {path} audit verify`),使其结构升级到当前版本,再迁移"
    )]
    SourceVersion {
        path: String,
        found: i64,
        known: i64,
    },
    #[error(
        "SQLite 数据库 {path} 中有本程序不认识的表 `{table}`,无法迁移。请确认数据库文件与本版本的 sheping 匹配"
    )]
    UnknownTable { path: String, table: String },
    #[error(
        "SQLite 数据库 {path} 的审计日志不完整({brk}),拒绝迁移:迁移会把断裂的哈希链原样带到 PostgreSQL。请先用 `sheping --db {path} audit verify` 查明原因,从备份恢复后再迁移"
    )]
    SourceAudit { path: String, brk: ChainBreak },
    #[error(
        "目标 PostgreSQL 数据库 {url} 不是空的(表 {table} 已有 {rows} 行),拒绝迁移,目标未作任何修改。迁移只能写入一个新建的空数据库;请新建一个数据库(CREATE DATABASE …)再迁移"
    )]
    TargetNotEmpty {
        url: String,
        table: String,
        rows: i64,
    },
    #[error(
        "表 {table} 的列在两个数据库中不同(SQLite:{sqlite};PostgreSQL:{pg}),无法迁移。请确认两边的结构版本相同"
    )]
    Columns {
        table: String,
        sqlite: String,
        pg: String,
    },
    #[error(
        "表 {table} 第 {row} 行的 {column} 列的值无法写入 PostgreSQL 的 {pg_type} 列:{value}。请用 `sheping --db … check` 检查 SQLite 数据库,更正这一行后再迁移"
    )]
    Value {
        table: String,
        row: u64,
        column: String,
        pg_type: String,
        value: String,
    },
    #[error("复制表 {table} 时 PostgreSQL 报错:{error}。迁移已回滚,目标数据库未作任何修改")]
    Copy { table: String, error: String },
    #[error(
        "迁移后的核对不一致:表 {table} 的{what}在 SQLite 中为 {sqlite},在 PostgreSQL 中为 {pg}。迁移已回滚,目标数据库未作任何修改;请把这条消息交给维护人员"
    )]
    Mismatch {
        table: String,
        what: &'static str,
        sqlite: String,
        pg: String,
    },
    #[error(transparent)]
    Pg(#[from] PgError),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Pg(PgError::Database(e))
    }
}

/// What was copied.
#[derive(Debug, Clone)]
pub struct MigrateReport {
    /// Each table and its rows, in copy order.
    pub tables: Vec<TableReport>,
    pub audit_entries: usize,
    pub audit_head: Option<String>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct TableReport {
    pub table: &'static str,
    pub rows: u64,
    /// SHA-256 (hex) of the table's rows, equal on both databases.
    pub checksum: String,
}

impl MigrateReport {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// The tables copied, in order.
pub fn tables() -> impl Iterator<Item = &'static str> {
    TABLES.into_iter()
}

/// One value, typed as the PostgreSQL column takes it.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Real(Option<f64>),
    Bytes(Option<Vec<u8>>),
}

impl Cell {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Int(v) => v,
            Cell::Text(v) => v,
            Cell::Real(v) => v,
            Cell::Bytes(v) => v,
        }
    }

    /// One canonical encoding for the checksum: a tag, then the value's bytes with their length.
    fn hash_into(&self, h: &mut Sha256) {
        fn bytes(h: &mut Sha256, tag: u8, b: &[u8]) {
            h.update([tag]);
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
        match self {
            Cell::Int(None) | Cell::Text(None) | Cell::Real(None) | Cell::Bytes(None) => {
                h.update([0])
            }
            Cell::Int(Some(v)) => bytes(h, 1, &v.to_le_bytes()),
            Cell::Text(Some(v)) => bytes(h, 2, v.as_bytes()),
            Cell::Real(Some(v)) => bytes(h, 3, &v.to_bits().to_le_bytes()),
            Cell::Bytes(Some(v)) => bytes(h, 4, v),
        }
    }
}

/// A column: its name and PostgreSQL type.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    ty: Type,
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The SQLite value `v` as column `col` of PostgreSQL takes it.
fn cell(v: Value, col: &Column, table: &str, row: u64) -> Result<Cell, MigrateError> {
    let bad = |v: &Value| MigrateError::Value {
        table: table.to_owned(),
        row,
        column: col.name.clone(),
        pg_type: col.ty.to_string(),
        value: format!("{v:?}").chars().take(80).collect(),
    };
    Ok(match (&col.ty, v) {
        (_, Value::Null) if col.ty == Type::INT8 => Cell::Int(None),
        (_, Value::Null) if col.ty == Type::TEXT => Cell::Text(None),
        (_, Value::Null) if col.ty == Type::FLOAT8 => Cell::Real(None),
        (_, Value::Null) if col.ty == Type::BYTEA => Cell::Bytes(None),
        (t, Value::Integer(i)) if *t == Type::INT8 => Cell::Int(Some(i)),
        (t, Value::Integer(i)) if *t == Type::FLOAT8 => Cell::Real(Some(i as f64)),
        (t, Value::Real(f)) if *t == Type::FLOAT8 => Cell::Real(Some(f)),
        (t, Value::Text(s)) if *t == Type::TEXT => Cell::Text(Some(s)),
        (t, Value::Blob(b)) if *t == Type::BYTEA => Cell::Bytes(Some(b)),
        (_, v) => return Err(bad(&v)),
    })
}

/// The columns of `table` on the target, in SQLite's order (the same names on both, checked).
async fn columns<C: GenericClient>(
    tx: &C,
    src: &rusqlite::Connection,
    table: &str,
    path: &str,
) -> Result<Vec<Column>, MigrateError> {
    let source = |e: rusqlite::Error| MigrateError::Source {
        path: path.to_owned(),
        error: e.to_string(),
    };
    let sqlite: Vec<String> = src
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .map_err(source)?
        .query_map([table], |r| r.get(0))
        .map_err(source)?
        .collect::<rusqlite::Result<_>>()
        .map_err(source)?;
    let pg = tx
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await?;
    let mut pg_names: Vec<String> = pg.iter().map(|r| r.get(0)).collect();
    let mut sorted = sqlite.clone();
    sorted.sort();
    pg_names.sort();
    if sorted != pg_names || sqlite.is_empty() {
        return Err(MigrateError::Columns {
            table: table.to_owned(),
            sqlite: sqlite.join(", "),
            pg: pg
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    sqlite
        .into_iter()
        .map(|name| {
            let data_type: String = pg
                .iter()
                .find(|r| r.get::<_, String>(0) == name)
                .map(|r| r.get(1))
                .unwrap_or_default();
            let ty = match data_type.as_str() {
                "bigint" => Type::INT8,
                "text" => Type::TEXT,
                "double precision" => Type::FLOAT8,
                "bytea" => Type::BYTEA,
                other => {
                    return Err(MigrateError::Columns {
                        table: table.to_owned(),
                        sqlite: name.clone(),
                        pg: format!("{name} {other}"),
                    });
                }
            };
            Ok(Column { name, ty })
        })
        .collect()
}

/// The canonical row order on both databases: every column, NULLs first (SQLite's order; text
/// compares bytewise on both: BINARY and COLLATE "C").
fn order_by(cols: &[Column]) -> String {
    cols.iter()
        .map(|c| format!("{} NULLS FIRST", quote(&c.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every row of `table` in the canonical order. SQL from names: `table` is one of [`TABLES`],
/// the columns are the names both catalogues agree on ([`columns`]), all quoted.
fn select_all(table: &str, cols: &[Column]) -> String {
    let columns = cols
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let (table, order) = (quote(table), order_by(cols));
    format!("SELECT {columns} FROM {table} ORDER BY {order}")
}

/// Row count and checksum of `table` on the SQLite side.
fn sqlite_checksum(
    src: &rusqlite::Connection,
    table: &str,
    cols: &[Column],
    path: &str,
) -> Result<(u64, String), MigrateError> {
    let source = |e: rusqlite::Error| MigrateError::Source {
        path: path.to_owned(),
        error: e.to_string(),
    };
    let sql = select_all(table, cols);
    let mut stmt = src.prepare(&sql).map_err(source)?;
    let mut rows = stmt.query([]).map_err(source)?;
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(r) = rows.next().map_err(source)? {
        n += 1;
        for (i, col) in cols.iter().enumerate() {
            let v: Value = r.get(i).map_err(source)?;
            cell(v, col, table, n)?.hash_into(&mut h);
        }
    }
    Ok((n, hex::encode(h.finalize())))
}

/// Row count and checksum of `table` on the target, read inside the copying transaction.
async fn pg_checksum(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    cols: &[Column],
) -> Result<(u64, String), MigrateError> {
    let sql = select_all(table, cols);
    let stmt = tx.prepare(&sql).await?;
    let portal = tx.bind(&stmt, &[]).await?;
    let mut h = Sha256::new();
    let mut n = 0u64;
    loop {
        let rows = tx.query_portal(&portal, CHECKSUM_BATCH).await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            n += 1;
            for (i, col) in cols.iter().enumerate() {
                let c = match col.ty {
                    Type::INT8 => Cell::Int(r.get(i)),
                    Type::TEXT => Cell::Text(r.get(i)),
                    Type::FLOAT8 => Cell::Real(r.get(i)),
                    _ => Cell::Bytes(r.get(i)),
                };
                c.hash_into(&mut h);
            }
        }
    }
    Ok((n, hex::encode(h.finalize())))
}

/// Copies `table` from SQLite into the target with binary COPY; returns the rows copied.
async fn copy_table(
    tx: &deadpool_postgres::Transaction<'_>,
    src: &rusqlite::Connection,
    table: &str,
    cols: &[Column],
    path: &str,
) -> Result<u64, MigrateError> {
    let source = |e: rusqlite::Error| MigrateError::Source {
        path: path.to_owned(),
        error: e.to_string(),
    };
    let copy_err = |e: tokio_postgres::Error| MigrateError::Copy {
        table: table.to_owned(),
        error: describe(&e),
    };
    let sql = select_all(table, cols);
    let mut stmt = src.prepare(&sql).map_err(source)?;
    let mut rows = stmt.query([]).map_err(source)?;
    let names = cols.iter().map(|c| quote(&c.name)).collect::<Vec<_>>();
    let copy = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        quote(table),
        names.join(", ")
    );
    let sink = tx.copy_in(&copy).await.map_err(copy_err)?;
    let types: Vec<Type> = cols.iter().map(|c| c.ty.clone()).collect();
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    let mut n = 0u64;
    while let Some(r) = rows.next().map_err(source)? {
        n += 1;
        let cells = cols
            .iter()
            .enumerate()
            .map(|(i, col)| cell(r.get::<_, Value>(i).map_err(source)?, col, table, n))
            .collect::<Result<Vec<Cell>, MigrateError>>()?;
        let values: Vec<&(dyn ToSql + Sync)> = cells.iter().map(Cell::as_sql).collect();
        writer.as_mut().write(&values).await.map_err(copy_err)?;
    }
    writer.as_mut().finish().await.map_err(copy_err)?;
    Ok(n)
}

/// The SQLite file, read-only, inside one read transaction, with its schema version checked.
fn open_source(from: &Path) -> Result<rusqlite::Connection, MigrateError> {
    let path = from.display().to_string();
    if !from.is_file() {
        return Err(MigrateError::OpenSource {
            path,
            error: "文件不存在".into(),
        });
    }
    let src = rusqlite::Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| MigrateError::OpenSource {
        path: path.clone(),
        error: e.to_string(),
    })?;
    let source = |e: rusqlite::Error| MigrateError::Source {
        path: path.clone(),
        error: e.to_string(),
    };
    src.busy_timeout(Duration::from_secs(10)).map_err(source)?;
    // One snapshot for the whole copy, even while a server writes (WAL).
    src.execute_batch("BEGIN").map_err(source)?;
    let found: i64 = src
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(source)?;
    let known = crate::storage::sqlite::schema_version() as i64;
    if found != known {
        return Err(MigrateError::SourceVersion { path, found, known });
    }
    let names: Vec<String> = src
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .map_err(source)?
        .query_map([], |r| r.get(0))
        .map_err(source)?
        .collect::<rusqlite::Result<_>>()
        .map_err(source)?;
    if let Some(table) = names.into_iter().find(|n| !tables().any(|t| t == n)) {
        return Err(MigrateError::UnknownTable { path, table });
    }
    Ok(src)
}

/// The source's audit chain, verified: its entry count and head.
fn source_audit(
    src: &rusqlite::Connection,
    path: &str,
) -> Result<(usize, Option<String>), MigrateError> {
    let source = |e: rusqlite::Error| MigrateError::Source {
        path: path.to_owned(),
        error: e.to_string(),
    };
    let entries: Vec<AuditEntry> = src
        .prepare(
            "SELECT id, at, actor, action, round_key, detail, prev_hash, hash FROM audit_log ORDER BY id",
        )
        .map_err(source)?
        .query_map([], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                round_key: r.get(4)?,
                detail: r.get(5)?,
                prev_hash: r.get(6)?,
                hash: r.get(7)?,
            })
        })
        .map_err(source)?
        .collect::<rusqlite::Result<_>>()
        .map_err(source)?;
    let head: Option<String> = src
        .query_row("SELECT value FROM meta WHERE key = 'audit_head'", [], |r| {
            r.get(0)
        })
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(source)?;
    match verify_chain(&entries, head.as_deref()) {
        Ok(n) => Ok((n, head)),
        Err(brk) => Err(MigrateError::SourceAudit {
            path: path.to_owned(),
            brk,
        }),
    }
}

/// Copies the SQLite database at `from` into the empty PostgreSQL database at `to` (see the
/// module's comment); on any error the target is left as it was.
pub fn migrate(from: &Path, to: &str) -> Result<MigrateReport, MigrateError> {
    let started = Instant::now();
    let path = from.display().to_string();
    let src = open_source(from)?;
    let (audit_entries, audit_head) = source_audit(&src, &path)?;
    let pg = PgBackend::open(to)?;
    let url = pg.store().url().to_string();
    let tables = pg.block_on(async {
        let mut client = pg.store().client().await?;
        let tx = client.transaction().await?;
        // Instances started against the target wait instead of appending to a chain that is
        // being copied.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&audit::AUDIT_LOCK_KEY],
        )
        .await?;
        for table in tables() {
            let table_name = quote(table);
            let sql = format!("SELECT COUNT(*) FROM {table_name}");
            let rows: i64 = tx.query_one(&sql, &[]).await?.get(0);
            if rows > 0 {
                return Err(MigrateError::TargetNotEmpty {
                    url: url.clone(),
                    table: table.to_owned(),
                    rows,
                });
            }
        }
        let mut copied = Vec::new();
        for table in tables() {
            let cols = columns(&tx, &src, table, &path).await?;
            if TALLIES.contains(&table) {
                // What the triggers counted while queue and attempts came in.
                let table_name = quote(table);
                tx.execute(&format!("DELETE FROM {table_name}"), &[])
                    .await?;
            }
            let rows = copy_table(&tx, &src, table, &cols, &path).await?;
            copied.push((table, cols, rows));
        }
        // The check, inside the transaction: counts, checksums, the audit chain.
        let mut report = Vec::new();
        for (table, cols, rows) in copied {
            let (sqlite_rows, sqlite_sum) = sqlite_checksum(&src, table, &cols, &path)?;
            let (pg_rows, pg_sum) = pg_checksum(&tx, table, &cols).await?;
            if sqlite_rows != pg_rows || rows != pg_rows {
                return Err(MigrateError::Mismatch {
                    table: table.to_owned(),
                    what: "行数",
                    sqlite: sqlite_rows.to_string(),
                    pg: pg_rows.to_string(),
                });
            }
            if sqlite_sum != pg_sum {
                return Err(MigrateError::Mismatch {
                    table: table.to_owned(),
                    what: "校验和",
                    sqlite: sqlite_sum,
                    pg: pg_sum,
                });
            }
            report.push(TableReport {
                table,
                rows,
                checksum: pg_sum,
            });
        }
        let pg_head: Option<String> = tx
            .query_opt("SELECT value FROM meta WHERE key = 'audit_head'", &[])
            .await?
            .map(|r| r.get(0));
        match audit::verify(&tx).await? {
            Ok(n) if n == audit_entries && pg_head == audit_head => {}
            verified => {
                return Err(MigrateError::Mismatch {
                    table: "audit_log".into(),
                    what: "审计哈希链",
                    sqlite: format!("{audit_entries} 条,链头 {audit_head:?}"),
                    pg: format!("{verified:?},链头 {pg_head:?}"),
                });
            }
        }
        // Last, once all is checked: a rollback before this leaves the sequences untouched.
        super::move_identities(&tx).await?;
        tx.commit().await?;
        Ok::<_, MigrateError>(report)
    })?;
    Ok(MigrateReport {
        tables,
        audit_entries,
        audit_head,
        elapsed: started.elapsed(),
    })
}
