//! The HTTP routes: the two summarisation routes, health, info, metrics and the OpenAPI
//! document. Each handler validates its request once, then hands the texts to the
//! [`Service`](super::service::Service).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;

use super::errors::ApiError;
use super::schema::{
    Health, HfInputs, HfRequest, HfSummary, Info, SummarizeErrors, SummarizeRequest,
};
use super::service::{Service, Summarized};
use super::state::{AppState, Phase};
use super::validate::RequestSettings;
use crate::SummaryRecord;

/// Summarise with the Hugging Face summarization task schema.
#[utoipa::path(
    post,
    path = "/",
    tag = "summarize",
    request_body = HfRequest,
    responses(
        (status = 200, description = "One summary per input, in order", body = [HfSummary]),
        SummarizeErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn hf_summarize(
    State(state): State<Arc<AppState>>,
    Body(body): Body,
) -> Result<Json<Vec<HfSummary>>, ApiError> {
    let service = state.ready()?;
    let _in_flight = state.in_flight.enter();
    let request: HfRequest = parse_json(&body)?;
    let texts = match request.inputs {
        HfInputs::One(text) => vec![text],
        HfInputs::Many(texts) => texts,
    };
    let limit = state.options.limits.max_inputs_per_request;
    if texts.is_empty() || texts.len() > limit {
        return Err(ApiError::validation(format!(
            "invalid value for inputs: a list of {} texts (expected 1 to {limit}, the server's \
             --max-inputs-per-request)",
            texts.len()
        )));
    }
    let settings = request.parameters.settings(
        &state.options.defaults,
        &state.options.limits,
        &service.summarizer,
    )?;
    let summaries = summarize_all(service, texts, settings).await?;
    Ok(Json(
        summaries
            .into_iter()
            .map(|done| HfSummary {
                summary_text: done.summary.text,
            })
            .collect(),
    ))
}

/// Summarise one text with precis's own parameters; answers what `summarize --format json`
/// prints.
#[utoipa::path(
    post,
    path = "/summarize",
    tag = "summarize",
    request_body = SummarizeRequest,
    responses(
        (status = 200, description = "The summary, its chunks and token counts", body = SummaryRecord),
        SummarizeErrors,
    ),
    security((), ("bearer" = []))
)]
pub async fn summarize(
    State(state): State<Arc<AppState>>,
    Body(body): Body,
) -> Result<Json<SummaryRecord>, ApiError> {
    let service = state.ready()?;
    let _in_flight = state.in_flight.enter();
    let request: SummarizeRequest = parse_json(&body)?;
    let settings = request.settings(
        &state.options.defaults,
        &state.options.limits,
        &service.summarizer,
    )?;
    let summarizer = service.summarizer.clone();
    let mut summaries = summarize_all(service, vec![request.text], settings).await?;
    let done = summaries
        .pop()
        .ok_or_else(|| ApiError::model("no summary came back"))?;
    let mut record = SummaryRecord::new(&done.document, &done.cleaned, &summarizer, done.summary);
    record.source = None;
    Ok(Json(record))
}

/// Summarises `texts` concurrently, in order. Dropping the future aborts every text's task,
/// which cancels their passes.
async fn summarize_all(
    service: Arc<Service>,
    texts: Vec<String>,
    settings: RequestSettings,
) -> Result<Vec<Summarized>, ApiError> {
    let settings = Arc::new(settings);
    let mut tasks = JoinSet::new();
    let count = texts.len();
    for (i, text) in texts.into_iter().enumerate() {
        let (service, settings) = (service.clone(), settings.clone());
        tasks.spawn(async move { (i, service.summarize(i + 1, text, settings).await) });
    }
    let mut summaries: Vec<Option<Summarized>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) =
            joined.map_err(|e| ApiError::model(format!("summarising failed: {e}")))?;
        summaries[i] = Some(result?);
    }
    Ok(summaries.into_iter().flatten().collect())
}

/// A request body of at most `--max-input-bytes`, whatever its content type (curl's default
/// form type included); over the limit it is a 413 with the JSON error body.
pub struct Body(Bytes);

impl FromRequest<Arc<AppState>> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(
                ApiError::payload_too_large(state.options.limits.max_input_bytes),
            ),
            Err(rejection) => Err(ApiError::validation(rejection.body_text())),
        }
    }
}

/// Parses a JSON body; a malformed body or a wrongly typed value is a 422 naming where.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_data() && path != "." {
            ApiError::validation(format!("invalid value for {path}: {inner}"))
        } else {
            ApiError::validation(format!("invalid JSON body: {inner}"))
        }
    })
}

/// 200 once the model is loaded and the scheduler runs; 503 while loading or shutting down.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Loading, shutting down, or the scheduler stopped", body = Health),
    )
)]
pub async fn health(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Health>) {
    let status = match state.phase() {
        Phase::Loading => "loading",
        Phase::Ready(ready) if ready.service.scheduler.is_alive() => "ready",
        Phase::Ready(_) => "scheduler_stopped",
        Phase::Draining(_) | Phase::Stopped => "shutting_down",
    };
    let code = if status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let health = Health {
        status: status.to_string(),
    };
    (code, Json(health))
}

/// The model, its default settings and the server's limits.
#[utoipa::path(
    get,
    path = "/info",
    tag = "operations",
    responses(
        (status = 200, description = "What the server runs", body = Info),
        (status = 401, description = "Missing or wrong API key", body = super::schema::ErrorBody),
        (status = 503, description = "Still loading", body = super::schema::ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn info(State(state): State<Arc<AppState>>) -> Result<Json<Info>, ApiError> {
    match state.phase() {
        Phase::Loading => Err(ApiError::loading()),
        Phase::Stopped => Err(ApiError::shutting_down()),
        Phase::Ready(ready) | Phase::Draining(ready) => Ok(Json(ready.info.clone())),
    }
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"),
        (status = 401, description = "Missing or wrong API key", body = super::schema::ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => ApiError::model("cannot render the metrics").into_response(),
    }
}

/// The OpenAPI document of every route.
pub async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
        .into_response()
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
