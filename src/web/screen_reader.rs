//! The operators' call screens read on a few threads of their own, in shared snapshots.
//!
//! Every commit empties each SQLite reader's page cache (WAL), and under the operators' load a
//! commit lands between any two screens, so each screen used to start cold: its own read
//! transaction, every page of every index it touched fetched and parsed again. Here a thread
//! takes every screen read queued at that moment and runs them in one read transaction: the
//! pages they share (index roots, the tallies, the rounds) are fetched once per batch, and one
//! thread handoff serves many requests.
//!
//! A read sees every write committed before it was queued: the batch's snapshot starts after
//! its reads were taken from the queue. The request awaits its answer without holding a
//! thread of the blocking pool.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use super::Store;
use super::error::WebError;

/// A queued read: runs against the store inside the batch's snapshot and sends its answer.
type ReadJob = Box<dyn FnOnce(&dyn Store) + Send>;

/// The most reads one snapshot serves; the rest wait for the next batch or another thread.
const MAX_BATCH: usize = 64;

pub struct ScreenReader {
    queue: Mutex<Sender<ReadJob>>,
    /// For reads queued after every reader thread has ended (see [`ScreenReader::read`]).
    store: Arc<dyn Store>,
    /// Set once the threads are found gone (logged once).
    lost: std::sync::atomic::AtomicBool,
}

impl ScreenReader {
    /// Starts `threads` reader threads (at least one). They end when the reader is dropped.
    pub fn start(store: Arc<dyn Store>, threads: usize) -> std::io::Result<ScreenReader> {
        Self::with_threads(store, threads.max(1))
    }

    fn with_threads(store: Arc<dyn Store>, threads: usize) -> std::io::Result<ScreenReader> {
        let (queue, jobs) = channel::<ReadJob>();
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..threads {
            let (jobs, store) = (Arc::clone(&jobs), Arc::clone(&store));
            std::thread::Builder::new()
                .name("sheping-screen".into())
                .spawn(move || serve(store.as_ref(), &jobs))?;
        }
        Ok(ScreenReader {
            queue: Mutex::new(queue),
            store,
            lost: Default::default(),
        })
    }

    /// Runs `f` in the next batch's snapshot and returns its answer.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, WebError> + Send + 'static,
    ) -> Result<T, WebError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |store| {
            let _ = answer.send(f(store));
        });
        let sent = self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job);
        if let Err(std::sync::mpsc::SendError(job)) = sent {
            // Every reader thread has ended (a read's own panic is caught, so something else
            // failed): read on the blocking pool instead, so operators can go on working.
            use std::sync::atomic::Ordering;
            if !self.lost.swap(true, Ordering::SeqCst) {
                tracing::error!(
                    "the call-screen readers have stopped; reads use the blocking pool"
                );
            }
            let store = Arc::clone(&self.store);
            tokio::task::spawn_blocking(move || run_in_snapshot(store.as_ref(), vec![job]));
        }
        // A read that panicked drops its answer: an internal error for this request only.
        answered
            .await
            .map_err(|_| WebError::Internal("the read failed".into()))?
    }
}

fn serve(store: &dyn Store, jobs: &Mutex<Receiver<ReadJob>>) {
    loop {
        let batch: Vec<ReadJob> = {
            let jobs = jobs.lock().unwrap_or_else(|p| p.into_inner());
            let Ok(first) = jobs.recv() else {
                return; // the reader was dropped
            };
            std::iter::once(first)
                .chain(jobs.try_iter().take(MAX_BATCH - 1))
                .collect()
        };
        run_in_snapshot(store, batch);
    }
}

/// Runs a batch of reads in one snapshot.
fn run_in_snapshot(store: &dyn Store, batch: Vec<ReadJob>) {
    let mut batch = Some(batch);
    store.snapshot(&mut || {
        for job in batch.take().unwrap_or_default() {
            // One read's bug must not take the others' answers (or the thread) with it.
            let run = std::panic::AssertUnwindSafe(|| job(store));
            if std::panic::catch_unwind(run).is_err() {
                tracing::error!("a call-screen read panicked");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::Role;
    use crate::storage::NewUser;
    use crate::storage::sqlite::SqliteStore;

    fn user(login: &str) -> NewUser {
        NewUser {
            login: login.into(),
            name: login.into(),
            role: Role::Operator,
            password_hash: "x".into(),
        }
    }

    /// Each request gets its own answer, sees every write made before it asked, and a read
    /// that panics fails alone.
    #[test]
    fn reads_share_snapshots_yet_each_sees_what_was_written_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let reader = Arc::new(ScreenReader::start(store.clone(), 2).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for t in 0..8 {
                let (store, reader) = (store.clone(), reader.clone());
                tasks.push(tokio::spawn(async move {
                    for i in 0..25 {
                        let login = format!("u{t}x{i}");
                        let s = store.clone();
                        let l = login.clone();
                        tokio::task::spawn_blocking(move || {
                            use crate::storage::AccountStore;
                            s.add_user(&user(&l), "test").unwrap()
                        })
                        .await
                        .unwrap();
                        let found = reader
                            .read(move |s| Ok(s.user(&login)?.login))
                            .await
                            .unwrap();
                        assert_eq!(found, format!("u{t}x{i}"));
                    }
                }));
            }
            let failed = reader.read(|_| -> Result<(), WebError> { panic!("a bug") });
            assert!(matches!(failed.await, Err(WebError::Internal(_))));
            for t in tasks {
                t.await.unwrap();
            }
            let n = reader.read(|s| Ok(s.users()?.len())).await.unwrap();
            assert_eq!(n, 200);
        });
    }

    #[test]
    fn reads_still_answer_when_the_reader_threads_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
        {
            use crate::storage::AccountStore;
            store.add_user(&user("op"), "test").unwrap();
        }
        // No threads: the queue's receiving end is gone, as after every thread ended.
        let reader = ScreenReader::with_threads(store, 0).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let found = rt.block_on(reader.read(|s| Ok(s.user("op")?.login)));
        assert_eq!(found.unwrap(), "op");
        assert!(reader.lost.load(std::sync::atomic::Ordering::SeqCst));
    }
}
