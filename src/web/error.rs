//! One error type for every handler: a safe Chinese message for the user, the cause in the log.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// A form body that could not be read as the handler's form (keeps axum's status).
    #[error("{1}")]
    Form(StatusCode, String),
    #[error("{0}")]
    Conflict(String),
    /// Not signed in (or the session ended): pages go to sign-in and come back to `next`.
    #[error("sign-in required")]
    SignIn { next: String, expired: bool },
    /// Not signed in, for scripts and the API: 401 instead of a redirect.
    #[error("unauthorized")]
    Unauthorized,
    /// Signed in, but the role does not allow it (already logged by the guard).
    #[error("forbidden")]
    Forbidden,
    /// The form token is missing or wrong, or the request came from another site.
    #[error("csrf")]
    Csrf,
    #[error("internal: {0}")]
    Internal(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    title: &'static str,
    message: String,
}

/// Percent-encodes a path for a query parameter.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            WebError::SignIn { next, expired } => {
                let mut url = format!("/login?next={}", encode_component(next));
                if *expired {
                    url.push_str("&expired=1");
                }
                return Redirect::to(&url).into_response();
            }
            WebError::Unauthorized => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Cookie realm=\"sheping\"")],
                    ErrorPage {
                        title: "需要登录",
                        message: "未登录或会话已过期,请重新登录。".to_string(),
                    },
                )
                    .into_response();
            }
            WebError::Forbidden => (
                StatusCode::FORBIDDEN,
                "无权访问",
                "您的账号角色无权查看或操作此页面。此次访问已记录。".to_string(),
            ),
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "表单已失效",
                "表单校验未通过(页面可能已过期或来自其他网站),未保存任何内容。请返回刷新页面后重试。"
                    .to_string(),
            ),
            WebError::NotFound(m) | WebError::Storage(StorageError::NotFound(m)) => {
                (StatusCode::NOT_FOUND, "未找到", m.clone())
            }
            WebError::BadRequest(m) | WebError::Storage(StorageError::Invalid(m)) => {
                (StatusCode::BAD_REQUEST, "请求有误", m.clone())
            }
            WebError::Form(status, m) => (*status, "请求有误", m.clone()),
            WebError::Conflict(m) | WebError::Storage(StorageError::Conflict(m)) => {
                (StatusCode::CONFLICT, "无法完成", m.clone())
            }
            WebError::Storage(StorageError::Locked(key)) => (
                StatusCode::CONFLICT,
                "轮次已锁定",
                format!("评估轮次 {key} 已锁定,其数据不能再修改。"),
            ),
            WebError::Storage(StorageError::Full) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "存储空间已满",
                "服务器存储空间已满,本次操作未保存。请通知管理员,稍后重试。".to_string(),
            ),
            // Bad data, not a fault of the service: named, so an admin can correct that row.
            WebError::Storage(StorageError::BadStoredValue(bad)) => {
                tracing::error!(error = %bad, "stored value unreadable");
                (StatusCode::CONFLICT, "数据有误", bad.to_string())
            }
            other => {
                tracing::error!(error = %other, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "系统错误",
                    "系统内部错误,已记录。请稍后重试或联系管理员。".to_string(),
                )
            }
        };
        (status, ErrorPage { title, message }).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_paths_are_encoded() {
        assert_eq!(
            encode_component("/call?round=2022&x=1"),
            "/call%3Fround%3D2022%26x%3D1"
        );
    }
}
