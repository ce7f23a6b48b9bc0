//! The one error type of the core. Every fallible core function returns `Result<T>`;
//! `src/py/` turns it into a Python exception in exactly one place.

use std::fmt;

/// Everything that can go wrong inside the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument is out of range or inconsistent with another.
    #[error("{0}")]
    InvalidArgument(String),
    /// Input data (a document, a vocabulary file, an index file) is malformed.
    #[error("{context}: {message}")]
    InvalidData { context: String, message: String },
    /// A token id or token bytes that the vocabulary does not know.
    #[error("{0}")]
    UnknownToken(String),
    /// The caller raised the [`crate::interrupt::Interrupt`] flag (Ctrl-C): the computation
    /// stopped early and produced nothing.
    #[error("interrupted")]
    Interrupted,
    /// The computation does not fit in the available memory (estimated up front, or a large
    /// allocation failed); nothing was produced.
    #[error("{0}")]
    OutOfMemory(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn invalid_argument(msg: impl fmt::Display) -> Self {
        Error::InvalidArgument(msg.to_string())
    }
    pub fn invalid_data(context: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::InvalidData { context: context.to_string(), message: message.to_string() }
    }
    pub fn out_of_memory(msg: impl fmt::Display) -> Self {
        Error::OutOfMemory(msg.to_string())
    }
    pub fn io(path: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io { path: path.to_string(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
