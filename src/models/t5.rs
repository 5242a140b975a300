//! T5 / FLAN-T5 (placeholder, being written).
