//! `precis serve`: a summarisation HTTP service over one loaded model, with continuous
//! batching.
//!
//! - **One scheduler owns the model** ([`scheduler`]): a thread drives a
//!   [`generation::Engine`](crate::generation::Engine); the async HTTP side (tokio + axum) talks
//!   to it through channels. Every request is planned exactly as `precis summarize` plans it
//!   ([`SummaryPlan`](crate::SummaryPlan): tokenise, chunk, merge), and each generation pass
//!   joins the running decoder batch at a step boundary and leaves it when done, so output is
//!   token-identical to the CLI whatever else is in the batch. That rests on the CPU kernels
//!   being batch-invariant (see `generation::engine`); on a GPU it is not guaranteed.
//! - **Different settings in one batch**: per-sequence settings (processors, lengths, stopping,
//!   sampler) ride along in one decoder call; only the beam width splits sequences into groups
//!   (see `generation::engine`), and the class of work: short documents go before long ones'
//!   chunks ([`priority`]).
//! - **Safe defaults**: binds 127.0.0.1 unless told; `--api-key` guards every route but
//!   `/health` (compared in constant time); body size, inputs per request, new tokens and beams
//!   are capped; `--max-concurrent-requests` in flight answer 429 at once; SIGTERM drains
//!   within `--shutdown-timeout` and the process exits 0.
//! - **Errors** map to statuses in one place ([`errors`]): 422 validation, 413, 429, 401, 503
//!   loading / shutting down, 500 for a model failure (which drops only its batch).

mod errors;
mod metrics;
mod openapi;
mod priority;
mod queue;
mod routes;
mod scheduler;
pub mod schema;
mod service;
mod state;
mod validate;

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Router};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_scalar::{Scalar, Servable};

use crate::{Error, Result, Summarizer, SummaryOptions, SummaryPlan, device};
use errors::{ApiError, ErrorType};
use metrics::Metrics;
use scheduler::SchedulerHandle;
use schema::{DefaultsInfo, Info};
use service::Service;
use state::{AppState, Phase, Ready};

/// The server's limits: what no request can exceed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Limits {
    /// Most padded encoder tokens (sequences × longest input) in the running batch.
    pub max_batch_tokens: usize,
    /// Most sequences in the running batch.
    pub max_batch_size: usize,
    /// Most input tokens encoded at one step boundary (a longer lone pass still joins).
    pub max_prefill_tokens: usize,
    /// Summarisation requests in flight before new ones get 429.
    pub max_concurrent_requests: usize,
    /// Largest request body in bytes (413 above).
    pub max_input_bytes: usize,
    /// Most texts in one `inputs` list.
    pub max_inputs_per_request: usize,
    /// Most tokens one summary may generate.
    pub max_new_tokens_limit: usize,
    /// Widest beam search a request may ask for.
    pub max_num_beams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch_tokens: 16_384,
            max_batch_size: 8,
            max_prefill_tokens: 4096,
            max_concurrent_requests: 64,
            max_input_bytes: 16 * 1024 * 1024,
            max_inputs_per_request: 32,
            max_new_tokens_limit: 1024,
            max_num_beams: 16,
        }
    }
}

/// Everything `precis serve` was told, checked.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The settings a request gets unless it says otherwise.
    pub defaults: SummaryOptions,
    pub limits: Limits,
    /// Required as `Authorization: Bearer <key>` on every route but `/health`.
    pub api_key: Option<String>,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
}

impl ServeOptions {
    /// Checks the limits and defaults on their own, before any model is loaded.
    pub fn validate(&self) -> Result<()> {
        let limits = &self.limits;
        let positive = [
            ("max_batch_tokens", limits.max_batch_tokens),
            ("max_batch_size", limits.max_batch_size),
            ("max_prefill_tokens", limits.max_prefill_tokens),
            ("max_concurrent_requests", limits.max_concurrent_requests),
            ("max_input_bytes", limits.max_input_bytes),
            ("max_inputs_per_request", limits.max_inputs_per_request),
            ("max_new_tokens_limit", limits.max_new_tokens_limit),
            ("max_num_beams", limits.max_num_beams),
        ];
        for (option, value) in positive {
            if value == 0 {
                return Err(Error::InvalidOption {
                    option,
                    value: "0".into(),
                    expected: "must be at least 1".into(),
                });
            }
        }
        if self.api_key.as_deref() == Some("") {
            return Err(Error::InvalidOption {
                option: "api_key",
                value: "''".into(),
                expected: "a non-empty key (leave it out to serve without one)".into(),
            });
        }
        self.defaults.validate()
    }
}

/// Serves on `listener` until `shutdown` resolves. The routes answer at once (`/health` 503)
/// while `load` loads the model on the blocking pool. On shutdown, new work is refused (503),
/// requests in flight get up to `shutdown_timeout` to finish, then the server stops.
pub async fn serve<L, S>(
    listener: TcpListener,
    options: ServeOptions,
    load: L,
    shutdown: S,
) -> Result<()>
where
    L: FnOnce() -> Result<Summarizer> + Send + 'static,
    S: Future<Output = ()> + Send + 'static,
{
    options.validate()?;
    let metrics = Arc::new(Metrics::new());
    let state = Arc::new(AppState::new(options, metrics, openapi::document()));
    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let http = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(async {
            let _ = http_stopped.await;
        })
        .into_future();
    let http = tokio::spawn(http);
    let mut shutdown = std::pin::pin!(shutdown);
    let loaded = tokio::select! {
        loaded = tokio::task::spawn_blocking(load) => Some(loaded),
        () = &mut shutdown => None,
    };
    let result = match loaded {
        Some(Ok(Ok(summarizer))) => match start(&state, summarizer) {
            Ok(()) => {
                shutdown.await;
                drain(&state).await;
                Ok(())
            }
            Err(error) => Err(error),
        },
        Some(Ok(Err(error))) => Err(error),
        Some(Err(join)) => Err(Error::ModelPanic {
            message: format!("loading the model failed: {join}"),
        }),
        None => Ok(()),
    };
    state.set_phase(Phase::Stopped);
    let _ = stop_http.send(());
    // Idle keep-alive connections close at once; a stuck client does not hold the exit.
    let _ = tokio::time::timeout(Duration::from_secs(5), http).await;
    result
}

/// Starts the scheduler over the loaded model and opens for work.
fn start(state: &AppState, summarizer: Summarizer) -> Result<()> {
    let info = info(state, &summarizer)?;
    let summarizer = Arc::new(summarizer);
    let limits = state.options.limits.clone();
    let scheduler = SchedulerHandle::start(summarizer.clone(), limits, state.metrics.clone())
        .map_err(|source| Error::ModelPanic {
            message: format!("cannot start the scheduler thread: {source}"),
        })?;
    let service = Arc::new(Service {
        summarizer,
        scheduler,
    });
    tracing::info!("model '{}' loaded; ready", info.model);
    state.set_phase(Phase::Ready(Arc::new(Ready { service, info })));
    Ok(())
}

/// Refuses new work, waits for requests in flight (up to the shutdown timeout), then stops the
/// scheduler; what is still running then is answered 503.
async fn drain(state: &AppState) {
    let Some(ready) = state.begin_drain() else {
        return;
    };
    let started = Instant::now();
    let in_flight = state.in_flight.count();
    tracing::info!("shutting down: waiting for {in_flight} requests in flight");
    if !state
        .in_flight
        .wait_idle(state.options.shutdown_timeout)
        .await
    {
        tracing::warn!(
            "{} requests still in flight after --shutdown-timeout ({:.0?}); cancelling them",
            state.in_flight.count(),
            state.options.shutdown_timeout
        );
    }
    ready.service.scheduler.stop();
    // Cancelled requests answer 503 as soon as the scheduler drops their passes.
    state.in_flight.wait_idle(Duration::from_secs(5)).await;
    tracing::info!("drained in {:.1?}", started.elapsed());
}

/// What `/info` reports; also checks the defaults against the limits, now that the model's
/// own settings are known.
fn info(state: &AppState, summarizer: &Summarizer) -> Result<Info> {
    let options = &state.options;
    let plan = SummaryPlan::new(summarizer, &options.defaults)?;
    let config = plan.last_pass();
    let limit = options.limits.max_new_tokens_limit;
    let generated = config.effective_max_length().saturating_sub(1);
    if generated > limit {
        return Err(Error::InvalidOption {
            option: "max_new_tokens_limit",
            value: limit.to_string(),
            expected: format!(
                "at least the default summary length, {generated} tokens; give a smaller \
                 --max-new-tokens or a larger limit"
            ),
        });
    }
    let loaded = summarizer.loaded();
    let summary = &options.defaults;
    Ok(Info {
        model: summarizer.name().to_string(),
        architecture: loaded.architecture().to_string(),
        dtype: summarizer.dtype().as_str().to_string(),
        device: device::describe(summarizer.device()),
        quantize: summarizer.quantization().map(|q| q.to_string()),
        window: summary.max_input_tokens.unwrap_or(loaded.defaults.window),
        prefix: loaded.defaults.prefix.clone(),
        defaults: DefaultsInfo {
            max_length: config.max_length,
            max_new_tokens: config.max_new_tokens,
            min_length: config.min_length,
            num_beams: config.num_beams,
            length_penalty: config.length_penalty,
            no_repeat_ngram_size: config.no_repeat_ngram_size,
            early_stopping: early_stopping_name(config.early_stopping).to_string(),
            repetition_penalty: config.repetition_penalty,
            do_sample: config.do_sample,
            temperature: config.sampling.temperature,
            top_k: config.sampling.top_k,
            top_p: config.sampling.top_p,
            seed: config.sampling.seed,
            merge: format!("{:?}", summary.merge).to_lowercase(),
            chunk_tokens: summary.chunk_tokens,
            chunk_overlap: summary.chunk_overlap,
        },
        limits: options.limits.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

fn early_stopping_name(value: crate::generation::EarlyStopping) -> &'static str {
    match value {
        crate::generation::EarlyStopping::Always => "true",
        crate::generation::EarlyStopping::Heuristic => "false",
        crate::generation::EarlyStopping::Never => "never",
    }
}

/// Every route, with auth, metrics, the body limit and tracing around them; the two
/// summarisation routes share one concurrency limit that answers 429 instead of queueing.
fn router(state: Arc<AppState>) -> Router {
    let limits = &state.options.limits;
    let max_concurrent = limits.max_concurrent_requests;
    let slots = Arc::new(Semaphore::new(max_concurrent));
    let summarization = Router::new()
        .route("/", post(routes::hf_summarize))
        .route("/summarize", post(routes::summarize))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |_: BoxError| async move {
                    ApiError::overloaded(max_concurrent)
                }))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(slots)),
        );
    let docs: Router<Arc<AppState>> = Scalar::with_url("/docs", openapi::ApiDoc::openapi()).into();
    Router::new()
        .merge(summarization)
        .route("/health", get(routes::health))
        .route("/info", get(routes::info))
        .route("/metrics", get(routes::metrics))
        .route("/api-doc/openapi.json", get(routes::openapi))
        .merge(docs)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_input_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Every route but `/health` needs the API key, when there is one.
async fn authorize(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    if request.uri().path() != "/health" && !state.authorized(header) {
        return ApiError::unauthorized().into_response();
    }
    next.run(request).await
}

/// Counts every answer by route and status, its duration, and errors by type.
async fn record_metrics(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .record_request(&route, response.status().as_u16(), seconds);
    if let Some(ErrorType(error_type)) = response.extensions().get::<ErrorType>() {
        state.metrics.record_error(error_type);
    }
    response
}
