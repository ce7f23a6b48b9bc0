//! Character classes used by the hand-written pre-tokenizers, taken from the same Unicode
//! tables as the regex engine (`regex-syntax`), so `\p{L}` here is `\p{L}` there.

use std::sync::OnceLock;

use regex_syntax::hir::{Class, HirKind};

/// `\p{L}`
pub const LETTER: u8 = 1;
/// `\p{N}`
pub const NUMBER: u8 = 2;
/// `\s` (Unicode White_Space)
pub const SPACE: u8 = 4;
/// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]` (o200k "upper-ish")
pub const UPPERISH: u8 = 8;
/// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]` (o200k "lower-ish")
pub const LOWERISH: u8 = 16;

/// Two-level lookup table: 256-code-point blocks, deduplicated.
pub struct Table {
    index: Vec<u16>,
    blocks: Vec<u8>,
    ascii: [u8; 128],
}

fn class_ranges(pattern: &str) -> Vec<(u32, u32)> {
    let hir = regex_syntax::Parser::new()
        .parse(pattern)
        .expect("built-in character class parses");
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        _ => panic!("built-in pattern {pattern} is not a Unicode class"),
    }
}

fn build() -> Table {
    const N: usize = 0x110000;
    let mut flat = vec![0u8; N];
    let classes: [(&str, u8); 5] = [
        (r"\p{L}", LETTER),
        (r"\p{N}", NUMBER),
        (r"\s", SPACE),
        (r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]", UPPERISH),
        (r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]", LOWERISH),
    ];
    for (pat, bit) in classes {
        for (a, b) in class_ranges(pat) {
            for f in &mut flat[a as usize..=b as usize] {
                *f |= bit;
            }
        }
    }
    let mut index = Vec::with_capacity(N / 256);
    let mut blocks: Vec<u8> = Vec::new();
    let mut seen: std::collections::HashMap<&[u8], u16> = std::collections::HashMap::new();
    for chunk in flat.chunks(256) {
        let id = *seen.entry(chunk).or_insert_with(|| {
            let id = (blocks.len() / 256) as u16;
            blocks.extend_from_slice(chunk);
            id
        });
        index.push(id);
    }
    let mut ascii = [0u8; 128];
    ascii.copy_from_slice(&flat[..128]);
    Table {
        index,
        blocks,
        ascii,
    }
}

/// The shared table (built once, a few milliseconds).
pub fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(build)
}

impl Table {
    /// Class bits of code point `cp` (`cp < 0x110000`).
    #[inline(always)]
    pub fn flags(&self, cp: u32) -> u8 {
        if cp < 128 {
            return self.ascii[cp as usize];
        }
        let b = self.index[(cp >> 8) as usize] as usize;
        self.blocks[(b << 8) | (cp & 0xff) as usize]
    }

    /// Decode the char starting at byte `i` of valid UTF-8 `s`: `(code point, flags, byte length)`.
    #[inline(always)]
    pub fn at(&self, s: &[u8], i: usize) -> (u32, u8, usize) {
        let b0 = s[i];
        if b0 < 0x80 {
            return (b0 as u32, self.ascii[b0 as usize], 1);
        }
        let (cp, len) = decode_multibyte(s, i, b0);
        (cp, self.flags(cp), len)
    }
}

#[inline(always)]
fn decode_multibyte(s: &[u8], i: usize, b0: u8) -> (u32, usize) {
    let cont = |k: usize| (s.get(i + k).copied().unwrap_or(0x80) & 0x3f) as u32;
    if b0 < 0xe0 {
        (((b0 & 0x1f) as u32) << 6 | cont(1), 2)
    } else if b0 < 0xf0 {
        (((b0 & 0x0f) as u32) << 12 | cont(1) << 6 | cont(2), 3)
    } else {
        (
            (((b0 & 0x07) as u32) << 18 | cont(1) << 12 | cont(2) << 6 | cont(3)).min(0x10ffff),
            4,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_regex_engine() {
        let t = table();
        let re_l = fancy_regex::Regex::new(r"^\p{L}$").unwrap();
        let re_s = fancy_regex::Regex::new(r"^\s$").unwrap();
        let re_n = fancy_regex::Regex::new(r"^\p{N}$").unwrap();
        for cp in (0u32..0x3000).chain(0x1f000..0x1f700) {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let s = c.to_string();
            let f = t.flags(cp);
            assert_eq!(re_l.is_match(&s).unwrap(), f & LETTER != 0, "{cp:x}");
            assert_eq!(re_s.is_match(&s).unwrap(), f & SPACE != 0, "{cp:x}");
            assert_eq!(re_n.is_match(&s).unwrap(), f & NUMBER != 0, "{cp:x}");
            let (dc, df, dl) = t.at(s.as_bytes(), 0);
            assert_eq!((dc, df, dl), (cp, f, s.len()));
        }
    }
}
