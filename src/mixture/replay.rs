//! Merge replay: apply a tokenizer's ordered merge list to one category's word table and
//! record how every pair count changes.
//!
//! A category's sample is first reduced to its word table (distinct pre-tokenized pieces with
//! `u64` counts, [`crate::bpe::trainer::WordCounter`]). Each word starts as its bytes' token
//! ids. Merge `t = (a, b) → c` is then applied exactly as BPE *training* applies it: every
//! non-overlapping occurrence of `a b`, scanned left to right, becomes `c`, in every word.
//! Only the words that contain `a b` are visited (an index from pair to words, with stale
//! entries skipped), so a step costs the length of the words it rewrites, not the table.
//!
//! The result is a [`Trace`]: the pair counts before merge 0, then, for each step, the pairs
//! whose count changed with their new counts. Memory is proportional to the distinct words
//! plus the changes, never to `T × pairs`. A merge that never occurs in the sample changes
//! nothing and leaves an empty step, so steps stay aligned with the merge list.

use rustc_hash::FxHashMap;

use crate::{Error, Result};

/// A pair of token ids packed as `left << 32 | right`.
pub type PairKey = u64;

#[inline]
pub fn pair_key(a: u32, b: u32) -> PairKey {
    ((a as u64) << 32) | b as u64
}

/// How one category's pair counts evolve under the merge list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Changes, grouped by step: the changes of step `s` are
    /// `pairs[starts[s]..starts[s + 1]]` with their new counts in `counts`. Step 0 holds the
    /// initial counts (before merge 0); step `t + 1` the changes made by merge `t`. Within a
    /// step, pairs are sorted by key.
    pub starts: Vec<usize>,
    pub pairs: Vec<PairKey>,
    pub counts: Vec<u64>,
    /// Count of merge `t`'s pair just before merge `t` (0 when it does not occur).
    pub merge_counts: Vec<u64>,
    /// Sum of all pair counts before merge 0 (the normaliser of this category).
    pub total_pairs: u64,
    /// Distinct words in the table.
    pub words: usize,
}

impl Trace {
    /// Number of merges replayed.
    pub fn steps(&self) -> usize {
        self.merge_counts.len()
    }

    /// The changes of step `s` (0 = initial counts, `t + 1` = made by merge `t`).
    pub fn changes(&self, s: usize) -> impl Iterator<Item = (PairKey, u64)> + '_ {
        let r = self.starts[s]..self.starts[s + 1];
        self.pairs[r.clone()].iter().copied().zip(self.counts[r].iter().copied())
    }
}

/// Initial token id of each byte (`None` for a byte the vocabulary lacks: such a byte is a
/// symbol no merge involves).
pub type ByteIds = [Option<u32>; 256];

/// Symbol used for a byte without a token: never equal to a real id.
const NO_TOKEN: u32 = u32::MAX;

/// Replay `merges` (`(left, right, merged)`, in order) on a word table (`(bytes, count)`).
/// `progress(step)` is called every 256 steps; returning `false` stops with an error.
pub fn replay<W: AsRef<[u8]>>(
    words: &[(W, u64)],
    byte_ids: &ByteIds,
    merges: &[(u32, u32, u32)],
    mut progress: Option<&mut dyn FnMut(usize) -> bool>,
) -> Result<Trace> {
    if words.len() > u32::MAX as usize {
        return Err(Error::invalid_argument("more than 2^32 distinct words in one category"));
    }
    // Every word's symbols, one flat buffer; word w is syms[start[w]..start[w] + len[w]].
    let mut start: Vec<usize> = Vec::with_capacity(words.len());
    let mut len: Vec<u32> = Vec::with_capacity(words.len());
    let mut wcount: Vec<u64> = Vec::with_capacity(words.len());
    let mut syms: Vec<u32> = Vec::new();
    for (w, c) in words {
        let w = w.as_ref();
        start.push(syms.len());
        len.push(w.len() as u32);
        wcount.push(*c);
        syms.extend(w.iter().map(|&b| byte_ids[b as usize].unwrap_or(NO_TOKEN)));
    }

    let mut counts: FxHashMap<PairKey, u64> = FxHashMap::default();
    let mut where_: FxHashMap<PairKey, Vec<u32>> = FxHashMap::default();
    for w in 0..words.len() {
        let s = &syms[start[w]..start[w] + len[w] as usize];
        for p in s.windows(2) {
            if p[0] == NO_TOKEN || p[1] == NO_TOKEN {
                continue;
            }
            let k = pair_key(p[0], p[1]);
            *counts.entry(k).or_insert(0) += wcount[w];
            let list = where_.entry(k).or_default();
            if list.last() != Some(&(w as u32)) {
                list.push(w as u32);
            }
        }
    }
    let total_pairs: u64 = counts.values().sum();

    let mut trace = Trace {
        starts: vec![0],
        pairs: Vec::new(),
        counts: Vec::new(),
        merge_counts: Vec::with_capacity(merges.len()),
        total_pairs,
        words: words.len(),
    };
    let mut initial: Vec<(PairKey, u64)> = counts.iter().map(|(&k, &c)| (k, c)).collect();
    initial.sort_unstable();
    for (k, c) in initial {
        trace.pairs.push(k);
        trace.counts.push(c);
    }
    trace.starts.push(trace.pairs.len());

    let mut delta: FxHashMap<PairKey, i64> = FxHashMap::default();
    let mut changed: Vec<(PairKey, u64)> = Vec::new();
    let mut scratch: Vec<u32> = Vec::new();
    for (t, &(a, b, c)) in merges.iter().enumerate() {
        if t % 256 == 0 {
            if let Some(p) = progress.as_mut() {
                if !p(t) {
                    return Err(Error::invalid_argument("interrupted"));
                }
            }
        }
        let key = pair_key(a, b);
        trace.merge_counts.push(counts.get(&key).copied().unwrap_or(0));
        let Some(mut list) = where_.remove(&key) else {
            trace.starts.push(trace.pairs.len());
            continue;
        };
        list.sort_unstable();
        list.dedup();
        delta.clear();
        for &w in &list {
            let w = w as usize;
            let (s0, n) = (start[w], len[w] as usize);
            let word = &syms[s0..s0 + n];
            if !word.windows(2).any(|p| p[0] == a && p[1] == b) {
                continue; // stale entry: an earlier merge removed the pair from this word
            }
            let wc = wcount[w] as i64;
            for p in word.windows(2) {
                if p[0] != NO_TOKEN && p[1] != NO_TOKEN {
                    *delta.entry(pair_key(p[0], p[1])).or_insert(0) -= wc;
                }
            }
            scratch.clear();
            let mut i = 0;
            while i < n {
                if i + 1 < n && word[i] == a && word[i + 1] == b {
                    scratch.push(c);
                    i += 2;
                } else {
                    scratch.push(word[i]);
                    i += 1;
                }
            }
            syms[s0..s0 + scratch.len()].copy_from_slice(&scratch);
            len[w] = scratch.len() as u32;
            for p in scratch.windows(2) {
                if p[0] == NO_TOKEN || p[1] == NO_TOKEN {
                    continue;
                }
                let k = pair_key(p[0], p[1]);
                *delta.entry(k).or_insert(0) += wc;
                // Only pairs with the new token can be new to this word.
                if p[0] == c || p[1] == c {
                    let list = where_.entry(k).or_default();
                    if list.last() != Some(&(w as u32)) {
                        list.push(w as u32);
                    }
                }
            }
        }
        changed.clear();
        for (&k, &d) in &delta {
            if d == 0 {
                continue;
            }
            let old = counts.get(&k).copied().unwrap_or(0) as i64;
            let new = old + d;
            debug_assert!(new >= 0);
            let new = new.max(0) as u64;
            if new == 0 {
                counts.remove(&k);
            } else {
                counts.insert(k, new);
            }
            changed.push((k, new));
        }
        changed.sort_unstable();
        for &(k, n) in &changed {
            trace.pairs.push(k);
            trace.counts.push(n);
        }
        trace.starts.push(trace.pairs.len());
    }
    Ok(trace)
}
