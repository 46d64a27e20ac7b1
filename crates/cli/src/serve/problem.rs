//! Errors as RFC 9457 problem documents (`application/problem+json`), the extractors that turn
//! axum's own rejections into them, and the layer that turns every other error response (an
//! unknown route, a method not allowed, a body over the limit) into one.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document (RFC 9457): what went wrong with a request, for people and programs.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// The problem type: `about:blank` (the status says it all; `title` is its reason phrase).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type (the HTTP reason phrase).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, and what to do about it.
    pub detail: String,
    /// The request path the problem occurred on.
    pub instance: Option<String>,
}

impl Problem {
    fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
        }
    }
}

/// An error a handler returns: a status, the detail shown to the client, and headers that go
/// with it (`Retry-After`, `WWW-Authenticate`).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError { status, detail: detail.into(), retry_after: None }
    }

    /// 400: the request is malformed or asks for something impossible.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404: what the request names does not exist.
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    /// 503: the server cannot do it now (busy, or it took longer than the server allows).
    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What the client is told.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Sets `Retry-After` (seconds).
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// 500 for an error the client cannot fix: logged on the server with a number, which is all
    /// the client sees (paths and internals stay on the server).
    pub fn internal(e: &anyhow::Error) -> ApiError {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        eprintln!("error {n}: {}", crate::error_line(e));
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error {n}: the server could not answer; its log says why"))
    }

    /// An error of work done on the client's input (a trace, a tag): what the input caused is a
    /// 400 with the message; a failure of the disk or the database is a 500.
    pub fn from_input(e: anyhow::Error) -> ApiError {
        let internal = e.chain().any(|c| {
            c.is::<std::io::Error>()
                || matches!(c.downcast_ref::<tracehound_labels::Error>(), Some(tracehound_labels::Error::Database { .. } | tracehound_labels::Error::Io { .. }))
        });
        if internal {
            ApiError::internal(&e)
        } else {
            ApiError::bad_request(crate::error_line(&e))
        }
    }
}

impl From<tracehound_labels::Error> for ApiError {
    fn from(e: tracehound_labels::Error) -> ApiError {
        ApiError::from_input(e.into())
    }
}

impl From<tracehound_report::Error> for ApiError {
    fn from(e: tracehound_report::Error) -> ApiError {
        ApiError::internal(&e.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::internal(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem::new(self.status, self.detail);
        let mut res = (self.status, [(header::CONTENT_TYPE, PROBLEM_JSON)], serde_json::to_string(&problem).unwrap_or_default()).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tracehound\""));
        }
        // The outer layer adds `instance` (the request path).
        res.extensions_mut().insert(problem);
        res
    }
}

/// A JSON body; a body that is not JSON of the expected shape is a 400 problem, one over the
/// size limit a 413 problem.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, body_limit_detail())),
            Err(r) => Err(ApiError::bad_request(r.body_text())),
        }
    }
}

/// Path parameters; a parameter of the wrong type is a 400 problem.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(r) => Err(ApiError::bad_request(r.body_text())),
        }
    }
}

/// Query parameters; a missing or malformed parameter is a 400 problem.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(ApiError::bad_request(r.body_text())),
        }
    }
}

fn body_limit_detail() -> String {
    format!("the request body is larger than the server accepts ({} MiB)", super::MAX_BODY_BYTES >> 20)
}

/// Makes every error response a problem document with `instance` set: the handlers' own
/// problems, and the plain ones of the router (unknown route, method not allowed) and of the
/// body limit.
pub async fn problems(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let res = next.run(req).await;
    let status = res.status();
    if !status.is_client_error() && !status.is_server_error() {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let mut problem = match parts.extensions.remove::<Problem>() {
        Some(p) => p,
        None => {
            let text = axum::body::to_bytes(body, 64 << 10).await.map(|b| String::from_utf8_lossy(&b).trim().to_string()).unwrap_or_default();
            let detail = match status {
                // The router adds the Allow header after this layer.
                StatusCode::METHOD_NOT_ALLOWED => format!("{path} does not answer {method}: the Allow header lists the methods it answers"),
                StatusCode::PAYLOAD_TOO_LARGE => body_limit_detail(),
                StatusCode::NOT_FOUND if text.is_empty() => format!("no resource at {path}: the routes are listed at /v1/openapi.json"),
                _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_string(),
                _ => text,
            };
            // The router's own rejections of malformed input (422, 415) are 400s here.
            let status = if matches!(status, StatusCode::UNPROCESSABLE_ENTITY | StatusCode::UNSUPPORTED_MEDIA_TYPE) { StatusCode::BAD_REQUEST } else { status };
            parts.status = status;
            Problem::new(status, detail)
        }
    };
    problem.instance = Some(path);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(serde_json::to_string(&problem).unwrap_or_default()))
}
