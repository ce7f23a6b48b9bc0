//! Byte-level vocabularies: token bytes ↔ ids plus the rule that decides which adjacent
//! pair of tokens merges first.

use rustc_hash::FxHashMap;

use crate::{Error, Result};

/// How adjacent tokens merge.
#[derive(Clone, Debug)]
pub(crate) enum MergeRule {
    /// tiktoken: a pair merges when the concatenation of its bytes is a token; its priority
    /// is that token's rank (= id). Lowest rank first, leftmost on ties.
    Ranks,
    /// An ordered merge list (Hugging Face BPE): `(left id, right id) → priority`; the
    /// merged id is [`Vocab::merged_id`] of the priority.
    Pairs(FxHashMap<u64, u32>),
}

#[inline(always)]
pub(crate) fn pair_key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

const NONE: u32 = u32::MAX;

/// Bits of each id and of the priority in the pair memo's 8-byte slots
/// (`left << 43 | right << 22 | priority`).
pub(crate) const MEMO_ID_BITS: u32 = 21;
pub(crate) const MEMO_PRIO_BITS: u32 = 22;
const _: () = assert!(2 * MEMO_ID_BITS + MEMO_PRIO_BITS == 64);

/// The first 8 bytes of `b` (at least 8 long) as a little-endian word: one load.
#[inline(always)]
pub(crate) fn load8(b: &[u8]) -> u64 {
    match b.get(..8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
        Some(w) => u64::from_le_bytes(w),
        None => 0,
    }
}

/// Longest byte string that [`key16`] packs.
pub(crate) const KEY16_MAX: usize = 15;

/// Pack `s[a..b]` (at most 15 bytes) with its length into two words: the bytes little-endian,
/// zero-padded, the length in the top byte. Reads 16 bytes at once when `s` allows.
#[inline(always)]
pub(crate) fn key16(s: &[u8], a: usize, b: usize) -> [u64; 2] {
    let len = b - a;
    debug_assert!(len <= KEY16_MAX);
    let (w0, w1) = match s.get(a..a + 16) {
        Some(c) => (load8(&c[..8]), load8(&c[8..])),
        None => {
            let mut buf = [0u8; 16];
            for (d, &c) in buf.iter_mut().zip(&s[a..b]) {
                *d = c;
            }
            (load8(&buf[..8]), load8(&buf[8..]))
        }
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
    [w0 & m0, (w1 & m1) | ((len as u64) << 56)]
}

/// A byte-level BPE vocabulary.
#[derive(Clone, Debug)]
pub struct Vocab {
    /// Bytes of token `id` are `data[offs[id]..offs[id + 1]]`; absent ids have `present = false`.
    data: Vec<u8>,
    offs: Vec<u32>,
    present: Vec<bool>,
    /// Tokens of more than 15 bytes.
    ids: FxHashMap<Box<[u8]>, u32>,
    /// Tokens of at most 15 bytes (97% of o200k_base) keyed by [`key16`] (no memcmp, no
    /// pointer to follow): the hot path of pre-token and pair lookups.
    short: FxHashMap<[u64; 2], u32>,
    pub(crate) byte_ids: [u32; 256],
    pub(crate) rule: MergeRule,
    /// Emit a piece that is itself a token directly (tiktoken; HF `ignore_merges`).
    pub(crate) whole_piece_lookup: bool,
    /// Longest token in bytes: longer spans cannot be tokens.
    pub(crate) max_token_len: usize,
    /// One more than the largest merge priority (rank or merge index).
    pub(crate) priority_bound: u64,
    /// Merge priority of every pair of single-byte tokens, indexed by
    /// `first byte << 8 | second byte` (`NONE` when they do not merge): a piece's first
    /// round of pair lookups without hashing.
    pub(crate) byte_pairs: Box<[u32]>,
    /// The merged id of each priority of a merge list (empty for ranks: priority = id).
    prio_ids: Box<[u32]>,
    /// Whether ids and priorities fit the pair memo's packed 8-byte slots.
    pub(crate) memo_fits: bool,
    /// Whether long pieces may be merged character by character (the memos fit and every
    /// byte is a token, so no byte drops out of a piece).
    pub(crate) chunks_fit: bool,
    len: usize,
}

impl Vocab {
    fn build(
        tokens: Vec<(Vec<u8>, u32)>,
        rule: MergeRule,
        whole_piece_lookup: bool,
    ) -> Result<Vocab> {
        let n_ids = tokens
            .iter()
            .map(|(_, id)| *id as usize + 1)
            .max()
            .unwrap_or(0);
        let mut slots: Vec<Option<&[u8]>> = vec![None; n_ids];
        let mut ids: FxHashMap<Box<[u8]>, u32> = FxHashMap::default();
        ids.reserve(tokens.len());
        for (bytes, id) in &tokens {
            if *id == NONE {
                return Err(Error::invalid_data(
                    "vocabulary",
                    format!("token id {id} is too large"),
                ));
            }
            if slots[*id as usize].is_some() {
                return Err(Error::invalid_data(
                    "vocabulary",
                    format!("token id {id} appears twice"),
                ));
            }
            slots[*id as usize] = Some(bytes);
            if bytes.is_empty() {
                return Err(Error::invalid_data(
                    "vocabulary",
                    format!("token id {id} has empty bytes"),
                ));
            }
            if let Some(prev) = ids.insert(bytes.clone().into_boxed_slice(), *id) {
                return Err(Error::invalid_data(
                    "vocabulary",
                    format!(
                        "tokens {prev} and {id} have the same bytes {:?}",
                        String::from_utf8_lossy(bytes)
                    ),
                ));
            }
        }
        let mut data = Vec::new();
        let mut offs = Vec::with_capacity(n_ids + 1);
        let mut present = Vec::with_capacity(n_ids);
        offs.push(0u32);
        for s in &slots {
            if let Some(b) = s {
                data.extend_from_slice(b);
            }
            present.push(s.is_some());
            if data.len() > u32::MAX as usize {
                return Err(Error::invalid_data(
                    "vocabulary",
                    "token bytes exceed 4 GiB",
                ));
            }
            offs.push(data.len() as u32);
        }
        let mut byte_ids = [NONE; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            if let Some(&id) = ids.get(&[b as u8][..]) {
                *slot = id;
            }
        }
        let max_token_len = tokens.iter().map(|(b, _)| b.len()).max().unwrap_or(0);
        let short = tokens
            .iter()
            .filter(|(b, _)| b.len() <= KEY16_MAX)
            .map(|(b, id)| (key16(b, 0, b.len()), *id))
            .collect();
        // Longer tokens (3 % of o200k_base) stay in a small byte-keyed map that fits in cache.
        ids.retain(|b, _| b.len() > KEY16_MAX);
        ids.shrink_to_fit();
        Ok(Vocab {
            data,
            offs,
            present,
            ids,
            short,
            byte_ids,
            rule,
            whole_piece_lookup,
            max_token_len,
            priority_bound: n_ids as u64,
            byte_pairs: Box::default(),
            prio_ids: Box::default(),
            memo_fits: false,
            chunks_fit: false,
            len: tokens.len(),
        })
    }

    /// A tiktoken-style vocabulary: `(token bytes, rank)`; the rank is the token id and the
    /// merge priority. Every single byte must be a token.
    pub fn from_ranks(tokens: Vec<(Vec<u8>, u32)>) -> Result<Vocab> {
        let mut v = Vocab::build(tokens, MergeRule::Ranks, true)?;
        v.fill_byte_pairs();
        if let Some(b) = v.byte_ids.iter().position(|&id| id == NONE) {
            return Err(Error::invalid_data(
                "vocabulary",
                format!("no token for the single byte 0x{b:02x}"),
            ));
        }
        Ok(v)
    }

    /// A vocabulary with an ordered merge list (Hugging Face BPE): `merges[k] = (left, right)`
    /// has priority `k`; `left + right` must be a token. Bytes missing from the vocabulary are
    /// dropped when encoding (HF behaviour without `unk_token`).
    pub fn from_merges(
        tokens: Vec<(Vec<u8>, u32)>,
        merges: &[(Vec<u8>, Vec<u8>)],
        ignore_merges: bool,
    ) -> Result<Vocab> {
        let mut v = Vocab::build(tokens, MergeRule::Ranks, ignore_merges)?;
        let mut pairs: FxHashMap<u64, u32> = FxHashMap::default();
        pairs.reserve(merges.len());
        let mut prio_ids = vec![NONE; merges.len()];
        for (k, (a, b)) in merges.iter().enumerate() {
            let name = |x: &[u8]| String::from_utf8_lossy(x).into_owned();
            let ia = v.token_id(a).ok_or_else(|| {
                Error::invalid_data(
                    format!("merge {k}"),
                    format!("left token {:?} is not in the vocabulary", name(a)),
                )
            })?;
            let ib = v.token_id(b).ok_or_else(|| {
                Error::invalid_data(
                    format!("merge {k}"),
                    format!("right token {:?} is not in the vocabulary", name(b)),
                )
            })?;
            let mut ab = a.clone();
            ab.extend_from_slice(b);
            let iab = v.token_id(&ab).ok_or_else(|| {
                Error::invalid_data(
                    format!("merge {k}"),
                    format!("merged token {:?} is not in the vocabulary", name(&ab)),
                )
            })?;
            // A repeated pair keeps its first (lowest) priority.
            if let std::collections::hash_map::Entry::Vacant(e) = pairs.entry(pair_key(ia, ib)) {
                e.insert(k as u32);
                prio_ids[k] = iab;
            }
        }
        v.prio_ids = prio_ids.into_boxed_slice();
        v.rule = MergeRule::Pairs(pairs);
        v.priority_bound = merges.len() as u64;
        v.fill_byte_pairs();
        Ok(v)
    }

    /// Id of the token that the merge of priority `prio` produces.
    #[inline(always)]
    pub(crate) fn merged_id(&self, prio: u32) -> u32 {
        match self.prio_ids.get(prio as usize) {
            Some(&id) => id,
            None => prio,
        }
    }

    /// Also sets [`Vocab::memo_fits`] (called once the rule is final).
    fn fill_byte_pairs(&mut self) {
        self.memo_fits = (self.n_ids() as u64) < (1 << MEMO_ID_BITS) - 1
            && self.priority_bound < (1 << MEMO_PRIO_BITS) - 1;
        self.chunks_fit = self.memo_fits && self.byte_ids.iter().all(|&id| id != NONE);
        let mut t = vec![NONE; 1 << 16];
        for (k, slot) in t.iter_mut().enumerate() {
            let (x, y) = (self.byte_ids[k >> 8], self.byte_ids[k & 0xff]);
            if x == NONE || y == NONE {
                continue;
            }
            *slot = match &self.rule {
                MergeRule::Ranks => self.token_id(&[(k >> 8) as u8, k as u8]).unwrap_or(NONE),
                MergeRule::Pairs(m) => m.get(&pair_key(x, y)).copied().unwrap_or(NONE),
            };
        }
        self.byte_pairs = t.into_boxed_slice();
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One more than the largest token id.
    pub fn n_ids(&self) -> usize {
        self.present.len()
    }

    /// Bytes of token `id`.
    #[inline]
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        if i < self.present.len() && self.present[i] {
            Some(&self.data[self.offs[i] as usize..self.offs[i + 1] as usize])
        } else {
            None
        }
    }

    /// Id of the token with exactly these bytes.
    #[inline(always)]
    pub fn token_id(&self, bytes: &[u8]) -> Option<u32> {
        if bytes.len() <= KEY16_MAX {
            self.short.get(&key16(bytes, 0, bytes.len())).copied()
        } else if bytes.len() > self.max_token_len {
            None
        } else {
            self.ids.get(bytes).copied()
        }
    }

    /// Id of the token whose [`key16`] is `key`.
    #[inline(always)]
    pub(crate) fn token_id_key16(&self, key: [u64; 2]) -> Option<u32> {
        self.short.get(&key).copied()
    }

    /// Id of the token with bytes `s[a..b]`; `s` may extend past `b`.
    #[inline(always)]
    pub(crate) fn token_id_at(&self, s: &[u8], a: usize, b: usize) -> Option<u32> {
        if b - a <= KEY16_MAX {
            self.short.get(&key16(s, a, b)).copied()
        } else {
            self.token_id(&s[a..b])
        }
    }

    /// The ordered merge list `(left, right, merged)`, lowest priority first.
    ///
    /// For a rank vocabulary, token `t` (two or more bytes) is the merge of the two parts
    /// that BPE produces on `t`'s bytes using only ranks below `t` (the standard way to
    /// recover merges from tiktoken files); tokens that do not split into exactly two
    /// such parts are skipped.
    pub fn merges(&self) -> Vec<(u32, u32, u32)> {
        match &self.rule {
            MergeRule::Pairs(p) => {
                let mut v: Vec<(u32, u32, u32, u32)> = p
                    .iter()
                    .map(|(&k, &r)| (r, (k >> 32) as u32, k as u32, self.merged_id(r)))
                    .collect();
                v.sort_unstable();
                v.into_iter().map(|(_, a, b, m)| (a, b, m)).collect()
            }
            MergeRule::Ranks => {
                let mut out = Vec::new();
                for id in 0..self.n_ids() as u32 {
                    let Some(bytes) = self.token_bytes(id) else {
                        continue;
                    };
                    if bytes.len() < 2 {
                        continue;
                    }
                    let parts = self.encode_piece_limited(bytes, id);
                    if let [a, b] = parts[..] {
                        out.push((a, b, id));
                    }
                }
                out
            }
        }
    }
}

/// Parse a `.tiktoken` file (`<base64 token> <rank>` per line). `source` names the file in
/// errors, which carry the 1-based line number.
pub fn parse_tiktoken(data: &[u8], source: &str) -> Result<Vec<(Vec<u8>, u32)>> {
    let mut out = Vec::new();
    for (ln, line) in data.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let ctx = || format!("{source} line {}", ln + 1);
        let mut it = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let (Some(tok), Some(rank), None) = (it.next(), it.next(), it.next()) else {
            return Err(Error::invalid_data(
                ctx(),
                "expected '<base64 token> <rank>'",
            ));
        };
        let bytes = base64_decode(tok).ok_or_else(|| {
            Error::invalid_data(
                ctx(),
                format!("invalid base64 {:?}", String::from_utf8_lossy(tok)),
            )
        })?;
        let rank: u32 = std::str::from_utf8(rank)
            .ok()
            .and_then(|r| r.parse().ok())
            .filter(|&r: &u32| r != NONE)
            .ok_or_else(|| {
                Error::invalid_data(
                    ctx(),
                    format!("invalid rank {:?}", String::from_utf8_lossy(rank)),
                )
            })?;
        out.push((bytes, rank));
    }
    Ok(out)
}

fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if s.len() % 4 != 0 || s.is_empty() {
        return None;
    }
    let pad = s.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let body = &s[..s.len() - pad];
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in body {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if acc != 0 {
        return None;
    }
    Some(out)
}

/// GPT-2's reversible byte ↔ printable-character map used by byte-level BPE files
/// (`vocab.json`, `merges.txt`, `tokenizer.json`): byte `b` is written as `chars[b]`.
pub fn byte_level_chars() -> [char; 256] {
    let mut chars = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable =
            (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        chars[b as usize] = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    chars
}

/// Decode a byte-level token string back to bytes; `None` if it contains a character
/// outside the byte-level alphabet.
pub fn byte_level_decode(s: &str) -> Option<Vec<u8>> {
    use std::sync::OnceLock;
    static INV: OnceLock<FxHashMap<char, u8>> = OnceLock::new();
    let inv = INV.get_or_init(|| {
        byte_level_chars()
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect()
    });
    s.chars().map(|c| inv.get(&c).copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_roundtrip_cases() {
        assert_eq!(base64_decode(b"IQ==").unwrap(), b"!");
        assert_eq!(base64_decode(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode(b"aGVs").unwrap(), b"hel");
        assert!(base64_decode(b"a*==").is_none());
        assert!(base64_decode(b"abc").is_none());
    }

    #[test]
    fn tiktoken_errors_name_the_line() {
        let e = parse_tiktoken(b"IQ== 0\nIg== x\n", "f.tiktoken")
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.tiktoken line 2"), "{e}");
        let e = parse_tiktoken(b"IQ== 0\n\n!!! 3\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn byte_level_map_is_a_bijection() {
        let c = byte_level_chars();
        let set: std::collections::HashSet<char> = c.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(c[b' ' as usize], 'Ġ');
        assert_eq!(c[b'\n' as usize], 'Ċ');
        assert_eq!(byte_level_decode("Ġhello").unwrap(), b" hello");
    }
}
