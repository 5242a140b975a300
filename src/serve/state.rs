//! What every handler shares: the server's phase (loading, ready, draining, stopped), its
//! options and metrics, and the count of summarisation requests in flight that a shutdown waits
//! for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use super::ServeOptions;
use super::errors::ApiError;
use super::metrics::Metrics;
use super::schema::Info;
use super::service::Service;

/// The service once the model is loaded, and what `/info` says about it.
#[derive(Debug)]
pub struct Ready {
    pub service: Arc<Service>,
    pub info: Info,
}

#[derive(Debug, Clone)]
pub enum Phase {
    Loading,
    Ready(Arc<Ready>),
    /// Shutting down: in-flight requests finish, new ones get 503.
    Draining(Arc<Ready>),
    Stopped,
}

#[derive(Debug)]
pub struct AppState {
    phase: RwLock<Phase>,
    pub options: ServeOptions,
    pub metrics: Arc<Metrics>,
    pub in_flight: InFlight,
    /// The OpenAPI document, rendered once.
    pub openapi: String,
    /// SHA-256 of the API key: comparing digests takes the same time whatever the key's length.
    api_key: Option<[u8; 32]>,
}

impl AppState {
    pub fn new(options: ServeOptions, metrics: Arc<Metrics>, openapi: String) -> Self {
        let api_key = options.api_key.as_deref().map(digest);
        Self {
            phase: RwLock::new(Phase::Loading),
            options,
            metrics,
            in_flight: InFlight::default(),
            openapi,
            api_key,
        }
    }

    pub fn phase(&self) -> Phase {
        // A poisoned lock only means a writer panicked mid-assignment of a plain enum.
        self.phase.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_phase(&self, phase: Phase) {
        *self.phase.write().unwrap_or_else(|e| e.into_inner()) = phase;
    }

    /// Stops taking new work; returns whether a service was running.
    pub fn begin_drain(&self) -> Option<Arc<Ready>> {
        let mut phase = self.phase.write().unwrap_or_else(|e| e.into_inner());
        match &*phase {
            Phase::Ready(ready) | Phase::Draining(ready) => {
                let ready = ready.clone();
                *phase = Phase::Draining(ready.clone());
                Some(ready)
            }
            Phase::Loading | Phase::Stopped => {
                *phase = Phase::Stopped;
                None
            }
        }
    }

    /// The service, or the 503 that says why there is none.
    pub fn ready(&self) -> Result<Arc<Service>, ApiError> {
        match self.phase() {
            Phase::Ready(ready) => Ok(ready.service.clone()),
            Phase::Loading => Err(ApiError::loading()),
            Phase::Draining(_) | Phase::Stopped => Err(ApiError::shutting_down()),
        }
    }

    /// Whether `authorization` (the header's value) carries the API key; always true without
    /// one. Compared in constant time.
    pub fn authorized(&self, authorization: Option<&[u8]>) -> bool {
        let Some(expected) = &self.api_key else {
            return true;
        };
        let Some(token) = authorization.and_then(|value| value.strip_prefix(b"Bearer ")) else {
            return false;
        };
        let given = digest_bytes(token);
        bool::from(given.ct_eq(expected))
    }
}

fn digest(key: &str) -> [u8; 32] {
    digest_bytes(key.as_bytes())
}

fn digest_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Summarisation requests in flight.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    changed: Notify,
}

/// Counts one request in flight until dropped (the response is sent or the client left).
#[derive(Debug)]
pub struct InFlightGuard<'a>(&'a InFlight);

impl InFlight {
    pub fn enter(&self) -> InFlightGuard<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self)
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no request is in flight, or `timeout`; `true` when none is left.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let idle = async {
            loop {
                let changed = self.changed.notified();
                if self.count() == 0 {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, idle).await.is_ok()
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}
