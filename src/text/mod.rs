//! Text helpers shared by every capability: corpus views over Arrow-style buffers and
//! UTF-8 utilities.

pub mod corpus;
pub mod stats;
pub mod utf8;

pub use corpus::Docs;
