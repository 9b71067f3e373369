//! Security headers on every response, the same-origin check of state-changing requests,
//! cookies, client addresses and the random tokens of sessions and forms.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{AppState, WebError};

/// No inline script anywhere: every script is a file under /static.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

/// Adds the security headers to every response; pages are never cached (they carry personal
/// data and per-session form tokens), static files may be.
pub async fn headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let https = is_https(req.headers(), &state);
    let is_static = req.uri().path().starts_with("/static/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if !is_static && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Refuses a state-changing request sent from another site (defence in depth beside the
/// SameSite cookie and the per-session form token): when the browser says where the request
/// comes from, it must be this host.
pub async fn same_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let h = req.headers();
        let cross_site = h
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site");
        let host = forwarded(h, "x-forwarded-host", &state)
            .or_else(|| h.get(header::HOST))
            .and_then(|v| v.to_str().ok());
        let origin_mismatch = match (h.get(header::ORIGIN).and_then(|v| v.to_str().ok()), host) {
            (Some("null"), _) => true,
            (Some(origin), Some(host)) => {
                let origin_host = origin.split("://").nth(1).unwrap_or(origin);
                !origin_host.eq_ignore_ascii_case(host)
            }
            _ => false,
        };
        if cross_site || origin_mismatch {
            tracing::warn!(path = %req.uri().path(), "cross-site request refused");
            let path = req.uri().path();
            if path == "/api" || path.starts_with("/api/") {
                // The API answers in its own JSON error shape, never the console's HTML page.
                return super::api::ApiError::Forbidden(
                    "跨站请求被拒绝:请求来自其他网站(Origin 与本站不符)".into(),
                )
                .into_response();
            }
            return WebError::Csrf.into_response();
        }
    }
    next.run(req).await
}

/// A `X-Forwarded-*` header, only when a trusted proxy writes them (`SHEPING_TRUST_PROXY`):
/// without one, any client could set them and so choose the host the origin check compares
/// with, or whether cookies are Secure.
fn forwarded<'a>(headers: &'a HeaderMap, name: &str, state: &AppState) -> Option<&'a HeaderValue> {
    if state.config.trust_proxy {
        headers.get(name)
    } else {
        None
    }
}

/// Whether the request reached us over TLS (through a trusted proxy that says so), or the
/// configuration asks for Secure cookies regardless.
pub fn is_https(headers: &HeaderMap, state: &AppState) -> bool {
    state.config.cookie_secure
        || forwarded(headers, "x-forwarded-proto", state)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').next().unwrap_or("").trim() == "https")
}

/// The client's address: the peer, or behind a trusted proxy the last `X-Forwarded-For` hop.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    state: &AppState,
) -> String {
    if state.config.trust_proxy
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    {
        return ip.chars().take(64).collect();
    }
    peer.map(|c| c.0.ip().to_string()).unwrap_or_default()
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: HttpOnly always, SameSite as given, Secure over TLS.
pub fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: Option<i64>,
    secure: bool,
) -> HeaderValue {
    let mut s = format!("{name}={value}; Path={path}; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        s.push_str("; Secure");
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// 256 random bits as hex, from the operating system's generator (seeded ChaCha).
pub fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the server keeps of a session token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sheping_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, "sheping_session"), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = random_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token());
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        assert!(constant_time_eq(&a, &a.clone()));
        assert!(!constant_time_eq(&a, &random_token()));
        assert!(!constant_time_eq("a", "ab"));
    }

    #[test]
    fn set_cookie_flags() {
        let v = set_cookie("s", "x", "/", "Lax", None, true);
        let v = v.to_str().unwrap();
        assert!(v.contains("HttpOnly") && v.contains("SameSite=Lax") && v.contains("Secure"));
    }
}
