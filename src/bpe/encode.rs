//! BPE of one pre-tokenized piece: repeatedly merge the adjacent pair with the lowest
//! priority (leftmost on ties) until no pair merges — tiktoken's `byte_pair_encode` and
//! Hugging Face's `Word::merge_all` agree on this rule.
//!
//! Short pieces use a flat scan (fastest in practice); long pieces use a binary heap over
//! a linked list of parts with lazy invalidation, `O(n log n)` for any input.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::mem::prefetch;

use super::vocab::{key16, pair_key, MergeRule, Vocab, KEY16_MAX, MEMO_ID_BITS, MEMO_PRIO_BITS};

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
    /// Memos and buffers of the chunked merger (allocated on its first use).
    chunk: ChunkMemo,
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

/// Memos of the chunked merger ([`Vocab::merge_chunked`]): the BPE of spans of at most
/// 15 bytes (characters, and the short spans that incompatible junctions join), and
/// whether two tokens are compatible.
#[derive(Default)]
struct ChunkMemo {
    /// Direct-mapped; `k1 == 0` is empty (a span's [`key16`] has its length in `k1`).
    spans: Vec<SpanEntry>,
    /// Direct-mapped answers, [`compat_slot`] (0 is empty).
    compat: Vec<u32>,
    /// The characters of the piece.
    chars: Vec<Char>,
    /// Their BPEs, one after another.
    char_toks: Vec<u32>,
    /// `(first byte, first token)` of each span of the piece so far.
    segs: Vec<(u32, u32)>,
    /// The tokens of the spans so far.
    toks: Vec<u32>,
    /// The tokens of the span being added.
    span: Vec<u32>,
    /// Bytes and tokens of a compatibility check.
    pair_bytes: Vec<u8>,
    pair_toks: Vec<u32>,
}

impl ChunkMemo {
    /// Allocate the memos (768 KiB) if not yet done.
    fn allocate(&mut self) {
        if self.spans.is_empty() {
            self.spans = vec![SpanEntry::default(); 1 << SPAN_BITS];
            self.compat = vec![0; 1 << COMPAT_BITS];
        }
    }
}

/// The BPE of a span of at most 15 bytes, if it has at most 3 tokens.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct SpanEntry {
    k0: u64,
    k1: u64,
    n: u32,
    t: [u32; 3],
}

/// A span of at most 15 bytes: its [`key16`] and its slot in the span memo.
#[derive(Clone, Copy)]
struct SpanKey {
    k0: u64,
    k1: u64,
    slot: usize,
}

impl SpanKey {
    #[inline(always)]
    fn of(piece: &[u8], a: usize, b: usize) -> SpanKey {
        let [k0, k1] = key16(piece, a, b);
        let h = (k0 ^ k1.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        SpanKey {
            k0,
            k1,
            slot: (h >> (64 - SPAN_BITS)) as usize,
        }
    }
}

/// A character of a piece in the chunked merger: its bytes `a..b`, their span key, and where
/// its BPE is in `ChunkMemo::char_toks`.
#[derive(Clone, Copy)]
struct Char {
    a: u32,
    b: u32,
    key: SpanKey,
    t0: u32,
    tn: u32,
}

/// The compatibility memo's slot of `(left, right)` and the word that marks the pair there
/// (its answer is the low bit). The 42 bits of the two ids are mixed by a bijection; the top
/// bits pick the slot and the other 25 are kept in it, so a slot's word names exactly one
/// pair and 4-byte words suffice.
#[inline(always)]
fn compat_slot(left: u32, right: u32) -> (usize, u32) {
    const MASK: u64 = (1 << (2 * MEMO_ID_BITS)) - 1;
    let mut x = ((left as u64) << MEMO_ID_BITS | right as u64) & MASK;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & MASK;
    x ^= x >> MEMO_ID_BITS;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9) & MASK;
    let tag = (x & ((1 << (2 * MEMO_ID_BITS - COMPAT_BITS)) - 1)) as u32;
    (
        (x >> (2 * MEMO_ID_BITS - COMPAT_BITS)) as usize,
        1 << 31 | tag << 1,
    )
}

const SPAN_BITS: u32 = 13;
const COMPAT_BITS: u32 = 17;
/// A span that grows past this many bytes sends the piece to the plain merger (bounds the
/// re-merging work per character; rare in real text).
const SPAN_MAX: usize = 48;

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
            chunk: ChunkMemo::default(),
        }
    }

    /// A cache that stores nothing (one-off encodes).
    pub(crate) fn disabled() -> Self {
        PairCache {
            slots: Vec::new(),
            work: SmallWork::default(),
            chunk: ChunkMemo::default(),
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

    /// BPE from single bytes using merges with priority below `limit`: pieces of mostly
    /// three- and four-byte characters (CJK) character by character, others with the flat
    /// merger when short and the heap when long.
    #[inline]
    fn merge(&self, piece: &[u8], out: &mut Vec<u32>, limit: u32, pc: &mut PairCache) {
        if limit == NONE
            && piece.len() > KEY16_MAX
            && self.chunks_fit
            && !pc.slots.is_empty()
            && 6 * piece.iter().filter(|&&b| b >= 0xE0).count() >= piece.len()
        {
            self.merge_chunked(piece, out, pc);
        } else {
            self.merge_plain(piece, out, limit, pc);
        }
    }

    /// BPE of `piece` assembled from the BPE of its characters.
    ///
    /// Call two tokens *compatible* when BPE of their bytes, one after the other, yields
    /// exactly those two tokens. Cut a piece into spans and BPE each span alone: if the last
    /// token of every span is compatible with the first token of the next, the spans'
    /// tokens together are the BPE of the whole piece. (Were they not, take the first merge
    /// of the whole run that joins bytes of two spans: until then each span's bytes merged
    /// exactly as they do alone, so the run over just the two tokens at that junction would
    /// make the same merge, and they would not be compatible.) This holds for any rule where
    /// a pair's priority depends only on its two parts, with the leftmost of equal pairs
    /// first: tiktoken ranks and merge lists alike.
    ///
    /// So each character's BPE is appended as a new span; while the token before it and
    /// its first token are not compatible, the span absorbs the previous one and its bytes
    /// are merged again. Characters and short spans repeat, so their BPEs and the
    /// compatibility answers are memoised: most characters cost two lookups instead of
    /// their merges, and the pair memo is left to other scripts.
    fn merge_chunked(&self, piece: &[u8], out: &mut Vec<u32>, pc: &mut PairCache) {
        let mut ch = std::mem::take(&mut pc.chunk);
        ch.allocate();
        if self.spans(piece, &mut ch, pc) {
            out.extend_from_slice(&ch.toks);
        } else {
            self.merge_plain(piece, out, NONE, pc);
        }
        pc.chunk = ch;
    }

    /// The spans of [`Vocab::merge_chunked`] into `ch.toks`; `false` when a span outgrows
    /// [`SPAN_MAX`].
    ///
    /// Three passes, so that the memo probes of different characters overlap instead of
    /// waiting for each other: find the characters and prefetch their span slots; read the
    /// characters' BPEs and prefetch the compatibility slot of each neighbouring pair; then
    /// join the spans.
    fn spans(&self, piece: &[u8], ch: &mut ChunkMemo, pc: &mut PairCache) -> bool {
        let ChunkMemo {
            spans,
            compat,
            chars,
            char_toks,
            segs,
            toks,
            span,
            pair_bytes,
            pair_toks,
        } = ch;
        chars.clear();
        let mut a = 0;
        while a < piece.len() {
            // One character: a byte and the continuation bytes after it (at most 4 bytes;
            // invalid UTF-8 just makes other spans, which is as exact).
            let mut b = a + 1;
            while b < piece.len() && b - a < 4 && piece[b] & 0xC0 == 0x80 {
                b += 1;
            }
            let key = SpanKey::of(piece, a, b);
            if let Some(e) = spans.get(key.slot) {
                prefetch(e);
            }
            chars.push(Char {
                a: a as u32,
                b: b as u32,
                key,
                t0: 0,
                tn: 0,
            });
            a = b;
        }
        char_toks.clear();
        let mut prev_last = NONE;
        for c in chars.iter_mut() {
            let t0 = char_toks.len();
            self.span_bpe_keyed(piece, c.a as usize, c.b as usize, c.key, spans, span, pc);
            char_toks.extend(span.iter().copied());
            c.t0 = t0 as u32;
            c.tn = (char_toks.len() - t0) as u32;
            if let (true, Some(&first)) = (prev_last != NONE, char_toks.get(t0)) {
                if let Some(v) = compat.get(compat_slot(prev_last, first).0) {
                    prefetch(v);
                }
            }
            prev_last = char_toks.last().copied().unwrap_or(NONE);
        }
        segs.clear();
        toks.clear();
        for c in chars.iter() {
            let b = c.b as usize;
            let mut start = c.a as usize;
            span.clear();
            span.extend(
                char_toks[c.t0 as usize..(c.t0 + c.tn) as usize]
                    .iter()
                    .copied(),
            );
            while let (Some(&(s0, t0)), Some(&left), Some(&right)) =
                (segs.last(), toks.last(), span.first())
            {
                if self.compatible(left, right, compat, pair_bytes, pair_toks, pc) {
                    break;
                }
                segs.pop();
                toks.truncate(t0 as usize);
                start = s0 as usize;
                if b - start > SPAN_MAX {
                    return false;
                }
                self.span_bpe(piece, start, b, spans, span, pc);
            }
            segs.push((start as u32, toks.len() as u32));
            toks.extend(span.iter().copied());
        }
        true
    }

    /// The BPE of `piece[a..b]` into `out` (replacing its contents), memoised when short.
    fn span_bpe(
        &self,
        piece: &[u8],
        a: usize,
        b: usize,
        spans: &mut [SpanEntry],
        out: &mut Vec<u32>,
        pc: &mut PairCache,
    ) {
        if b - a > KEY16_MAX {
            out.clear();
            self.merge_plain(&piece[a..b], out, NONE, pc);
        } else {
            self.span_bpe_keyed(piece, a, b, SpanKey::of(piece, a, b), spans, out, pc);
        }
    }

    /// [`Vocab::span_bpe`] of a span of at most 15 bytes whose key is known.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn span_bpe_keyed(
        &self,
        piece: &[u8],
        a: usize,
        b: usize,
        SpanKey { k0, k1, slot }: SpanKey,
        spans: &mut [SpanEntry],
        out: &mut Vec<u32>,
        pc: &mut PairCache,
    ) {
        out.clear();
        if let Some(e) = spans.get(slot) {
            if e.k0 == k0 && e.k1 == k1 {
                out.extend_from_slice(&e.t[..e.n as usize]);
                return;
            }
        }
        self.merge_plain(&piece[a..b], out, NONE, pc);
        if out.len() <= 3 {
            if let Some(e) = spans.get_mut(slot) {
                let mut t = [0u32; 3];
                t[..out.len()].copy_from_slice(out);
                *e = SpanEntry {
                    k0,
                    k1,
                    n: out.len() as u32,
                    t,
                };
            }
        }
    }

    /// Whether BPE of the bytes of `left` then `right` is exactly `[left, right]`, memoised.
    #[allow(clippy::too_many_arguments)]
    fn compatible(
        &self,
        left: u32,
        right: u32,
        compat: &mut [u32],
        bytes: &mut Vec<u8>,
        toks: &mut Vec<u32>,
        pc: &mut PairCache,
    ) -> bool {
        let (slot, mark) = compat_slot(left, right);
        if let Some(&v) = compat.get(slot) {
            if v | 1 == mark | 1 {
                return v & 1 == 1;
            }
        }
        bytes.clear();
        bytes.extend_from_slice(self.token_bytes(left).unwrap_or_default());
        bytes.extend_from_slice(self.token_bytes(right).unwrap_or_default());
        toks.clear();
        self.merge_plain(bytes, toks, NONE, pc);
        let ok = toks[..] == [left, right];
        if let Some(v) = compat.get_mut(slot) {
            *v = mark | ok as u32;
        }
        ok
    }

    /// BPE from single bytes using merges with priority below `limit`: the flat merger for
    /// short pieces, the heap for long ones.
    #[inline]
    fn merge_plain(&self, piece: &[u8], out: &mut Vec<u32>, limit: u32, pc: &mut PairCache) {
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
        let PairCache { slots, work, .. } = pc;
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

    /// A rank vocabulary over three 3-byte characters (あ い う share their first two bytes),
    /// with tokens inside characters, across character boundaries and of several
    /// characters, so that many junctions are incompatible.
    fn wide_vocab() -> Vocab {
        let (a, i, u) = ("あ".as_bytes(), "い".as_bytes(), "う".as_bytes());
        let mut toks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        let extra: Vec<Vec<u8>> = vec![
            a[..2].to_vec(),
            vec![0x82, 0xE3],
            a.to_vec(),
            [a, i].concat(),
            i.to_vec(),
            vec![0x86, 0xE3, 0x81],
            [i, u].concat(),
            [a, a].concat(),
            [u, u].concat(),
            [a, i, u].concat(),
            [a, a, a, a].concat(),
            [&u[1..], a].concat(),
        ];
        for (k, t) in extra.into_iter().enumerate() {
            toks.push((t, 256 + k as u32));
        }
        Vocab::from_ranks(toks).unwrap()
    }

    /// Textbook BPE of a rank vocabulary (no whole-piece shortcut).
    fn textbook_ranks(v: &Vocab, piece: &[u8]) -> Vec<u32> {
        textbook(v, piece, |a, b| {
            v.token_id(&[a, b].concat()).map(|r| r as usize)
        })
    }

    fn chunked(v: &Vocab, piece: &[u8], pc: &mut PairCache) -> Vec<u32> {
        let mut out = Vec::new();
        v.merge_chunked(piece, &mut out, pc);
        out
    }

    proptest! {
        #[test]
        fn chunked_merge_is_exact_on_wide_text(s in "[あいうa]{0,60}") {
            let v = wide_vocab();
            let b = s.as_bytes();
            let want = textbook_ranks(&v, b);
            // One memo across calls: the second call answers from memoised spans and
            // junctions.
            let mut pc = PairCache::new();
            for _ in 0..2 {
                prop_assert_eq!(&chunked(&v, b, &mut pc), &want);
            }
            if !b.is_empty() {
                let mut out = Vec::new();
                v.encode_piece_merges(b, &mut out, &mut pc);
                prop_assert_eq!(&out, &want);
            }
        }

        #[test]
        fn chunked_merge_is_exact_for_any_ranks_and_bytes(
            tokens in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(vec![0xE3u8, 0xF0, 0x81, 0x82, 0x84, b'a']), 2..7),
                0..40,
            ),
            piece in proptest::collection::vec(proptest::sample::select(vec![0xE3u8, 0xF0, 0x81, 0x82, 0x84, b'a']), 0..90),
        ) {
            let mut toks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
            for t in tokens {
                if !toks.iter().any(|(x, _)| *x == t) {
                    let r = toks.len() as u32;
                    toks.push((t, r));
                }
            }
            let v = Vocab::from_ranks(toks).unwrap();
            let want = textbook_ranks(&v, &piece);
            let mut pc = PairCache::new();
            for _ in 0..2 {
                prop_assert_eq!(&chunked(&v, &piece, &mut pc), &want);
            }
        }

        #[test]
        fn chunked_merge_is_exact_for_merge_lists(s in "[abc]{0,100}") {
            let (v, merges) = merge_list_vocab();
            let b = s.as_bytes();
            let want = if b.is_empty() { vec![] } else { merge_list_reference(&v, &merges, b) };
            let mut pc = PairCache::new();
            for _ in 0..2 {
                prop_assert_eq!(&chunked(&v, b, &mut pc), &want);
            }
        }
    }

    #[test]
    fn wide_pieces_take_the_chunked_merger() {
        let v = wide_vocab();
        let mut pc = PairCache::new();
        let mut out = Vec::new();
        v.encode_piece_merges("aaaaaaaaaaaaaaaaaaaa".as_bytes(), &mut out, &mut pc);
        assert!(pc.chunk.spans.is_empty(), "ASCII merges plainly");
        let wide = "あいうういあああいあうう".as_bytes();
        out.clear();
        v.encode_piece_merges(wide, &mut out, &mut pc);
        assert!(!pc.chunk.spans.is_empty(), "CJK merges by characters");
        assert_eq!(out, textbook_ranks(&v, wide));
    }

    #[test]
    fn spans_that_grow_too_long_fall_back_to_the_plain_merger() {
        // Runs of あ merge into ever longer tokens, so every junction is incompatible and
        // the span grows past SPAN_MAX.
        let a = "あ".as_bytes();
        let mut toks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        toks.push((a[..2].to_vec(), 256));
        toks.push((a.to_vec(), 257));
        for (k, n) in [2usize, 4, 8, 16, 32].into_iter().enumerate() {
            toks.push((a.repeat(n), 258 + k as u32));
        }
        let v = Vocab::from_ranks(toks).unwrap();
        let piece = a.repeat(40);
        let mut pc = PairCache::new();
        let mut ch = ChunkMemo::default();
        ch.allocate();
        assert!(
            !v.spans(&piece, &mut ch, &mut pc),
            "the span outgrew SPAN_MAX"
        );
        assert_eq!(chunked(&v, &piece, &mut pc), textbook_ranks(&v, &piece));
        assert_eq!(chunked(&v, &piece, &mut pc), vec![262, 260]); // 32 + 8
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
