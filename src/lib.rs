//! precis: summarise long articles with pretrained seq2seq models on CPU or GPU.

pub mod catalogue;
pub mod defaults;
pub mod device;
pub mod error;
pub mod loading;
pub mod models;

pub use error::{Error, Result};
