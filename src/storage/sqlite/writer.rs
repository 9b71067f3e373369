//! The single write path, with group commit.
//!
//! Every write runs on the one writer connection inside a SAVEPOINT of an open IMMEDIATE
//! transaction (queued writes as a batch first: see below). When other writers are already waiting, the transaction is left open for them
//! and this caller waits; the last writer of a burst commits for everyone and wakes them. So
//! a burst of N concurrent writes costs one fsync instead of N, and still nobody is answered
//! before their write is durable (`synchronous=FULL`). A write whose own statements fail rolls
//! back to its savepoint and leaves the others' work in the batch untouched; a failed COMMIT
//! (disk full) fails every write of the batch.
//!
//! Queued jobs first run together with no savepoint of their own (one for the whole batch,
//! or none when the batch begins the transaction): a savepoint copies every page a write
//! touches into the statement journal and frees it again, about 7% of the writer's CPU under
//! the operators' load. Should one of them fail, the batch's work is undone and every job
//! runs again, each in its own savepoint: a job is a function of the database, so it can.
//!
//! The operators' hot path (record an answer and claim the next contact) does not take the
//! lock itself: it queues an owned job for the writer's own thread, which runs every queued
//! job back to back in one turn of the lock and one commit ([`Writer::submit`]). Other writes
//! borrow their caller's data and run on the caller's thread, sharing the same transaction
//! and group commit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use rusqlite::Connection;

use super::read_cache::{Generations, Touched};
use crate::storage::{Result, StorageError};

pub(crate) struct Shared {
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

/// The answer to a queued write: called with the outcome of its commit.
type Deliver = Box<dyn FnOnce(Result<()>) + Send>;
/// Runs a queued write's statements: `Ok` keeps them, `Err` rolls them back. It may run twice
/// (see the module's doc): only its last run's answer is delivered.
type RunJob = Box<dyn FnMut(&Connection) -> std::result::Result<Deliver, Deliver> + Send>;

/// A queued write. `run` returns `Ok` to keep its changes, `Err` to roll them back, either
/// way with the answer; `fail` answers a write that could not run (no transaction could be
/// begun: the disk is full).
struct Job {
    run: RunJob,
    fail: Box<dyn FnOnce(StorageError) + Send>,
}

impl Job {
    /// The job that runs `f` and answers its outcome through `answer` once its commit settles.
    fn new<T: Send + 'static>(
        mut f: impl FnMut(&Connection) -> Result<T> + Send + 'static,
        answer: Arc<dyn Reply<T>>,
    ) -> Job {
        let failed = Arc::clone(&answer);
        Job {
            run: Box::new(move |conn| {
                let out = f(conn);
                let kept = out.is_ok();
                let answer = Arc::clone(&answer);
                let deliver: Deliver = Box::new(move |commit: Result<()>| {
                    answer.reply(out.and_then(|v| commit.map(|()| v)));
                });
                if kept { Ok(deliver) } else { Err(deliver) }
            }),
            fail: Box::new(move |e| failed.reply(Err(e))),
        }
    }
}

/// Why a queued job's statements were rolled back: the job refused (its answer says why), or
/// the write path failed around it (the savepoint, the transaction).
enum Refusal {
    Job(Deliver),
    Write(StorageError),
}

impl From<StorageError> for Refusal {
    fn from(e: StorageError) -> Self {
        Refusal::Write(e)
    }
}

/// The write path: the shared connection, and with group commit a thread of its own that runs
/// queued writes back to back ([`Writer::submit`]). A write waiting for the lock is handed
/// the turn only when the thread holding it is descheduled and woken again; on two busy cores
/// that handoff, not the SQL, was most of each write's time under load.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set once the thread is found gone (logged once).
    thread_lost: std::sync::atomic::AtomicBool,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        group_commit: bool,
        generations: Arc<Generations>,
    ) -> Result<Writer> {
        let shared = Arc::new(Shared::new(conn, group_commit, generations)?);
        if !group_commit {
            return Ok(Writer {
                shared,
                queue: None,
                thread: None,
                thread_lost: Default::default(),
            });
        }
        let (queue, jobs) = mpsc::channel::<Job>();
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("sheping-writer".into())
                .spawn(move || {
                    while let Ok(first) = jobs.recv() {
                        let mut batch = vec![first];
                        batch.extend(jobs.try_iter().take(255));
                        shared.run_batch(batch);
                    }
                })
                .map_err(|e| {
                    StorageError::Conflict(format!("cannot start the writer thread: {e}"))
                })?
        };
        Ok(Writer {
            shared,
            queue: Some(queue),
            thread: Some(thread),
            thread_lost: Default::default(),
        })
    }

    /// Runs `f` as one atomic write on the caller's thread; returns once it is durable.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.shared.write(f)
    }

    /// Like [`Writer::write`], with the connection's foreign-key enforcement off: for a bulk
    /// write that checks the references it writes itself (the roster import). `PRAGMA
    /// foreign_keys` takes effect only outside a transaction, so a group left open for waiting
    /// writers is committed first, and this write's transaction is committed before the
    /// enforcement is turned back on and anyone else's write can join it.
    pub(crate) fn write_without_foreign_keys<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        self.shared.write_without_foreign_keys(f)
    }

    /// Runs `f` on the writer connection outside any transaction (a pragma, a checkpoint,
    /// VACUUM), in its turn; a group left open for waiting writers is committed first.
    pub(crate) fn outside_tx<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut st = self.shared.lock();
        if st.in_tx {
            self.shared.commit(&mut st);
        }
        f(&st.conn)
    }

    /// Like [`Writer::write`], run by the writer thread among the other queued writes (the
    /// operator's hot path: `f` owns what it needs, and may run twice, the first run undone).
    /// Blocks until the write is durable.
    pub(crate) fn submit<T: Send + 'static>(
        &self,
        f: impl FnMut(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = mpsc::sync_channel::<Result<T>>(1);
        self.enqueue(f, Arc::new(answer));
        answered.recv().unwrap_or_else(|_| Err(answer_lost()))
    }

    /// Like [`Writer::submit`], without blocking the caller: the answer arrives on the
    /// returned channel once the write is durable (an async request awaits it without
    /// holding a thread).
    pub(crate) fn submit_queued<T: Send + 'static>(
        &self,
        f: impl FnMut(&Connection) -> Result<T> + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<Result<T>> {
        let (answer, answered) = tokio::sync::oneshot::channel::<Result<T>>();
        self.enqueue(f, Arc::new(Mutex::new(Some(answer))));
        answered
    }

    fn enqueue<T: Send + 'static>(
        &self,
        f: impl FnMut(&Connection) -> Result<T> + Send + 'static,
        answer: Arc<dyn Reply<T>>,
    ) {
        let job = Job::new(f, answer);
        let Some(queue) = &self.queue else {
            // Without group commit there is no writer thread: the job runs here, alone.
            return self.shared.run_batch(vec![job]);
        };
        if let Err(mpsc::SendError(job)) = queue.send(job) {
            // The thread has ended (a job's own panic is caught, so something else failed):
            // run the job here, under the same lock and group commit, so operators can go on
            // recording until the service is restarted.
            if !self.thread_lost.swap(true, Ordering::SeqCst) {
                tracing::error!("the writer thread has stopped; writes run on request threads");
            }
            self.shared.run_batch(vec![job]);
        }
    }
}

/// The error for a queued write whose answer never came (its job was dropped unanswered).
pub(crate) fn answer_lost() -> StorageError {
    StorageError::Conflict("the write failed".into())
}

/// Where a queued write's answer goes: a blocked thread or an awaiting task.
trait Reply<T>: Send + Sync {
    fn reply(&self, answer: Result<T>);
}

impl<T: Send> Reply<T> for mpsc::SyncSender<Result<T>> {
    fn reply(&self, answer: Result<T>) {
        let _ = self.send(answer);
    }
}

impl<T: Send> Reply<T> for Mutex<Option<tokio::sync::oneshot::Sender<Result<T>>>> {
    fn reply(&self, answer: Result<T>) {
        if let Some(tx) = self.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(answer);
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has answered every queued write.
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Default)]
struct Done {
    /// Every ticket up to this one is settled (committed or failed).
    settled: u64,
    /// Batches that failed to commit: (first ticket, last ticket, error).
    failed: Vec<(u64, u64, String)>,
}

/// Notes the tables each write touches, for the read caches (`read_cache`).
fn install_update_hook(conn: &Connection, touched: &Arc<Touched>) -> rusqlite::Result<()> {
    let hook = Arc::clone(touched);
    conn.update_hook(Some(move |_, _: &str, table: &str, _| hook.note(table)))
}

enum Outcome {
    Committed,
    Failed(String),
}

impl Shared {
    fn new(
        conn: Connection,
        group_commit: bool,
        generations: Arc<Generations>,
    ) -> rusqlite::Result<Shared> {
        let touched = Arc::new(Touched::default());
        install_update_hook(&conn, &touched)?;
        Ok(Shared {
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
    fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut st = self.lock();
        let (out, ticket) = self.step(&mut st, f);
        self.commit_unless_awaited(&mut st);
        drop(st);
        let value = out?;
        match ticket {
            Some(ticket) => self.durable(ticket).map(|()| value),
            None => Ok(value),
        }
    }

    /// See [`Writer::write_without_foreign_keys`].
    fn write_without_foreign_keys<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut st = self.lock();
        if st.in_tx {
            self.commit(&mut st);
        }
        run(&st.conn, "PRAGMA foreign_keys = OFF")?;
        // The update hook is off too: it ran once per row (3 % of a million-member import's
        // writing thread). Alone in its transaction, the write is taken to touch everything
        // cached, which costs one fresh read of each cache after it.
        let (out, ticket) = match st
            .conn
            .update_hook(None::<fn(rusqlite::hooks::Action, &str, &str, i64)>)
        {
            Ok(()) => self.step(&mut st, f),
            Err(e) => (Err(e.into()), None),
        };
        self.touched.note_all();
        let rehooked = install_update_hook(&st.conn, &self.touched);
        if let Err(e) = &rehooked {
            // Later writes would not refresh the caches: this one is undone and refused.
            self.abort_batch(&mut st, &e.to_string());
        } else if st.in_tx {
            // Alone in its transaction: nobody else's write runs unchecked.
            self.commit(&mut st);
        }
        if let Err(e) = run(&st.conn, "PRAGMA foreign_keys = ON") {
            tracing::error!(error = %e, "could not turn foreign keys back on after a bulk write");
        }
        // A bulk write may turn triggers off (the roster import, `roster_write`), and turns
        // them on again itself; this makes sure (no change costs nothing).
        if let Err(e) = st.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER,
            true,
        ) {
            tracing::error!(error = %e, "could not turn triggers back on after a bulk write");
        }
        rehooked?;
        drop(st);
        let value = out?;
        match ticket {
            Some(ticket) => self.durable(ticket).map(|()| value),
            None => Ok(value),
        }
    }

    /// Runs queued jobs back to back in the open transaction, in one turn of the lock, then
    /// answers each once its write is durable (or failed).
    fn run_batch(&self, mut jobs: Vec<Job>) {
        let mut st = self.lock();
        let answers = match self.run_together(&mut st, &mut jobs) {
            Some(answers) => answers,
            None => self.run_each(&mut st, jobs),
        };
        self.commit_unless_awaited(&mut st);
        drop(st);
        for (deliver, ticket) in answers {
            deliver(match ticket {
                Some(t) => self.durable(t),
                None => Ok(()),
            });
        }
    }

    /// Runs every job of a batch with no savepoint of its own. `None` when one of them failed
    /// (or the write path did): then nothing of the batch is kept, and the transaction holds
    /// only what it held before.
    fn run_together(
        &self,
        st: &mut State,
        jobs: &mut [Job],
    ) -> Option<Vec<(Deliver, Option<u64>)>> {
        // Alone in a transaction the batch needs no savepoint: a ROLLBACK undoes exactly it.
        let alone = !st.in_tx;
        if alone {
            run(&st.conn, "BEGIN IMMEDIATE").ok()?;
            st.in_tx = true;
            st.batch_start = st.last_ticket + 1;
        } else {
            run(&st.conn, "SAVEPOINT batch").ok()?;
        }
        let mut delivered = Vec::with_capacity(jobs.len());
        for job in jobs.iter_mut() {
            let out =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.run)(&st.conn)));
            match out {
                Ok(Ok(deliver)) => delivered.push(deliver),
                // A failed or panicking job fails again, alone, when the batch runs again.
                _ => return self.undo_together(st, alone),
            }
        }
        if !alone && run(&st.conn, "RELEASE batch").is_err() {
            return self.undo_together(st, alone);
        }
        Some(
            delivered
                .into_iter()
                .map(|deliver| {
                    st.last_ticket += 1;
                    (deliver, Some(st.last_ticket))
                })
                .collect(),
        )
    }

    /// Undoes [`Shared::run_together`]'s work; always `None`.
    fn undo_together(&self, st: &mut State, alone: bool) -> Option<Vec<(Deliver, Option<u64>)>> {
        if st.conn.is_autocommit() {
            // SQLite rolled the whole transaction back (e.g. SQLITE_FULL): earlier writes too.
            self.abort_batch(st, "the transaction was rolled back by SQLite");
        } else if alone {
            let _ = st.conn.execute_batch("ROLLBACK");
            st.in_tx = false;
        } else {
            let _ = st.conn.execute_batch("ROLLBACK TO batch; RELEASE batch");
        }
        None
    }

    /// Runs each job of a batch in its own savepoint, so a failing one is rolled back alone.
    fn run_each(&self, st: &mut State, jobs: Vec<Job>) -> Vec<(Deliver, Option<u64>)> {
        let mut answers: Vec<(Deliver, Option<u64>)> = Vec::with_capacity(jobs.len());
        for Job { mut run, fail } in jobs {
            match self.step(st, |conn| run(conn).map_err(Refusal::Job)) {
                (Ok(deliver), ticket) => answers.push((deliver, ticket)),
                // The job's own error travels inside its answer; nothing of it is stored.
                (Err(Refusal::Job(deliver)), _) => answers.push((deliver, None)),
                (Err(Refusal::Write(e)), _) => fail(e),
            }
        }
        answers
    }

    /// One write inside the open transaction (begun if needed), in a savepoint: kept when `f`
    /// succeeds (with its ticket), rolled back to the savepoint when it fails. `E` carries the
    /// write's own error, or the write path's as a [`StorageError`].
    fn step<T, E: From<StorageError>>(
        &self,
        st: &mut State,
        f: impl FnOnce(&Connection) -> std::result::Result<T, E>,
    ) -> (std::result::Result<T, E>, Option<u64>) {
        if !st.in_tx {
            if let Err(e) = run(&st.conn, "BEGIN IMMEDIATE") {
                return (Err(super::map_full(e).into()), None);
            }
            st.in_tx = true;
            st.batch_start = st.last_ticket + 1;
        }
        if let Err(e) = run(&st.conn, "SAVEPOINT write") {
            self.abort_batch(st, &e.to_string());
            return (Err(super::map_full(e).into()), None);
        }
        // A write that panics is rolled back to its savepoint like one that fails, so the
        // rest of the batch stands and the lock is not left poisoned mid-transaction.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&st.conn)))
            .unwrap_or_else(|_| {
                tracing::error!("a write panicked; it was rolled back");
                Err(StorageError::Conflict(
                    "the write failed (internal error); nothing of it was stored".into(),
                )
                .into())
            });
        let ticket = match out {
            Ok(_) => {
                if let Err(e) = run(&st.conn, "RELEASE write") {
                    self.abort_batch(st, &e.to_string());
                    return (Err(super::map_full(e).into()), None);
                }
                st.last_ticket += 1;
                Some(st.last_ticket)
            }
            Err(_) => {
                if st.conn.is_autocommit() {
                    // SQLite rolled the whole transaction back (e.g. SQLITE_FULL): the batch is gone.
                    self.abort_batch(st, "the transaction was rolled back by SQLite");
                } else {
                    let _ = st.conn.execute_batch("ROLLBACK TO write; RELEASE write");
                }
                None
            }
        };
        (out, ticket)
    }

    /// Takes the writer's turn, counted as waiting meanwhile (so the holder leaves the
    /// transaction open for this write instead of committing).
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let st = match self.state.lock() {
            Ok(st) => st,
            Err(poisoned) => {
                // A thread panicked holding the turn, perhaps inside an open transaction whose
                // state is unknown: roll the whole batch back and fail its writes, so nothing
                // half-done is committed by the next write and nobody waits for it forever.
                let mut st = poisoned.into_inner();
                self.state.clear_poison();
                tracing::error!("a thread panicked holding the writer; its batch was rolled back");
                self.abort_batch(&mut st, "the write failed (internal error)");
                st
            }
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        st
    }

    /// Commits unless other writers wait for the lock (the last of them commits for all).
    fn commit_unless_awaited(&self, st: &mut State) {
        let must_commit = !self.group_commit || self.waiting.load(Ordering::SeqCst) == 0;
        if must_commit && st.in_tx {
            self.commit(st);
        }
    }

    /// Waits until `ticket`'s batch has committed (or failed).
    fn durable(&self, ticket: u64) -> Result<()> {
        match self.wait_for(ticket) {
            Outcome::Committed => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> Writer {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        Writer::new(conn, true, Arc::new(Generations::default())).unwrap()
    }

    /// Every stored value, in order.
    fn stored(w: &Writer) -> Vec<i64> {
        w.write(|c| {
            let mut stmt = c.prepare("SELECT x FROM t ORDER BY x")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .unwrap()
    }

    fn count(w: &Writer) -> i64 {
        w.write(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .unwrap()
    }

    /// A write without foreign keys runs without the update hook (one call per row), so it
    /// moves every cached group itself; the hook notes the writes after it again.
    #[test]
    fn a_bulk_write_moves_every_cache_generation_and_the_hook_comes_back() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER); CREATE TABLE sessions (x INTEGER); CREATE TABLE members (x INTEGER)")
            .unwrap();
        let generations = Arc::new(Generations::default());
        let w = Writer::new(conn, true, Arc::clone(&generations)).unwrap();
        let now = |g: &Generations| (g.rounds.now(), g.sessions.now());
        // A table no cache reads: no generation moves.
        w.write(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
            .unwrap();
        assert_eq!(now(&generations), (0, 0));
        // The bulk write touches only `t`, with no hook to see it, and moves both.
        w.write_without_foreign_keys(|c| Ok(c.execute("INSERT INTO t VALUES (2)", [])?))
            .unwrap();
        assert_eq!(now(&generations), (1, 1));
        // The hook is back: a write to `members` moves the rounds' group alone.
        w.write(|c| Ok(c.execute("INSERT INTO members VALUES (1)", [])?))
            .unwrap();
        assert_eq!(now(&generations), (2, 1));
        // Foreign keys are on again after it.
        let fk: i64 = w
            .write(|c| Ok(c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(fk, 1);
    }

    /// Awaited writes (the web form's) are answered once committed, each with its own
    /// outcome, while blocking ones share the same batches.
    #[test]
    fn awaited_writes_are_answered_once_durable_each_with_its_own_outcome() {
        let w = Arc::new(writer());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut threads = Vec::new();
        for t in 0..4 {
            let w = Arc::clone(&w);
            threads.push(std::thread::spawn(move || {
                for i in 0..50 {
                    w.submit(move |c| Ok(c.execute("INSERT INTO t VALUES (?1)", [t * 100 + i])?))
                        .unwrap();
                }
            }));
        }
        let queued: Vec<_> = (0..200_i64)
            .map(|i| {
                w.submit_queued(move |c| {
                    c.execute("INSERT INTO t VALUES (?1)", [1000 + i])?;
                    if i % 10 == 0 {
                        return Err(StorageError::Conflict(format!("job {i} refuses")));
                    }
                    Ok(i)
                })
            })
            .collect();
        for (i, answer) in queued.into_iter().enumerate() {
            match rt.block_on(answer).expect("every queued write is answered") {
                Ok(v) => assert_eq!(v, i as i64),
                Err(StorageError::Conflict(m)) => {
                    assert_eq!(i % 10, 0);
                    assert_eq!(m, format!("job {i} refuses"));
                }
                Err(e) => panic!("{e}"),
            }
        }
        for t in threads {
            t.join().unwrap();
        }
        // 200 blocking, 180 kept of the 200 awaited: the refused ones rolled back alone.
        assert_eq!(count(&w), 200 + 180);
        let kept: i64 = w
            .write(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM t WHERE x % 10 = 0 AND x >= 1000",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(kept, 0);
    }

    /// A batch of queued jobs runs without savepoints; when one fails, the batch is undone
    /// and runs again job by job: the failing job alone is rolled back, and every other is
    /// stored exactly once.
    #[test]
    fn a_failing_job_makes_its_batch_run_again_and_the_others_are_stored_once() {
        use std::sync::atomic::AtomicUsize;
        let w = writer();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // The first job holds the writer thread until the next five are queued: they make
        // up the next batch.
        let (started, has_started) = mpsc::channel::<()>();
        let (go, wait_for_go) = mpsc::channel::<()>();
        let first = w.submit_queued(move |c| {
            let _ = started.send(());
            let _ = wait_for_go.recv();
            Ok(c.execute("INSERT INTO t VALUES (1)", [])?)
        });
        has_started.recv().unwrap();
        let runs: Vec<Arc<AtomicUsize>> = (0..5).map(|_| Arc::default()).collect();
        let batch: Vec<_> = (2..=6_i64)
            .zip(&runs)
            .map(|(x, runs)| {
                let runs = Arc::clone(runs);
                w.submit_queued(move |c| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    c.execute("INSERT INTO t VALUES (?1)", [x])?;
                    if x == 4 {
                        return Err(StorageError::Conflict("job 4 refuses".into()));
                    }
                    Ok(x)
                })
            })
            .collect();
        go.send(()).unwrap();
        assert_eq!(rt.block_on(first).unwrap().unwrap(), 1);
        let answers: Vec<_> = batch
            .into_iter()
            .map(|a| rt.block_on(a).expect("answered"))
            .collect();
        assert!(matches!(&answers[2], Err(StorageError::Conflict(m)) if m == "job 4 refuses"));
        for (i, x) in [(0, 2), (1, 3), (3, 5), (4, 6)] {
            assert_eq!(answers[i].as_ref().unwrap(), &x);
        }
        // Jobs 2 and 3 ran before job 4 failed, and again; 4 twice; 5 and 6 only in the rerun.
        let counts: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        assert_eq!(counts, [2, 2, 2, 1, 1]);
        assert_eq!(stored(&w), [1, 2, 3, 5, 6]);
    }

    /// A batch that joins a transaction holding other writes leaves them alone when it is
    /// undone.
    #[test]
    fn a_batch_undone_inside_an_open_transaction_keeps_the_earlier_writes() {
        let w = writer();
        // An earlier write left in the open transaction (as when others wait for the lock).
        let mut st = w.shared.lock();
        let (out, ticket) = w.shared.step(&mut st, |c| -> Result<usize> {
            Ok(c.execute("INSERT INTO t VALUES (10)", [])?)
        });
        out.unwrap();
        let (answer, answered) = mpsc::sync_channel::<Result<i64>>(2);
        let answer: Arc<dyn Reply<i64>> = Arc::new(answer);
        let mut jobs: Vec<Job> = [11_i64, 12]
            .map(|x| {
                Job::new(
                    move |c| {
                        c.execute("INSERT INTO t VALUES (?1)", [x])?;
                        if x == 12 {
                            return Err(StorageError::Conflict("12 refuses".into()));
                        }
                        Ok(x)
                    },
                    Arc::clone(&answer),
                )
            })
            .into_iter()
            .collect();
        assert!(w.shared.run_together(&mut st, &mut jobs).is_none());
        assert!(st.in_tx, "the earlier write's transaction is still open");
        w.shared.commit(&mut st);
        drop(st);
        assert!(w.shared.durable(ticket.unwrap()).is_ok());
        assert!(
            answered.try_recv().is_err(),
            "an undone batch answers nobody yet"
        );
        assert_eq!(
            count(&w),
            1,
            "the earlier write stands, the batch left nothing"
        );
    }

    #[test]
    fn a_write_that_panics_stores_nothing_and_the_next_write_goes_on() {
        let w = writer();
        let panicked = w.write(|c| {
            c.execute("INSERT INTO t VALUES (1)", [])?;
            let cells: Vec<i64> = Vec::new();
            Ok(cells[3]) // a bug, not an input
        });
        assert!(matches!(panicked, Err(StorageError::Conflict(m)) if m.contains("internal error")));
        let queued = w.submit(|c| -> Result<()> {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            panic!("a bug in a queued job")
        });
        assert!(matches!(queued, Err(StorageError::Conflict(_))));
        w.write(|c| Ok(c.execute("INSERT INTO t VALUES (3)", [])?))
            .unwrap();
        assert_eq!(stored(&w), [3]);
    }

    /// A thread that dies holding the writer's turn in the middle of a batch: the batch is
    /// rolled back and reported failed, not committed by the next write.
    #[test]
    fn a_batch_left_open_by_a_dead_thread_is_rolled_back_and_failed() {
        let w = writer();
        let shared = Arc::clone(&w.shared);
        let ticket = std::thread::spawn(move || {
            let mut st = shared.lock();
            let (out, ticket) = shared.step(&mut st, |c| -> Result<usize> {
                Ok(c.execute("INSERT INTO t VALUES (1)", [])?)
            });
            out.unwrap();
            // Dies before the commit, holding the lock.
            std::panic::panic_any(ticket.unwrap())
        })
        .join()
        .unwrap_err()
        .downcast::<u64>()
        .map(|t| *t)
        .unwrap();
        assert!(w.shared.state.is_poisoned());
        w.write(|c| Ok(c.execute("INSERT INTO t VALUES (2)", [])?))
            .unwrap();
        assert!(!w.shared.state.is_poisoned());
        assert!(w.shared.durable(ticket).is_err(), "the open batch failed");
        assert_eq!(count(&w), 1, "only the later write is stored");
    }

    #[test]
    fn queued_writes_still_run_when_the_writer_thread_is_gone() {
        let mut w = writer();
        assert_eq!(
            w.submit(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
                .unwrap(),
            1
        );
        // The thread ends, as it would after a panic outside a job.
        w.queue.take();
        w.thread.take().unwrap().join().unwrap();
        let (dead, gone) = mpsc::channel();
        drop(gone);
        w.queue = Some(dead);
        let stored = w.submit(|c| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            Ok("stored")
        });
        assert_eq!(stored.unwrap(), "stored");
        // A failing job is still rolled back on its own and reported.
        let failed = w.submit(|c| {
            c.execute("INSERT INTO t VALUES (3)", [])?;
            Err::<(), _>(StorageError::Conflict("refused by the job".into()))
        });
        assert!(matches!(failed, Err(StorageError::Conflict(m)) if m == "refused by the job"));
        assert_eq!(count(&w), 2);
        // An awaited write too.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let awaited = w.submit_queued(|c| Ok(c.execute("INSERT INTO t VALUES (4)", [])?));
        assert_eq!(rt.block_on(awaited).unwrap().unwrap(), 1);
        assert_eq!(count(&w), 3);
        assert!(w.thread_lost.load(Ordering::SeqCst));
    }
}
