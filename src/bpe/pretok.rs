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
    pub fn split<F: FnMut(usize, usize)>(&self, text: &str, mut f: F) -> Result<()> {
        let s = text.as_bytes();
        let n = s.len();
        let t = table();
        let mut i = 0;
        match &self.kind {
            Kind::R50k => {
                while i < n {
                    let e = next_r50k(t, s, i);
                    f(i, e);
                    i = e;
                }
            }
            Kind::Cl100k => {
                while i < n {
                    let e = next_cl100k(t, s, i);
                    f(i, e);
                    i = e;
                }
            }
            Kind::O200k => {
                while i < n {
                    let e = next_o200k(t, s, i);
                    f(i, e);
                    i = e;
                }
            }
            Kind::Regex(re) => {
                for m in re.find_iter(text) {
                    let m = m.map_err(|e| {
                        Error::invalid_data(
                            "pre-tokenizer",
                            format!("regex {:?} failed near byte {i}: {e}", self.pattern),
                        )
                    })?;
                    if self.keep_gaps && m.start() > i {
                        f(i, m.start());
                    }
                    if m.end() > m.start() {
                        f(m.start(), m.end());
                    }
                    i = m.end();
                }
                if self.keep_gaps && i < n {
                    f(i, n);
                }
            }
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
    let mut e = p;
    while e < s.len() && s[e].is_ascii_alphabetic() {
        e += 1;
    }
    if e == p || (e < s.len() && s[e] >= 0x80) {
        return None;
    }
    Some(e)
}

fn next_cl100k(t: &Table, s: &[u8], i: usize) -> usize {
    if let Some(e) = ascii_letters(s, i, false) {
        return e;
    }
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

/// ASCII fast path of o200k's first alternative (`P? U* W+ suffix?`) for the common case of
/// an ASCII word (optionally after one ASCII space/punctuation char) that ends before an
/// ASCII byte. Returns `None` whenever the general matcher must decide.
#[inline(always)]
fn o200k_ascii_word(s: &[u8], i: usize) -> Option<usize> {
    let c = s[i];
    let mut p = i;
    if !c.is_ascii_alphabetic() {
        // P must be ASCII, not a letter, digit, \r or \n; the word must follow.
        if c >= 0x80 || c.is_ascii_digit() || c == b'\r' || c == b'\n' {
            return None;
        }
        p = i + 1;
    }
    let mut q = p;
    while q < s.len() && s[q].is_ascii_uppercase() {
        q += 1;
    }
    let mut e = q;
    while e < s.len() && s[e].is_ascii_lowercase() {
        e += 1;
    }
    if e == q || (e < s.len() && s[e] >= 0x80) {
        return None;
    }
    Some(o200k_suffix(s, e))
}

fn next_o200k(t: &Table, s: &[u8], i: usize) -> usize {
    if let Some(e) = o200k_ascii_word(s, i) {
        return e;
    }
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
            'Ⅻ', '_', '-', '\u{3000}', 'ß', 'İ', 'K',
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
    fn gaps_are_kept_on_request() {
        let p = Pretokenizer::new(r"\d+").unwrap().keep_gaps(true);
        assert_eq!(p.pieces("ab12cd3").unwrap(), vec![0..2, 2..4, 4..6, 6..7]);
        let q = Pretokenizer::new(r"\d+").unwrap();
        assert_eq!(q.pieces("ab12cd3").unwrap(), vec![2..4, 6..7]);
    }
}
