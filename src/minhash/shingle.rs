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
//! characters (Unicode scalar values) of the normalised text, spaces included.
//!
//! Short documents: a document with at least one word but fewer than `n` words (or
//! fewer than `n` characters in character mode) yields exactly one shingle, the whole
//! normalised document. A document that normalises to nothing (empty, whitespace or,
//! with `strip_punct`, punctuation only) yields no shingle: its set is empty.

use unicode_normalization::UnicodeNormalization;

use crate::{Error, Result};

/// What a shingle is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Word,
    Char,
}

impl Unit {
    pub fn parse(s: &str) -> Result<Unit> {
        match s {
            "word" => Ok(Unit::Word),
            "char" => Ok(Unit::Char),
            other => Err(Error::invalid_argument(format!("unit must be 'word' or 'char', got {other:?}"))),
        }
    }
}

/// How documents become shingles. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShingleConfig {
    pub unit: Unit,
    pub n: usize,
    pub lowercase: bool,
    pub strip_punct: bool,
    pub fold_digits: bool,
    pub nfkc: bool,
}

impl Default for ShingleConfig {
    fn default() -> Self {
        ShingleConfig { unit: Unit::Word, n: 5, lowercase: true, strip_punct: true, fold_digits: false, nfkc: false }
    }
}

impl ShingleConfig {
    pub fn validate(&self) -> Result<()> {
        if self.n == 0 {
            return Err(Error::invalid_argument("ngram must be at least 1"));
        }
        if self.n > 1 << 20 {
            return Err(Error::invalid_argument(format!("ngram {} is unreasonably large", self.n)));
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

#[inline]
fn start_word(buf: &mut Vec<u8>, starts: &mut Vec<usize>, pending: &mut bool) {
    if buf.is_empty() {
        starts.push(0);
    } else if *pending {
        buf.push(b' ');
        starts.push(buf.len());
    }
    *pending = false;
}

fn normalise_str(src: &str, cfg: &ShingleConfig, buf: &mut Vec<u8>, starts: &mut Vec<usize>) {
    let table = ascii_table(cfg);
    let bytes = src.as_bytes();
    let mut pending = false;
    let mut i = 0;
    let mut tmp = [0u8; 4];
    buf.reserve(bytes.len() + 8);
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            let o = table[b as usize];
            i += 1;
            if o == 0 {
                pending = true;
                continue;
            }
            start_word(buf, starts, &mut pending);
            // the whole ASCII word at once: find its end, then map it in one extend
            let begin = i - 1;
            while let Some(&b) = bytes.get(i) {
                if b >= 0x80 || table[b as usize] == 0 {
                    break;
                }
                i += 1;
            }
            buf.extend(bytes[begin..i].iter().map(|&b| table[b as usize]));
            continue;
        }
        // `i` is always at a character boundary: ASCII advances by 1, others by their length.
        let Some(c) = src.get(i..).and_then(|r| r.chars().next()) else { break };
        i += c.len_utf8();
        if c.is_whitespace() || (cfg.strip_punct && !c.is_alphanumeric()) {
            pending = true;
            continue;
        }
        start_word(buf, starts, &mut pending);
        if cfg.fold_digits && c.is_numeric() {
            buf.push(b'0');
        } else if cfg.lowercase {
            for l in c.to_lowercase() {
                buf.extend_from_slice(l.encode_utf8(&mut tmp).as_bytes());
            }
        } else {
            buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
        }
    }
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

/// Call `f` with the UTF-8 bytes of every shingle of `text`, in document order
/// (repeated shingles are reported each time). Returns the number of shingles.
pub fn for_each_shingle(text: &str, cfg: &ShingleConfig, scratch: &mut Scratch, mut f: impl FnMut(&[u8])) -> usize {
    normalise_into(text, cfg, scratch);
    let buf = &scratch.buf[..];
    if buf.is_empty() {
        return 0;
    }
    let n = cfg.n;
    match cfg.unit {
        Unit::Word => {
            let starts = &scratch.starts;
            let words = starts.len();
            if words < n {
                f(buf);
                return 1;
            }
            for i in 0..=(words - n) {
                let end = if i + n < words { starts[i + n] - 1 } else { buf.len() };
                f(&buf[starts[i]..end]);
            }
            words - n + 1
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
                return 1;
            }
            for i in 0..=(chars - n) {
                f(&buf[scratch.starts[i]..scratch.starts[i + n]]);
            }
            chars - n + 1
        }
    }
}

/// The shingles of one document as owned strings (for inspection and tests).
pub fn shingles(text: &str, cfg: &ShingleConfig) -> Result<Vec<String>> {
    cfg.validate()?;
    let mut scratch = Scratch::new();
    let mut out = Vec::new();
    for_each_shingle(text, cfg, &mut scratch, |s| {
        // Shingles are slices of a `String` cut at char boundaries: always valid UTF-8.
        out.push(String::from_utf8_lossy(s).into_owned());
    });
    Ok(out)
}

/// The set of 64-bit shingle hashes (xxh3-64), sorted and deduplicated, used for exact
/// Jaccard verification. Two different shingles collide with probability ~2^-64.
pub fn shingle_hash_set(text: &str, cfg: &ShingleConfig, scratch: &mut Scratch, out: &mut Vec<u64>) {
    out.clear();
    for_each_shingle(text, cfg, scratch, |s| out.push(xxhash_rust::xxh3::xxh3_64(s)));
    out.sort_unstable();
    out.dedup();
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

    fn cfg(unit: Unit, n: usize) -> ShingleConfig {
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
