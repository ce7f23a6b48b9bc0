//! The full tokenizer: pre-tokenizer + vocabulary + special tokens, with a per-thread
//! pretoken cache, batches on a rayon pool and decoding.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use aho_corasick::{AhoCorasick, Input, MatchKind};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::encode::PairCache;
use super::pretok::Pretokenizer;
use super::vocab::{key16, Vocab};
use crate::mem::{HugeTable, Zeroable};
use crate::text::Docs;
use crate::{Error, Result};

/// A set of special tokens, by their index in [`Tokenizer::special_tokens`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecialSet {
    None,
    All,
    Some(Vec<usize>),
}

impl SpecialSet {
    fn mask(&self, n: usize) -> Vec<bool> {
        match self {
            SpecialSet::None => vec![false; n],
            SpecialSet::All => vec![true; n],
            SpecialSet::Some(v) => {
                let mut m = vec![false; n];
                for &i in v {
                    if i < n {
                        m[i] = true;
                    }
                }
                m
            }
        }
    }
}

/// A byte-level BPE tokenizer.
#[derive(Debug)]
pub struct Tokenizer {
    vocab: Vocab,
    pretok: Pretokenizer,
    specials: Vec<(String, u32)>,
    special_ac: Option<AhoCorasick>,
    special_by_id: FxHashMap<u32, usize>,
    uid: u64,
    /// Apply Unicode NFC to ordinary text before pre-tokenization (HF `normalizer: NFC`,
    /// e.g. Qwen2). Special-token text is matched before normalization, as HF does.
    nfc: bool,
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// Pieces of 16 to this many bytes are cached in a hash map (shorter ones in the tables).
const CACHE_MAX_PIECE: usize = 256;
/// Tokens kept for cached pieces (the arena) before all caches of a thread are reset.
const ARENA_MAX: usize = 1 << 23;
/// The long-piece cache: 2^15 sets of 4 ways (3 MiB), allocated on its first use (8 sets in
/// unit tests, so that eviction is exercised).
const LONG_BITS: u32 = if cfg!(test) { 3 } else { 15 };
const LONG_WAYS: usize = 4;

/// Level 1 of the short-piece cache: direct-mapped, 2^13 entries of 32 bytes (256 KiB, stays
/// in L2), so the frequent pieces cost no cache miss.
const L1_BITS: u32 = 13;
/// Level 2: 2^15 sets of 8 entries (8 MiB, on huge pages), holding nearly every distinct
/// short piece of a corpus; a miss in level 1 costs one memory access instead of probing the
/// 200k-entry vocabulary and merging. (2-way sets in one cache line were measured: no faster
/// on a cold pass, ~8 % slower once warm from conflict misses. 2^15 sets against 2^14: the
/// same on a cold pass, ~3 % faster on new documents once warm.)
const L2_BITS: u32 = 15;
const L2_WAYS: usize = 8;

/// One level-2 set, cache-line aligned.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct L2Set([Entry; L2_WAYS]);

// SAFETY: plain integers; all-zero is the empty way.
unsafe impl Zeroable for L2Set {}
// SAFETY: plain integers; all-zero (`blen == 0`) is the empty way.
unsafe impl Zeroable for LongEntry {}
/// Pieces of at most this many bytes go through the two levels.
const SHORT_MAX: usize = 15;
/// `Entry::n` value meaning "tokens are `arena[t[0]..t[0] + t[1]]`".
const EXT: u32 = u32::MAX;

/// A cached piece of 2 to 15 bytes (packed with its length into `k0, k1`; all-zero = empty)
/// and its tokens: up to 3 inline, more in the arena.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Entry {
    k0: u64,
    k1: u64,
    n: u32,
    t: [u32; 3],
}

/// A cached long piece: `piece_bytes[boff..boff + blen]` → `arena[toff..toff + tn]`;
/// `blen == 0` is an empty way.
#[derive(Clone, Copy, Default)]
struct LongEntry {
    hash: u64,
    boff: u32,
    toff: u32,
    blen: u16,
    tn: u16,
}

/// Key and hash of the short piece `s[a..b]`.
#[inline(always)]
fn short_key(s: &[u8], a: usize, b: usize) -> (u64, u64, u64) {
    let [k0, k1] = key16(s, a, b);
    let h = (k0 ^ k1.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (k0, k1, h)
}

/// Where tokens go: a vector, or a counter.
trait Sink {
    fn one(&mut self, id: u32);
    fn entry(&mut self, e: &Entry, arena: &[u32]);
    fn slice(&mut self, ids: &[u32]);
}

impl Sink for Vec<u32> {
    #[inline(always)]
    fn one(&mut self, id: u32) {
        self.push(id);
    }
    #[inline(always)]
    fn entry(&mut self, e: &Entry, arena: &[u32]) {
        if e.n <= 3 {
            // Copy all three slots (no variable-length memcpy), keep `n` of them.
            self.reserve(3);
            let len = self.len();
            let spare = self.spare_capacity_mut();
            spare[0].write(e.t[0]);
            spare[1].write(e.t[1]);
            spare[2].write(e.t[2]);
            // SAFETY: the first `n <= 3` spare slots were just initialised.
            unsafe { self.set_len(len + e.n as usize) };
        } else {
            self.extend_from_slice(&arena[e.t[0] as usize..(e.t[0] + e.t[1]) as usize]);
        }
    }
    #[inline(always)]
    fn slice(&mut self, ids: &[u32]) {
        self.extend_from_slice(ids);
    }
}

struct Counter(usize);

impl Sink for Counter {
    #[inline(always)]
    fn one(&mut self, _: u32) {
        self.0 += 1;
    }
    #[inline(always)]
    fn entry(&mut self, e: &Entry, _: &[u32]) {
        self.0 += if e.n <= 3 { e.n } else { e.t[1] } as usize;
    }
    #[inline(always)]
    fn slice(&mut self, ids: &[u32]) {
        self.0 += ids.len();
    }
}

/// Per-thread memo of piece → tokens for one tokenizer.
#[derive(Default)]
struct PieceCache {
    uid: u64,
    /// Recency among the thread's caches (the least recent one is reused).
    last_used: u64,
    /// Level-1 misses while level 2 is not allocated yet.
    l1_misses: u32,
    l1: Vec<Entry>,
    l2: HugeTable<L2Set>,
    /// Pieces of 16..=CACHE_MAX_PIECE bytes, set-associative (no allocation per piece);
    /// their bytes are in `piece_bytes`, their tokens in `arena`.
    long: HugeTable<LongEntry>,
    piece_bytes: Vec<u8>,
    arena: Vec<u32>,
    scratch: Vec<u32>,
    pairs: PairCache,
}

impl PieceCache {
    fn reset(&mut self, uid: u64) {
        self.l1.clear();
        self.l1.resize(1 << L1_BITS, Entry::default());
        // Level 2 (8 MiB) is allocated once level 1 has missed L2_AFTER_MISSES times, so
        // encoding a few short strings stays cheap.
        self.l2 = HugeTable::default();
        self.l1_misses = 0;
        self.long = HugeTable::default();
        self.piece_bytes.clear();
        self.arena.clear();
        self.pairs = PairCache::new();
        self.uid = uid;
    }

    /// Tokens of `scratch` as a cache entry for key `(k0, k1)`.
    #[inline]
    fn make_entry(&mut self, k0: u64, k1: u64) -> Entry {
        let n = self.scratch.len();
        let mut t = [0u32; 3];
        if n <= 3 {
            t[..n].copy_from_slice(&self.scratch);
            Entry {
                k0,
                k1,
                n: n as u32,
                t,
            }
        } else {
            t[0] = self.arena.len() as u32;
            t[1] = n as u32;
            self.arena.extend_from_slice(&self.scratch);
            Entry { k0, k1, n: EXT, t }
        }
    }
}

/// Tokenizers with a cache on each thread (using more reuses the least recently used one).
const CACHES_PER_THREAD: usize = 3;
const L2_AFTER_MISSES: u32 = 2048;

thread_local! {
    static CACHES: RefCell<Vec<PieceCache>> = const { RefCell::new(Vec::new()) };
}

/// One chunk's share of the batch output: its slice of the tokens and of the offsets, its
/// tokens and per-document counts, and the index of its first token.
type FillJob<'a> = (
    &'a mut [std::mem::MaybeUninit<u32>],
    &'a mut [std::mem::MaybeUninit<i64>],
    &'a (Vec<u32>, Vec<u32>),
    i64,
);

/// Documents per parallel task are grouped to at least this many bytes.
const MIN_CHUNK_BYTES: usize = 1 << 16;

/// A rayon pool with `k` threads, created once per size and reused (so the per-thread piece
/// caches stay warm across calls).
fn pool(k: usize) -> Result<std::sync::Arc<rayon::ThreadPool>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&k) {
        return Ok(p.clone());
    }
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(k)
            .build()
            .map_err(|e| Error::invalid_argument(format!("cannot start {k} threads: {e}")))?,
    );
    pools.insert(k, p.clone());
    Ok(p)
}

impl Tokenizer {
    /// Build a tokenizer. A special token's id must not be an ordinary token with other bytes;
    /// several special tokens may share an id (the first listed is the one decoded).
    pub fn new(
        vocab: Vocab,
        pretok: Pretokenizer,
        specials: Vec<(String, u32)>,
    ) -> Result<Tokenizer> {
        let mut special_by_id = FxHashMap::default();
        for (i, (s, id)) in specials.iter().enumerate() {
            if s.is_empty() {
                return Err(Error::invalid_argument(
                    "special tokens must not be empty strings",
                ));
            }
            if let Some(b) = vocab.token_bytes(*id) {
                if b != s.as_bytes() {
                    return Err(Error::invalid_argument(format!(
                        "special token {s:?} has id {id}, which is already the ordinary token {:?}",
                        String::from_utf8_lossy(b)
                    )));
                }
            }
            // Two names may share one id (tiktoken's o200k_harmony lists `<|endofprompt|>`
            // and `<|reserved_200018|>` as 200018): both encode to it, it decodes as the first.
            special_by_id.entry(*id).or_insert(i);
            if specials[..i].iter().any(|(t, _)| t == s) {
                return Err(Error::invalid_argument(format!(
                    "special token {s:?} is listed twice"
                )));
            }
        }
        let special_ac = if specials.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(specials.iter().map(|(s, _)| s.as_bytes()))
                    .map_err(|e| Error::invalid_argument(format!("special tokens: {e}")))?,
            )
        };
        Ok(Tokenizer {
            vocab,
            pretok,
            specials,
            special_ac,
            special_by_id,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            nfc: false,
        })
    }

    /// Normalize ordinary text to Unicode NFC before encoding (Hugging Face's `NFC`
    /// normalizer). Text already in NFC — all ASCII, and nearly all real text — is detected
    /// by a quick check and encoded without a copy.
    pub fn with_nfc(mut self, on: bool) -> Self {
        self.nfc = on;
        self
    }

    /// Whether ordinary text is normalized to NFC before encoding.
    pub fn normalizes_nfc(&self) -> bool {
        self.nfc
    }

    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    pub fn pretokenizer(&self) -> &Pretokenizer {
        &self.pretok
    }

    /// `(text, id)` of every special token, in the order given at construction.
    pub fn special_tokens(&self) -> &[(String, u32)] {
        &self.specials
    }

    /// One more than the largest id (ordinary or special).
    pub fn n_vocab(&self) -> usize {
        let s = self
            .specials
            .iter()
            .map(|(_, id)| *id as usize + 1)
            .max()
            .unwrap_or(0);
        s.max(self.vocab.n_ids())
    }

    /// Bytes of token `id` (ordinary or special).
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        if let Some(b) = self.vocab.token_bytes(id) {
            return Some(b);
        }
        self.special_by_id
            .get(&id)
            .map(|&i| self.specials[i].0.as_bytes())
    }

    /// Encode `text` ignoring special tokens into `sink`.
    fn encode_pieces<S: Sink>(&self, text: &str, sink: &mut S) -> Result<()> {
        if self.nfc && !text.is_ascii() {
            use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
            if is_nfc_quick(text.chars()) != IsNormalized::Yes {
                let normalized: String = text.nfc().collect();
                return self.encode_pieces_normalized(&normalized, sink);
            }
        }
        self.encode_pieces_normalized(text, sink)
    }

    fn encode_pieces_normalized<S: Sink>(&self, text: &str, sink: &mut S) -> Result<()> {
        let s = text.as_bytes();
        CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let tick = caches.iter().map(|c| c.last_used).max().unwrap_or(0) + 1;
            let idx = match caches.iter().position(|c| c.uid == self.uid) {
                Some(i) => i,
                None => {
                    let i = if caches.len() < CACHES_PER_THREAD {
                        caches.push(PieceCache::default());
                        caches.len() - 1
                    } else {
                        (0..caches.len())
                            .min_by_key(|&i| caches[i].last_used)
                            .unwrap_or(0)
                    };
                    caches[i].reset(self.uid);
                    i
                }
            };
            let c = &mut caches[idx];
            c.last_used = tick;
            if c.arena.len() > ARENA_MAX || c.piece_bytes.len() > 4 * ARENA_MAX {
                c.reset(self.uid);
            }
            let vocab = &self.vocab;
            self.pretok.split(text, |a, b| {
                let len = b - a;
                if len == 1 {
                    let id = vocab.byte_ids[s[a] as usize];
                    if id != u32::MAX {
                        sink.one(id);
                    }
                    return;
                }
                if len <= SHORT_MAX {
                    let (k0, k1, h) = short_key(s, a, b);
                    let i1 = (h >> (64 - L1_BITS)) as usize;
                    let e = &c.l1[i1];
                    if e.k0 == k0 && e.k1 == k1 {
                        sink.entry(e, &c.arena);
                        return;
                    }
                    if c.l2.is_empty() {
                        c.l1_misses += 1;
                        if c.l1_misses >= L2_AFTER_MISSES {
                            c.l2 = HugeTable::zeroed(1 << L2_BITS);
                        }
                    }
                    let l2 = !c.l2.is_empty();
                    // The bits below level 1's (the low bits of a multiplicative hash are weak).
                    let set = (h >> (64 - L1_BITS - L2_BITS)) as usize & ((1 << L2_BITS) - 1);
                    for w in 0..if l2 { L2_WAYS } else { 0 } {
                        let e = c.l2[set].0[w];
                        if e.k0 == k0 && e.k1 == k1 {
                            c.l1[i1] = e;
                            sink.entry(&e, &c.arena);
                            return;
                        }
                    }
                    let piece = &s[a..b];
                    c.scratch.clear();
                    match if vocab.whole_piece_lookup {
                        vocab.token_id_key16([k0, k1])
                    } else {
                        None
                    } {
                        Some(id) => c.scratch.push(id),
                        None => vocab.encode_piece_merges(piece, &mut c.scratch, &mut c.pairs),
                    }
                    let e = c.make_entry(k0, k1);
                    // Replace an empty way, else the way picked by more hash bits.
                    if l2 {
                        let w = (0..L2_WAYS)
                            .find(|&w| c.l2[set].0[w].k1 == 0)
                            .unwrap_or((h >> 20) as usize % L2_WAYS);
                        c.l2[set].0[w] = e;
                    }
                    c.l1[i1] = e;
                    sink.entry(&e, &c.arena);
                    return;
                }
                let piece = &s[a..b];
                let cacheable = len <= CACHE_MAX_PIECE;
                let hash = if cacheable {
                    xxhash_rust::xxh3::xxh3_64(piece)
                } else {
                    0
                };
                let set = (hash >> (64 - LONG_BITS)) as usize * LONG_WAYS;
                if cacheable && !c.long.is_empty() {
                    for w in 0..LONG_WAYS {
                        let e = c.long[set + w];
                        if e.hash == hash
                            && e.blen as usize == len
                            && c.piece_bytes[e.boff as usize..e.boff as usize + len] == *piece
                        {
                            sink.slice(&c.arena[e.toff as usize..(e.toff + e.tn as u32) as usize]);
                            return;
                        }
                    }
                }
                c.scratch.clear();
                match if vocab.whole_piece_lookup {
                    vocab.token_id(piece)
                } else {
                    None
                } {
                    Some(id) => c.scratch.push(id),
                    None => vocab.encode_piece_merges(piece, &mut c.scratch, &mut c.pairs),
                }
                sink.slice(&c.scratch);
                if cacheable {
                    if c.long.is_empty() {
                        c.long = HugeTable::zeroed(LONG_WAYS << LONG_BITS);
                    }
                    let e = LongEntry {
                        hash,
                        boff: c.piece_bytes.len() as u32,
                        toff: c.arena.len() as u32,
                        blen: len as u16,
                        tn: c.scratch.len() as u16,
                    };
                    c.piece_bytes.extend_from_slice(piece);
                    c.arena.extend_from_slice(&c.scratch);
                    // Replace an empty way, else the way picked by more hash bits.
                    let w = (0..LONG_WAYS)
                        .find(|&w| c.long[set + w].blen == 0)
                        .unwrap_or((hash >> 20) as usize % LONG_WAYS);
                    c.long[set + w] = e;
                }
            })
        })
    }

    /// Append the tokens of `text` to `out`, treating special-token text as ordinary text.
    pub fn encode_ordinary_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        self.encode_pieces(text, out)
    }

    pub fn encode_ordinary(&self, text: &str) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_ordinary_into(text, &mut out)?;
        Ok(out)
    }

    /// The first special token of `mask` in `text` at or after byte `from`: `(start, index)`.
    fn find_special(&self, text: &str, from: usize, mask: &[bool]) -> Option<(usize, usize)> {
        let ac = self.special_ac.as_ref()?;
        let mut pos = from;
        while pos <= text.len() {
            let m = ac.find(Input::new(text).span(pos..text.len()))?;
            let idx = m.pattern().as_usize();
            if mask[idx] {
                return Some((m.start(), idx));
            }
            pos = m.start() + 1;
        }
        None
    }

    /// Error if `text` contains a special token that is disallowed and not allowed.
    pub fn check_disallowed(
        &self,
        text: &str,
        allowed: &SpecialSet,
        disallowed: &SpecialSet,
    ) -> Result<()> {
        if self.specials.is_empty() || *disallowed == SpecialSet::None {
            return Ok(());
        }
        let a = allowed.mask(self.specials.len());
        let d: Vec<bool> = disallowed
            .mask(self.specials.len())
            .iter()
            .zip(&a)
            .map(|(&d, &a)| d && !a)
            .collect();
        if !d.iter().any(|&x| x) {
            return Ok(());
        }
        if let Some((_, idx)) = self.find_special(text, 0, &d) {
            let tok = &self.specials[idx].0;
            return Err(Error::invalid_argument(format!(
                "Encountered text corresponding to disallowed special token '{tok}'.\n\
                 If you want this text to be encoded as a special token, pass it to `allowed_special`, \
                 e.g. `allowed_special={{'{tok}', ...}}`.\n\
                 If you want this text to be encoded as normal text, disable the check for this token \
                 by passing `disallowed_special=(enc.special_tokens_set - {{'{tok}'}})`.\n\
                 To disable this check for all special tokens, pass `disallowed_special=()`."
            )));
        }
        Ok(())
    }

    /// tiktoken's `encode`: allowed special tokens become their ids; a disallowed one is an error.
    pub fn encode_into(
        &self,
        text: &str,
        allowed: &SpecialSet,
        disallowed: &SpecialSet,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        self.check_disallowed(text, allowed, disallowed)?;
        let a = allowed.mask(self.specials.len());
        if !a.iter().any(|&x| x) {
            return self.encode_ordinary_into(text, out);
        }
        let mut start = 0;
        while let Some((pos, idx)) = self.find_special(text, start, &a) {
            self.encode_ordinary_into(&text[start..pos], out)?;
            let (tok, id) = &self.specials[idx];
            out.push(*id);
            start = pos + tok.len();
        }
        self.encode_ordinary_into(&text[start..], out)
    }

    pub fn encode(
        &self,
        text: &str,
        allowed: &SpecialSet,
        disallowed: &SpecialSet,
    ) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_into(text, allowed, disallowed, &mut out)?;
        Ok(out)
    }

    /// Number of tokens of `text` (ordinary encoding) without materialising them.
    pub fn count_ordinary(&self, text: &str) -> Result<usize> {
        let mut n = Counter(0);
        self.encode_pieces(text, &mut n)?;
        Ok(n.0)
    }

    /// Encode many documents: flat tokens and `n + 1` offsets. Results never depend on the
    /// thread count. `num_threads = None` uses the global rayon pool; `Some(1)` runs inline.
    pub fn encode_batch(
        &self,
        docs: Docs<'_>,
        allowed: &SpecialSet,
        disallowed: &SpecialSet,
        ordinary: bool,
        num_threads: Option<usize>,
    ) -> Result<(Vec<u32>, Vec<i64>)> {
        let n = docs.len();
        // Contiguous chunks of documents of at least MIN_CHUNK_BYTES each.
        let mut bounds = vec![0usize];
        let mut acc = 0;
        for i in 0..n {
            acc += docs.range(i).len() + 16;
            if acc >= MIN_CHUNK_BYTES {
                bounds.push(i + 1);
                acc = 0;
            }
        }
        if *bounds.last().unwrap_or(&0) != n {
            bounds.push(n);
        }
        // Everything below runs inside the parallel part: UTF-8 checks, encoding, and the
        // copy into the one output buffer.
        // a long batch stops at the next chunk once the caller raises its interrupt (Ctrl-C)
        let stop = crate::interrupt::Interrupt::current();
        let run_chunk = |c: usize| -> Result<(Vec<u32>, Vec<u32>)> {
            stop.check()?;
            let (a, b) = (bounds[c], bounds[c + 1]);
            let bytes = docs.range(b.saturating_sub(1)).end - docs.range(a).start;
            let mut toks = Vec::with_capacity(bytes / 3 + 16);
            let mut lens = Vec::with_capacity(b - a);
            for i in a..b {
                let t = std::str::from_utf8(docs.get(i)).map_err(|e| {
                    Error::invalid_data(format!("document {i}"), format!("invalid UTF-8: {e}"))
                })?;
                let before = toks.len();
                let r = if ordinary {
                    self.encode_ordinary_into(t, &mut toks)
                } else {
                    self.encode_into(t, allowed, disallowed, &mut toks)
                };
                r.map_err(|e| match e {
                    Error::InvalidArgument(m) => Error::invalid_data(format!("document {i}"), m),
                    other => other,
                })?;
                lens.push((toks.len() - before) as u32);
            }
            Ok((toks, lens))
        };
        let n_chunks = bounds.len() - 1;
        let run_all = |parallel: bool| -> Result<(Vec<u32>, Vec<i64>)> {
            let results: Vec<Result<(Vec<u32>, Vec<u32>)>> = if parallel {
                // One task per chunk (64 KiB or more): see `crate::par` for why.
                (0..n_chunks)
                    .into_par_iter()
                    .with_max_len(1)
                    .map(run_chunk)
                    .collect()
            } else {
                (0..n_chunks).map(run_chunk).collect()
            };
            // The first error in document order, whatever the thread count.
            let parts: Vec<(Vec<u32>, Vec<u32>)> = results.into_iter().collect::<Result<_>>()?;
            // Where each chunk's tokens start (prefix sums), then one buffer filled in place.
            let mut starts = Vec::with_capacity(n_chunks + 1);
            starts.push(0usize);
            for (t, _) in &parts {
                starts.push(starts[starts.len() - 1] + t.len());
            }
            let total = starts[n_chunks];
            let mut tokens: Vec<u32> = Vec::with_capacity(total);
            let mut offsets: Vec<i64> = Vec::with_capacity(n + 1);
            {
                let mut tok_rest = &mut tokens.spare_capacity_mut()[..total];
                let mut off_rest = &mut offsets.spare_capacity_mut()[..n + 1];
                off_rest[0].write(0);
                off_rest = &mut off_rest[1..];
                let mut jobs = Vec::with_capacity(n_chunks);
                for (c, part) in parts.iter().enumerate() {
                    let (t, rest) = tok_rest.split_at_mut(part.0.len());
                    tok_rest = rest;
                    let (o, rest) = off_rest.split_at_mut(part.1.len());
                    off_rest = rest;
                    jobs.push((t, o, part, starts[c] as i64));
                }
                let fill = |(t, o, part, base): FillJob<'_>| {
                    for (d, &x) in t.iter_mut().zip(&part.0) {
                        d.write(x);
                    }
                    let mut acc = base;
                    for (d, &l) in o.iter_mut().zip(&part.1) {
                        acc += l as i64;
                        d.write(acc);
                    }
                };
                if parallel {
                    jobs.into_par_iter().with_max_len(1).for_each(fill);
                } else {
                    jobs.into_iter().for_each(fill);
                }
            }
            // SAFETY: the chunks' slices tile `tokens[..total]` and `offsets[1..n + 1]`
            // exactly (their lengths sum to `total` and `n`), and every element was written.
            unsafe {
                tokens.set_len(total);
                offsets.set_len(n + 1);
            }
            Ok((tokens, offsets))
        };
        match num_threads {
            Some(1) => run_all(false),
            Some(k) => pool(k)?.install(|| run_all(true)),
            None => run_all(true),
        }
    }

    /// Concatenated bytes of `ids`; an unknown id is an error naming it and its position.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for (i, &id) in ids.iter().enumerate() {
            let b = self.token_bytes(id).ok_or_else(|| {
                Error::UnknownToken(format!(
                    "token id {id} (at position {i}) is not in the vocabulary"
                ))
            })?;
            out.extend_from_slice(b);
        }
        Ok(out)
    }

    /// Byte offset where each token starts in `decode_bytes(ids)`.
    pub fn token_offsets(&self, ids: &[u32]) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(ids.len());
        let mut o = 0u64;
        for (i, &id) in ids.iter().enumerate() {
            let b = self.token_bytes(id).ok_or_else(|| {
                Error::UnknownToken(format!(
                    "token id {id} (at position {i}) is not in the vocabulary"
                ))
            })?;
            out.push(o);
            o += b.len() as u64;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpe::pretok::CL100K_PATTERN;
    use crate::text::corpus::OwnedDocs;

    fn tok() -> Tokenizer {
        let mut toks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for (i, t) in [
            "he", "ll", "hell", "hello", " w", " wor", "or", "ld", " world", "<|",
        ]
        .iter()
        .enumerate()
        {
            toks.push((t.as_bytes().to_vec(), 256 + i as u32));
        }
        let v = Vocab::from_ranks(toks).unwrap();
        let specials = vec![
            ("<|end|>".to_string(), 1000),
            ("<|endoftext|>".to_string(), 1001),
        ];
        Tokenizer::new(v, Pretokenizer::new(CL100K_PATTERN).unwrap(), specials).unwrap()
    }

    #[test]
    fn two_special_names_may_share_an_id() {
        // tiktoken's o200k_harmony: <|endofprompt|> and <|reserved_200018|> are both 200018.
        let v = Vocab::from_ranks((0..=255u8).map(|b| (vec![b], b as u32)).collect()).unwrap();
        let specials = vec![
            ("<|a|>".to_string(), 300),
            ("<|b|>".to_string(), 300),
            ("<|c|>".to_string(), 301),
        ];
        let t = Tokenizer::new(v, Pretokenizer::new(CL100K_PATTERN).unwrap(), specials).unwrap();
        let ids = t.encode("<|b|>x<|a|>", &SpecialSet::All, &SpecialSet::All).unwrap();
        assert_eq!(ids, vec![300, b'x' as u32, 300]);
        assert_eq!(t.decode_bytes(&[300, 301]).unwrap(), b"<|a|><|c|>");
        assert_eq!(t.n_vocab(), 302);
    }

    #[test]
    fn specials_follow_tiktoken_rules() {
        let t = tok();
        let text = "hello<|end|> world<|endoftext|>";
        let all = t.encode(text, &SpecialSet::All, &SpecialSet::All).unwrap();
        assert_eq!(all, vec![259, 1000, 264, 1001]);
        let e = t
            .encode(text, &SpecialSet::Some(vec![0]), &SpecialSet::All)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'<|endoftext|>'"), "{e}");
        let only_first = t
            .encode(text, &SpecialSet::Some(vec![0]), &SpecialSet::None)
            .unwrap();
        assert_eq!(&only_first[..3], &[259, 1000, 264]);
        assert_eq!(t.decode_bytes(&only_first).unwrap(), text.as_bytes());
        assert_eq!(
            t.encode_ordinary(text).unwrap(),
            only_first[..1]
                .iter()
                .chain(&t.encode_ordinary("<|end|> world<|endoftext|>").unwrap())
                .copied()
                .collect::<Vec<_>>()
        );
        assert!(t
            .decode_bytes(&[5000])
            .unwrap_err()
            .to_string()
            .contains("5000"));
        assert_eq!(
            t.count_ordinary(text).unwrap(),
            t.encode_ordinary(text).unwrap().len()
        );
    }

    /// Tokens of `text` without any cache: pre-tokenize, then BPE each piece.
    fn uncached(t: &Tokenizer, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for r in t.pretokenizer().pieces(text).unwrap() {
            t.vocab().encode_piece(&text.as_bytes()[r], &mut out);
        }
        out
    }

    #[test]
    fn caches_agree_with_uncached_encoding() {
        // Many distinct pieces (level 2 gets allocated, entries get evicted), pieces of more
        // than 3 tokens, long pieces, and several tokenizers taking turns on one thread
        // (more than CACHES_PER_THREAD, so caches are reused).
        let toks: Vec<Tokenizer> = (0..CACHES_PER_THREAD + 2)
            .map(|k| {
                let mut v: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
                let extra = [
                    "he", "ll", "hell", "o w", "ab", "abc", "ca", "cab", "zz", "zzzz",
                ];
                for (i, t) in extra.iter().skip(k % 3).enumerate() {
                    v.push((t.as_bytes().to_vec(), 256 + i as u32));
                }
                let v = Vocab::from_ranks(v).unwrap();
                Tokenizer::new(v, Pretokenizer::new(CL100K_PATTERN).unwrap(), vec![]).unwrap()
            })
            .collect();
        let mut x = 12345u64;
        let mut word = |len: usize| -> String {
            (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    b"abczhelo"[(x >> 60) as usize % 8] as char
                })
                .collect()
        };
        let docs: Vec<String> = (0..300)
            .map(|i| {
                let mut d = String::new();
                for j in 0..40 {
                    d.push(' ');
                    d.push_str(&word(1 + (i + j) % 14));
                    if j % 8 == 0 {
                        // Long pieces (16..=256 bytes) go through the set-associative cache.
                        d.push(' ');
                        d.push_str(&word(16 + (i * 7 + j) % 40));
                    }
                }
                d.push(' ');
                d.push_str(&word(200 + i % 100));
                d
            })
            .collect();
        // Round 0: one tokenizer sees all documents (over L2_AFTER_MISSES distinct pieces);
        // then they take turns.
        for round in 0..3 {
            for (i, d) in docs.iter().enumerate() {
                let t = &toks[if round == 0 {
                    0
                } else {
                    (i + round) % toks.len()
                }];
                assert_eq!(t.encode_ordinary(d).unwrap(), uncached(t, d), "doc {i}");
                assert_eq!(t.count_ordinary(d).unwrap(), uncached(t, d).len());
            }
        }
    }

    #[test]
    fn batch_is_thread_count_invariant() {
        let t = tok();
        let docs: OwnedDocs = (0..3000)
            .map(|i| format!("hello world {i} <|end|> hell{}", "o".repeat(i % 7)))
            .collect();
        let one = t
            .encode_batch(
                docs.view(),
                &SpecialSet::All,
                &SpecialSet::All,
                false,
                Some(1),
            )
            .unwrap();
        let two = t
            .encode_batch(
                docs.view(),
                &SpecialSet::All,
                &SpecialSet::All,
                false,
                Some(2),
            )
            .unwrap();
        let global = t
            .encode_batch(docs.view(), &SpecialSet::All, &SpecialSet::All, false, None)
            .unwrap();
        assert_eq!(one, two);
        assert_eq!(one, global);
        for (i, d) in docs.view().iter().enumerate().step_by(97) {
            let want = t
                .encode(
                    std::str::from_utf8(d).unwrap(),
                    &SpecialSet::All,
                    &SpecialSet::All,
                )
                .unwrap();
            assert_eq!(&one.0[one.1[i] as usize..one.1[i + 1] as usize], &want[..]);
        }
        let err = t
            .encode_batch(
                docs.view(),
                &SpecialSet::None,
                &SpecialSet::All,
                false,
                Some(2),
            )
            .unwrap_err();
        assert!(err.to_string().contains("document 0"), "{err}");
    }
}
