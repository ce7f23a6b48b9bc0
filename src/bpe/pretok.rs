//! Pre-tokenization: splitting text into the pieces that BPE encodes independently.
//!
//! [`Pretokenizer::new`] takes a regex (tiktoken's `pat_str` or a Hugging Face `Split`
//! pattern). The four patterns used by OpenAI's encodings (r50k/p50k/gpt2, cl100k, o200k)
//! and the original GPT-2 pattern get a hand-written matcher that reproduces the regex's
//! leftmost-first backtracking semantics exactly (differentially tested against the regex
//! engine); every other pattern runs on `fancy-regex` (lookaround, possessive quantifiers).

use std::ops::Range;

use super::unicode::{table, Table, LETTER, LOWERISH, NUMBER, SPACE, UPPERISH};
use crate::{Error, Result};

/// tiktoken's pattern for r50k_base, p50k_base and gpt2.
pub const R50K_PATTERN: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s";
/// The original GPT-2 pattern (also the Hugging Face `ByteLevel(use_regex=True)` pattern).
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// tiktoken's pattern for cl100k_base.
pub const CL100K_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";
/// tiktoken's pattern for o200k_base.
pub const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"\p{N}{1,3}",
    "|",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    "|",
    r"\s*[\r\n]+",
    "|",
    r"\s+(?!\S)",
    "|",
    r"\s+"
);

/// Which matcher runs.
#[derive(Clone, Debug)]
enum Kind {
    R50k,
    Cl100k,
    O200k,
    Regex(Box<fancy_regex::Regex>),
}

/// The pieces of a regex pre-tokenizer, a batch at a time (with the gaps between matches
/// when they are kept).
struct RegexPieces<'r, 't> {
    matches: fancy_regex::Matches<'r, 't, str>,
    batch: Vec<(usize, usize)>,
    next: usize,
    /// End of the last match.
    end: usize,
    done: bool,
}

impl RegexPieces<'_, '_> {
    const BATCH: usize = 1024;

    /// The next piece of a text of `n` bytes.
    fn next(&mut self, p: &Pretokenizer, n: usize) -> Result<Option<(usize, usize)>> {
        if self.next == self.batch.len() {
            self.batch.clear();
            self.next = 0;
            while self.batch.len() < Self::BATCH && !self.done {
                match self.matches.next() {
                    Some(m) => {
                        let m = m.map_err(|e| {
                            Error::invalid_data(
                                "pre-tokenizer",
                                format!("regex {:?} failed near byte {}: {e}", p.pattern, self.end),
                            )
                        })?;
                        if p.keep_gaps && m.start() > self.end {
                            self.batch.push((self.end, m.start()));
                        }
                        if m.end() > m.start() {
                            self.batch.push((m.start(), m.end()));
                        }
                        self.end = m.end();
                    }
                    None => {
                        if p.keep_gaps && self.end < n {
                            self.batch.push((self.end, n));
                        }
                        self.done = true;
                    }
                }
            }
        }
        let piece = self.batch.get(self.next).copied();
        self.next += 1;
        Ok(piece)
    }
}

/// Splits text into pieces.
#[derive(Clone, Debug)]
pub struct Pretokenizer {
    kind: Kind,
    pattern: String,
    keep_gaps: bool,
}

impl Pretokenizer {
    /// A pre-tokenizer for `pattern`, using a hand-written matcher when the pattern is one
    /// of the known OpenAI/GPT-2 patterns. Text between matches is dropped (tiktoken).
    pub fn new(pattern: &str) -> Result<Self> {
        let kind = match pattern {
            R50K_PATTERN | GPT2_PATTERN => Kind::R50k,
            CL100K_PATTERN => Kind::Cl100k,
            O200K_PATTERN => Kind::O200k,
            _ => return Self::regex(pattern),
        };
        table();
        Ok(Pretokenizer {
            kind,
            pattern: pattern.to_string(),
            keep_gaps: false,
        })
    }

    /// A pre-tokenizer that always uses the regex engine (the reference the hand-written
    /// matchers are tested against).
    pub fn regex(pattern: &str) -> Result<Self> {
        let re = fancy_regex::Regex::new(pattern).map_err(|e| {
            Error::invalid_argument(format!("invalid pre-tokenizer pattern {pattern:?}: {e}"))
        })?;
        Ok(Pretokenizer {
            kind: Kind::Regex(Box::new(re)),
            pattern: pattern.to_string(),
            keep_gaps: false,
        })
    }

    /// Also emit the text between matches as pieces (Hugging Face `Split(behavior="isolated")`).
    pub fn keep_gaps(mut self, keep: bool) -> Self {
        self.keep_gaps = keep;
        self
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// True when a hand-written matcher is used.
    pub fn is_specialized(&self) -> bool {
        !matches!(self.kind, Kind::Regex(_))
    }

    /// Call `f(start, end)` for each piece of `text`, in order.
    ///
    /// `f` is called from one place only, so the compiler inlines it into the loop (no
    /// function call per piece): a regex pre-tokenizer hands over its pieces in batches.
    #[inline]
    pub fn split<F: FnMut(usize, usize)>(&self, text: &str, mut f: F) -> Result<()> {
        let s = text.as_bytes();
        let n = s.len();
        let t = table();
        let mut regex = match &self.kind {
            Kind::Regex(re) => Some(RegexPieces {
                matches: re.find_iter(text),
                batch: Vec::new(),
                next: 0,
                end: 0,
                done: false,
            }),
            _ => None,
        };
        let mut i = 0;
        loop {
            let (a, e) = match (&self.kind, regex.as_mut()) {
                (Kind::R50k, _) if i < n => (i, next_r50k(t, s, i)),
                (Kind::Cl100k, _) if i < n => (i, next_cl100k(t, s, i)),
                (Kind::O200k, _) if i < n => (i, next_o200k(t, s, i)),
                (Kind::Regex(_), Some(r)) => match r.next(self, n)? {
                    Some(p) => p,
                    None => break,
                },
                _ => break,
            };
            f(a, e);
            i = e;
        }
        Ok(())
    }

    /// The pieces of `text` as byte ranges.
    pub fn pieces(&self, text: &str) -> Result<Vec<Range<usize>>> {
        let mut v = Vec::new();
        self.split(text, |a, b| v.push(a..b))?;
        Ok(v)
    }
}

#[inline(always)]
fn is_punct(f: u8) -> bool {
    f & (SPACE | LETTER | NUMBER) == 0
}

/// Length of a case-insensitive match of ASCII lowercase `lower` at `i` (regex simple case
/// folding: `s` also matches U+017F LATIN SMALL LETTER LONG S).
#[inline(always)]
fn fold_at(s: &[u8], i: usize, lower: u8) -> usize {
    match s.get(i) {
        Some(&b) if b | 0x20 == lower => 1,
        Some(0xc5) if lower == b's' && s.get(i + 1) == Some(&0xbf) => 2,
        _ => 0,
    }
}

/// Scan a run of chars whose flags intersect `mask`, from `i`; returns the end.
#[inline(always)]
fn run(t: &Table, s: &[u8], mut i: usize, mask: u8) -> usize {
    while i < s.len() {
        let (_, f, l) = t.at(s, i);
        if f & mask == 0 {
            break;
        }
        i += l;
    }
    i
}

#[inline(always)]
fn flags_at(t: &Table, s: &[u8], i: usize) -> u8 {
    if i < s.len() {
        t.at(s, i).1
    } else {
        0
    }
}

/// Whitespace run from `i` (which is whitespace): `(end, start of last char, position
/// after the last \r or \n in the run, if any)`.
#[inline(always)]
fn space_run(t: &Table, s: &[u8], i: usize) -> (usize, usize, Option<usize>) {
    let mut j = i;
    let mut last = i;
    let mut nl = None;
    while j < s.len() {
        let (c, f, l) = t.at(s, j);
        if f & SPACE == 0 {
            break;
        }
        if c == b'\r' as u32 || c == b'\n' as u32 {
            nl = Some(j + 1);
        }
        last = j;
        j += l;
    }
    (j, last, nl)
}

fn next_r50k(t: &Table, s: &[u8], i: usize) -> usize {
    if let Some(e) = ascii_letters(s, i, true) {
        return e;
    }
    let (c, f, l) = t.at(s, i);
    if c == b'\'' as u32 {
        match s.get(i + 1) {
            Some(b's' | b'd' | b'm' | b't') => return i + 2,
            Some(b'l') if s.get(i + 2) == Some(&b'l') => return i + 3,
            Some(b'v' | b'r') if s.get(i + 2) == Some(&b'e') => return i + 3,
            _ => {}
        }
    }
    let (j, g) = if c == b' ' as u32 && i + 1 < s.len() {
        (i + 1, flags_at(t, s, i + 1))
    } else {
        (i, f)
    };
    // ` ?\p{L}++`, ` ?\p{N}++`, ` ?[^\s\p{L}\p{N}]++`: try with the space, then without.
    for (start, fl) in [(j, g), (i, f)] {
        if fl & LETTER != 0 {
            return run(t, s, start, LETTER);
        }
        if fl & NUMBER != 0 {
            return run(t, s, start, NUMBER);
        }
        if is_punct(fl) && start < s.len() {
            return run_punct(t, s, start);
        }
        if start == i {
            break;
        }
    }
    // whitespace: `\s++$|\s+(?!\S)|\s`
    let (e, last, _) = space_run(t, s, i);
    if e == s.len() {
        e
    } else if last > i {
        last
    } else {
        i + l
    }
}

#[inline(always)]
fn run_punct(t: &Table, s: &[u8], mut i: usize) -> usize {
    while i < s.len() {
        let (_, f, l) = t.at(s, i);
        if !is_punct(f) {
            break;
        }
        i += l;
    }
    i
}

#[inline(always)]
fn newline_run(s: &[u8], mut i: usize, slash: bool) -> usize {
    while let Some(&b) = s.get(i) {
        if b == b'\r' || b == b'\n' || (slash && b == b'/') {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// ASCII fast path for `P?+ \p{L}++` (cl100k, `P = [^\r\n\p{L}\p{N}]`) and ` ?\p{L}++`
/// (r50k, `space_only`): an ASCII letter run that ends before an ASCII byte.
#[inline(always)]
fn ascii_letters(s: &[u8], i: usize, space_only: bool) -> Option<usize> {
    let c = s[i];
    let mut p = i;
    if !c.is_ascii_alphabetic() {
        let ok = if space_only {
            c == b' '
        } else {
            c < 0x80 && !c.is_ascii_digit() && c != b'\r' && c != b'\n' && c != b'\''
        };
        if !ok {
            return None;
        }
        p = i + 1;
    }
    let e = letter_run(s, p, 0x20);
    if e == p || (e < s.len() && s[e] >= 0x80) {
        return None;
    }
    Some(e)
}

/// cl100k's matcher for a piece starting with an ASCII byte; `None` when a non-ASCII char
/// (or a contraction) could change the result.
#[inline(always)]
fn cl100k_ascii(s: &[u8], i: usize) -> Option<usize> {
    let c = s[i];
    let k = CLASS[c as usize];
    let letters = |j: usize| {
        let e = letter_run(s, j, 0x20);
        (class_at(s, e) != C_HIGH).then_some(e)
    };
    match k {
        C_LOWER | C_UPPER => letters(i),
        C_SPACE | C_WS | C_PUNCT if c != b'\'' => match class_at(s, i + 1) {
            C_LOWER | C_UPPER => letters(i + 1),
            C_HIGH => None,
            k1 => {
                if k == C_PUNCT {
                    ascii_punct_tail(s, i, false)
                } else if k == C_SPACE && k1 == C_PUNCT {
                    ascii_punct_tail(s, i + 1, false)
                } else {
                    ascii_space(s, i, true)
                }
            }
        },
        C_DIGIT => ascii_digits(s, i),
        C_NL => ascii_space(s, i, true),
        _ => None,
    }
}

#[inline(always)]
fn next_cl100k(t: &Table, s: &[u8], i: usize) -> usize {
    if let Some(e) = cl100k_ascii(s, i) {
        return e;
    }
    next_cl100k_general(t, s, i)
}

#[inline(never)]
fn next_cl100k_general(t: &Table, s: &[u8], i: usize) -> usize {
    let (c, f, l) = t.at(s, i);
    // '(?i:[sdmt]|ll|ve|re)
    if c == b'\'' as u32 {
        for x in [b's', b'd', b'm', b't'] {
            let k = fold_at(s, i + 1, x);
            if k > 0 {
                return i + 1 + k;
            }
        }
        for (a, b) in [(b'l', b'l'), (b'v', b'e'), (b'r', b'e')] {
            let k = fold_at(s, i + 1, a);
            if k > 0 {
                let k2 = fold_at(s, i + 1 + k, b);
                if k2 > 0 {
                    return i + 1 + k + k2;
                }
            }
        }
    }
    // [^\r\n\p{L}\p{N}]?+\p{L}++
    let newline = c == b'\r' as u32 || c == b'\n' as u32;
    let p = if f & (LETTER | NUMBER) == 0 && !newline {
        i + l
    } else {
        i
    };
    if flags_at(t, s, p) & LETTER != 0 {
        return run(t, s, p, LETTER);
    }
    // \p{N}{1,3}+
    if f & NUMBER != 0 {
        return up_to_three_digits(t, s, i + l);
    }
    //  ?[^\s\p{L}\p{N}]++[\r\n]*+
    if c == b' ' as u32 && i + 1 < s.len() && is_punct(flags_at(t, s, i + 1)) {
        return newline_run(s, run_punct(t, s, i + 1), false);
    }
    if is_punct(f) {
        return newline_run(s, run_punct(t, s, i), false);
    }
    // \s++$|\s*[\r\n]|\s+(?!\S)|\s
    let (e, last, nl) = space_run(t, s, i);
    if e == s.len() {
        return e;
    }
    if let Some(k) = nl {
        return k;
    }
    if last > i {
        return last;
    }
    i + l
}

/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)?` at `i`: end of the optional suffix.
#[inline(always)]
fn o200k_suffix(s: &[u8], i: usize) -> usize {
    if s.get(i) != Some(&b'\'') {
        return i;
    }
    let j = i + 1;
    for x in [b's', b't'] {
        let k = fold_at(s, j, x);
        if k > 0 {
            return j + k;
        }
    }
    for (a, b) in [(b'r', b'e'), (b'v', b'e')] {
        let k = fold_at(s, j, a);
        if k > 0 {
            let k2 = fold_at(s, j + k, b);
            if k2 > 0 {
                return j + k + k2;
            }
        }
    }
    let k = fold_at(s, j, b'm');
    if k > 0 {
        return j + k;
    }
    let k = fold_at(s, j, b'l');
    if k > 0 {
        let k2 = fold_at(s, j + k, b'l');
        if k2 > 0 {
            return j + k + k2;
        }
    }
    let k = fold_at(s, j, b'd');
    if k > 0 {
        return j + k;
    }
    i
}

/// Classes of single bytes for the ASCII fast paths (`HIGH`: a byte of a multi-byte char,
/// for which the general matcher decides).
const C_LOWER: u8 = 0;
const C_UPPER: u8 = 1;
const C_DIGIT: u8 = 2;
/// `' '`
const C_SPACE: u8 = 3;
/// `\r`, `\n`
const C_NL: u8 = 4;
/// Other ASCII `\s`: `\t`, `\x0b`, `\x0c`.
const C_WS: u8 = 5;
/// ASCII `[^\s\p{L}\p{N}]`.
const C_PUNCT: u8 = 6;
const C_HIGH: u8 = 7;
/// Past the end of the text.
const C_END: u8 = 8;

const fn byte_classes() -> [u8; 256] {
    let mut t = [C_HIGH; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_lowercase() {
            C_LOWER
        } else if c.is_ascii_uppercase() {
            C_UPPER
        } else if c.is_ascii_digit() {
            C_DIGIT
        } else if c == b' ' {
            C_SPACE
        } else if c == b'\r' || c == b'\n' {
            C_NL
        } else if c == b'\t' || c == 0x0b || c == 0x0c {
            C_WS
        } else {
            C_PUNCT
        };
        b += 1;
    }
    t
}

static CLASS: [u8; 256] = byte_classes();

#[inline(always)]
fn class_at(s: &[u8], i: usize) -> u8 {
    match s.get(i) {
        Some(&b) => CLASS[b as usize],
        None => C_END,
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// End of the run of ASCII lowercase letters starting at `i` (8 bytes at a time).
#[inline(always)]
fn lower_run(s: &[u8], i: usize) -> usize {
    letter_run(s, i, 0)
}

/// End of the run of ASCII letters (`fold = 0x20`: either case) or lowercase letters
/// (`fold = 0`) starting at `i`.
#[inline(always)]
fn letter_run(s: &[u8], mut i: usize, fold: u8) -> usize {
    let fold8 = fold as u64 * ONES;
    while let Some(w) = s.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
        let w = u64::from_le_bytes(w) | fold8;
        // High bit of each byte set iff the byte is in b'a'..=b'z' (carries out of bytes
        // >= 0x80 only reach bytes after the first non-letter, which are not looked at).
        let lower = w.wrapping_add((0x80 - b'a' as u64) * ONES)
            & !w.wrapping_add((0x80 - b'z' as u64 - 1) * ONES)
            & !w
            & HIGHS;
        let stop = !lower & HIGHS;
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < s.len() && (s[i] | fold).is_ascii_lowercase() {
        i += 1;
    }
    i
}

/// ASCII fast path of o200k's word alternatives (`P? U* W+ suffix?` then `P? U+ W* suffix?`)
/// for an ASCII word starting at `j` (a letter) that ends before an ASCII byte.
#[inline(always)]
fn o200k_ascii_word(s: &[u8], j: usize) -> Option<usize> {
    let mut q = j;
    while q < s.len() && s[q].is_ascii_uppercase() {
        q += 1;
    }
    let e = lower_run(s, q);
    if class_at(s, e) == C_HIGH {
        return None;
    }
    Some(o200k_suffix(s, e))
}

/// ASCII fast path of ` ?[^\s\p{L}\p{N}]+[\r\n/]*` from the first punctuation byte `j`.
#[inline(always)]
fn ascii_punct_tail(s: &[u8], j: usize, slash: bool) -> Option<usize> {
    let mut e = j;
    while class_at(s, e) == C_PUNCT {
        e += 1;
    }
    if class_at(s, e) == C_HIGH {
        return None;
    }
    Some(newline_run(s, e, slash))
}

/// ASCII fast path of the whitespace alternatives `\s*[\r\n]+|\s+(?!\S)|\s+` (o200k;
/// `end_nl = false`) or `\s++$|\s*[\r\n]|\s+(?!\S)|\s` (cl100k; `end_nl = true`), from
/// whitespace byte `i`.
#[inline(always)]
fn ascii_space(s: &[u8], i: usize, cl100k: bool) -> Option<usize> {
    let mut e = i;
    let mut nl = 0;
    loop {
        match class_at(s, e) {
            C_SPACE | C_WS => e += 1,
            C_NL => {
                e += 1;
                nl = e;
            }
            C_HIGH => return None,
            _ => break,
        }
    }
    if cl100k && e == s.len() {
        return Some(e);
    }
    if nl != 0 {
        return Some(nl);
    }
    if e == s.len() {
        return Some(e);
    }
    Some(if e - i > 1 { e - 1 } else { e })
}

/// `\p{N}{1,3}` from ASCII digit `i`, when no non-ASCII byte can take part.
#[inline(always)]
fn ascii_digits(s: &[u8], i: usize) -> Option<usize> {
    let mut e = i + 1;
    while e < i + 3 {
        match class_at(s, e) {
            C_DIGIT => e += 1,
            C_HIGH => return None,
            _ => break,
        }
    }
    Some(e)
}

/// o200k's matcher for a piece starting with an ASCII byte; `None` when a non-ASCII char
/// could change the result.
#[inline(always)]
fn o200k_ascii(s: &[u8], i: usize) -> Option<usize> {
    let k = CLASS[s[i] as usize];
    match k {
        C_LOWER | C_UPPER => o200k_ascii_word(s, i),
        C_SPACE | C_WS | C_PUNCT => match class_at(s, i + 1) {
            // `P` followed by a word.
            C_LOWER | C_UPPER => o200k_ascii_word(s, i + 1),
            C_HIGH => None,
            k1 => {
                if k == C_PUNCT {
                    ascii_punct_tail(s, i, true)
                } else if k == C_SPACE && k1 == C_PUNCT {
                    ascii_punct_tail(s, i + 1, true)
                } else {
                    ascii_space(s, i, false)
                }
            }
        },
        C_DIGIT => ascii_digits(s, i),
        C_NL => ascii_space(s, i, false),
        _ => None,
    }
}

#[inline(always)]
fn next_o200k(t: &Table, s: &[u8], i: usize) -> usize {
    if let Some(e) = o200k_ascii(s, i) {
        return e;
    }
    next_o200k_general(t, s, i)
}

#[inline(never)]
fn next_o200k_general(t: &Table, s: &[u8], i: usize) -> usize {
    let (c, f, l) = t.at(s, i);
    let newline = c == b'\r' as u32 || c == b'\n' as u32;
    let p_ok = f & (LETTER | NUMBER) == 0 && !newline;
    let starts: [usize; 2] = [i + l, i];
    let starts = if p_ok { &starts[..] } else { &starts[1..] };
    // A: P? U* W+ suffix?
    for &p in starts {
        let mut q = p;
        let mut last_w = None;
        while q < s.len() {
            let (_, f2, l2) = t.at(s, q);
            if f2 & UPPERISH == 0 {
                break;
            }
            if f2 & LOWERISH != 0 {
                last_w = Some(q);
            }
            q += l2;
        }
        let w = if flags_at(t, s, q) & LOWERISH != 0 {
            Some(q)
        } else {
            last_w
        };
        if let Some(w) = w {
            return o200k_suffix(s, run(t, s, w, LOWERISH));
        }
    }
    // B: P? U+ W* suffix?
    for &p in starts {
        if flags_at(t, s, p) & UPPERISH != 0 {
            let e = run(t, s, p, UPPERISH);
            return o200k_suffix(s, run(t, s, e, LOWERISH));
        }
    }
    // \p{N}{1,3}
    if f & NUMBER != 0 {
        return up_to_three_digits(t, s, i + l);
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n/]*
    if c == b' ' as u32 && i + 1 < s.len() && is_punct(flags_at(t, s, i + 1)) {
        return newline_run(s, run_punct(t, s, i + 1), true);
    }
    if is_punct(f) {
        return newline_run(s, run_punct(t, s, i), true);
    }
    // \s*[\r\n]+|\s+(?!\S)|\s+
    let (e, last, nl) = space_run(t, s, i);
    if let Some(k) = nl {
        return k;
    }
    if e == s.len() {
        return e;
    }
    if last > i {
        return last;
    }
    e
}

/// `\p{N}{1,3}` after its first digit: end of up to two more digits starting at `j`.
fn up_to_three_digits(t: &Table, s: &[u8], mut j: usize) -> usize {
    for _ in 0..2 {
        if j >= s.len() {
            break;
        }
        let (_, f, l) = t.at(s, j);
        if f & NUMBER == 0 {
            break;
        }
        j += l;
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs() -> &'static Vec<(Pretokenizer, Pretokenizer)> {
        static P: std::sync::OnceLock<Vec<(Pretokenizer, Pretokenizer)>> =
            std::sync::OnceLock::new();
        P.get_or_init(|| {
            PATTERNS
                .iter()
                .map(|p| {
                    let fast = Pretokenizer::new(p).unwrap();
                    assert!(fast.is_specialized());
                    (fast, Pretokenizer::regex(p).unwrap())
                })
                .collect()
        })
    }

    fn check(pattern: &str, text: &str) {
        let (fast, slow) = pairs()
            .iter()
            .find(|(f, _)| f.pattern() == pattern)
            .unwrap();
        assert_eq!(
            fast.pieces(text).unwrap(),
            slow.pieces(text).unwrap(),
            "pattern {pattern:?} text {text:?}"
        );
    }

    const PATTERNS: [&str; 4] = [R50K_PATTERN, GPT2_PATTERN, CL100K_PATTERN, O200K_PATTERN];

    #[test]
    fn known_cases() {
        let cases = [
            "Hello world",
            "I'm here, they'RE 'LL 'ſ 'Ss don't",
            "  \n\n  x  ",
            "a\r\n\r\nb",
            "123456 7 89",
            "   ",
            "\t\tfoo",
            " !!! /// \n\n",
            "ÀB́c DEf ǅx ʰa",
            "日本語のテキスト",
            "e\u{301}\u{301}x",
            "\u{301}a",
            " \u{301}",
            "'",
            "x'",
            "ab's",
            "A'S",
            "mixedCASEWords HTTPServer",
            "٣٤٥٦",
            "a  ",
            "\u{a0}\u{a0}a",
            "x\u{2028}y",
            "//comment\n",
            " ?\n",
            "👍🏽 🎉🎉",
            "12a3",
            "'ll've're",
            "x\t\tfoo \x0b\x0cbar\x1c\x1fbaz",
            "word\u{a0}next  \u{a0}",
            "(hello) [World]! ,,,\r\n/// //\n/x",
            "abcdefghijklmnopqrstuvwxyzé ABCDEFGHIJKLMNOPQRSTUVé",
            "HTTPServer ABC'S abc'Ss 'ſ x'ſt",
            "12345678901\u{660}2 1\u{660}",
            "!\u{301}x ?\u{2014}- -\u{2014}",
            "  \n \t\n\r\n   x\n",
            " \u{3000}\n",
            "a\n",
            "a ",
        ];
        for p in PATTERNS {
            for c in cases {
                check(p, c);
            }
        }
    }

    fn alphabet() -> impl Strategy<Value = String> {
        let chars: Vec<char> = vec![
            'a', 'b', 'Z', 'S', 's', 'l', 'L', 'v', 'e', 'r', 'd', 'm', 't', 'T', '\'', ' ', ' ',
            '\n', '\r', '\t', '1', '2', '٣', '½', '.', ',', '/', '!', '\u{a0}', '\u{2028}',
            '\u{301}', '\u{ff9e}', 'ſ', 'ǅ', 'ʰ', 'é', 'É', '日', '本', '😀', '🏽', '\u{200d}',
            'Ⅻ', '_', '-', '\u{3000}', 'ß', 'İ', 'K', '\x0b', '\x0c', 'A', 'x', '(', '\u{85}',
        ];
        proptest::collection::vec(proptest::sample::select(chars), 0..40)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn specialized_matches_regex(text in alphabet()) {
            for p in PATTERNS {
                check(p, &text);
            }
        }
        #[test]
        fn specialized_matches_regex_any(text in any::<String>()) {
            for p in PATTERNS {
                check(p, &text);
            }
        }
    }

    #[test]
    fn byte_classes_match_unicode_table() {
        let t = table();
        for b in 0u8..128 {
            let f = t.flags(b as u32);
            let k = CLASS[b as usize];
            assert_eq!(f & SPACE != 0, matches!(k, C_SPACE | C_NL | C_WS), "{b:#x}");
            assert_eq!(f & LETTER != 0, matches!(k, C_LOWER | C_UPPER), "{b:#x}");
            assert_eq!(f & NUMBER != 0, k == C_DIGIT, "{b:#x}");
            assert_eq!(f & LOWERISH != 0, k == C_LOWER, "{b:#x}");
            assert_eq!(f & UPPERISH != 0, k == C_UPPER, "{b:#x}");
        }
        for b in 128..=255u8 {
            assert_eq!(CLASS[b as usize], C_HIGH);
        }
        // The 8-byte letter scan agrees with a byte loop at every offset and length.
        let text: Vec<u8> = (0..600u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut s = text.clone();
        for (i, b) in s.iter_mut().enumerate() {
            if i % 7 != 0 {
                *b = (b'a' + (*b % 26)) ^ if i % 5 == 0 { 0x20 } else { 0 };
            }
        }
        for i in 0..s.len() {
            for fold in [0u8, 0x20] {
                let mut e = i;
                while e < s.len() && (s[e] | fold).is_ascii_lowercase() {
                    e += 1;
                }
                assert_eq!(letter_run(&s, i, fold), e, "i={i} fold={fold}");
            }
        }
    }

    #[test]
    fn gaps_are_kept_on_request() {
        let p = Pretokenizer::new(r"\d+").unwrap().keep_gaps(true);
        assert_eq!(p.pieces("ab12cd3").unwrap(), vec![0..2, 2..4, 4..6, 6..7]);
        let q = Pretokenizer::new(r"\d+").unwrap();
        assert_eq!(q.pieces("ab12cd3").unwrap(), vec![2..4, 6..7]);
        // Several batches of regex pieces, with a gap at the end.
        let text = "ab12".repeat(1500) + "x";
        let got = p.pieces(&text).unwrap();
        assert_eq!(got.len(), 3001);
        for (k, r) in got.iter().enumerate() {
            let want = if k == 3000 { 6000..6001 } else { 2 * k..2 * k + 2 };
            assert_eq!(*r, want, "piece {k}");
        }
        assert_eq!(q.pieces(&text).unwrap().len(), 1500);
    }
}
