//! The corpus reader: JSONL (plain, gzip, zstd) straight into Arrow-layout buffers.
//!
//! Each line is parsed once (serde_json, values borrowed as raw slices); the text field is
//! unescaped directly into one contiguous byte buffer with `n + 1` offsets, which the
//! Python layer wraps as a pyarrow `large_string` array. Each document keeps its line number
//! and its byte range in the (decompressed) file, so writers can copy original lines.
//! Error messages are the ones the Python reader has always given (`file:line: problem`).

pub mod jsonl;

pub use jsonl::{parse_chunk, read_jsonl, Batch, Compression, Options, Utf8Policy};
