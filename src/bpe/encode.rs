//! BPE of one pre-tokenized piece: repeatedly merge the adjacent pair with the lowest
//! priority (leftmost on ties) until no pair merges — tiktoken's `byte_pair_encode` and
//! Hugging Face's `Word::merge_all` agree on this rule.
//!
//! Short pieces use a flat scan (fastest in practice); long pieces use a binary heap over
//! a linked list of parts with lazy invalidation, `O(n log n)` for any input.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::vocab::{pair_key, MergeRule, Vocab, MEMO_ID_BITS, MEMO_PRIO_BITS};

const NONE: u32 = u32::MAX;
/// Pieces longer than this use the heap.
const SMALL: usize = 128;
/// Bits of a part index in the small merger's packed `priority << IDX_BITS | index` keys.
const IDX_BITS: u32 = 7;
const _: () = assert!(SMALL <= 1 << IDX_BITS);

#[derive(Clone, Copy)]
struct Part {
    start: u32,
    end: u32,
    id: u32,
}

/// A small direct-mapped memo of pair lookups `(left id, right id) → priority`, one per
/// thread: token pairs repeat across pieces, and a hit costs no access to the large
/// vocabulary tables. The answer depends on the two ids only, so it is always exact.
pub(crate) struct PairCache {
    /// `left << 43 | right << 22 | priority` in one word (priority all ones: no merge);
    /// `u64::MAX` is empty. Used only when the vocabulary's ids and priorities fit
    /// ([`Vocab::memo_fits`]).
    slots: Vec<u64>,
    /// Reused buffers of the small-piece merger.
    work: SmallWork,
}

/// A part of a piece during merging, linked to its live neighbours.
#[derive(Clone, Copy)]
struct Link {
    start: u32,
    end: u32,
    id: u32,
    prev: u32,
    next: u32,
}

#[derive(Default)]
struct SmallWork {
    parts: Vec<Link>,
    /// `priority << IDX_BITS | i` for merging part `i` with its next part; `NONE` for no
    /// merge or a dead part. The minimum key is the leftmost pair of lowest priority.
    keys: Vec<u32>,
}

#[inline(always)]
fn pack(rank: u32, i: usize) -> u32 {
    if rank == NONE {
        NONE
    } else {
        (rank << IDX_BITS) | i as u32
    }
}

const PAIR_CACHE_BITS: u32 = 16;
const MEMO_PRIO_MASK: u64 = (1 << MEMO_PRIO_BITS) - 1;

/// The memo key (ids in the high bits, priority bits zero) and slot of the pair `(a, b)`.
#[inline(always)]
fn memo_slot(a: u32, b: u32) -> (u64, usize) {
    let ids = (a as u64) << MEMO_ID_BITS | b as u64;
    let slot = (ids.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - PAIR_CACHE_BITS)) as usize;
    (ids << MEMO_PRIO_BITS, slot)
}

impl PairCache {
    /// An enabled cache (2^16 slots, 512 KiB).
    pub(crate) fn new() -> Self {
        PairCache {
            slots: vec![u64::MAX; 1 << PAIR_CACHE_BITS],
            work: SmallWork::default(),
        }
    }

    /// A cache that stores nothing (one-off encodes).
    pub(crate) fn disabled() -> Self {
        PairCache {
            slots: Vec::new(),
            work: SmallWork::default(),
        }
    }
}

impl Default for PairCache {
    fn default() -> Self {
        PairCache::disabled()
    }
}

impl Vocab {
    /// Priority of the merge of `a` (bytes `piece[a_start..]`) with `b` ending at `b_end`
    /// (`NONE` when they do not merge below `limit`); `piece` may extend past the piece
    /// (padding). The merged token is [`Vocab::merged_id`] of the priority.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pair(
        &self,
        slots: &mut [u64],
        piece: &[u8],
        a_start: u32,
        a_id: u32,
        b_id: u32,
        b_end: u32,
        limit: u32,
    ) -> u32 {
        let lookup = || match &self.rule {
            MergeRule::Ranks => self
                .token_id_at(piece, a_start as usize, b_end as usize)
                .unwrap_or(NONE),
            MergeRule::Pairs(m) => m.get(&pair_key(a_id, b_id)).copied().unwrap_or(NONE),
        };
        let r = if self.memo_fits {
            let (key, slot) = memo_slot(a_id, b_id);
            match slots.get(slot) {
                Some(&v) if v & !MEMO_PRIO_MASK == key => match v & MEMO_PRIO_MASK {
                    MEMO_PRIO_MASK => NONE,
                    p => p as u32,
                },
                _ => {
                    let r = lookup();
                    if let Some(s) = slots.get_mut(slot) {
                        *s = key | (r as u64 & MEMO_PRIO_MASK);
                    }
                    r
                }
            }
        } else {
            lookup()
        };
        if r < limit {
            r
        } else {
            NONE
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
                self.merge(piece, out, NONE, &mut PairCache::disabled());
            }
        }
    }

    /// BPE of a piece of two or more bytes, without the whole-piece lookup.
    #[inline]
    pub(crate) fn encode_piece_merges(&self, piece: &[u8], out: &mut Vec<u32>, pc: &mut PairCache) {
        self.merge(piece, out, NONE, pc);
    }

    /// BPE using only merges with priority below `limit` (no whole-piece shortcut).
    pub(crate) fn encode_piece_limited(&self, piece: &[u8], limit: u32) -> Vec<u32> {
        let mut out = Vec::new();
        self.merge(piece, &mut out, limit, &mut PairCache::disabled());
        out
    }

    /// BPE from single bytes using merges with priority below `limit`: the flat merger for
    /// short pieces, the heap for long ones.
    #[inline]
    fn merge(&self, piece: &[u8], out: &mut Vec<u32>, limit: u32, pc: &mut PairCache) {
        if piece.len() <= SMALL && self.small_keys_fit() {
            self.merge_small(piece, out, limit, pc);
        } else {
            self.merge_heap(piece, out, limit, pc);
        }
    }

    /// Whether every priority fits the small merger's packed keys.
    #[inline(always)]
    fn small_keys_fit(&self) -> bool {
        self.priority_bound < 1 << (32 - IDX_BITS)
    }

    /// `(position, id)` of every byte of `piece` that is a token (others are dropped).
    #[inline(always)]
    fn byte_parts<'a>(&'a self, piece: &'a [u8]) -> impl Iterator<Item = (u32, u32)> + 'a {
        piece.iter().enumerate().filter_map(|(i, &b)| {
            let id = self.byte_ids[b as usize];
            (id != NONE).then_some((i as u32, id))
        })
    }

    fn initial_parts(&self, piece: &[u8]) -> Vec<Part> {
        let mut parts = Vec::with_capacity(piece.len());
        parts.extend(self.byte_parts(piece).map(|(i, id)| Part {
            start: i,
            end: i + 1,
            id,
        }));
        parts
    }

    fn merge_small(&self, piece: &[u8], out: &mut Vec<u32>, limit: u32, pc: &mut PairCache) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                return unsafe { self.merge_small_avx2(piece, out, limit, pc) };
            }
        }
        self.merge_small_body(piece, out, limit, pc)
    }

    /// The same code compiled for AVX2: the per-step minimum is 8 lanes per instruction
    /// (baseline x86-64 has no unsigned 32-bit vector minimum).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn merge_small_avx2(&self, piece: &[u8], out: &mut Vec<u32>, limit: u32, pc: &mut PairCache) {
        self.merge_small_body(piece, out, limit, pc)
    }

    #[inline(always)]
    fn merge_small_body(&self, piece: &[u8], out: &mut Vec<u32>, limit: u32, pc: &mut PairCache) {
        let PairCache { slots, work } = pc;
        debug_assert!(piece.len() <= SMALL && self.small_keys_fit());
        let SmallWork { parts, keys } = work;
        parts.clear();
        keys.clear();
        for (i, id) in self.byte_parts(piece) {
            let k = parts.len() as u32;
            parts.push(Link {
                start: i,
                end: i + 1,
                id,
                prev: k.wrapping_sub(1),
                next: k + 1,
            });
        }
        let n = parts.len();
        if n == 0 {
            return;
        }
        parts[n - 1].next = NONE;
        // A zero-padded copy: pair keys of up to 15 bytes are then read 16 bytes at a time.
        let mut padded = [0u8; SMALL + 16];
        let piece = match padded.get_mut(..piece.len()) {
            Some(p) => {
                p.copy_from_slice(piece);
                &padded[..]
            }
            None => piece,
        };
        // Every part is one byte: the first round of lookups is one table read each.
        for i in 0..n - 1 {
            let x = piece[parts[i].start as usize] as usize;
            let y = piece[parts[i + 1].start as usize] as usize;
            let r = match self.byte_pairs.get(x << 8 | y) {
                Some(&r) if r < limit => r,
                _ => NONE,
            };
            keys.push(pack(r, i));
        }
        keys.push(NONE);
        // Merged-away parts stay in place with key NONE and are unlinked, so each step is one
        // branch-free minimum over a dense `u32` array (vectorised) and no memmove.
        loop {
            let best = keys.iter().copied().fold(NONE, u32::min);
            if best == NONE {
                break;
            }
            let at = (best & ((1 << IDX_BITS) - 1)) as usize;
            let right = parts[at].next as usize;
            let (after, right_end) = (parts[right].next, parts[right].end);
            keys[right] = NONE;
            let p = &mut parts[at];
            p.id = self.merged_id(best >> IDX_BITS);
            p.end = right_end;
            p.next = after;
            if after != NONE {
                let q = after as usize;
                parts[q].prev = at as u32;
                let r = self.pair(
                    slots,
                    piece,
                    parts[at].start,
                    parts[at].id,
                    parts[q].id,
                    parts[q].end,
                    limit,
                );
                keys[at] = pack(r, at);
            } else {
                keys[at] = NONE;
            }
            let before = parts[at].prev;
            if before != NONE {
                let b = before as usize;
                let r = self.pair(
                    slots,
                    piece,
                    parts[b].start,
                    parts[b].id,
                    parts[at].id,
                    parts[at].end,
                    limit,
                );
                keys[b] = pack(r, b);
            }
        }
        let mut i = 0u32;
        while i != NONE {
            out.push(parts[i as usize].id);
            i = parts[i as usize].next;
        }
    }

    fn merge_heap(&self, piece: &[u8], out: &mut Vec<u32>, limit: u32, pc: &mut PairCache) {
        let slots = &mut pc.slots[..];
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
            let r = self.pair(
                slots,
                piece,
                parts[i].start,
                parts[i].id,
                parts[i + 1].id,
                parts[i + 1].end,
                limit,
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
            let now = self.pair(
                slots,
                piece,
                parts[l].start,
                parts[l].id,
                parts[r].id,
                parts[r].end,
                limit,
            );
            if now != rank {
                continue;
            }
            alive[r] = false;
            parts[l].id = self.merged_id(now);
            parts[l].end = parts[r].end;
            next[l] = next[r];
            if next[r] != NONE {
                prev[next[r] as usize] = l as u32;
            }
            if prev[l] != NONE {
                let p = prev[l] as usize;
                let rk = self.pair(
                    slots,
                    piece,
                    parts[p].start,
                    parts[p].id,
                    parts[l].id,
                    parts[l].end,
                    limit,
                );
                if rk != NONE {
                    heap.push(key(rk, p));
                }
            }
            if next[l] != NONE {
                let q = next[l] as usize;
                let rk = self.pair(
                    slots,
                    piece,
                    parts[l].start,
                    parts[l].id,
                    parts[q].id,
                    parts[q].end,
                    limit,
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

    /// Textbook BPE: recompute every adjacent pair's priority (`prio` of its two parts'
    /// bytes, lowest first, leftmost on ties) each step.
    fn textbook(v: &Vocab, piece: &[u8], prio: impl Fn(&[u8], &[u8]) -> Option<usize>) -> Vec<u32> {
        let mut parts: Vec<Vec<u8>> = piece.iter().map(|&b| vec![b]).collect();
        loop {
            let mut best: Option<(usize, usize)> = None;
            for i in 0..parts.len().saturating_sub(1) {
                if let Some(r) = prio(&parts[i], &parts[i + 1]) {
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

    /// Textbook tiktoken BPE (a piece that is a token is that token).
    fn reference(v: &Vocab, piece: &[u8]) -> Vec<u32> {
        if let Some(id) = v.token_id(piece) {
            return vec![id];
        }
        textbook(v, piece, |a, b| {
            v.token_id(&[a, b].concat()).map(|r| r as usize)
        })
    }

    proptest! {
        #[test]
        fn small_and_heap_agree_with_reference(s in "[abc]{0,300}", limit in 250u32..270) {
            let v = vocab();
            let b = s.as_bytes();
            let mut heap = Vec::new();
            let mut limited_heap = Vec::new();
            if !b.is_empty() {
                v.merge_heap(b, &mut heap, NONE, &mut PairCache::new());
                v.merge_heap(b, &mut limited_heap, limit, &mut PairCache::new());
            }
            if b.len() <= SMALL {
                let mut small = Vec::new();
                let mut uncached = Vec::new();
                v.merge_small(b, &mut small, NONE, &mut PairCache::new());
                v.merge_small(b, &mut uncached, NONE, &mut PairCache::disabled());
                prop_assert_eq!(&small, &heap);
                prop_assert_eq!(&uncached, &heap);
                let mut limited_small = Vec::new();
                v.merge_small(b, &mut limited_small, limit, &mut PairCache::new());
                prop_assert_eq!(&limited_small, &limited_heap);
            }
            prop_assert_eq!(&v.encode_piece_limited(b, limit), &limited_heap);
            let r = if b.is_empty() { vec![] } else { reference(&v, b) };
            let mut enc = Vec::new();
            v.encode_piece(b, &mut enc);
            prop_assert_eq!(&enc, &r);
        }
    }

    /// A merge-list vocabulary whose priorities differ from its ids (merged ids count down).
    type Merges = Vec<(Vec<u8>, Vec<u8>)>;

    fn merge_list_vocab() -> (Vocab, Merges) {
        let merges: Vec<(&str, &str)> = vec![
            ("b", "c"),
            ("a", "b"),
            ("a", "a"),
            ("c", "a"),
            ("ab", "c"),
            ("aa", "aa"),
            ("a", "bc"),
            ("b", "b"),
            ("c", "ab"),
            ("b", "a"),
            ("bc", "ab"),
            ("aa", "a"),
        ];
        let mut toks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        let mut next = 1000u32;
        for (a, b) in &merges {
            let t = format!("{a}{b}").into_bytes();
            if !toks.iter().any(|(x, _)| *x == t) {
                toks.push((t, next));
                next -= 1;
            }
        }
        let m = merges
            .iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()));
        let m: Vec<_> = m.collect();
        (Vocab::from_merges(toks, &m, false).unwrap(), m)
    }

    /// Textbook merge-list BPE: the adjacent pair earliest in the list, leftmost on ties.
    fn merge_list_reference(v: &Vocab, merges: &[(Vec<u8>, Vec<u8>)], piece: &[u8]) -> Vec<u32> {
        textbook(v, piece, |a, b| {
            merges.iter().position(|(x, y)| x == a && y == b)
        })
    }

    proptest! {
        #[test]
        fn merge_lists_use_the_memo_exactly(s in "[abc]{1,200}") {
            let (v, merges) = merge_list_vocab();
            prop_assert!(v.memo_fits);
            let b = s.as_bytes();
            let want = merge_list_reference(&v, &merges, b);
            // One memo across calls, as a thread's cache is used: earlier pieces fill it.
            let mut memo = PairCache::new();
            for _ in 0..2 {
                let mut heap = Vec::new();
                v.merge_heap(b, &mut heap, NONE, &mut memo);
                prop_assert_eq!(&heap, &want);
                if b.len() <= SMALL {
                    let mut small = Vec::new();
                    v.merge_small(b, &mut small, NONE, &mut memo);
                    prop_assert_eq!(&small, &want);
                }
            }
        }
    }

    #[test]
    fn ids_too_large_for_the_memo_bypass_it() {
        let mut toks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        toks.push((b"ab".to_vec(), 300));
        toks.push((b"abab".to_vec(), 1 << MEMO_ID_BITS)); // one id past the packed width
        let v = Vocab::from_ranks(toks).unwrap();
        assert!(!v.memo_fits);
        let mut memo = PairCache::new();
        for _ in 0..2 {
            let mut out = Vec::new();
            v.merge_small(b"ababab", &mut out, NONE, &mut memo);
            assert_eq!(out, vec![1 << MEMO_ID_BITS, 300]);
        }
        assert!(
            memo.slots.iter().all(|&s| s == u64::MAX),
            "nothing was memoised"
        );
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
