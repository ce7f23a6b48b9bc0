//! Byte-level BPE training.
//!
//! Two phases:
//!
//! 1. **Word counting** ([`WordCounter`]): every document is split into pieces by a
//!    pre-tokenizer and the byte string of every piece ("word") is counted with a `u64`.
//!    Batches are counted in parallel (one hash map per rayon task, borrowing the batch's
//!    bytes, then folded into the table in task order); the table only ever holds distinct
//!    words, so memory is bounded by the word-type table, not the corpus. Counts are sums, so
//!    the table is the same at any thread count and for any batching of the corpus.
//! 2. **Merging** ([`train`]): the words become sequences of token ids; pair counts (`i64`
//!    sums of word counts over overlapping windows) and, per pair, the words it occurs in
//!    are built once; a max-heap of `(count, pair)` with lazy invalidation picks the next
//!    merge, and only the words containing the merged pair are rewritten, updating the
//!    counts and pushing fresh heap entries for the pairs the merge created.
//!
//! # Tie-breaking (identical to Hugging Face `tokenizers`' `BpeTrainer`)
//!
//! The next merge is the pair with the highest count; among equal counts, the pair
//! `(left id, right id)` that is smallest lexicographically. Ids are assigned exactly as
//! `BpeTrainer` assigns them with a `ByteLevel` pre-tokenizer and
//! `initial_alphabet=ByteLevel.alphabet()`:
//! - ids `0..256` are the 256 single bytes in the order of the code points of their GPT-2
//!   byte-level characters (`!`=0x21 first, … `ÿ`, then `Ā` = byte 0x00, `ā` = 0x01, …),
//! - id `256 + k` is the token created by the `k`-th merge that created a new token.
//!
//! HF numbers special tokens first (ids `0..n_special`), which shifts every id by the same
//! amount and so leaves every comparison unchanged; here special tokens are **appended**
//! after the merged tokens (`vocab_size - n_special ..`, like tiktoken's `<|endoftext|>`).
//!
//! A merge whose concatenation equals an existing token (`a`+`bc` after `ab`+`c`) reuses
//! that token's id and adds no vocabulary entry, as in HF. If such a merge re-creates a pair
//! that was already merged, that pair is merged again later and appears twice in the raw
//! merge list; like HF's model (a map from pair to rank), the output keeps only its last
//! occurrence.
//!
//! Training stops when the vocabulary (256 bytes + merged tokens + special tokens) reaches
//! `vocab_size`, when no pair is left, or when the best count is below `min_frequency`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::text::corpus::OwnedDocs;
use crate::text::Docs;
use crate::{Error, Result};

/// Splits text into pieces, calling `f(start, end)` with byte offsets for each piece.
pub trait PieceSplitter: Sync {
    fn split_pieces(&self, text: &str, f: &mut dyn FnMut(usize, usize)) -> Result<()>;
}

/// Adapts a closure to [`PieceSplitter`].
pub struct FnSplitter<F>(pub F);

impl<F> PieceSplitter for FnSplitter<F>
where
    F: Fn(&str, &mut dyn FnMut(usize, usize)) -> Result<()> + Sync,
{
    fn split_pieces(&self, text: &str, f: &mut dyn FnMut(usize, usize)) -> Result<()> {
        (self.0)(text, f)
    }
}

impl PieceSplitter for super::Pretokenizer {
    fn split_pieces(&self, text: &str, f: &mut dyn FnMut(usize, usize)) -> Result<()> {
        self.split(text, f)
    }
}

/// Bytes of text handed to one parallel counting task (documents are grouped up to this).
const TASK_BYTES: usize = 1 << 20;

/// One task's piece counts (pieces borrowed from the corpus) and its number of pieces.
type PieceCounts<'a> = (FxHashMap<&'a [u8], u64>, u64);

/// The word-type table: distinct piece byte strings with their counts.
#[derive(Default, Debug, Clone)]
pub struct WordCounter {
    words: FxHashMap<Box<[u8]>, u64>,
    docs: u64,
    bytes: u64,
    pieces: u64,
}

impl WordCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of distinct words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Documents, bytes and pieces counted so far.
    pub fn totals(&self) -> (u64, u64, u64) {
        (self.docs, self.bytes, self.pieces)
    }

    /// Add `count` occurrences of one word.
    pub fn add_word(&mut self, word: &[u8], count: u64) {
        if word.is_empty() || count == 0 {
            return;
        }
        if let Some(c) = self.words.get_mut(word) {
            *c += count;
        } else {
            self.words.insert(word.into(), count);
        }
    }

    /// Count the pieces of a batch of UTF-8 documents. Document `i` of the batch is
    /// reported as `first_doc + i` in errors.
    pub fn add_docs<S: PieceSplitter + ?Sized>(&mut self, docs: &Docs<'_>, splitter: &S, first_doc: u64) -> Result<()> {
        let n = docs.len();
        if n == 0 {
            return Ok(());
        }
        // Group documents into tasks of ~TASK_BYTES.
        let mut bounds = vec![0usize];
        let mut acc = 0usize;
        for i in 0..n {
            acc += docs.range(i).len();
            if acc >= TASK_BYTES {
                bounds.push(i + 1);
                acc = 0;
            }
        }
        if *bounds.last().unwrap_or(&0) != n {
            bounds.push(n);
        }
        let tasks: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        let count_task = |&(lo, hi): &(usize, usize)| -> Result<(FxHashMap<&[u8], u64>, u64)> {
            let mut local: FxHashMap<&[u8], u64> = FxHashMap::default();
            let mut pieces = 0u64;
            for i in lo..hi {
                let bytes = docs.get(i);
                let text = std::str::from_utf8(bytes).map_err(|e| {
                    Error::invalid_data(format!("document {}", first_doc + i as u64), format!("invalid UTF-8 at byte {}", e.valid_up_to()))
                })?;
                splitter
                    .split_pieces(text, &mut |s, e| {
                        if e > s {
                            pieces += 1;
                            *local.entry(&bytes[s..e]).or_insert(0) += 1;
                        }
                    })
                    .map_err(|e| match e {
                        Error::InvalidData { context, message } => {
                            Error::invalid_data(format!("document {}: {context}", first_doc + i as u64), message)
                        }
                        other => other,
                    })?;
            }
            Ok((local, pieces))
        };
        let locals: Vec<Result<PieceCounts<'_>>> = if tasks.len() == 1 {
            vec![count_task(&tasks[0])]
        } else {
            tasks.par_iter().with_max_len(1).map(count_task).collect()
        };
        for r in locals {
            let (local, pieces) = r?;
            self.pieces += pieces;
            for (w, c) in local {
                self.add_word(w, c);
            }
        }
        self.docs += n as u64;
        self.bytes += docs.total_bytes() as u64;
        Ok(())
    }

    /// Merge another table into this one.
    pub fn merge(&mut self, other: WordCounter) {
        for (w, c) in other.words {
            *self.words.entry(w).or_insert(0) += c;
        }
        self.docs += other.docs;
        self.bytes += other.bytes;
        self.pieces += other.pieces;
    }

    /// The table sorted by word bytes. With `max_words`, only the `max_words` most frequent
    /// words are kept (ties: smaller bytes first).
    pub fn to_sorted(&self, max_words: Option<usize>) -> Vec<(&[u8], u64)> {
        let mut v: Vec<(&[u8], u64)> = self.words.iter().map(|(w, &c)| (&w[..], c)).collect();
        if let Some(m) = max_words {
            if v.len() > m {
                v.par_sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
                v.truncate(m);
            }
        }
        v.par_sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Counts of the given word, if present.
    pub fn get(&self, word: &[u8]) -> Option<u64> {
        self.words.get(word).copied()
    }
}

/// Training options.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Final vocabulary size including the 256 bytes and the special tokens.
    pub vocab_size: usize,
    /// Stop when the best pair occurs fewer times than this.
    pub min_frequency: u64,
    /// Special tokens, appended after the merged tokens.
    pub special_tokens: Vec<String>,
}

/// A trained vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trained {
    /// Token bytes by id (`0..256` single bytes in byte-level order, then merged tokens).
    pub tokens: Vec<Vec<u8>>,
    /// Merges in priority order as `(left id, right id)`; `tokens[l] + tokens[r]` is a token.
    pub merges: Vec<(u32, u32)>,
    /// Special tokens and their ids (after the last merged token).
    pub special_tokens: Vec<(String, u32)>,
}

impl Trained {
    /// `(token bytes, id)` for every ordinary token.
    pub fn token_ids(&self) -> Vec<(Vec<u8>, u32)> {
        self.tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect()
    }

    /// Merges as byte pairs.
    pub fn merge_bytes(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.merges.iter().map(|&(a, b)| (self.tokens[a as usize].clone(), self.tokens[b as usize].clone())).collect()
    }
}

/// The GPT-2 byte → character map (`bytes_to_unicode`): printable Latin-1 bytes map to
/// themselves, the other 68 to U+0100.. in byte order.
pub fn byte_level_char(b: u8) -> char {
    let printable = |x: u8| (b'!'..=b'~').contains(&x) || (0xA1..=0xAC).contains(&x) || (0xAE..=0xFF).contains(&x);
    if printable(b) {
        return b as char;
    }
    let k = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + k).unwrap_or('\u{100}')
}

/// The 256 bytes in the order HF's trainer numbers them (code point of the byte-level char).
pub fn byte_order() -> [u8; 256] {
    let mut bytes: Vec<u8> = (0..=255u8).collect();
    bytes.sort_by_key(|&b| byte_level_char(b) as u32);
    let mut out = [0u8; 256];
    out.copy_from_slice(&bytes);
    out
}

#[inline]
fn key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

#[inline]
fn unkey(k: u64) -> (u32, u32) {
    ((k >> 32) as u32, k as u32)
}

struct PairInfo {
    count: i64,
    /// Words that contained the pair at some point (may hold stale or repeated entries).
    words: Vec<u32>,
}

/// Progress callback: `(merges done, merges wanted)`; returning `false` stops training with
/// an error.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize) -> bool;

/// Word counts at or above this many pair-position entries are rewritten in parallel.
const PAR_WORDS: usize = 2048;

/// Train on a word table (`(word bytes, count)`, any order; duplicates are summed).
pub fn train<W: AsRef<[u8]>>(words: &[(W, u64)], config: &TrainConfig, progress: Option<Progress<'_>>) -> Result<Trained> {
    train_with(words, config, progress, PAR_WORDS)
}

/// [`train`] with the parallel-rewrite threshold as a parameter (tests force both paths).
fn train_with<W: AsRef<[u8]>>(
    words: &[(W, u64)],
    config: &TrainConfig,
    mut progress: Option<Progress<'_>>,
    par_words: usize,
) -> Result<Trained> {
    let n_special = config.special_tokens.len();
    {
        let mut seen = std::collections::HashSet::new();
        for s in &config.special_tokens {
            if s.is_empty() {
                return Err(Error::invalid_argument("special tokens must not be empty"));
            }
            if !seen.insert(s) {
                return Err(Error::invalid_argument(format!("special token {s:?} is given twice")));
            }
        }
    }
    if config.vocab_size < 256 + n_special {
        return Err(Error::invalid_argument(format!(
            "vocab_size {} is too small: the byte alphabet needs 256 tokens{}, so vocab_size must be at least {}",
            config.vocab_size,
            match n_special {
                0 => String::new(),
                1 => " and there is 1 special token".to_string(),
                n => format!(" and there are {n} special tokens"),
            },
            256 + n_special
        )));
    }
    if words.is_empty() {
        return Err(Error::invalid_argument("the corpus is empty: no words to train on"));
    }
    let target = config.vocab_size - n_special;
    let order = byte_order();
    let mut byte_id = [0u32; 256];
    for (i, &b) in order.iter().enumerate() {
        byte_id[b as usize] = i as u32;
    }
    let mut tokens: Vec<Vec<u8>> = order.iter().map(|&b| vec![b]).collect();
    let mut token_index: FxHashMap<Vec<u8>, u32> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();

    // Flat word storage.
    let total_syms: usize = words.iter().map(|(w, _)| w.as_ref().len()).sum();
    let mut syms: Vec<u32> = Vec::with_capacity(total_syms);
    let mut starts: Vec<usize> = Vec::with_capacity(words.len());
    let mut lens: Vec<u32> = Vec::with_capacity(words.len());
    let mut counts: Vec<i64> = Vec::with_capacity(words.len());
    for (w, c) in words {
        let w = w.as_ref();
        if w.len() > u32::MAX as usize {
            return Err(Error::invalid_argument("a word is longer than 4 GiB"));
        }
        starts.push(syms.len());
        lens.push(w.len() as u32);
        counts.push(i64::try_from(*c).map_err(|_| Error::invalid_argument("word count overflows i64"))?);
        syms.extend(w.iter().map(|&b| byte_id[b as usize]));
    }
    if words.len() > u32::MAX as usize {
        return Err(Error::invalid_argument("more than 2^32 distinct words"));
    }

    // Initial pair counts and positions (parallel over word chunks, merged in chunk order).
    let n_words = words.len();
    let chunk = (n_words / (rayon::current_num_threads() * 4)).max(4096);
    let chunks: Vec<(usize, usize)> = (0..n_words).step_by(chunk).map(|s| (s, (s + chunk).min(n_words))).collect();
    let partial: Vec<FxHashMap<u64, PairInfo>> = chunks
        .par_iter()
        .map(|&(lo, hi)| {
            let mut m: FxHashMap<u64, PairInfo> = FxHashMap::default();
            for w in lo..hi {
                let s = &syms[starts[w]..starts[w] + lens[w] as usize];
                for win in s.windows(2) {
                    let e = m.entry(key(win[0], win[1])).or_insert_with(|| PairInfo { count: 0, words: Vec::new() });
                    e.count += counts[w];
                    if e.words.last() != Some(&(w as u32)) {
                        e.words.push(w as u32);
                    }
                }
            }
            m
        })
        .collect();
    let mut pairs: FxHashMap<u64, PairInfo> = FxHashMap::default();
    for m in partial {
        if pairs.is_empty() {
            pairs = m;
            continue;
        }
        for (k, v) in m {
            match pairs.get_mut(&k) {
                Some(p) => {
                    p.count += v.count;
                    p.words.extend_from_slice(&v.words);
                }
                None => {
                    pairs.insert(k, v);
                }
            }
        }
    }
    let mut heap: BinaryHeap<(i64, Reverse<u64>)> =
        pairs.iter().filter(|(_, p)| p.count > 0).map(|(&k, p)| (p.count, Reverse(k))).collect();

    let min_freq = config.min_frequency.min(i64::MAX as u64) as i64;
    let mut merges: Vec<(u32, u32)> = Vec::new();
    let wanted = target - 256;
    // Scratch: (pair key, delta, word) produced by rewriting words.
    let mut changes: Vec<(u64, i64, u32)> = Vec::new();
    let mut touched: Vec<u64> = Vec::new();

    while tokens.len() < target {
        let Some((c, Reverse(k))) = heap.pop() else { break };
        let current = pairs.get(&k).map_or(0, |p| p.count);
        if current != c {
            if current > 0 {
                heap.push((current, Reverse(k)));
            }
            continue;
        }
        if c < 1 || c < min_freq {
            break;
        }
        let (a, b) = unkey(k);
        let mut merged = tokens[a as usize].clone();
        merged.extend_from_slice(&tokens[b as usize]);
        let new_id = match token_index.get(&merged) {
            Some(&id) => id,
            None => {
                let id = tokens.len() as u32;
                token_index.insert(merged.clone(), id);
                tokens.push(merged);
                id
            }
        };
        merges.push((a, b));

        let Some(info) = pairs.remove(&k) else { continue };
        let mut wl = info.words;
        wl.sort_unstable();
        wl.dedup();

        changes.clear();
        if wl.len() >= par_words {
            // Rewrite words in parallel: each word is a disjoint slice of `syms`.
            let syms_ptr = SymsPtr(syms.as_mut_ptr());
            let per: Vec<Vec<(u64, i64, u32)>> = wl
                .par_chunks(wl.len().div_ceil(rayon::current_num_threads() * 4).max(256))
                .map(|ws| {
                    let mut out = Vec::new();
                    for &w in ws {
                        let w = w as usize;
                        let len = lens[w] as usize;
                        // SAFETY: word indices in `wl` are distinct (sorted + deduped) and
                        // words occupy disjoint ranges of `syms`, so the slices never alias.
                        let s = unsafe { std::slice::from_raw_parts_mut(syms_ptr.get().add(starts[w]), len) };
                        let newlen = merge_word(s, a, b, new_id, counts[w], w as u32, &mut out);
                        // lens is updated below, sequentially.
                        out.push((u64::MAX, newlen as i64, w as u32));
                    }
                    out
                })
                .collect();
            for v in per {
                for (k2, d, w) in v {
                    if k2 == u64::MAX {
                        lens[w as usize] = d as u32;
                    } else {
                        changes.push((k2, d, w));
                    }
                }
            }
        } else {
            for &w in &wl {
                let wu = w as usize;
                let len = lens[wu] as usize;
                let s = &mut syms[starts[wu]..starts[wu] + len];
                let newlen = merge_word(s, a, b, new_id, counts[wu], w, &mut changes);
                lens[wu] = newlen as u32;
            }
        }

        touched.clear();
        for &(k2, d, w) in &changes {
            if k2 == k {
                continue;
            }
            let e = pairs.entry(k2).or_insert_with(|| PairInfo { count: 0, words: Vec::new() });
            e.count += d;
            if d > 0 {
                if e.words.last() != Some(&w) {
                    e.words.push(w);
                }
                touched.push(k2);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for &k2 in &touched {
            if let Some(p) = pairs.get(&k2) {
                if p.count > 0 {
                    heap.push((p.count, Reverse(k2)));
                }
            }
        }
        if let Some(p) = progress.as_mut() {
            if !p(tokens.len() - 256, wanted) {
                return Err(Error::invalid_argument("training was interrupted"));
            }
        }
    }

    // Keep the last occurrence of a pair merged twice (see module docs).
    let mut last: FxHashMap<(u32, u32), usize> = FxHashMap::default();
    for (i, &m) in merges.iter().enumerate() {
        last.insert(m, i);
    }
    let merges: Vec<(u32, u32)> = merges.iter().enumerate().filter(|(i, m)| last[*m] == *i).map(|(_, &m)| m).collect();

    let first_special = tokens.len() as u32;
    let special_tokens =
        config.special_tokens.iter().enumerate().map(|(i, s)| (s.clone(), first_special + i as u32)).collect();
    Ok(Trained { tokens, merges, special_tokens })
}

#[derive(Clone, Copy)]
struct SymsPtr(*mut u32);
// SAFETY: used only to hand disjoint word slices to different rayon tasks.
unsafe impl Send for SymsPtr {}
unsafe impl Sync for SymsPtr {}
impl SymsPtr {
    fn get(self) -> *mut u32 {
        self.0
    }
}

/// Merge every non-overlapping occurrence of `(a, b)` in `s` left to right, compacting in
/// place; returns the new length. Pushes the pair-count deltas (HF `Word::merge` deltas,
/// times the word count) to `out`.
#[inline]
fn merge_word(s: &mut [u32], a: u32, b: u32, t: u32, count: i64, w: u32, out: &mut Vec<(u64, i64, u32)>) -> usize {
    let n = s.len();
    let mut r = 0usize; // read index
    let mut wpos = 0usize; // write index
    while r < n {
        if s[r] == a && r + 1 < n && s[r + 1] == b {
            if wpos > 0 {
                let prev = s[wpos - 1];
                out.push((key(prev, a), -count, w));
                out.push((key(prev, t), count, w));
            }
            if r + 2 < n {
                let next = s[r + 2];
                out.push((key(b, next), -count, w));
                out.push((key(t, next), count, w));
            }
            s[wpos] = t;
            wpos += 1;
            r += 2;
        } else {
            s[wpos] = s[r];
            wpos += 1;
            r += 1;
        }
    }
    wpos
}

/// Count the words of `texts` and train (a convenience for tests and small inputs).
pub fn train_texts<S: PieceSplitter + ?Sized>(texts: &[&str], splitter: &S, config: &TrainConfig) -> Result<Trained> {
    let docs: OwnedDocs = texts.iter().map(|t| t.as_bytes()).collect();
    let mut wc = WordCounter::new();
    wc.add_docs(&docs.view(), splitter, 0)?;
    train(&wc.to_sorted(None), config, None)
}

#[cfg(test)]
mod tests;
