//! The full tokenizer: pre-tokenizer + vocabulary + special tokens, with a per-thread
//! pretoken cache, batches on a rayon pool and decoding.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use aho_corasick::{AhoCorasick, Input, MatchKind};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::pretok::Pretokenizer;
use super::vocab::Vocab;
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
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// Pieces up to this many bytes are cached.
const CACHE_MAX_PIECE: usize = 64;
const CACHE_MAX_ENTRIES: usize = 1 << 17;

/// Slots of the direct-mapped cache of short pieces (256 KiB: stays in L2, unlike the
/// vocabulary's hash table, so frequent pieces cost no cache miss).
const HOT_SLOTS: usize = 1 << 13;
const HOT_MAX_PIECE: usize = 15;
const HOT_MAX_TOKENS: usize = 3;

/// A cached piece (≤ 15 bytes packed with its length into `k0, k1`) and its ≤ 3 tokens.
#[derive(Clone, Copy, Default)]
struct HotEntry {
    k0: u64,
    k1: u64,
    n: u32,
    t: [u32; HOT_MAX_TOKENS],
}

/// Pack `s[a..b]` (2..=15 bytes) with its length into two words and pick its slot. Reads 16
/// bytes at once when the buffer allows (no byte-wise copy, no store-forwarding stall).
#[inline(always)]
fn hot_key(s: &[u8], a: usize, b: usize) -> (u64, u64, usize) {
    let len = b - a;
    let (w0, w1) = if a + 16 <= s.len() {
        let mut x = [0u8; 8];
        let mut y = [0u8; 8];
        x.copy_from_slice(&s[a..a + 8]);
        y.copy_from_slice(&s[a + 8..a + 16]);
        (u64::from_le_bytes(x), u64::from_le_bytes(y))
    } else {
        let mut buf = [0u8; 16];
        buf[..len].copy_from_slice(&s[a..b]);
        let mut x = [0u8; 8];
        let mut y = [0u8; 8];
        x.copy_from_slice(&buf[..8]);
        y.copy_from_slice(&buf[8..]);
        (u64::from_le_bytes(x), u64::from_le_bytes(y))
    };
    let m0 = if len >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * len)) - 1
    };
    let m1 = if len <= 8 {
        0
    } else {
        (1u64 << (8 * (len - 8))) - 1
    };
    let k0 = w0 & m0;
    let k1 = (w1 & m1) | ((len as u64) << 56);
    let h = (k0 ^ k1.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (k0, k1, (h >> (64 - 13)) as usize & (HOT_SLOTS - 1))
}

#[derive(Default)]
struct PieceCache {
    uid: u64,
    /// Multi-token pieces: bytes -> range of `arena`.
    map: FxHashMap<Box<[u8]>, (u32, u32)>,
    arena: Vec<u32>,
    /// Direct-mapped cache of short pieces; an all-zero entry is empty (length byte 0).
    hot: Vec<HotEntry>,
}

thread_local! {
    static CACHE: RefCell<PieceCache> = RefCell::new(PieceCache::default());
}

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
    /// Build a tokenizer. Special tokens must not contain each other's ids with different bytes.
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
            if special_by_id.insert(*id, i).is_some() {
                return Err(Error::invalid_argument(format!(
                    "two special tokens have the id {id}"
                )));
            }
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
        })
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

    /// Encode `text` ignoring special tokens, calling `sink` with each piece's tokens.
    fn for_each_piece_tokens<F: FnMut(&[u32])>(&self, text: &str, mut sink: F) -> Result<()> {
        let s = text.as_bytes();
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let cache = &mut *cache;
            if cache.uid != self.uid {
                cache.map.clear();
                cache.arena.clear();
                cache.hot.clear();
                cache.hot.resize(HOT_SLOTS, HotEntry::default());
                cache.uid = self.uid;
            }
            let mut scratch: Vec<u32> = Vec::with_capacity(16);
            self.pretok.split(text, |a, b| {
                let piece = &s[a..b];
                if piece.len() == 1 {
                    let id = self.vocab.byte_ids[piece[0] as usize];
                    if id != u32::MAX {
                        sink(&[id]);
                    }
                    return;
                }
                let hot = piece.len() <= HOT_MAX_PIECE;
                let (k0, k1, slot) = if hot { hot_key(s, a, b) } else { (0, 0, 0) };
                if hot {
                    let h = &cache.hot[slot];
                    if h.k0 == k0 && h.k1 == k1 {
                        sink(&h.t[..h.n as usize]);
                        return;
                    }
                }
                scratch.clear();
                let whole = if self.vocab.whole_piece_lookup {
                    self.vocab.token_id(piece)
                } else {
                    None
                };
                if let Some(id) = whole {
                    scratch.push(id);
                } else if let Some(&(o, l)) = if piece.len() <= CACHE_MAX_PIECE {
                    cache.map.get(piece)
                } else {
                    None
                } {
                    scratch.extend_from_slice(&cache.arena[o as usize..(o + l) as usize]);
                } else {
                    self.vocab.encode_piece_merges(piece, &mut scratch);
                    if piece.len() <= CACHE_MAX_PIECE {
                        if cache.map.len() >= CACHE_MAX_ENTRIES {
                            cache.map.clear();
                            cache.arena.clear();
                        }
                        let o = cache.arena.len() as u32;
                        cache.arena.extend_from_slice(&scratch);
                        cache.map.insert(piece.into(), (o, scratch.len() as u32));
                    }
                }
                sink(&scratch);
                if hot && scratch.len() <= HOT_MAX_TOKENS {
                    let mut t = [0u32; HOT_MAX_TOKENS];
                    t[..scratch.len()].copy_from_slice(&scratch);
                    cache.hot[slot] = HotEntry {
                        k0,
                        k1,
                        n: scratch.len() as u32,
                        t,
                    };
                }
            })
        })
    }

    /// Append the tokens of `text` to `out`, treating special-token text as ordinary text.
    pub fn encode_ordinary_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        self.for_each_piece_tokens(text, |t| out.extend_from_slice(t))
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
        let mut n = 0;
        self.for_each_piece_tokens(text, |t| n += t.len())?;
        Ok(n)
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
        let mut texts = Vec::with_capacity(n);
        for i in 0..n {
            texts.push(std::str::from_utf8(docs.get(i)).map_err(|e| {
                Error::invalid_data(format!("document {i}"), format!("invalid UTF-8: {e}"))
            })?);
        }
        // Contiguous chunks of documents of at least MIN_CHUNK_BYTES each.
        let mut bounds = vec![0usize];
        let mut acc = 0;
        for (i, t) in texts.iter().enumerate() {
            acc += t.len() + 16;
            if acc >= MIN_CHUNK_BYTES {
                bounds.push(i + 1);
                acc = 0;
            }
        }
        if *bounds.last().unwrap_or(&0) != n {
            bounds.push(n);
        }
        let run_chunk = |c: usize| -> Result<(Vec<u32>, Vec<u32>)> {
            let (a, b) = (bounds[c], bounds[c + 1]);
            let mut toks = Vec::new();
            let mut lens = Vec::with_capacity(b - a);
            for (i, t) in texts[a..b].iter().enumerate() {
                let before = toks.len();
                let r = if ordinary {
                    self.encode_ordinary_into(t, &mut toks)
                } else {
                    self.encode_into(t, allowed, disallowed, &mut toks)
                };
                r.map_err(|e| match e {
                    Error::InvalidArgument(m) => {
                        Error::invalid_data(format!("document {}", a + i), m)
                    }
                    other => other,
                })?;
                lens.push((toks.len() - before) as u32);
            }
            Ok((toks, lens))
        };
        let n_chunks = bounds.len() - 1;
        let results: Vec<Result<(Vec<u32>, Vec<u32>)>> = match num_threads {
            Some(1) => (0..n_chunks).map(run_chunk).collect(),
            Some(k) => pool(k)?.install(|| (0..n_chunks).into_par_iter().map(run_chunk).collect()),
            None => (0..n_chunks).into_par_iter().map(run_chunk).collect(),
        };
        let mut total = 0;
        let mut parts = Vec::with_capacity(results.len());
        for r in results {
            let r = r?;
            total += r.0.len();
            parts.push(r);
        }
        let mut tokens = Vec::with_capacity(total);
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0i64);
        for (toks, lens) in parts {
            let mut o = *offsets.last().unwrap_or(&0);
            for l in lens {
                o += l as i64;
                offsets.push(o);
            }
            tokens.extend_from_slice(&toks);
        }
        Ok((tokens, offsets))
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
