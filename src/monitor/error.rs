//! The one error type every handler returns, each variant mapped to its HTTP status.

use super::storage::StorageError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer: `{"error": "<message>"}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"error": "execution 42 not found"}))]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, a field of the wrong type, a bad query value.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("request body is larger than the {limit_bytes}-byte limit")]
    PayloadTooLarge { limit_bytes: usize },
    /// A body declared as something other than JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Valid JSON whose values make no sense (an empty name, an unknown status).
    #[error("{0}")]
    Unprocessable(String),
    /// The client did not send the whole request in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// A part of HTTP this service does not implement, such as a transfer coding.
    #[error("{0}")]
    NotImplemented(String),
    /// The disk is full; the detail is logged, and nothing of the write was stored.
    #[error(
        "no space left on device: nothing was stored; free space on the monitor's disk and retry"
    )]
    InsufficientStorage(String),
    #[error("the service is shutting down")]
    Unavailable,
    /// Logged in full, never shown to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(msg) => ApiError::NotFound(msg),
            StorageError::Closed => ApiError::Unavailable,
            StorageError::Full(detail) => ApiError::InsufficientStorage(detail),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => eprintln!("stepflow-monitor: internal error: {detail}"),
            ApiError::InsufficientStorage(detail) => {
                eprintln!("stepflow-monitor: no space left on device: {detail}");
            }
            _ => {}
        }
        let body = ErrorBody {
            error: self.to_string(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        // Where the unread rest of the request ends cannot be known (or trusted), so the
        // connection cannot carry another request.
        if matches!(
            self,
            ApiError::RequestTimeout(_) | ApiError::NotImplemented(_)
        ) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
