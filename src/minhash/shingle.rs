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
    /// Normalised text.
    pub(crate) buf: String,
    /// Word mode: byte start of each word in `buf`; char mode: byte start of each char
    /// plus a final entry `buf.len()`.
    pub(crate) starts: Vec<u32>,
    /// Word mode: byte end of each word.
    pub(crate) ends: Vec<u32>,
    nfkc_buf: String,
}

impl Scratch {
    pub fn new() -> Self {
        Self::default()
    }
}

#[inline]
fn push_normalised(cfg: &ShingleConfig, out: &mut String, pending_space: &mut bool, c: char) {
    let is_sep = if c.is_ascii() {
        matches!(c, ' ' | '\t'..='\r') || (cfg.strip_punct && !c.is_ascii_alphanumeric())
    } else {
        c.is_whitespace() || (cfg.strip_punct && !c.is_alphanumeric())
    };
    if is_sep {
        if !out.is_empty() {
            *pending_space = true;
        }
        return;
    }
    if *pending_space {
        out.push(' ');
        *pending_space = false;
    }
    if cfg.fold_digits && c.is_numeric() {
        out.push('0');
    } else if cfg.lowercase {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            for l in c.to_lowercase() {
                out.push(l);
            }
        }
    } else {
        out.push(c);
    }
}

/// Normalise `text` into `scratch.buf` (see the module documentation).
pub fn normalise_into(text: &str, cfg: &ShingleConfig, scratch: &mut Scratch) {
    scratch.buf.clear();
    let mut pending = false;
    if cfg.nfkc {
        let mut tmp = std::mem::take(&mut scratch.nfkc_buf);
        tmp.clear();
        tmp.extend(text.nfkc());
        for c in tmp.chars() {
            push_normalised(cfg, &mut scratch.buf, &mut pending, c);
        }
        scratch.nfkc_buf = tmp;
    } else {
        for c in text.chars() {
            push_normalised(cfg, &mut scratch.buf, &mut pending, c);
        }
    }
}

/// Call `f` with the UTF-8 bytes of every shingle of `text`, in document order
/// (repeated shingles are reported each time). Returns the number of shingles.
pub fn for_each_shingle(text: &str, cfg: &ShingleConfig, scratch: &mut Scratch, mut f: impl FnMut(&[u8])) -> usize {
    normalise_into(text, cfg, scratch);
    let buf = scratch.buf.as_bytes();
    if buf.is_empty() {
        return 0;
    }
    let n = cfg.n;
    match cfg.unit {
        Unit::Word => {
            scratch.starts.clear();
            scratch.ends.clear();
            let mut in_word = false;
            for (i, &b) in buf.iter().enumerate() {
                if b == b' ' {
                    if in_word {
                        scratch.ends.push(i as u32);
                        in_word = false;
                    }
                } else if !in_word {
                    scratch.starts.push(i as u32);
                    in_word = true;
                }
            }
            if in_word {
                scratch.ends.push(buf.len() as u32);
            }
            let words = scratch.starts.len();
            if words < n {
                f(buf);
                return 1;
            }
            for i in 0..=(words - n) {
                f(&buf[scratch.starts[i] as usize..scratch.ends[i + n - 1] as usize]);
            }
            words - n + 1
        }
        Unit::Char => {
            scratch.starts.clear();
            for (i, _) in scratch.buf.char_indices() {
                scratch.starts.push(i as u32);
            }
            let chars = scratch.starts.len();
            scratch.starts.push(buf.len() as u32);
            if chars < n {
                f(buf);
                return 1;
            }
            for i in 0..=(chars - n) {
                f(&buf[scratch.starts[i] as usize..scratch.starts[i + n] as usize]);
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
