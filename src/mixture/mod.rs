//! BPE mixture inference (Hayase et al. 2024, "Data Mixture Inference: What do BPE
//! Tokenizers Reveal about their Training Data?").
//!
//! A BPE tokenizer's `t`-th merge was the most frequent pair of its training data after merges
//! `0..t`. Given sample text of several categories, this module
//!
//! 1. counts each category's pre-tokenized words with the tokenizer's own pre-tokenizer
//!    ([`count_docs`], the trainer's [`WordCounter`]),
//! 2. replays the tokenizer's merge list on every category's word table, recording only the
//!    pair counts that change at each step ([`replay`]), and
//! 3. serves the violated-constraint oracle of the linear program whose solution is the
//!    mixture ([`oracle::Oracle`]). The LP itself is solved by HiGHS from the Python layer.

pub mod oracle;
pub mod replay;

use rayon::prelude::*;

use crate::bpe::trainer::WordCounter;
use crate::bpe::{Tokenizer, Vocab};
use crate::text::corpus::OwnedDocs;
use crate::text::Docs;
use crate::{Error, Result};

pub use oracle::{Oracle, Rows, StepTree, StretchRows, SCALE};
pub use replay::{pair_key, replay, ByteIds, PairKey, Trace};

/// Initial token of every byte in `vocab`.
pub fn byte_ids(vocab: &Vocab) -> ByteIds {
    let mut ids = [None; 256];
    for (b, slot) in ids.iter_mut().enumerate() {
        *slot = vocab.token_id(&[b as u8]);
    }
    ids
}

/// Count the words of a batch of documents as `tok` pre-tokenizes them (after its NFC
/// normalisation, when it has one). Special-token text counts as ordinary text.
pub fn count_docs(counter: &mut WordCounter, docs: &Docs<'_>, tok: &Tokenizer, first_doc: u64) -> Result<()> {
    if tok.normalizes_nfc() {
        use unicode_normalization::UnicodeNormalization;
        let mut owned = OwnedDocs::new();
        for (i, d) in docs.iter().enumerate() {
            let text = std::str::from_utf8(d).map_err(|e| {
                Error::invalid_data(format!("document {}", first_doc + i as u64), format!("invalid UTF-8 at byte {}", e.valid_up_to()))
            })?;
            let s: String = text.nfc().collect();
            owned.push(s.as_bytes());
        }
        return counter.add_docs(&owned.view(), tok.pretokenizer(), first_doc);
    }
    counter.add_docs(docs, tok.pretokenizer(), first_doc)
}

/// What one category's replay saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategorySummary {
    /// Distinct words.
    pub words: usize,
    /// Pair count before merge 0 (the normaliser).
    pub total_pairs: u64,
    /// Merges (of the first `T`) whose pair occurs in this category's sample.
    pub merges_seen: usize,
    /// Stored pair-count changes.
    pub changes: usize,
}

/// The first `num_merges` merges of `tok` as `(left, right, merged)`.
pub fn merge_list(tok: &Tokenizer, num_merges: Option<usize>) -> Result<Vec<(u32, u32, u32)>> {
    let mut merges = tok.vocab().merges();
    if let Some(t) = num_merges {
        if t == 0 {
            return Err(Error::invalid_argument("num_merges must be at least 1"));
        }
        if t > merges.len() {
            return Err(Error::invalid_argument(format!(
                "num_merges={t} is larger than the tokenizer's merge list ({} merges)",
                merges.len()
            )));
        }
        merges.truncate(t);
    }
    if merges.is_empty() {
        return Err(Error::invalid_argument("the tokenizer has no merges"));
    }
    Ok(merges)
}

/// Replay `merges` on every category's word table (in parallel over categories) and build
/// the oracle. `progress(merges done, summed over categories)` may stop the work by
/// returning `false`.
pub fn build(
    tables: &[WordCounter],
    byte_ids: &ByteIds,
    merges: &[(u32, u32, u32)],
    progress: &(dyn Fn(usize) -> bool + Sync),
) -> Result<(Oracle, Vec<CategorySummary>)> {
    for (i, t) in tables.iter().enumerate() {
        if t.is_empty() {
            return Err(Error::invalid_argument(format!("category {i} has no text (no word was counted)")));
        }
    }
    let traces: Vec<Trace> = tables
        .par_iter()
        .with_max_len(1)
        .map(|table| {
            let words = table.to_sorted(None);
            let mut last = 0usize;
            let mut report = |t: usize| {
                let ok = progress(t - last);
                last = t;
                ok
            };
            let tr = replay(&words, byte_ids, merges, Some(&mut report))?;
            progress(merges.len() - last);
            Ok(tr)
        })
        .collect::<Result<_>>()?;
    let summaries = traces
        .iter()
        .map(|t| CategorySummary {
            words: t.words,
            total_pairs: t.total_pairs,
            merges_seen: t.merge_counts.iter().filter(|&&c| c > 0).count(),
            changes: t.pairs.len(),
        })
        .collect();
    let keys: Vec<PairKey> = merges.iter().map(|&(a, b, _)| pair_key(a, b)).collect();
    let oracle = Oracle::new(&traces, &keys)?;
    Ok((oracle, summaries))
}
