//! Hand-written CPU kernels for the decoder step, where candle's general kernels waste time.
//!
//! Each takes plain slices and has a plain-loop fallback, so the model code stays tensor math
//! and chooses a kernel only through small helpers like [`linear::Linear`](super::linear).

pub mod attention;
pub mod skinny;
