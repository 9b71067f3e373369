//! Settings of the web consoles, read from the environment when the server starts.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SHEPING_SESSION_IDLE_SECS` | 1800 | a session ends after this long without a request |
//! | `SHEPING_SESSION_MAX_SECS` | 43200 | a session ends this long after sign-in, however active |
//! | `SHEPING_SIGNIN_MAX_FAILURES` | 5 | failed sign-ins of one login that lock it |
//! | `SHEPING_SIGNIN_MAX_IP_FAILURES` | 20 | failed sign-ins from one address that lock it (a call centre shares one address) |
//! | `SHEPING_SIGNIN_WINDOW_SECS` | 900 | failures count while younger than this |
//! | `SHEPING_SIGNIN_LOCK_SECS` | 900 | how long a lock lasts |
//! | `SHEPING_COOKIE_SECURE` | off | `1`: always mark cookies Secure (they are anyway when a trusted proxy says the request came over TLS, `X-Forwarded-Proto: https`) |
//! | `SHEPING_TRUST_PROXY` | off | `1`: the `X-Forwarded-*` headers count: the client address is the last entry of `X-Forwarded-For`, the host is `X-Forwarded-Host`, TLS is `X-Forwarded-Proto` (set only behind a reverse proxy that writes them) |
//! | `SHEPING_SCREEN_READS` | cores | threads reading the call screens |
//! | `SHEPING_HEADER_TIMEOUT_SECS` | 10 | a connection that has not sent a whole request head in this long is closed |
//! | `SHEPING_REQUEST_TIMEOUT_SECS` | 300 | a request (reading its body, running it) that takes longer is answered 408 |
//! | `SHEPING_MAX_CONNECTIONS` | 1024 | open connections at most (fewer when the process may open fewer files); at the cap, the oldest connection with no request running is closed for a new one |
//!
//! Without `SHEPING_TRUST_PROXY` every `X-Forwarded-*` header is ignored (any client can send
//! them). Behind a reverse proxy, keep the `Host` header (or, with `SHEPING_TRUST_PROXY`, send
//! `X-Forwarded-Host`): state-changing requests whose `Origin` names another host are refused;
//! and send `X-Forwarded-Proto: https` when the proxy terminates TLS, so that cookies are marked
//! Secure and HSTS is sent.

use crate::storage::{SessionLimits, ThrottlePolicy};

#[derive(Debug, Clone)]
pub struct WebConfig {
    pub limits: SessionLimits,
    pub throttle: ThrottlePolicy,
    pub cookie_secure: bool,
    pub trust_proxy: bool,
    /// Threads that read the call screens (see `web/screen_reader.rs`): one per core.
    pub screen_reads: u32,
    /// How long a client may take to send a request's head (slow or idle clients).
    pub header_timeout_secs: u32,
    /// How long a request may take, body and handler together.
    pub request_timeout_secs: u32,
    /// Open connections at most (see `web/mod.rs`, the accept loop).
    pub max_connections: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            limits: SessionLimits {
                idle_ms: 30 * 60_000,
                absolute_ms: 12 * 3_600_000,
            },
            throttle: ThrottlePolicy::default(),
            cookie_secure: false,
            trust_proxy: false,
            // One per core: each serves every screen queued at once, and a read that waits on
            // the disk holds up only its own batch.
            screen_reads: std::thread::available_parallelism().map_or(2, |n| n.get() as u32),
            header_timeout_secs: 10,
            // Generous: an upload of a large roster over a slow line, or a whole report zip,
            // must not be cut off; slow clients are bounded by the header timeout and the cap.
            request_timeout_secs: 300,
            max_connections: 1024,
        }
    }
}

impl WebConfig {
    pub fn from_env() -> Result<WebConfig, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<WebConfig, String> {
        let mut c = WebConfig::default();
        let secs = |name: &str, default_ms: i64| -> Result<i64, String> {
            match get(name) {
                None => Ok(default_ms),
                Some(v) => match v.trim().parse::<u32>() {
                    Ok(n) if n > 0 => Ok(i64::from(n) * 1000),
                    _ => Err(format!("{name}={v}: 需要正整数(秒)")),
                },
            }
        };
        let count = |name: &str, default: u32| -> Result<u32, String> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u32>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(format!("{name}={v}: 需要正整数")),
                },
            }
        };
        let flag =
            |name: &str| get(name).is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"));
        c.limits.idle_ms = secs("SHEPING_SESSION_IDLE_SECS", c.limits.idle_ms)?;
        c.limits.absolute_ms = secs("SHEPING_SESSION_MAX_SECS", c.limits.absolute_ms)?;
        c.throttle.max_login_failures =
            count("SHEPING_SIGNIN_MAX_FAILURES", c.throttle.max_login_failures)?;
        c.throttle.max_ip_failures =
            count("SHEPING_SIGNIN_MAX_IP_FAILURES", c.throttle.max_ip_failures)?;
        c.throttle.window_ms = secs("SHEPING_SIGNIN_WINDOW_SECS", c.throttle.window_ms)?;
        c.throttle.lock_ms = secs("SHEPING_SIGNIN_LOCK_SECS", c.throttle.lock_ms)?;
        c.cookie_secure = flag("SHEPING_COOKIE_SECURE");
        c.trust_proxy = flag("SHEPING_TRUST_PROXY");
        c.screen_reads = count("SHEPING_SCREEN_READS", c.screen_reads)?;
        c.header_timeout_secs = count("SHEPING_HEADER_TIMEOUT_SECS", c.header_timeout_secs)?;
        c.request_timeout_secs = count("SHEPING_REQUEST_TIMEOUT_SECS", c.request_timeout_secs)?;
        c.max_connections = count("SHEPING_MAX_CONNECTIONS", c.max_connections)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_checks_the_environment() {
        let c = WebConfig::from_lookup(|k| match k {
            "SHEPING_SESSION_IDLE_SECS" => Some("2".into()),
            "SHEPING_TRUST_PROXY" => Some("1".into()),
            "SHEPING_SCREEN_READS" => Some("3".into()),
            "SHEPING_HEADER_TIMEOUT_SECS" => Some("2".into()),
            "SHEPING_MAX_CONNECTIONS" => Some("50".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.limits.idle_ms, 2000);
        assert!(c.trust_proxy);
        assert!(!c.cookie_secure);
        assert_eq!(c.throttle.max_login_failures, 5);
        assert_eq!(c.screen_reads, 3);
        assert_eq!(c.header_timeout_secs, 2);
        assert_eq!(c.max_connections, 50);
        assert_eq!(c.request_timeout_secs, 300);
        let cap = WebConfig::from_lookup(|k| (k == "SHEPING_MAX_CONNECTIONS").then(|| "-1".into()));
        assert!(cap.unwrap_err().contains("SHEPING_MAX_CONNECTIONS"));
        assert!(WebConfig::default().screen_reads >= 1);
        let none = WebConfig::from_lookup(|k| (k == "SHEPING_SCREEN_READS").then(|| "0".into()));
        assert!(none.unwrap_err().contains("SHEPING_SCREEN_READS"));
        let bad = WebConfig::from_lookup(|k| (k == "SHEPING_SIGNIN_LOCK_SECS").then(|| "x".into()));
        assert!(bad.unwrap_err().contains("SHEPING_SIGNIN_LOCK_SECS"));
    }
}
