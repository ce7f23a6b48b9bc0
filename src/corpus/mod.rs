//! The corpus reader: JSONL (plain, gzip, zstd) straight into Arrow-layout buffers.
//!
//! Each line is read once: a fast scan (`scan.rs`) checks it is a JSON object as strictly as
//! serde_json, finds the wanted top-level fields and copies the text field, unescaped, into one
//! contiguous byte buffer with `n + 1` offsets, which the Python layer wraps as a pyarrow
//! `large_string` array. Lines the scan does not settle (errors, rare escapes) go through
//! serde_json, so errors and edge cases are serde_json's. Each document keeps its line number
//! and its byte range in the (decompressed) file, so writers can copy original lines. Error
//! messages are the ones the Python reader has always given (`file:line: problem`).

pub mod jsonl;
mod scan;

pub use jsonl::{kind, parse_chunk, parse_chunk_reference, read_jsonl, Batch, Compression, Options, Utf8Policy};
