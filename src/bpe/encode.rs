//! BPE of one pre-tokenized piece: repeatedly merge the adjacent pair with the lowest
//! priority (leftmost on ties) until no pair merges — tiktoken's `byte_pair_encode` and
//! Hugging Face's `Word::merge_all` agree on this rule.
//!
//! Short pieces use a flat scan (fastest in practice); long pieces use a binary heap over
//! a linked list of parts with lazy invalidation, `O(n log n)` for any input.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::vocab::{pair_key, MergeRule, Vocab};

const NONE: u32 = u32::MAX;
/// Pieces longer than this use the heap.
const SMALL: usize = 128;

#[derive(Clone, Copy)]
struct Part {
    start: u32,
    end: u32,
    id: u32,
    /// Priority and result of merging with the next part.
    rank: u32,
    merged: u32,
}

/// A small direct-mapped memo of pair lookups `(left id, right id) → (priority, merged id)`,
/// one per thread: token pairs repeat across pieces, and a hit costs no access to the large
/// vocabulary tables. The answer depends on the two ids only, so it is always exact.
pub(crate) struct PairCache {
    /// `(pair key, priority, merged id)`; key `u64::MAX` (two `NONE` ids) is empty.
    slots: Vec<(u64, u32, u32)>,
}

const PAIR_CACHE_BITS: u32 = 13;

impl PairCache {
    /// An enabled cache (2^13 slots, 128 KiB).
    pub(crate) fn new() -> Self {
        PairCache {
            slots: vec![(u64::MAX, NONE, NONE); 1 << PAIR_CACHE_BITS],
        }
    }

    /// A cache that stores nothing (one-off encodes).
    pub(crate) fn disabled() -> Self {
        PairCache { slots: Vec::new() }
    }
}

impl Default for PairCache {
    fn default() -> Self {
        PairCache::disabled()
    }
}

impl Vocab {
    /// Priority and id of the merge of `a` (bytes `piece[a_start..]`) with `b` ending at `b_end`;
    /// `piece` may extend past the piece (padding).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pair(
        &self,
        pc: &mut PairCache,
        piece: &[u8],
        a_start: u32,
        a_id: u32,
        b_id: u32,
        b_end: u32,
        limit: u32,
    ) -> (u32, u32) {
        let key = pair_key(a_id, b_id);
        let slot = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - PAIR_CACHE_BITS)) as usize;
        let (r, id) = match pc.slots.get(slot) {
            Some(&(k, r, id)) if k == key => (r, id),
            cached => {
                let (r, id) = match &self.rule {
                    MergeRule::Ranks => {
                        match self.token_id_at(piece, a_start as usize, b_end as usize) {
                            Some(r) => (r, r),
                            None => (NONE, NONE),
                        }
                    }
                    MergeRule::Pairs(m) => match m.get(&key) {
                        Some(&(r, id)) => (r, id),
                        None => (NONE, NONE),
                    },
                };
                if cached.is_some() {
                    pc.slots[slot] = (key, r, id);
                }
                (r, id)
            }
        };
        if r < limit {
            (r, id)
        } else {
            (NONE, NONE)
        }
    }

    /// Append the BPE tokens of `piece` to `out`.
    #[inline]
    pub fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        match piece.len() {
            0 => {}
            1 => {
                let id = self.byte_ids[piece[0] as usize];
                if id != NONE {
                    out.push(id);
                }
            }
            _ => {
                if self.whole_piece_lookup {
                    if let Some(id) = self.token_id(piece) {
                        out.push(id);
                        return;
                    }
                }
                if piece.len() <= SMALL {
                    self.merge_small(piece, out, NONE, &mut PairCache::disabled());
                } else {
                    self.merge_heap(piece, out, &mut PairCache::disabled());
                }
            }
        }
    }

    /// BPE of a piece of two or more bytes, without the whole-piece lookup.
    #[inline]
    pub(crate) fn encode_piece_merges(&self, piece: &[u8], out: &mut Vec<u32>, pc: &mut PairCache) {
        if piece.len() <= SMALL {
            self.merge_small(piece, out, NONE, pc);
        } else {
            self.merge_heap(piece, out, pc);
        }
    }

    /// BPE using only merges with priority below `limit` (no whole-piece shortcut).
    pub(crate) fn encode_piece_limited(&self, piece: &[u8], limit: u32) -> Vec<u32> {
        let mut out = Vec::new();
        self.merge_small(piece, &mut out, limit, &mut PairCache::disabled());
        out
    }

    fn initial_parts(&self, piece: &[u8]) -> Vec<Part> {
        let mut parts = Vec::with_capacity(piece.len());
        for (i, &b) in piece.iter().enumerate() {
            let id = self.byte_ids[b as usize];
            if id != NONE {
                parts.push(Part {
                    start: i as u32,
                    end: i as u32 + 1,
                    id,
                    rank: NONE,
                    merged: NONE,
                });
            }
        }
        parts
    }

    fn merge_small(&self, piece: &[u8], out: &mut Vec<u32>, limit: u32, pc: &mut PairCache) {
        let mut parts = self.initial_parts(piece);
        // A zero-padded copy: pair keys of up to 15 bytes are then read 16 bytes at a time.
        let mut padded = [0u8; SMALL + 16];
        let piece = match padded.get_mut(..piece.len()) {
            Some(p) => {
                p.copy_from_slice(piece);
                &padded[..]
            }
            None => piece,
        };
        for i in 0..parts.len().saturating_sub(1) {
            let (r, m) = self.pair(
                pc,
                piece,
                parts[i].start,
                parts[i].id,
                parts[i + 1].id,
                parts[i + 1].end,
                limit,
            );
            parts[i].rank = r;
            parts[i].merged = m;
        }
        loop {
            let mut best = NONE;
            let mut at = 0;
            for (i, p) in parts.iter().enumerate() {
                if p.rank < best {
                    best = p.rank;
                    at = i;
                }
            }
            if best == NONE {
                break;
            }
            let right = parts.remove(at + 1);
            let p = &mut parts[at];
            p.id = p.merged;
            p.end = right.end;
            if at + 1 < parts.len() {
                let (r, m) = self.pair(
                    pc,
                    piece,
                    parts[at].start,
                    parts[at].id,
                    parts[at + 1].id,
                    parts[at + 1].end,
                    limit,
                );
                parts[at].rank = r;
                parts[at].merged = m;
            } else {
                parts[at].rank = NONE;
            }
            if at > 0 {
                let (r, m) = self.pair(
                    pc,
                    piece,
                    parts[at - 1].start,
                    parts[at - 1].id,
                    parts[at].id,
                    parts[at].end,
                    limit,
                );
                parts[at - 1].rank = r;
                parts[at - 1].merged = m;
            }
        }
        out.extend(parts.iter().map(|p| p.id));
    }

    fn merge_heap(&self, piece: &[u8], out: &mut Vec<u32>, pc: &mut PairCache) {
        let mut parts = self.initial_parts(piece);
        let mut padded = Vec::with_capacity(piece.len() + 16);
        padded.extend_from_slice(piece);
        padded.extend_from_slice(&[0u8; 16]);
        let piece = &padded[..];
        let n = parts.len();
        if n == 0 {
            return;
        }
        let mut next: Vec<u32> = (1..=n as u32).collect();
        next[n - 1] = NONE;
        let mut prev: Vec<u32> = (0..n as u32).map(|i| i.wrapping_sub(1)).collect();
        prev[0] = NONE;
        let mut alive = vec![true; n];
        // (priority, left part index, end of the pair, merged id)
        // Heap keys are `rank << 32 | left part index` (8 bytes: half the memory traffic of a
        // tuple). An entry is still valid when its left part is alive and the pair it forms
        // with its current right neighbour has the same rank: a rank names one token (or one
        // merge), so the pair is then the very same span.
        let key = |r: u32, i: usize| Reverse(((r as u64) << 32) | i as u64);
        let mut initial = Vec::with_capacity(n);
        for i in 0..n - 1 {
            let (r, _) = self.pair(
                pc,
                piece,
                parts[i].start,
                parts[i].id,
                parts[i + 1].id,
                parts[i + 1].end,
                NONE,
            );
            if r != NONE {
                initial.push(key(r, i));
            }
        }
        let mut heap: BinaryHeap<Reverse<u64>> = BinaryHeap::from(initial);
        while let Some(Reverse(k)) = heap.pop() {
            let rank = (k >> 32) as u32;
            let l = (k & 0xffff_ffff) as usize;
            if !alive[l] || next[l] == NONE {
                continue;
            }
            let r = next[l] as usize;
            let (now, merged) = self.pair(
                pc,
                piece,
                parts[l].start,
                parts[l].id,
                parts[r].id,
                parts[r].end,
                NONE,
            );
            if now != rank {
                continue;
            }
            alive[r] = false;
            parts[l].id = merged;
            parts[l].end = parts[r].end;
            next[l] = next[r];
            if next[r] != NONE {
                prev[next[r] as usize] = l as u32;
            }
            if prev[l] != NONE {
                let p = prev[l] as usize;
                let (rk, _) = self.pair(
                    pc,
                    piece,
                    parts[p].start,
                    parts[p].id,
                    parts[l].id,
                    parts[l].end,
                    NONE,
                );
                if rk != NONE {
                    heap.push(key(rk, p));
                }
            }
            if next[l] != NONE {
                let q = next[l] as usize;
                let (rk, _) = self.pair(
                    pc,
                    piece,
                    parts[l].start,
                    parts[l].id,
                    parts[q].id,
                    parts[q].end,
                    NONE,
                );
                if rk != NONE {
                    heap.push(key(rk, l));
                }
            }
        }
        let mut i = 0u32;
        while i != NONE {
            out.push(parts[i as usize].id);
            i = next[i as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A small rank vocabulary: all bytes plus some multi-byte tokens.
    fn vocab() -> Vocab {
        let mut toks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for (i, t) in [
            "ab", "bc", "abc", "aa", "aaaa", "ca", "cab", "bb", "abab", "aaa", "ba", "bcab",
        ]
        .iter()
        .enumerate()
        {
            toks.push((t.as_bytes().to_vec(), 256 + i as u32));
        }
        Vocab::from_ranks(toks).unwrap()
    }

    /// Textbook reference: recompute every pair each step.
    fn reference(v: &Vocab, piece: &[u8]) -> Vec<u32> {
        if let Some(id) = v.token_id(piece) {
            return vec![id];
        }
        let mut parts: Vec<Vec<u8>> = piece.iter().map(|&b| vec![b]).collect();
        loop {
            let mut best: Option<(u32, usize)> = None;
            for i in 0..parts.len().saturating_sub(1) {
                let mut cat = parts[i].clone();
                cat.extend_from_slice(&parts[i + 1]);
                if let Some(r) = v.token_id(&cat) {
                    if best.is_none_or(|(br, _)| r < br) {
                        best = Some((r, i));
                    }
                }
            }
            let Some((_, i)) = best else { break };
            let right = parts.remove(i + 1);
            parts[i].extend_from_slice(&right);
        }
        parts.iter().map(|p| v.token_id(p).unwrap()).collect()
    }

    proptest! {
        #[test]
        fn small_and_heap_agree_with_reference(s in "[abc]{0,300}") {
            let v = vocab();
            let b = s.as_bytes();
            let mut small = Vec::new();
            let mut heap = Vec::new();
            if !b.is_empty() {
                v.merge_small(b, &mut small, NONE, &mut PairCache::new());
                v.merge_heap(b, &mut heap, &mut PairCache::new());
            }
            let want = if b.is_empty() { vec![] } else {
                let mut w = Vec::new();
                v.merge_small(b, &mut w, NONE, &mut PairCache::disabled());
                w
            };
            prop_assert_eq!(&small, &heap);
            let r = if b.is_empty() { vec![] } else { reference(&v, b) };
            let mut enc = Vec::new();
            v.encode_piece(b, &mut enc);
            prop_assert_eq!(&enc, &r);
            prop_assert_eq!(&want, &small);
        }
    }

    #[test]
    fn long_runs_are_fast_enough() {
        let v = vocab();
        let s = vec![b'a'; 1 << 20];
        let mut out = Vec::new();
        v.encode_piece(&s, &mut out);
        assert_eq!(out.len(), 1 << 18);
        assert!(out.iter().all(|&t| t == 260));
    }

    #[test]
    fn merges_are_recovered_from_ranks() {
        let v = vocab();
        let m = v.merges();
        assert!(m.contains(&(b'a' as u32, b'b' as u32, 256)));
        assert!(m.contains(&(256, b'c' as u32, 258))); // abc = ab + c
        assert!(m.contains(&(259, 259, 260))); // aaaa = aa + aa
    }
}
