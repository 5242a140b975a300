//! precis: summarise long articles with pretrained seq2seq models on CPU or GPU.

pub mod batch;
pub mod error;
pub mod generation;
pub mod merge;
pub mod models;
pub mod text;

pub use error::{Error, Result};
