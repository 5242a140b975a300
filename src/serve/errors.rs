//! Every error answer, and the one place that decides its HTTP status: a JSON body
//! `{"error": "...", "error_type": "..."}`, the type also counted in the metrics.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::schema::ErrorBody;
use crate::Error;
use crate::batch::error_chain;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
}

/// Marks a response as an error of this type, for the metrics layer.
#[derive(Debug, Clone, Copy)]
pub struct ErrorType(pub &'static str);

impl ApiError {
    fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_type,
            message: message.into(),
        }
    }

    /// 422: the request asks for something invalid.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message)
    }

    /// 413: the body is over `--max-input-bytes`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is over the server's --max-input-bytes ({limit} bytes)"),
        )
    }

    /// 429: `--max-concurrent-requests` are in flight.
    pub fn overloaded(limit: usize) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "overloaded",
            format!(
                "the server is already handling its --max-concurrent-requests ({limit}) \
                 summarisation requests; retry shortly"
            ),
        )
    }

    /// 401: no or a wrong API key.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API key: send 'Authorization: Bearer <key>'",
        )
    }

    /// 503 while the model loads.
    pub fn loading() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "loading",
            "the model is still loading; retry when GET /health answers 200",
        )
    }

    /// 503 once shutdown began.
    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down and takes no new work",
        )
    }

    /// 500: the model failed on this request. The client gets the first line only: with
    /// `RUST_BACKTRACE` set, candle appends a backtrace of the server's internals, which goes to
    /// the server's log instead.
    pub fn model(message: impl Into<String>) -> Self {
        let message = message.into();
        let first_line = message.lines().next().unwrap_or_default();
        if first_line.len() < message.trim_end().len() {
            tracing::error!(%message, "model failure");
        }
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "model", first_line)
    }

    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route {path}; see GET /docs"),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method; see GET /docs",
        )
    }
}

impl From<Error> for ApiError {
    /// The caller's mistakes (a setting out of bounds, a text that cannot be summarised) are
    /// 422s; anything else went wrong inside the model.
    fn from(error: Error) -> Self {
        let message = error_chain(&error);
        if error.is_callers() {
            Self::validation(message)
        } else {
            Self::model(message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            error_type: self.error_type.to_string(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(ErrorType(self.error_type));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_failure_shows_the_client_its_first_line_only() {
        let with_backtrace =
            "a weight is not finite\n   0: candle_core::error::Error::bt\n   1: precis::models";
        let error = ApiError::model(with_backtrace);
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.message, "a weight is not finite");
        assert_eq!(ApiError::model("one line").message, "one line");
    }
}
