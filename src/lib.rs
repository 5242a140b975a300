//! precis: summarise long articles with pretrained seq2seq models on CPU or GPU.

pub mod catalogue;
pub mod defaults;
pub mod device;
pub mod error;
pub mod generation;
pub mod loading;
pub mod merge;
pub mod models;
pub mod text;

pub use error::{Error, Result};
