//! Shingling: raw text → normalised text → word or character n-grams.
//!
//! Normalisation (each step can be switched off, except whitespace folding):
//!
//! 1. optional NFKC (`nfkc`): compatibility composition, so `ﬁ` → `fi`, full-width
//!    `Ａ` → `A`, `①` → `1`;
//! 2. `lowercase`: Unicode lower-casing (`char::to_lowercase`, e.g. `İ` → `i̇`, `Σ` → `σ`);
//! 3. `strip_punct`: every character that is neither alphanumeric (Unicode `Alphabetic`
//!    or `Numeric`) nor whitespace — punctuation, symbols, control characters — acts as
//!    a word separator (it is replaced by a space, so `foo.bar(x)` gives the words
//!    `foo bar x`);
//! 4. `fold_digits`: every Unicode `Numeric` character (`0-9`, `٣`, `½`, `Ⅻ`, …) becomes `0`;
//! 5. whitespace folding (always): runs of Unicode whitespace become one ASCII space,
//!    leading and trailing whitespace is dropped.
//!
//! Words are the space-separated pieces of the normalised text. A word shingle is `n`
//! consecutive words joined by single spaces; a character shingle is `n` consecutive
//! characters (Unicode scalar values) of the normalised text, spaces included; a token
//! shingle is `n` consecutive token ids of the normalised text encoded by a
//! [`Tokenizer`] (`encode_ordinary`: special-token text is ordinary text), hashed as the
//! `4·n` bytes of the ids as little-endian `u32` (so `datasketch.MinHash.update(
//! np.asarray(ids[i:i+n], "<u4").tobytes())` reproduces the compat signatures).
//!
//! Short documents: a document with at least one word but fewer than `n` words (or
//! fewer than `n` characters / tokens in those modes) yields exactly one shingle, the whole
//! normalised document. A document that normalises to nothing (empty, whitespace or,
//! with `strip_punct`, punctuation only) yields no shingle: its set is empty.

use unicode_normalization::UnicodeNormalization;

use crate::bpe::Tokenizer;
use crate::{Error, Result};

/// What a shingle is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Word,
    Char,
    /// Token n-grams through a gristmill [`Tokenizer`] (set [`ShingleConfig::tokenizer`]).
    Token,
}

impl Unit {
    pub fn parse(s: &str) -> Result<Unit> {
        match s {
            "word" => Ok(Unit::Word),
            "char" => Ok(Unit::Char),
            "token" => Ok(Unit::Token),
            other => Err(Error::invalid_argument(format!("unit must be 'word', 'char' or 'token', got {other:?}"))),
        }
    }
}

/// How documents become shingles. See the module documentation.
#[derive(Clone)]
pub struct ShingleConfig<'t> {
    pub unit: Unit,
    pub n: usize,
    pub lowercase: bool,
    pub strip_punct: bool,
    pub fold_digits: bool,
    pub nfkc: bool,
    /// The tokenizer of [`Unit::Token`] (required there, unused otherwise).
    pub tokenizer: Option<&'t Tokenizer>,
}

impl std::fmt::Debug for ShingleConfig<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShingleConfig")
            .field("unit", &self.unit)
            .field("n", &self.n)
            .field("lowercase", &self.lowercase)
            .field("strip_punct", &self.strip_punct)
            .field("fold_digits", &self.fold_digits)
            .field("nfkc", &self.nfkc)
            .field("tokenizer", &self.tokenizer.map(|t| t.n_vocab()))
            .finish()
    }
}

impl Default for ShingleConfig<'_> {
    fn default() -> Self {
        ShingleConfig {
            unit: Unit::Word,
            n: 5,
            lowercase: true,
            strip_punct: true,
            fold_digits: false,
            nfkc: false,
            tokenizer: None,
        }
    }
}

impl ShingleConfig<'_> {
    pub fn validate(&self) -> Result<()> {
        if self.n == 0 {
            return Err(Error::invalid_argument("ngram must be at least 1"));
        }
        if self.n > 1 << 20 {
            return Err(Error::invalid_argument(format!("ngram {} is unreasonably large", self.n)));
        }
        if self.unit == Unit::Token && self.tokenizer.is_none() {
            return Err(Error::invalid_argument("token shingles need a tokenizer"));
        }
        Ok(())
    }
}

/// Reusable buffers for shingling one document after another without allocating.
#[derive(Default, Debug)]
pub struct Scratch {
    /// Normalised text (valid UTF-8: built from whole characters).
    pub(crate) buf: Vec<u8>,
    /// Word mode: byte start of each word in `buf` (words are separated by exactly one
    /// space, so word `i` ends at `starts[i + 1] - 1`). Char mode: byte start of each
    /// character plus a final entry `buf.len()`.
    pub(crate) starts: Vec<usize>,
    nfkc_buf: String,
    /// Token mode: the token ids of the normalised text and one shingle's bytes.
    ids: Vec<u32>,
    token_bytes: Vec<u8>,
}

impl Scratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// For every ASCII byte: 0 if it separates words, otherwise the byte to emit.
fn ascii_table(cfg: &ShingleConfig) -> [u8; 128] {
    let mut t = [0u8; 128];
    for (b, out) in t.iter_mut().enumerate() {
        let c = b as u8;
        let sep = matches!(c, b' ' | b'\t'..=b'\r') || (cfg.strip_punct && !c.is_ascii_alphanumeric());
        *out = if sep {
            0
        } else if cfg.fold_digits && c.is_ascii_digit() {
            b'0'
        } else if cfg.lowercase {
            c.to_ascii_lowercase()
        } else {
            c
        };
    }
    t
}

/// Output cursor of the normaliser: `buf` is pre-sized and written by index (`o` bytes are
/// valid), so the ASCII fast path can copy a word with one fixed-size 64-byte move.
struct Out<'a> {
    buf: &'a mut Vec<u8>,
    starts: &'a mut Vec<usize>,
    o: usize,
    in_word: bool,
}

impl Out<'_> {
    /// Make room for `extra` more bytes after the cursor (plus slack for over-copies).
    #[inline(always)]
    fn room(&mut self, extra: usize) {
        if self.o + extra + 64 > self.buf.len() {
            let want = (self.o + extra + 64).max(self.buf.len() * 2);
            self.buf.resize(want, 0);
        }
    }
    #[inline(always)]
    fn begin_word(&mut self) {
        if self.o > 0 {
            self.buf[self.o] = b' ';
            self.o += 1;
        }
        self.starts.push(self.o);
        self.in_word = true;
    }
}

/// ASCII bytes of a 64-byte block: bit `k` of `word` is set when byte `k` belongs to a word,
/// `low` holds the bytes as emitted (lower-cased, digits folded), `ascii` is false when
/// any byte is ≥ 0x80 (then `word`/`low` are not meaningful).
struct Block {
    word: u64,
    low: [u8; 128],
    ascii: bool,
}

#[cfg(target_arch = "x86_64")]
fn classify(block: &[u8; 64], cfg: &ShingleConfig) -> Block {
    use std::arch::x86_64::*;
    let mut out = Block { word: 0, low: [0u8; 128], ascii: true };
    // SAFETY: SSE2 is part of x86_64; loads/stores are unaligned and inside the arrays.
    unsafe {
        let mut nonascii = 0u32;
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k) as *const __m128i);
            nonascii |= _mm_movemask_epi8(v) as u32;
            let between = |lo: u8, hi: u8| {
                _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(lo as i8 - 1)), _mm_cmplt_epi8(v, _mm_set1_epi8(hi as i8 + 1)))
            };
            let upper = between(b'A', b'Z');
            let digit = between(b'0', b'9');
            let word = if cfg.strip_punct {
                _mm_or_si128(_mm_or_si128(upper, digit), between(b'a', b'z'))
            } else {
                // whitespace separates words; NUL does too (as in the scalar table)
                let ws = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8)), between(b'\t', b'\r'));
                let ws = _mm_or_si128(ws, _mm_cmpeq_epi8(v, _mm_setzero_si128()));
                _mm_andnot_si128(ws, _mm_set1_epi8(-1))
            };
            out.word |= u64::from(_mm_movemask_epi8(word) as u16) << (16 * k);
            let mut t = v;
            if cfg.lowercase {
                t = _mm_or_si128(t, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
            }
            if cfg.fold_digits {
                t = _mm_or_si128(_mm_andnot_si128(digit, t), _mm_and_si128(digit, _mm_set1_epi8(b'0' as i8)));
            }
            _mm_storeu_si128(out.low.as_mut_ptr().add(16 * k) as *mut __m128i, t);
        }
        out.ascii = nonascii == 0;
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
fn classify(block: &[u8; 64], cfg: &ShingleConfig) -> Block {
    classify_scalar(block, &ascii_table(cfg))
}

/// Portable [`classify`] (the reference for the SIMD version).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classify_scalar(block: &[u8; 64], table: &[u8; 128]) -> Block {
    let mut out = Block { word: 0, low: [0u8; 128], ascii: block.iter().all(|&b| b < 0x80) };
    for (k, &b) in block.iter().enumerate() {
        let o = table[(b & 0x7F) as usize];
        out.word |= u64::from(o != 0) << k;
        out.low[k] = if o != 0 { o } else { b };
    }
    out
}

/// Emit the words of an all-ASCII block (`valid` bytes of it, the rest is padding).
#[inline(always)]
fn emit_block(out: &mut Out<'_>, blk: &Block, valid: usize) {
    let mut m = if valid >= 64 { blk.word } else { blk.word & ((1u64 << valid) - 1) };
    while m != 0 {
        let s = m.trailing_zeros() as usize;
        let run = (!(m >> s)).trailing_zeros() as usize; // ≥ 1; 64 - s when the run reaches the end
        let e = s + run;
        if !(s == 0 && out.in_word) {
            out.begin_word();
        }
        let o = out.o;
        out.buf[o..o + 64].copy_from_slice(&blk.low[s..s + 64]);
        out.o += run;
        m = if e >= 64 { 0 } else { m & (!0u64 << e) };
    }
    // the block ends inside a word exactly when its last valid byte is a word byte
    out.in_word = valid > 0 && (blk.word >> (valid - 1)) & 1 == 1;
}

/// One character (any), the general path: Unicode classes, lower-casing, digit folding.
#[inline]
fn emit_char(out: &mut Out<'_>, c: char, cfg: &ShingleConfig, table: &[u8; 128]) {
    if c.is_ascii() {
        let t = table[c as usize];
        if t == 0 {
            out.in_word = false;
            return;
        }
        out.room(2);
        if !out.in_word {
            out.begin_word();
        }
        out.buf[out.o] = t;
        out.o += 1;
        return;
    }
    if c.is_whitespace() || (cfg.strip_punct && !c.is_alphanumeric()) {
        out.in_word = false;
        return;
    }
    out.room(16);
    if !out.in_word {
        out.begin_word();
    }
    let mut tmp = [0u8; 4];
    if cfg.fold_digits && c.is_numeric() {
        out.buf[out.o] = b'0';
        out.o += 1;
    } else if cfg.lowercase {
        for l in c.to_lowercase() {
            let e = l.encode_utf8(&mut tmp).as_bytes();
            out.room(e.len());
            out.buf[out.o..out.o + e.len()].copy_from_slice(e);
            out.o += e.len();
        }
    } else {
        let e = c.encode_utf8(&mut tmp).as_bytes();
        out.buf[out.o..out.o + e.len()].copy_from_slice(e);
        out.o += e.len();
    }
}

fn normalise_str(src: &str, cfg: &ShingleConfig, buf: &mut Vec<u8>, starts: &mut Vec<usize>) {
    let table = ascii_table(cfg);
    let bytes = src.as_bytes();
    buf.clear();
    buf.resize(bytes.len() + 192, 0);
    let mut out = Out { buf, starts, o: 0, in_word: false };
    let mut i = 0;
    while i < bytes.len() {
        let mut block = [b' '; 64];
        let valid = (bytes.len() - i).min(64);
        block[..valid].copy_from_slice(&bytes[i..i + valid]);
        let blk = classify(&block, cfg);
        if blk.ascii {
            out.room(72);
            emit_block(&mut out, &blk, valid);
            i += valid;
            continue;
        }
        // A block with non-ASCII bytes: character by character up to the first character
        // boundary at or after the block's end. `i` is always a character boundary.
        let end = i + valid;
        let Some(rest) = src.get(i..) else { break };
        for (k, c) in rest.char_indices() {
            if i + k >= end {
                break;
            }
            emit_char(&mut out, c, cfg, &table);
        }
        let mut j = end;
        while j < bytes.len() && !src.is_char_boundary(j) {
            j += 1;
        }
        i = j;
    }
    let o = out.o;
    buf.truncate(o);
}

/// Normalise `text` into `scratch.buf`, recording word starts in `scratch.starts`
/// (see the module documentation).
pub fn normalise_into(text: &str, cfg: &ShingleConfig, scratch: &mut Scratch) {
    scratch.buf.clear();
    scratch.starts.clear();
    if cfg.nfkc {
        let mut tmp = std::mem::take(&mut scratch.nfkc_buf);
        tmp.clear();
        tmp.extend(text.nfkc());
        normalise_str(&tmp, cfg, &mut scratch.buf, &mut scratch.starts);
        scratch.nfkc_buf = tmp;
    } else {
        normalise_str(text, cfg, &mut scratch.buf, &mut scratch.starts);
    }
}

/// Call `f` with the bytes of every shingle of `text` (UTF-8 for word and character
/// shingles, little-endian `u32` ids for token shingles), in document order (repeated
/// shingles are reported each time). Returns the number of shingles.
pub fn for_each_shingle(text: &str, cfg: &ShingleConfig, scratch: &mut Scratch, mut f: impl FnMut(&[u8])) -> Result<usize> {
    normalise_into(text, cfg, scratch);
    let buf = &scratch.buf[..];
    if buf.is_empty() {
        return Ok(0);
    }
    let n = cfg.n;
    match cfg.unit {
        Unit::Word => {
            let starts = &scratch.starts;
            let words = starts.len();
            if words < n {
                f(buf);
                return Ok(1);
            }
            for i in 0..=(words - n) {
                let end = if i + n < words { starts[i + n] - 1 } else { buf.len() };
                f(&buf[starts[i]..end]);
            }
            Ok(words - n + 1)
        }
        Unit::Char => {
            scratch.starts.clear();
            for (i, &b) in buf.iter().enumerate() {
                if b & 0xC0 != 0x80 {
                    scratch.starts.push(i);
                }
            }
            let chars = scratch.starts.len();
            scratch.starts.push(buf.len());
            if chars < n {
                f(buf);
                return Ok(1);
            }
            for i in 0..=(chars - n) {
                f(&buf[scratch.starts[i]..scratch.starts[i + n]]);
            }
            Ok(chars - n + 1)
        }
        Unit::Token => {
            let tok = cfg.tokenizer.ok_or_else(|| Error::invalid_argument("token shingles need a tokenizer"))?;
            // `buf` is built from whole characters of a `str`: valid UTF-8.
            let norm = std::str::from_utf8(buf)
                .map_err(|e| Error::invalid_data("normalised text", format!("invalid UTF-8: {e}")))?;
            scratch.ids.clear();
            tok.encode_ordinary_into(norm, &mut scratch.ids)?;
            let ids = &scratch.ids;
            let bytes = &mut scratch.token_bytes;
            let mut emit = |w: &[u32]| {
                bytes.clear();
                bytes.extend(w.iter().flat_map(|id| id.to_le_bytes()));
                f(bytes);
            };
            if ids.is_empty() {
                return Ok(0);
            }
            if ids.len() < n {
                emit(ids);
                return Ok(1);
            }
            for w in ids.windows(n) {
                emit(w);
            }
            Ok(ids.len() - n + 1)
        }
    }
}

/// The shingles of one document as owned strings (for inspection and tests).
pub fn shingles(text: &str, cfg: &ShingleConfig) -> Result<Vec<String>> {
    cfg.validate()?;
    let mut scratch = Scratch::new();
    let mut out = Vec::new();
    if cfg.unit == Unit::Token {
        return Err(Error::invalid_argument("token shingles are ids, not text: use token_shingles"));
    }
    for_each_shingle(text, cfg, &mut scratch, |s| {
        // Shingles are slices of a `String` cut at char boundaries: always valid UTF-8.
        out.push(String::from_utf8_lossy(s).into_owned());
    })?;
    Ok(out)
}

/// The token shingles of one document: each shingle's ids (for inspection and tests).
pub fn token_shingles(text: &str, cfg: &ShingleConfig) -> Result<Vec<Vec<u32>>> {
    cfg.validate()?;
    if cfg.unit != Unit::Token {
        return Err(Error::invalid_argument("token_shingles needs unit 'token'"));
    }
    let mut scratch = Scratch::new();
    let mut out = Vec::new();
    for_each_shingle(text, cfg, &mut scratch, |s| {
        out.push(s.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect());
    })?;
    Ok(out)
}

/// The set of 64-bit shingle hashes (xxh3-64), sorted and deduplicated, used for exact
/// Jaccard verification. Two different shingles collide with probability ~2^-64.
pub fn shingle_hash_set(text: &str, cfg: &ShingleConfig, scratch: &mut Scratch, out: &mut Vec<u64>) -> Result<()> {
    out.clear();
    for_each_shingle(text, cfg, scratch, |s| out.push(xxhash_rust::xxh3::xxh3_64(s)))?;
    out.sort_unstable();
    out.dedup();
    Ok(())
}

/// Exact Jaccard similarity of two sorted, deduplicated sets. Two empty sets → 0.0
/// (an empty document is never a duplicate of anything).
pub fn jaccard_sorted(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - inter;
    inter as f64 / union as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(unit: Unit, n: usize) -> ShingleConfig<'static> {
        ShingleConfig { unit, n, ..Default::default() }
    }

    #[test]
    fn word_shingles_normalise() {
        let s = shingles("  Hello,   World! foo.bar\tBAZ  ", &cfg(Unit::Word, 2)).unwrap();
        assert_eq!(s, vec!["hello world", "world foo", "foo bar", "bar baz"]);
    }

    #[test]
    fn unicode_lowercase_and_punct() {
        let s = shingles("ΣΟΦΙΑ — Straße «Ünïcödé»", &cfg(Unit::Word, 1)).unwrap();
        assert_eq!(s, vec!["σοφια", "straße", "ünïcödé"]);
    }

    #[test]
    fn digits_and_nfkc() {
        let c = ShingleConfig { n: 1, fold_digits: true, nfkc: true, ..Default::default() };
        assert_eq!(shingles("ﬁle 2024 Ａ１", &c).unwrap(), vec!["file", "0000", "a0"]);
        let c = ShingleConfig { n: 1, ..Default::default() };
        assert_eq!(shingles("ﬁle 2024", &c).unwrap(), vec!["ﬁle", "2024"]);
    }

    #[test]
    fn short_and_empty_documents() {
        assert_eq!(shingles("just three words", &cfg(Unit::Word, 5)).unwrap(), vec!["just three words"]);
        assert!(shingles("", &cfg(Unit::Word, 5)).unwrap().is_empty());
        assert!(shingles(" \n\t ... !!", &cfg(Unit::Word, 5)).unwrap().is_empty());
        assert_eq!(shingles("ab", &cfg(Unit::Char, 3)).unwrap(), vec!["ab"]);
    }

    #[test]
    fn char_shingles() {
        assert_eq!(shingles("Ab  c", &cfg(Unit::Char, 3)).unwrap(), vec!["ab ", "b c"]);
        assert_eq!(shingles("héllo", &cfg(Unit::Char, 4)).unwrap(), vec!["héll", "éllo"]);
    }

    #[test]
    fn keeps_punct_when_asked() {
        let c = ShingleConfig { n: 2, strip_punct: false, lowercase: false, ..Default::default() };
        assert_eq!(shingles("A, b.", &c).unwrap(), vec!["A, b."]);
    }

    /// The normalisation rules applied one character at a time (reference).
    fn reference(text: &str, cfg: &ShingleConfig) -> String {
        let mut words: Vec<String> = Vec::new();
        let mut cur = String::new();
        for c in text.chars() {
            let sep = c.is_whitespace() || c == '\0' || (cfg.strip_punct && !c.is_alphanumeric());
            if sep {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                continue;
            }
            if cfg.fold_digits && c.is_numeric() {
                cur.push('0');
            } else if cfg.lowercase {
                cur.extend(c.to_lowercase());
            } else {
                cur.push(c);
            }
        }
        if !cur.is_empty() {
            words.push(cur);
        }
        words.join(" ")
    }

    fn check_against_reference(text: &str) {
        for (lowercase, strip_punct, fold_digits) in
            [(true, true, false), (false, false, false), (true, false, true), (false, true, true)]
        {
            let cfg = ShingleConfig { lowercase, strip_punct, fold_digits, ..Default::default() };
            let mut scratch = Scratch::new();
            normalise_into(text, &cfg, &mut scratch);
            let got = std::str::from_utf8(&scratch.buf).unwrap();
            let want = reference(text, &cfg);
            assert_eq!(got, want, "cfg {cfg:?} text {text:?}");
            let starts: Vec<usize> = if want.is_empty() {
                vec![]
            } else {
                std::iter::once(0).chain(want.match_indices(' ').map(|(i, _)| i + 1)).collect()
            };
            assert_eq!(scratch.starts, starts, "cfg {cfg:?} text {text:?}");
        }
    }

    #[test]
    fn block_normaliser_matches_reference_at_block_edges() {
        let long = "x".repeat(200);
        let mut cases = vec![
            String::new(),
            " ".into(),
            long.clone(),
            format!("{long} {long}"),
            format!("AB{}", "-".repeat(62)),
            "Ünïcödé wörds, ΣΟΦΙΑ İstanbul ½ ٣ ﬁle\u{a0}nbsp\u{2003}em\0nul\x01ctl".into(),
        ];
        // words and non-ASCII characters straddling the 64-byte block boundary
        for pad in 55..70 {
            cases.push(format!("{}Héllo World€ FOO_bar{}", "a".repeat(pad), " é".repeat(40)));
            cases.push(format!("{} {}é{}", "Q".repeat(pad), "z".repeat(pad % 7), "9".repeat(80)));
            cases.push(format!("{}.{}", "w".repeat(pad), "W".repeat(130 - pad)));
        }
        for c in &cases {
            check_against_reference(c);
        }
    }

    #[test]
    fn simd_classify_matches_scalar_table() {
        let mut st = 7u64;
        for round in 0..2000 {
            let mut block = [0u8; 64];
            for b in block.iter_mut() {
                st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                *b = (st >> 57) as u8; // ASCII only
            }
            let cfg = ShingleConfig { lowercase: round % 2 == 0, strip_punct: round % 3 != 0, fold_digits: round % 5 == 0, ..Default::default() };
            let (a, b) = (classify(&block, &cfg), classify_scalar(&block, &ascii_table(&cfg)));
            assert!(a.ascii && b.ascii);
            assert_eq!(a.word, b.word, "cfg {cfg:?}");
            for k in 0..64 {
                if (a.word >> k) & 1 == 1 {
                    assert_eq!(a.low[k], b.low[k]);
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn normaliser_matches_reference(s in "[a-zA-Z0-9 .,_\\-\t\né€ΣİßẞǅⅫ½٣\u{a0}\u{2003}\u{0}]{0,300}") {
            check_against_reference(&s);
        }
    }

    fn small_tokenizer() -> Tokenizer {
        use crate::bpe::{Pretokenizer, Vocab};
        let mut toks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for (i, t) in ["he", "ll", "hell", "hello", " w", " wor", "or", "ld", " world"].iter().enumerate() {
            toks.push((t.as_bytes().to_vec(), 256 + i as u32));
        }
        let v = Vocab::from_ranks(toks).unwrap();
        Tokenizer::new(v, Pretokenizer::new(crate::bpe::pretok::CL100K_PATTERN).unwrap(), vec![]).unwrap()
    }

    #[test]
    fn token_shingles_are_windows_of_the_normalised_texts_ids() {
        let tok = small_tokenizer();
        let c = ShingleConfig { unit: Unit::Token, n: 2, tokenizer: Some(&tok), ..Default::default() };
        let text = "Hello, World! hello   world";
        let ids = tok.encode_ordinary("hello world hello world").unwrap();
        let want: Vec<Vec<u32>> = ids.windows(2).map(|w| w.to_vec()).collect();
        assert_eq!(token_shingles(text, &c).unwrap(), want);
        // bytes handed to the hasher: little-endian u32 ids
        let mut scratch = Scratch::new();
        let mut seen = Vec::new();
        assert_eq!(for_each_shingle(text, &c, &mut scratch, |b| seen.push(b.to_vec())).unwrap(), want.len());
        assert_eq!(seen[0], [want[0][0].to_le_bytes(), want[0][1].to_le_bytes()].concat());
        // short and empty documents
        let c5 = ShingleConfig { n: 50, ..c.clone() };
        assert_eq!(token_shingles(text, &c5).unwrap(), vec![ids.clone()]);
        assert!(token_shingles(" ... ", &c5).unwrap().is_empty());
        // a tokenizer is required; token shingles are not text
        assert!(ShingleConfig { unit: Unit::Token, ..Default::default() }.validate().is_err());
        assert!(shingles(text, &c).is_err());
    }

    #[test]
    fn rejects_zero_n() {
        assert!(shingles("x", &cfg(Unit::Word, 0)).is_err());
    }

    #[test]
    fn jaccard_basics() {
        assert_eq!(jaccard_sorted(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard_sorted(&[], &[]), 0.0);
        assert_eq!(jaccard_sorted(&[1], &[]), 0.0);
    }
}
