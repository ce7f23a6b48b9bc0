//! The fast path of the JSONL reader: one scan of a line that checks it is a JSON object with
//! serde_json's strictness, finds the values of the wanted top-level keys and copies the text
//! field's string (unescaped) straight into the output buffer.
//!
//! The scan never decides a hard case. It gives up (returns `None`) on anything unusual — a
//! syntax error, an escaped key, deep nesting, a lone surrogate in the text — and the caller
//! then parses the line with serde_json, which gives the exact error or result. So a line the
//! scan accepts is one serde_json accepts, with the same values: the scan may be stricter than
//! serde_json, never more lenient.
//!
//! Strings are scanned 16 bytes at a time (SSE2, part of every x86-64 CPU) for `"`, `\` and
//! control characters; the text field's bytes are copied in the same pass.

/// Nesting deeper than this is left to serde_json (whose own limit is 128).
const MAX_DEPTH: u32 = 64;

/// One 16-byte block at `p`: bit `k` of the first mask is set where byte `k` is `"`, `\` or
/// below 0x20; the second mask has the high bit of each byte (non-ASCII).
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline(always)]
unsafe fn block(p: *const u8) -> (u32, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let v = _mm_loadu_si128(p as *const __m128i);
        let q = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let bs = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        let ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let m = _mm_or_si128(_mm_or_si128(q, bs), ctl);
        (_mm_movemask_epi8(m) as u32, _mm_movemask_epi8(v) as u32)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (mut m, mut h) = (0u32, 0u32);
        for k in 0..16 {
            let c = *p.add(k);
            if is_special(c) {
                m |= 1 << k;
            }
            if c >= 0x80 {
                h |= 1 << k;
            }
        }
        (m, h)
    }
}

/// [`block`] over 64 bytes.
///
/// # Safety
/// `p..p + 64` must be readable.
#[inline(always)]
unsafe fn block64(p: *const u8) -> (u64, u64) {
    let (m0, h0) = block(p);
    let (m1, h1) = block(p.add(16));
    let (m2, h2) = block(p.add(32));
    let (m3, h3) = block(p.add(48));
    (
        m0 as u64 | (m1 as u64) << 16 | (m2 as u64) << 32 | (m3 as u64) << 48,
        (h0 | h1 | h2 | h3) as u64,
    )
}

#[inline(always)]
fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// The byte a one-character escape `\c` stands for, indexed by `c` (0: not one of them).
static UNESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'/' as usize] = b'/';
    t[b'b' as usize] = 8;
    t[b'f' as usize] = 12;
    t[b'n' as usize] = b'\n';
    t[b'r' as usize] = b'\r';
    t[b't' as usize] = b'\t';
    t
};

#[inline(always)]
fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(..4)? {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = v << 4 | d as u32;
    }
    Some(v)
}

/// Scanner state over one line.
pub(crate) struct Scanner<'a> {
    b: &'a [u8],
    /// Some byte at or above 0x80 was seen (the line then needs a UTF-8 check).
    pub non_ascii: bool,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Scanner { b, non_ascii: false }
    }

    /// Skip JSON whitespace but a newline (which ends the line).
    #[inline(always)]
    fn ws(&self, mut i: usize) -> usize {
        while let Some(&c) = self.b.get(i) {
            if !matches!(c, b' ' | b'\t' | b'\r') {
                break;
            }
            i += 1;
        }
        i
    }

    /// Index of the next `"`, `\` or control byte at or after `i` (or `len`).
    #[inline(always)]
    fn next_special(&mut self, mut i: usize) -> usize {
        let b = self.b;
        while i + 16 <= b.len() {
            // SAFETY: i + 16 <= len
            let (m, h) = unsafe { block(b.as_ptr().add(i)) };
            self.non_ascii |= h != 0;
            if m != 0 {
                return i + m.trailing_zeros() as usize;
            }
            i += 16;
        }
        while i < b.len() && !is_special(b[i]) {
            self.non_ascii |= b[i] >= 0x80;
            i += 1;
        }
        i
    }

    /// Skip a string whose opening quote is at `i - 1`; returns the index after the closing
    /// quote and whether it holds escapes.
    #[inline]
    fn skip_string(&mut self, mut i: usize) -> Option<(usize, bool)> {
        let mut escaped = false;
        loop {
            i = self.next_special(i);
            match *self.b.get(i)? {
                b'"' => return Some((i + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    let e = *self.b.get(i + 1)?;
                    if UNESCAPE[e as usize] != 0 {
                        i += 2;
                    } else if e == b'u' {
                        hex4(self.b.get(i + 2..)?)?;
                        i += 6;
                    } else {
                        return None;
                    }
                }
                _ => return None, // a control character
            }
        }
    }

    /// Copy the string whose opening quote is at `i - 1` into `out`, unescaped; returns the
    /// index after the closing quote. `None` (with `out` unchanged) on anything but a valid
    /// string free of lone surrogates.
    #[inline]
    fn copy_string(&mut self, mut i: usize, out: &mut Vec<u8>) -> Option<usize> {
        let b = self.b;
        let base = out.len();
        // the unescaped string is never longer than its literal; +80 for whole-block stores
        out.reserve(b.len() - i + 80);
        let dst = out.as_mut_ptr();
        let mut w = base; // write position
        loop {
            // 64-byte windows: the specials' mask first, then the plain runs between them
            // copied 16 bytes at a time (may store past the run: the reserve has room)
            'windows: while i + 80 <= b.len() {
                let win = i;
                // SAFETY: win + 64 <= len
                let (mut m, h) = unsafe { block64(b.as_ptr().add(win)) };
                self.non_ascii |= h != 0;
                if m == 0 {
                    // SAFETY: in bounds (win + 64 <= len); w + 64 <= capacity
                    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr().add(i), dst.add(w), 64) };
                    i += 64;
                    w += 64;
                    continue;
                }
                loop {
                    let pos = win + m.trailing_zeros() as usize;
                    let mut s = i;
                    while s < pos {
                        // SAFETY: s + 16 <= win + 80 <= len; w + (s - i) + 16 <= capacity
                        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr().add(s), dst.add(w + (s - i)), 16) };
                        s += 16;
                    }
                    w += pos - i;
                    i = pos;
                    if b[i] != b'\\' {
                        break 'windows; // the closing quote or a control character
                    }
                    let c = UNESCAPE[b[i + 1] as usize];
                    if c == 0 {
                        break 'windows; // \u or an invalid escape: the general code below
                    }
                    // SAFETY: w < capacity (the escape is longer than its byte)
                    unsafe { *dst.add(w) = c };
                    w += 1;
                    i += 2;
                    let d = i - win;
                    if d >= 64 {
                        continue 'windows;
                    }
                    m &= !0u64 << d;
                    if m == 0 {
                        let mut s = i;
                        while s < win + 64 {
                            // SAFETY: as above
                            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr().add(s), dst.add(w + (s - i)), 16) };
                            s += 16;
                        }
                        w += win + 64 - i;
                        i = win + 64;
                        continue 'windows;
                    }
                }
            }
            while i + 16 <= b.len() {
                // SAFETY: i + 16 <= len; w - base <= i - start, so w + 16 <= capacity
                let (m, h) = unsafe {
                    std::ptr::copy_nonoverlapping(b.as_ptr().add(i), dst.add(w), 16);
                    block(b.as_ptr().add(i))
                };
                self.non_ascii |= h != 0;
                if m != 0 {
                    let k = m.trailing_zeros() as usize;
                    i += k;
                    w += k;
                    break;
                }
                i += 16;
                w += 16;
            }
            if i + 16 > b.len() {
                while i < b.len() && !is_special(b[i]) {
                    self.non_ascii |= b[i] >= 0x80;
                    // SAFETY: w < capacity (see above)
                    unsafe { *dst.add(w) = b[i] };
                    i += 1;
                    w += 1;
                }
            }
            match *b.get(i)? {
                b'\\' => {
                    let e = *b.get(i + 1)?;
                    let c = UNESCAPE[e as usize];
                    if c != 0 {
                        // SAFETY: w < capacity (the escape is longer than its byte)
                        unsafe { *dst.add(w) = c };
                        w += 1;
                        i += 2;
                        continue;
                    }
                    if e != b'u' {
                        return None;
                    }
                    let u = hex4(b.get(i + 2..)?)?;
                    let ch = if (0xD800..0xDC00).contains(&u) {
                        if b.get(i + 6) != Some(&b'\\') || b.get(i + 7) != Some(&b'u') {
                            return None;
                        }
                        let lo = hex4(b.get(i + 8..)?)?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return None;
                        }
                        i += 12;
                        char::from_u32(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00))?
                    } else {
                        i += 6;
                        char::from_u32(u)? // None for a lone low surrogate
                    };
                    let mut buf = [0u8; 4];
                    let s = ch.encode_utf8(&mut buf).as_bytes();
                    // SAFETY: the UTF-8 of a \u escape is no longer than the escape
                    unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), dst.add(w), s.len()) };
                    w += s.len();
                }
                b'"' => {
                    // SAFETY: bytes base..w were written above
                    unsafe { out.set_len(w) };
                    return Some(i + 1);
                }
                _ => return None,
            }
        }
    }

    fn number(&self, mut i: usize) -> Option<usize> {
        let b = self.b;
        let digits = |mut i: usize| {
            let s = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            (i > s).then_some(i)
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match *b.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => i = digits(i)?,
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            i = digits(i + 1)?;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            i = digits(i)?;
        }
        Some(i)
    }

    /// Skip the value starting at `i` (no whitespace before it); returns the index after it.
    fn skip_value(&mut self, i: usize, depth: u32) -> Option<usize> {
        let b = self.b;
        match *b.get(i)? {
            b'"' => self.skip_string(i + 1).map(|(j, _)| j),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let mut j = self.ws(i + 1);
                if b.get(j) == Some(&b'}') {
                    return Some(j + 1);
                }
                loop {
                    if b.get(j) != Some(&b'"') {
                        return None;
                    }
                    j = self.skip_string(j + 1)?.0;
                    j = self.ws(j);
                    if b.get(j) != Some(&b':') {
                        return None;
                    }
                    j = self.ws(j + 1);
                    j = self.skip_value(j, depth + 1)?;
                    j = self.ws(j);
                    match *b.get(j)? {
                        b',' => j = self.ws(j + 1),
                        b'}' => return Some(j + 1),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let mut j = self.ws(i + 1);
                if b.get(j) == Some(&b']') {
                    return Some(j + 1);
                }
                loop {
                    j = self.skip_value(j, depth + 1)?;
                    j = self.ws(j);
                    match *b.get(j)? {
                        b',' => j = self.ws(j + 1),
                        b']' => return Some(j + 1),
                        _ => return None,
                    }
                }
            }
            b't' => b[i..].starts_with(b"true").then_some(i + 4),
            b'f' => b[i..].starts_with(b"false").then_some(i + 5),
            b'n' => b[i..].starts_with(b"null").then_some(i + 4),
            _ => self.number(i),
        }
    }

    /// Scan one line, from the start of the scanner's bytes to the first newline (or their
    /// end), as one JSON object; returns where the line ends. `keys[0]` is the text field: its
    /// last string value is copied into `out` (from `out.len()` on at entry). `slots[k]` gets
    /// the byte range of the last value of `keys[k]`. `None` = let serde_json decide (the
    /// caller truncates `out`).
    pub(crate) fn object(
        &mut self,
        keys: &[&[u8]],
        slots: &mut [Option<(usize, usize)>],
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        let b = self.b;
        let doc_start = out.len();
        slots.iter_mut().for_each(|s| *s = None);
        let mut i = self.ws(0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i = self.ws(i + 1);
        if b.get(i) == Some(&b'}') {
            i += 1;
        } else {
            loop {
                if b.get(i) != Some(&b'"') {
                    return None;
                }
                let (kend, escaped) = self.skip_string(i + 1)?;
                if escaped {
                    return None; // keys are compared unescaped by serde_json
                }
                let key = &b[i + 1..kend - 1];
                i = self.ws(kend);
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i = self.ws(i + 1);
                let vstart = i;
                let slot = keys.iter().position(|k| *k == key);
                i = if slot == Some(0) && b.get(i) == Some(&b'"') {
                    out.truncate(doc_start); // a repeated key: the last value wins
                    self.copy_string(i + 1, out)?
                } else {
                    self.skip_value(i, 1)?
                };
                // a key may be wanted twice (text and id the same field): fill every slot
                for (k, want) in keys.iter().enumerate() {
                    if *want == key {
                        slots[k] = Some((vstart, i));
                    }
                }
                i = self.ws(i);
                match *b.get(i)? {
                    b',' => i = self.ws(i + 1),
                    b'}' => {
                        i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        let end = self.ws(i);
        (end == b.len() || b[end] == b'\n').then_some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(line: &str, keys: &[&str]) -> Option<(Vec<Option<String>>, String)> {
        let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        let mut slots = vec![None; keys.len()];
        let mut out = b"prefix".to_vec();
        let mut s = Scanner::new(line.as_bytes());
        let end = s.object(&keys, &mut slots, &mut out)?;
        assert_eq!(end, line.find('\n').unwrap_or(line.len()));
        let vals = slots.iter().map(|s| s.map(|(a, b)| line[a..b].to_string())).collect();
        Some((vals, String::from_utf8(out[6..].to_vec()).unwrap()))
    }

    #[test]
    fn finds_values_and_unescapes_text() {
        let (v, t) = scan(r#" {"a": [1, {"b": null}], "text": "x\ny\"\u00e9\ud83d\ude00", "n": -1.5e3 } "#, &["text", "n"])
            .unwrap();
        assert_eq!(t, "x\ny\"é😀");
        assert_eq!(v[1].as_deref(), Some("-1.5e3"));
        let (v, t) = scan(r#"{"text":"first","text":"second"}"#, &["text"]).unwrap();
        assert!(scan("{\"text\": \"a\"} \r\n{\"text\": 1}", &["text"]).is_some()); // one line of several
        assert_eq!((v[0].as_deref(), t.as_str()), (Some(r#""second""#), "second"));
        let long = "y".repeat(100) + "\\t" + &"z".repeat(37);
        let (_, t) = scan(&format!(r#"{{"text":"{long}"}}"#), &["text"]).unwrap();
        assert_eq!(t, "y".repeat(100) + "\t" + &"z".repeat(37));
    }

    #[test]
    fn gives_up_on_what_serde_json_must_decide() {
        for bad in [
            r#"{"text": "a"} x"#,
            r#"{"text": "a",}"#,
            r#"{"t\u0065xt": "a"}"#,
            r#"{"text": "\ud800"}"#,
            r#"{"text": "\udc00"}"#,
            r#"{"text": "a\x"}"#,
            "{\"text\": \"a\tb\"}",
            r#"{"text": "a", "n": 01}"#,
            r#"{"text": "a", "n": 1.}"#,
            r#"{"text": "a", "n": -}"#,
            r#"{"text": "a", "n": NaN}"#,
            r#"{"text": "a", "n": tru}"#,
            r#"{"text": "a""#,
            r#"["text"]"#,
            "{\"text\":\n\"a\"}", // a newline ends the line
            "",
        ] {
            assert!(scan(bad, &["text"]).is_none(), "{bad}");
        }
        let deep = "[".repeat(70) + &"]".repeat(70);
        assert!(scan(&format!(r#"{{"text": "a", "d": {deep}}}"#), &["text"]).is_none());
        // lone surrogates outside the text field are for serde_json to accept (it does)
        assert!(scan(r#"{"text": "a", "x": "\ud800"}"#, &["text"]).is_some());
    }
}
