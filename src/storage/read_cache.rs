//! Reads every request repeats, kept in memory between the writes that change them.
//!
//! Each request of the call screen looks up its session and the operator's rounds. Under load
//! every commit invalidates each reader's page cache, so these lookups started a cold read
//! transaction each time (a fifth of the server's work per call). They change rarely: on
//! sign-in and sign-out, when a plan or a round changes.
//!
//! The writer connection's update hook notes which tables a transaction touched, and the
//! commit bumps the matching [`Generation`] before any writer of the batch is answered. An
//! entry read under an older generation is not used, so a change made through this process is
//! seen by the next request. A change made by another process (the CLI while the server runs,
//! the `sqlite3` shell) is not hooked: entries also expire after [`TTL`], which bounds how long
//! such a change goes unseen. Writes check the database itself (a locked round refuses a
//! write whatever a cached round says).
//!
//! The PostgreSQL store keeps the same caches (`postgres/sync.rs`'s `Caches`): its own write
//! methods bump the generations, and [`TTL`] bounds what another instance changed.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long an entry may be used without a hooked change: the longest a change made by
/// another process stays unseen.
pub(crate) const TTL: Duration = Duration::from_secs(1);

/// Bits of [`Touched`]: which group of cached reads a table belongs to.
const ROUNDS: u8 = 1;
const SESSIONS: u8 = 2;

/// The groups of cached reads a table's rows feed.
fn group_of(table: &str) -> u8 {
    match table {
        // operator_rounds: rounds joined to the operator's assignments through members, units.
        "rounds" | "units" | "members" | "assignments" => ROUNDS,
        // session lookups: the session joined to its user.
        "sessions" | "users" => SESSIONS,
        _ => 0,
    }
}

/// Tables the open write transaction changed, set from the update hook.
#[derive(Default)]
pub(crate) struct Touched(AtomicU8);

impl Touched {
    pub(crate) fn note(&self, table: &str) {
        let g = group_of(table);
        if g != 0 {
            self.0.fetch_or(g, Ordering::SeqCst);
        }
    }

    /// Notes every group: for a write made while the update hook was off.
    pub(crate) fn note_all(&self) {
        self.0.fetch_or(ROUNDS | SESSIONS, Ordering::SeqCst);
    }
}

/// A counter that moves whenever a commit may have changed a group's data.
#[derive(Default)]
pub(crate) struct Generation(AtomicU64);

impl Generation {
    /// Marks every entry of the group read so far as stale (a write that may have changed it).
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
pub(crate) struct Generations {
    pub(crate) rounds: Generation,
    pub(crate) sessions: Generation,
}

impl Generations {
    /// After a commit or rollback: moves the generation of every group the transaction
    /// touched (a rollback too, which costs at most a re-read).
    pub(crate) fn settle(&self, touched: &Touched) {
        let t = touched.0.swap(0, Ordering::SeqCst);
        if t & ROUNDS != 0 {
            self.rounds.0.fetch_add(1, Ordering::SeqCst);
        }
        if t & SESSIONS != 0 {
            self.sessions.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

struct Entry<V> {
    generation: u64,
    expires: Instant,
    value: V,
}

/// When an entry kept now stops being used: between half the [`TTL`] and all of it, drawn at
/// random. Entries read together (every operator signs in at the start of a shift) would
/// otherwise all expire together, each second, and their re-reads arrive as one burst on the
/// blocking pool that every request then waits behind.
fn expiry(now: Instant) -> Instant {
    use rand::RngExt;
    let half = TTL / 2;
    now + half + half.mul_f64(rand::rng().random::<f64>())
}

/// Values by key, each valid while its group's generation has not moved and for [`TTL`].
pub(crate) struct ReadCache<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
    /// A bound against a pathological number of keys (sessions of a brute-force attempt do
    /// not get here: only valid sessions are kept).
    max_entries: usize,
}

impl<K: Eq + Hash, V: Clone> ReadCache<K, V> {
    pub(crate) fn new(max_entries: usize) -> Self {
        ReadCache {
            entries: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q, generation: u64) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|e| e.generation == generation && Instant::now() < e.expires)
            .map(|e| e.value.clone())
    }

    /// Keeps `value`, read after `generation` was taken (so a commit during the read leaves
    /// the entry already stale).
    pub(crate) fn put(&self, key: K, generation: u64, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                generation,
                expires: expiry(Instant::now()),
                value,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_used_until_its_group_moves() {
        let gens = Generations::default();
        let cache: ReadCache<i64, &str> = ReadCache::new(8);
        let g = gens.rounds.now();
        cache.put(1, g, "a");
        assert_eq!(cache.get(&1, gens.rounds.now()), Some("a"));
        // A commit that touched only sessions leaves the rounds entry valid…
        let touched = Touched::default();
        touched.note("sessions");
        touched.note("attempts");
        gens.settle(&touched);
        assert_eq!(cache.get(&1, gens.rounds.now()), Some("a"));
        assert_ne!(gens.sessions.now(), 0);
        // …one that touched assignments does not.
        touched.note("assignments");
        gens.settle(&touched);
        assert_eq!(cache.get(&1, gens.rounds.now()), None);
        // Settling clears the marks: the next commit moves nothing.
        let before = (gens.rounds.now(), gens.sessions.now());
        gens.settle(&touched);
        assert_eq!((gens.rounds.now(), gens.sessions.now()), before);
    }

    #[test]
    fn an_entry_read_during_a_commit_is_stale_after_it() {
        let gens = Generations::default();
        let cache: ReadCache<i64, &str> = ReadCache::new(8);
        let g = gens.rounds.now(); // taken before the read
        let touched = Touched::default();
        touched.note("rounds");
        gens.settle(&touched); // a commit lands while the read runs
        cache.put(7, g, "maybe old");
        assert_eq!(cache.get(&7, gens.rounds.now()), None);
    }

    #[test]
    fn entries_kept_together_expire_apart_within_the_ttl() {
        let now = Instant::now();
        let expiries: Vec<Instant> = (0..100).map(|_| expiry(now)).collect();
        assert!(
            expiries
                .iter()
                .all(|&e| e >= now + TTL / 2 && e <= now + TTL)
        );
        let spread = *expiries.iter().max().unwrap() - *expiries.iter().min().unwrap();
        // 100 uniform draws over half a second all within a quarter of it: probability
        // about 4 * 0.25^99, never in practice.
        assert!(spread > TTL / 8, "spread {spread:?}");
    }

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let cache: ReadCache<i64, i64> = ReadCache::new(2);
        cache.put(1, 0, 1);
        cache.put(2, 0, 2);
        cache.put(3, 0, 3); // over the bound: the map starts again
        assert_eq!(cache.get(&1, 0), None);
        assert_eq!(cache.get(&3, 0), Some(3));
        cache.put(4, 0, 4);
        std::thread::sleep(TTL + Duration::from_millis(20));
        assert_eq!(cache.get(&4, 0), None);
    }
}
