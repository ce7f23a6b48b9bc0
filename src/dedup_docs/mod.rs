//! Exact document and paragraph deduplication with 128-bit hashes.
//!
//! Every unit (a whole document, or one paragraph) is keyed by the xxh3-128 hash of its
//! normalised text. Units are visited in corpus order and a unit whose key was seen before
//! is removed, so the first occurrence always wins. Hashing runs in parallel (rayon); the
//! decision is one sequential pass over the hashes, so the result never depends on the
//! number of threads. Keys are 128-bit: a false positive (two different texts with one
//! key) would need ~2^64 units, so in practice nothing is removed that is not a copy.
//!
//! ## Paragraphs
//!
//! A document is cut at newlines (`\n`, byte 0x0A). A *paragraph* is a maximal non-empty run
//! of bytes other than `\n` (its *content*) together with the run of `\n` that follows it
//! (its *terminator*, empty for a last paragraph without a final newline). Newlines at the
//! very start of a document belong to no paragraph and are always kept. Paragraphs are
//! compared by content only, so `"a\n"`, `"a\n\n"` and a final `"a"` are equal. Removing a
//! paragraph removes its content and terminator; every other byte of the document is kept
//! in place. `\r` is part of the content (a CRLF line's content ends in `\r`).
//!
//! ## Normalisation
//!
//! `None` compares raw bytes. `Whitespace` collapses every run of Unicode whitespace to one
//! space and trims both ends. `Lower` does the same and lower-cases (Unicode
//! `char::to_lowercase`). Normalisation only decides what counts as equal; the text that is
//! written is always the original.
//!
//! `min_length`: units whose raw text (a paragraph's content, without its terminator) is
//! shorter than `min_length` bytes are never removed and never recorded as seen.

use rayon::prelude::*;
use rustc_hash::FxHashSet;
use xxhash_rust::xxh3::xxh3_128;

use crate::text::Docs;
use crate::{Error, Result};

/// What is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalize {
    None,
    Whitespace,
    Lower,
}

impl Normalize {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Normalize::None),
            "whitespace" => Ok(Normalize::Whitespace),
            "lower" => Ok(Normalize::Lower),
            _ => Err(Error::invalid_argument(format!(
                "normalize must be none, whitespace or lower, not {s:?}"
            ))),
        }
    }
}

/// Write the normalised form of `text` into `out` (cleared first).
pub fn normalize_into(text: &[u8], mode: Normalize, out: &mut Vec<u8>) {
    out.clear();
    let s = match std::str::from_utf8(text) {
        Ok(s) => s,
        Err(_) => {
            // not reachable from Arrow strings; compare such bytes as they are
            out.extend_from_slice(text);
            return;
        }
    };
    let lower = mode == Normalize::Lower;
    let bytes = s.as_bytes();
    let mut pending = false;
    let mut buf = [0u8; 4];
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            // ASCII fast path; White_Space in ASCII is \t \n \v \f \r and space
            i += 1;
            if matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ') {
                pending = true;
                continue;
            }
            if pending && !out.is_empty() {
                out.push(b' ');
            }
            pending = false;
            out.push(if lower { b.to_ascii_lowercase() } else { b });
            continue;
        }
        let c = s[i..].chars().next().unwrap_or('\u{fffd}');
        i += c.len_utf8();
        if c.is_whitespace() {
            pending = true;
            continue;
        }
        if pending && !out.is_empty() {
            out.push(b' ');
        }
        pending = false;
        if lower {
            for l in c.to_lowercase() {
                out.extend_from_slice(l.encode_utf8(&mut buf).as_bytes());
            }
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// The 128-bit key of one unit.
pub fn key(text: &[u8], mode: Normalize, buf: &mut Vec<u8>) -> u128 {
    match mode {
        Normalize::None => xxh3_128(text),
        _ => {
            normalize_into(text, mode, buf);
            xxh3_128(buf)
        }
    }
}

/// One paragraph of a document: content `start..content_end`, terminator `content_end..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paragraph {
    pub start: usize,
    pub content_end: usize,
    pub end: usize,
}

/// The paragraphs of `text` in order (see the module docs for the definition).
pub fn paragraphs(text: &[u8]) -> Vec<Paragraph> {
    let mut out = Vec::new();
    let n = text.len();
    let mut i = 0;
    while i < n && text[i] == b'\n' {
        i += 1;
    }
    while i < n {
        let start = i;
        let content_end = memchr::memchr(b'\n', &text[i..]).map_or(n, |p| i + p);
        let mut end = content_end;
        while end < n && text[end] == b'\n' {
            end += 1;
        }
        out.push(Paragraph { start, content_end, end });
        i = end;
    }
    out
}

/// Result of deduplicating one batch of whole documents.
#[derive(Debug, Default)]
pub struct DocsOutcome {
    /// `keep[i]` is false for a document equal to an earlier one.
    pub keep: Vec<bool>,
    pub removed: u64,
    pub removed_bytes: u64,
}

/// Result of deduplicating the paragraphs of one batch of documents.
#[derive(Debug, Default)]
pub struct ParagraphsOutcome {
    pub paragraphs: u64,
    pub removed: u64,
    pub removed_bytes: u64,
    /// Indices (within the batch) of documents that lost at least one paragraph, ascending.
    pub changed: Vec<usize>,
    /// New texts of the `changed` documents, Arrow layout: text `k` is
    /// `data[offsets[k]..offsets[k + 1]]`.
    pub data: Vec<u8>,
    pub offsets: Vec<i64>,
}

/// A set of seen keys, fed batch by batch in corpus order.
#[derive(Debug)]
pub struct ExactDedup {
    normalize: Normalize,
    min_length: usize,
    seen: FxHashSet<u128>,
}

const UNKEYED: Option<u128> = None;

impl ExactDedup {
    pub fn new(normalize: Normalize, min_length: usize) -> Self {
        ExactDedup { normalize, min_length, seen: FxHashSet::default() }
    }

    /// Number of distinct keys seen so far.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Mark every document of `docs` equal to an earlier one (in this batch or any batch
    /// fed before).
    pub fn docs(&mut self, docs: Docs<'_>) -> Result<DocsOutcome> {
        let (mode, min) = (self.normalize, self.min_length);
        let chunk = crate::par::max_task_len(docs.len(), 64);
        let keys: Vec<Option<u128>> = (0..docs.len())
            .into_par_iter()
            .with_max_len(chunk)
            .map_init(Vec::new, |buf, i| {
                let t = docs.get(i);
                if t.len() < min {
                    UNKEYED
                } else {
                    Some(key(t, mode, buf))
                }
            })
            .collect();
        let mut out = DocsOutcome { keep: Vec::with_capacity(keys.len()), ..Default::default() };
        for (i, k) in keys.into_iter().enumerate() {
            let keep = match k {
                None => true,
                Some(h) => self.seen.insert(h),
            };
            if !keep {
                out.removed += 1;
                out.removed_bytes += docs.get(i).len() as u64;
            }
            out.keep.push(keep);
        }
        Ok(out)
    }

    /// Remove every paragraph of `docs` equal to an earlier one (earlier in the same
    /// document, the batch, or any batch fed before).
    pub fn paragraphs(&mut self, docs: Docs<'_>) -> Result<ParagraphsOutcome> {
        let (mode, min) = (self.normalize, self.min_length);
        let chunk = crate::par::max_task_len(docs.len(), 16);
        let keyed: Vec<Vec<(Paragraph, Option<u128>)>> = (0..docs.len())
            .into_par_iter()
            .with_max_len(chunk)
            .map_init(Vec::new, |buf, i| {
                let t = docs.get(i);
                paragraphs(t)
                    .into_iter()
                    .map(|p| {
                        let c = &t[p.start..p.content_end];
                        (p, if c.len() < min { UNKEYED } else { Some(key(c, mode, buf)) })
                    })
                    .collect()
            })
            .collect();
        let mut out = ParagraphsOutcome { offsets: vec![0], ..Default::default() };
        let mut drop: Vec<bool> = Vec::new();
        for (i, paras) in keyed.iter().enumerate() {
            out.paragraphs += paras.len() as u64;
            drop.clear();
            let mut any = false;
            for (p, k) in paras {
                let d = match k {
                    None => false,
                    Some(h) => !self.seen.insert(*h),
                };
                if d {
                    any = true;
                    out.removed += 1;
                    out.removed_bytes += (p.end - p.start) as u64;
                }
                drop.push(d);
            }
            if !any {
                continue;
            }
            let t = docs.get(i);
            let mut at = 0;
            for ((p, _), &d) in paras.iter().zip(&drop) {
                if d {
                    out.data.extend_from_slice(&t[at..p.start]);
                    at = p.end;
                }
            }
            out.data.extend_from_slice(&t[at..]);
            out.changed.push(i);
            out.offsets.push(out.data.len() as i64);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs_of(texts: &[&str]) -> (Vec<u8>, Vec<i64>) {
        let mut data = Vec::new();
        let mut off = vec![0i64];
        for t in texts {
            data.extend_from_slice(t.as_bytes());
            off.push(data.len() as i64);
        }
        (data, off)
    }

    #[test]
    fn paragraph_split() {
        let t = b"\n\na\n\nbb\nc";
        let p = paragraphs(t);
        assert_eq!(
            p,
            vec![
                Paragraph { start: 2, content_end: 3, end: 5 },
                Paragraph { start: 5, content_end: 7, end: 8 },
                Paragraph { start: 8, content_end: 9, end: 9 },
            ]
        );
        assert!(paragraphs(b"").is_empty());
        assert!(paragraphs(b"\n\n").is_empty());
    }

    #[test]
    fn normalization() {
        let mut b = Vec::new();
        normalize_into("  Hello \t\u{a0}WORLD\n".as_bytes(), Normalize::Whitespace, &mut b);
        assert_eq!(b, b"Hello WORLD");
        normalize_into("  Hello \t\u{a0}WORLD\n".as_bytes(), Normalize::Lower, &mut b);
        assert_eq!(b, b"hello world");
        normalize_into("\x0bA\x1fB\u{3000}\u{c9}\u{3a3}".as_bytes(), Normalize::Lower, &mut b);
        assert_eq!(b, "a\x1fb \u{e9}\u{3c3}".as_bytes()); // \x1f is not White_Space
    }

    #[test]
    fn docs_first_wins_across_batches() {
        let mut d = ExactDedup::new(Normalize::Lower, 0);
        let (a, ao) = docs_of(&["x y", "X  Y", "z"]);
        let r = d.docs(Docs::from_i64(&a, &ao).unwrap()).unwrap();
        assert_eq!(r.keep, vec![true, false, true]);
        let (b, bo) = docs_of(&["z", "w"]);
        let r = d.docs(Docs::from_i64(&b, &bo).unwrap()).unwrap();
        assert_eq!(r.keep, vec![false, true]);
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn paragraphs_removed_in_place() {
        let mut d = ExactDedup::new(Normalize::None, 2);
        let (a, ao) = docs_of(&["aa\n\nbb\naa\nc\nc", "bb\nnew\n", "x"]);
        let r = d.paragraphs(Docs::from_i64(&a, &ao).unwrap()).unwrap();
        assert_eq!(r.changed, vec![0, 1]);
        let texts: Vec<&[u8]> = r.offsets.windows(2).map(|w| &r.data[w[0] as usize..w[1] as usize]).collect();
        assert_eq!(texts, vec![&b"aa\n\nbb\nc\nc"[..], &b"new\n"[..]]);
        assert_eq!(r.removed, 2);
        assert_eq!(r.removed_bytes, 3 + 3);
        assert_eq!(r.paragraphs, 5 + 2 + 1);
    }
}
