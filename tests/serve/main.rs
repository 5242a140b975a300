//! `precis serve` end to end, over HTTP on 127.0.0.1 with a real client, on the tiny fixture
//! models: every route and error status, token-identity with `precis summarize` under
//! concurrent mixed load, cancellation on disconnect, auth, limits, SIGTERM draining and model
//! failures.

#[path = "../common/mod.rs"]
mod common;

mod batching;
mod lifecycle;
mod routes;
mod scripted;
mod support;
mod validation;
