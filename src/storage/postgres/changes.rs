//! Change notices between instances: `NOTIFY` in the writing transaction, `LISTEN` on one
//! connection per instance, so that each instance's in-memory caches (sessions, an operator's
//! rounds: `src/storage/read_cache.rs`) drop what another instance changed.
//!
//! PostgreSQL delivers a notice only when its transaction commits, in commit order, and folds
//! identical notices of one transaction into one. A listener that loses its connection cannot
//! know what it missed: it reports [`Change::Lost`] when the connection drops and again once it
//! listens anew, and the cache then drops everything (its one-second TTL bounds the meantime).

use std::time::Duration;

use deadpool_postgres::GenericClient;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::PgError;
use crate::storage::location::PostgresUrl;

/// The channel every instance listens on; a notice's payload names the group that changed.
pub const CHANNEL: &str = "sheping_changes";

/// The listening connection's `application_name` (to find it in `pg_stat_activity`).
pub const LISTENER_NAME: &str = "sheping-listener";

/// Inside a writing transaction: tells every listening instance, if and when `tx` commits, that
/// `group`'s tables changed.
pub async fn notify<C: GenericClient>(tx: &C, group: &str) -> Result<(), PgError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &group])
        .await?;
    Ok(())
}

/// What a listener reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A committed transaction changed this group's tables.
    Group(String),
    /// Notices may have been missed (the connection dropped, or listening resumed after that):
    /// drop every cached entry.
    Lost,
}

/// Listens for change notices on a connection of its own (not from the pool, which hands its
/// connections to other work), reconnecting after a loss. Stops when dropped.
pub struct Listener {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Starts listening at `url`; when this returns, every notice committed from then on reaches
    /// `on_change` (on a Tokio task of the current runtime).
    pub async fn start(
        url: &str,
        on_change: impl Fn(Change) + Send + 'static,
    ) -> Result<Listener, PgError> {
        let url = PostgresUrl::parse(url)?;
        let mut config = url.config();
        config.application_name(LISTENER_NAME);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // A peer gone without a word (a network cut) is noticed in about half a minute
        // instead of the system's two hours.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        let first = listen(&config).await.map_err(|source| PgError::Connect {
            url: url.to_string(),
            source,
        })?;
        let task = tokio::spawn(async move {
            let (mut _client, mut notices) = first;
            loop {
                while let Some(group) = notices.recv().await {
                    on_change(Change::Group(group));
                }
                on_change(Change::Lost);
                let mut delay = Duration::from_millis(100);
                loop {
                    tokio::time::sleep(delay).await;
                    match listen(&config).await {
                        Ok(again) => {
                            (_client, notices) = again;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %super::describe(&e), url = %url, "change notices: cannot listen again yet");
                            delay = (delay * 2).min(Duration::from_secs(5));
                        }
                    }
                }
                on_change(Change::Lost);
            }
        });
        Ok(Listener { task })
    }
}

/// One listening connection: its client (the connection closes when it is dropped) and the
/// payloads of the notices it receives (the channel closes when the connection ends).
async fn listen(
    config: &tokio_postgres::Config,
) -> Result<(tokio_postgres::Client, mpsc::UnboundedReceiver<String>), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (sender, receiver) = mpsc::unbounded_channel();
    // Polling for messages is what drives the connection.
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if sender.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok((client, receiver))
}
