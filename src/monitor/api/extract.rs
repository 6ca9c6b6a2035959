//! The request plumbing every handler shares: transfer codings and Host checked, JSON bodies
//! and path parameters extracted with JSON errors, names and ids validated.

use super::*;

/// RFC 9112 §6.1: a transfer coding the server does not understand gets 501. hyper decodes
/// `chunked` alone and skipped whatever came before it, so `gzip, chunked` was read as plain
/// chunked and the gzip never undone. The request is refused before its body is read, and
/// the connection closed, since where that body ends cannot be trusted.
pub(super) async fn only_chunked(req: Request, next: Next) -> Response {
    if let Some(coding) = unknown_transfer_coding(req.headers()) {
        return ApiError::NotImplemented(format!(
            "transfer coding {coding:?} is not implemented; only chunked is"
        ))
        .into_response();
    }
    next.run(req).await
}

/// RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without a `Host` header
/// (HTTP/1.0 has none); hyper leaves that to the application, which served such requests.
/// Layered on by [`super::server::serve`], for requests off the wire only: in-process callers
/// of [`app`] (tests, `oneshot`) build requests without one.
pub async fn require_host(req: Request, next: Next) -> Response {
    if req.version() == axum::http::Version::HTTP_11 && !req.headers().contains_key(header::HOST) {
        return ApiError::BadRequest("an HTTP/1.1 request must have a Host header".into())
            .into_response();
    }
    next.run(req).await
}

/// The first coding in the Transfer-Encoding headers other than `chunked`.
pub(super) fn unknown_transfer_coding(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(header::TRANSFER_ENCODING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for coding in text.split(',').map(str::trim) {
            if !coding.is_empty() && !coding.eq_ignore_ascii_case("chunked") {
                return Some(coding.to_string());
            }
        }
    }
    None
}

pub(super) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

pub(super) async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

/// JSON body extractor whose every failure is an [`ApiError`] with a JSON body.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        // A body without a Content-Type is taken for JSON, the only kind this API reads
        // (RFC 9110 §8.3 lets the recipient judge); one declared as anything else is refused.
        if let Some(declared) = req.headers().get(header::CONTENT_TYPE) {
            if !is_json_type(declared) {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "request body must be JSON (Content-Type: application/json), got Content-Type {:?}",
                    String::from_utf8_lossy(declared.as_bytes())
                )));
            }
        }
        // A client that stops sending part-way through its body would otherwise hold the
        // connection and this handler for ever.
        let timeout = state.body_timeout;
        let bytes = tokio::time::timeout(timeout, Bytes::from_request(req, state))
            .await
            .map_err(|_| {
                ApiError::RequestTimeout(format!(
                    "the request body did not arrive within {timeout:?}"
                ))
            })?
            .map_err(|r: BytesRejection| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge {
                        limit_bytes: BODY_LIMIT_BYTES,
                    }
                } else {
                    ApiError::BadRequest(format!("could not read request body: {}", r.body_text()))
                }
            })?;
        // Derived structs also deserialize from an array of their fields in order, so
        // `["x"]` would create an execution named "x"; every body of this API is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ApiError::BadRequest(
                "request body must be a JSON object, not an array".into(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => {
                    ApiError::BadRequest(format!("invalid field in request body: {e}"))
                }
                _ => ApiError::BadRequest(format!("malformed JSON in request body: {e}")),
            })
    }
}

/// `application/json` or `application/<anything>+json`, with any parameters.
pub(super) fn is_json_type(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    // `to_str` succeeded, so the text is ASCII and any byte offset is a char boundary.
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Path parameters whose every failure (such as `%FF`, which is not UTF-8) is an [`ApiError`]
/// with a JSON body; axum's own `Path` answers those in plain text.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParams(value)),
            Err(rejection) if rejection.status().is_client_error() => Err(ApiError::BadRequest(
                format!("bad path {}: {}", parts.uri.path(), rejection.body_text()),
            )),
            // Only a route whose handler does not match its own parameters gets here.
            Err(rejection) => Err(ApiError::Internal(rejection.body_text())),
        }
    }
}

/// An execution id or step index in a path: decimal digits only, at most `i64::MAX`, as the
/// spec says (`integer`, 0 to 9223372036854775807).
pub(super) fn parse_id(raw: &str, what: &str) -> AppResult<i64> {
    raw.parse::<i64>().ok().filter(|&v| v >= 0).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{what} must be a non-negative integer, got {raw:?}"
        ))
    })
}

pub(super) fn parse_status(raw: &str) -> AppResult<Status> {
    raw.parse()
        .map_err(|e: crate::monitor::model::UnknownStatus| ApiError::Unprocessable(e.to_string()))
}

/// Longest accepted name of an execution, step or artifact, in characters (Unicode scalar
/// values, what JSON Schema's `maxLength` counts).
pub const MAX_NAME_CHARS: usize = 1024;

/// What a name must contain, as the spec's `pattern` (ECMA-262, unanchored): one character that
/// is not white space in Rust's sense (`char::is_whitespace`, the Unicode `White_Space`
/// property), which is what [`check_name`] refuses a name made only of. Spelled out because
/// `\s` means other things in ECMA-262 and in Python.
pub const NAME_PATTERN: &str =
    r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

pub(super) fn check_name(name: &str, what: &str) -> AppResult<()> {
    if name.trim().is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "{what} must not be empty or only white space"
        )));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "{what} is {chars} characters long; the limit is {MAX_NAME_CHARS}"
        )));
    }
    Ok(())
}

/// Always `ok` when the service answers at all.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum HealthStatus {
    Ok,
}

/// The storage profile the monitor runs with.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum ProfileName {
    Optimized,
    Legacy,
}
