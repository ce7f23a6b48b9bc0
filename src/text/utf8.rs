//! UTF-8 helpers.

/// Largest `j <= i` that is a UTF-8 character boundary of `s` (or `s.len()`).
pub fn floor_char_boundary(s: &[u8], i: usize) -> usize {
    let mut j = i.min(s.len());
    while j > 0 && j < s.len() && is_continuation(s[j]) {
        j -= 1;
    }
    j
}

/// Smallest `j >= i` that is a UTF-8 character boundary of `s` (or `s.len()`).
pub fn ceil_char_boundary(s: &[u8], i: usize) -> usize {
    let mut j = i.min(s.len());
    while j < s.len() && is_continuation(s[j]) {
        j += 1;
    }
    j
}

#[inline]
pub fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        let s = "aé中".as_bytes(); // a | c3 a9 | e4 b8 ad
        assert_eq!(floor_char_boundary(s, 2), 1);
        assert_eq!(ceil_char_boundary(s, 2), 3);
        assert_eq!(floor_char_boundary(s, 4), 3);
        assert_eq!(ceil_char_boundary(s, 4), 6);
        assert_eq!(ceil_char_boundary(s, 99), 6);
        assert_eq!(floor_char_boundary(s, 0), 0);
    }
}
