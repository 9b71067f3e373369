//! The single write path, with group commit.
//!
//! Every write runs on the one writer connection inside a SAVEPOINT of an open IMMEDIATE
//! transaction. When other writers are already waiting, the transaction is left open for them
//! and this caller waits; the last writer of a burst commits for everyone and wakes them. So
//! a burst of N concurrent writes costs one fsync instead of N, and still nobody is answered
//! before their write is durable (`synchronous=FULL`). A write whose own statements fail rolls
//! back to its savepoint and leaves the others' work in the batch untouched; a failed COMMIT
//! (disk full) fails every write of the batch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use rusqlite::Connection;

use super::read_cache::{Generations, Touched};
use crate::storage::{Result, StorageError};

pub(crate) struct Writer {
    state: Mutex<State>,
    /// Writers blocked on `state`; when zero, whoever holds the lock commits.
    waiting: AtomicUsize,
    done: Mutex<Done>,
    committed: Condvar,
    group_commit: bool,
    /// Tables the open transaction changed (from the update hook), and the cached reads'
    /// generations that a commit of them moves.
    touched: Arc<Touched>,
    generations: Arc<Generations>,
}

struct State {
    conn: Connection,
    in_tx: bool,
    /// Tickets of successful writes in the open transaction are `batch_start..=last_ticket`.
    batch_start: u64,
    last_ticket: u64,
}

#[derive(Default)]
struct Done {
    /// Every ticket up to this one is settled (committed or failed).
    settled: u64,
    /// Batches that failed to commit: (first ticket, last ticket, error).
    failed: Vec<(u64, u64, String)>,
}

enum Outcome {
    Committed,
    Failed(String),
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        group_commit: bool,
        generations: Arc<Generations>,
    ) -> rusqlite::Result<Writer> {
        let touched = Arc::new(Touched::default());
        let hook = Arc::clone(&touched);
        conn.update_hook(Some(move |_, _: &str, table: &str, _| hook.note(table)))?;
        Ok(Writer {
            state: Mutex::new(State {
                conn,
                in_tx: false,
                batch_start: 1,
                last_ticket: 0,
            }),
            waiting: AtomicUsize::new(0),
            done: Mutex::new(Done::default()),
            committed: Condvar::new(),
            group_commit,
            touched,
            generations,
        })
    }

    /// Runs `f` as one atomic write; returns once it is durable.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        if !st.in_tx {
            run(&st.conn, "BEGIN IMMEDIATE").map_err(super::map_full)?;
            st.in_tx = true;
            st.batch_start = st.last_ticket + 1;
        }
        if let Err(e) = run(&st.conn, "SAVEPOINT write") {
            self.abort_batch(&mut st, &e.to_string());
            return Err(super::map_full(e));
        }
        let out = f(&st.conn);
        let ticket = match out {
            Ok(_) => {
                if let Err(e) = run(&st.conn, "RELEASE write") {
                    self.abort_batch(&mut st, &e.to_string());
                    return Err(super::map_full(e));
                }
                st.last_ticket += 1;
                Some(st.last_ticket)
            }
            Err(_) => {
                if st.conn.is_autocommit() {
                    // SQLite rolled the whole transaction back (e.g. SQLITE_FULL): the batch is gone.
                    self.abort_batch(&mut st, "the transaction was rolled back by SQLite");
                } else {
                    let _ = st.conn.execute_batch("ROLLBACK TO write; RELEASE write");
                }
                None
            }
        };
        let must_commit = !self.group_commit || self.waiting.load(Ordering::SeqCst) == 0;
        if must_commit && st.in_tx {
            self.commit(&mut st);
        }
        drop(st);
        let value = out?;
        let Some(ticket) = ticket else {
            return Ok(value);
        };
        match self.wait_for(ticket) {
            Outcome::Committed => Ok(value),
            Outcome::Failed(e) => Err(if e.contains("full") {
                StorageError::Full
            } else {
                StorageError::Conflict(e)
            }),
        }
    }

    fn commit(&self, st: &mut State) {
        let result = run(&st.conn, "COMMIT");
        st.in_tx = false;
        let (first, last) = (st.batch_start, st.last_ticket);
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = result {
            let _ = st.conn.execute_batch("ROLLBACK");
            done.failed.push((first, last, describe(&e)));
        }
        // Before anyone of the batch is answered: their next read must not be a stale copy.
        self.generations.settle(&self.touched);
        done.settled = last;
        self.committed.notify_all();
    }

    fn abort_batch(&self, st: &mut State, why: &str) {
        if !st.conn.is_autocommit() {
            let _ = st.conn.execute_batch("ROLLBACK");
        }
        st.in_tx = false;
        let (first, last) = (st.batch_start, st.last_ticket);
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        if last >= first {
            done.failed.push((first, last, why.to_string()));
        }
        self.generations.settle(&self.touched);
        done.settled = last;
        self.committed.notify_all();
    }

    fn wait_for(&self, ticket: u64) -> Outcome {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while done.settled < ticket {
            done = self.committed.wait(done).unwrap_or_else(|p| p.into_inner());
        }
        // Old failures are kept only as long as someone may still ask about them.
        let outcome = match done
            .failed
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&ticket))
        {
            Some((_, _, e)) => Outcome::Failed(e.clone()),
            None => Outcome::Committed,
        };
        if done.failed.len() > 64 {
            let keep_from = done.failed.len() - 64;
            done.failed.drain(..keep_from);
        }
        outcome
    }
}

/// One transaction-control statement, prepared once per connection: these run several times
/// per write, and compiling them each time showed in the profile.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn describe(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => "database or disk is full".into(),
        _ => e.to_string(),
    }
}
