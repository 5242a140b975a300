//! Prometheus metrics (OpenMetrics text) through `prometheus-client`: one registry per server,
//! written to by the HTTP layer and the scheduler thread alike (every metric is atomic).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub error_type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    pub phase: String,
}

/// What the scheduler thread is busy with.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    /// The model's encoder (and the decoder's cross-attention keys and values) on admitted
    /// passes.
    Encode,
    /// The rest of admitting passes: padding them and joining them to the running batch.
    Join,
    /// Decoder steps, filtering out what finished, answering it.
    Step,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Self::Encode => "encode",
            Self::Join => "join",
            Self::Step => "step",
        }
    }
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RouteLabel, Histogram>,
    pub errors: Family<ErrorLabel, Counter>,
    /// Time a pass waited in the queue before it joined the running batch.
    pub queue_seconds: Histogram,
    /// Passes waiting to join the running batch.
    pub queue_length: Gauge,
    /// Sequences in the running batch.
    pub batch_sequences: Gauge,
    /// Decoder rows in the running batch (sequences × beams).
    pub batch_rows: Gauge,
    pub input_tokens: Counter,
    pub generated_tokens: Counter,
    /// Decoder steps run, and the rows they decoded: their ratio is the mean batch occupancy.
    pub decoder_steps: Counter,
    pub decoder_rows: Counter,
    /// Passes dropped because their client went away.
    pub cancelled: Counter,
    /// Times the running decoder state was copied for sequences joining or leaving.
    pub state_copies: Counter,
    /// Seconds the scheduler spent in each [`Phase`]: where a saturated server's time goes.
    scheduler_seconds: Family<PhaseLabel, Counter<f64, AtomicU64>>,
}

/// 1 ms to ~9 min, doubling.
fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 20)
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("precis");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let request_seconds = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(seconds_buckets())
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response, by route",
            request_seconds.clone(),
        );
        let errors = Family::<ErrorLabel, Counter>::default();
        registry.register("errors", "Error answers by type", errors.clone());
        let queue_seconds = Histogram::new(seconds_buckets());
        registry.register(
            "queue_time_seconds",
            "Time a generation pass waited before joining the running batch",
            queue_seconds.clone(),
        );
        let queue_length = Gauge::default();
        registry.register(
            "queue_length",
            "Generation passes waiting to join the running batch",
            queue_length.clone(),
        );
        let batch_sequences = Gauge::default();
        registry.register(
            "batch_size",
            "Sequences in the running decoder batch",
            batch_sequences.clone(),
        );
        let batch_rows = Gauge::default();
        registry.register(
            "batch_rows",
            "Decoder rows in the running batch (sequences times beams)",
            batch_rows.clone(),
        );
        let input_tokens = Counter::default();
        registry.register(
            "input_tokens",
            "Encoder tokens of the passes admitted",
            input_tokens.clone(),
        );
        let generated_tokens = Counter::default();
        registry.register(
            "generated_tokens",
            "Tokens generated, over every pass",
            generated_tokens.clone(),
        );
        let decoder_steps = Counter::default();
        registry.register(
            "decoder_steps",
            "Decoder steps run by the scheduler",
            decoder_steps.clone(),
        );
        let decoder_rows = Counter::default();
        registry.register(
            "decoder_rows",
            "Decoder rows over every step (divide by decoder_steps for the mean batch)",
            decoder_rows.clone(),
        );
        let cancelled = Counter::default();
        registry.register(
            "cancelled_passes",
            "Generation passes dropped because their client went away",
            cancelled.clone(),
        );
        let state_copies = Counter::default();
        registry.register(
            "decoder_state_copies",
            "Times the running decoder state was copied for sequences joining or leaving \
             (sequences taking the places of finished ones in place do not count)",
            state_copies.clone(),
        );
        let scheduler_seconds = Family::<PhaseLabel, Counter<f64, AtomicU64>>::default();
        registry.register(
            "scheduler_busy_seconds",
            "Seconds the scheduler spent encoding admitted passes, joining them to the running \
             batch, and stepping it (decoder calls, filtering, answering), by phase",
            scheduler_seconds.clone(),
        );
        Self {
            registry,
            scheduler_seconds,
            state_copies,
            decoder_steps,
            decoder_rows,
            cancelled,
            requests,
            request_seconds,
            errors,
            queue_seconds,
            queue_length,
            batch_sequences,
            batch_rows,
            input_tokens,
            generated_tokens,
        }
    }

    /// One answered request.
    pub fn record_request(&self, route: &str, status: u16, seconds: f64) {
        let route = route.to_string();
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabel { route })
            .observe(seconds);
    }

    pub fn record_error(&self, error_type: &str) {
        self.errors
            .get_or_create(&ErrorLabel {
                error_type: error_type.to_string(),
            })
            .inc();
    }

    /// `spent` more of the scheduler's time in `phase`.
    pub fn record_busy(&self, phase: Phase, spent: Duration) {
        self.scheduler_seconds
            .get_or_create(&PhaseLabel {
                phase: phase.as_str().to_string(),
            })
            .inc_by(spent.as_secs_f64());
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
