//! Byte-level BPE: pre-tokenizers, vocabularies with merge ranks, the piece encoder, the
//! decoder and the full tokenizer with tiktoken-compatible special-token handling.
//!
//! The pieces are reusable on their own (the BPE trainer, mixture inference and token-mode
//! suffix arrays build on them):
//! - [`Pretokenizer`]: text → pieces (cl100k, o200k, r50k/gpt2 hand-written; any regex).
//! - [`Vocab`]: token bytes ↔ ids and the merge rule (tiktoken ranks or an ordered merge list).
//! - [`Vocab::encode_piece`]: BPE of one piece, `O(n log n)` worst case.
//! - [`Tokenizer`]: all of it plus special tokens, batches and decoding.

pub mod encode;
pub mod pretok;
pub mod tokenizer;
pub mod trainer;
pub mod unicode;
pub mod vocab;

pub use pretok::Pretokenizer;
pub use tokenizer::{SpecialSet, Tokenizer};
pub use vocab::Vocab;
