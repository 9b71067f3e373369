//! One error type for every handler: a safe Chinese message for the user, the cause in the log.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
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

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            WebError::NotFound(m) | WebError::Storage(StorageError::NotFound(m)) => {
                (StatusCode::NOT_FOUND, "未找到", m.clone())
            }
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, "请求有误", m.clone()),
            WebError::Conflict(m) | WebError::Storage(StorageError::Conflict(m)) => {
                (StatusCode::CONFLICT, "无法完成", m.clone())
            }
            WebError::Storage(e @ StorageError::Locked(_)) => {
                (StatusCode::CONFLICT, "轮次已锁定", e.to_string())
            }
            WebError::Storage(StorageError::Full) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "存储空间已满",
                "服务器存储空间已满,本次操作未保存。请通知管理员,稍后重试。".to_string(),
            ),
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
