//! gristmill core: pure Rust, free of PyO3. The Python bindings live in `py/` behind the
//! `python` feature.

pub mod bpe;
pub mod corpus;
pub mod dedup_docs;
pub mod error;
pub mod interrupt;
pub mod mem;
pub mod minhash;
pub mod mixture;
pub(crate) mod par;
pub mod suffix;
pub mod text;

pub use error::{Error, Result};

#[cfg(feature = "python")]
mod py;
