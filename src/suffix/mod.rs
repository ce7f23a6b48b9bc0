//! Exact-substring deduplication with suffix arrays (Lee et al. 2021), done so that no
//! span ever crosses a document boundary or cuts a UTF-8 character.
//!
//! * [`sa`] — suffix array + PLCP through libsais (32-bit indices below 2^31 symbols).
//! * [`repeats`] — the repeat finder: classes of equal `L`-windows, `keep none|first`
//!   marking, contamination marking, merged per-document spans.
//! * [`index`] — the memory-mapped on-disk suffix index with `count` / `locate`.
//!
//! Documents are concatenated **without separators**; an offsets table records the
//! boundaries. A suffix whose `L`-window leaves its own document is not an occurrence, but
//! it still sits inside its LCP run (it shares the first `L` symbols with its neighbours),
//! so skipping it never splits a class and never hides a pair.

pub mod external;
pub mod index;
pub mod repeats;
pub mod sa;

pub use external::{
    find_repeats_external, find_repeats_in_parts, find_repeats_limited, find_repeats_symbols_limited, find_repeats_tokenized_external,
    find_repeats_tokens_external, LimitedOptions,
};
pub use index::{corpus_checksum, IndexInfo, SuffixIndex};
pub use repeats::{
    contamination, contamination_tokenized, find_repeats, find_repeats_tokenized, find_repeats_tokens, token_spans_to_bytes, trim_docs, Keep, RepeatStats, Span,
};
