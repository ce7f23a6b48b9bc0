//! A borrowed view of many documents laid out as an Arrow string/binary column:
//! one contiguous byte buffer plus `n + 1` offsets. This is how bulk text crosses from
//! pyarrow into the core without a copy.

use crate::{Error, Result};

/// `n` documents: document `i` is `data[offsets[i]..offsets[i + 1]]`.
#[derive(Clone, Copy, Debug)]
pub struct Docs<'a> {
    data: &'a [u8],
    offsets: Offsets<'a>,
}

#[derive(Clone, Copy, Debug)]
enum Offsets<'a> {
    I32(&'a [i32]),
    I64(&'a [i64]),
}

impl<'a> Docs<'a> {
    /// Wrap Arrow `string` (i32 offsets) buffers, checking that every offset is in bounds
    /// and non-decreasing so later slicing cannot panic.
    pub fn from_i32(data: &'a [u8], offsets: &'a [i32]) -> Result<Self> {
        check_offsets(data.len(), offsets.iter().map(|&o| o as i64))?;
        Ok(Docs { data, offsets: Offsets::I32(offsets) })
    }

    /// Wrap Arrow `large_string` (i64 offsets) buffers.
    pub fn from_i64(data: &'a [u8], offsets: &'a [i64]) -> Result<Self> {
        check_offsets(data.len(), offsets.iter().copied())?;
        Ok(Docs { data, offsets: Offsets::I64(offsets) })
    }

    pub fn len(&self) -> usize {
        match self.offsets {
            Offsets::I32(o) => o.len().saturating_sub(1),
            Offsets::I64(o) => o.len().saturating_sub(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Byte range of document `i` inside [`Docs::data`].
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        match self.offsets {
            Offsets::I32(o) => o[i] as usize..o[i + 1] as usize,
            Offsets::I64(o) => o[i] as usize..o[i + 1] as usize,
        }
    }

    pub fn get(&self, i: usize) -> &'a [u8] {
        &self.data[self.range(i)]
    }

    /// The whole underlying buffer (may contain bytes before the first document when the
    /// Arrow array is a slice).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Total bytes of all documents.
    pub fn total_bytes(&self) -> usize {
        if self.is_empty() {
            0
        } else {
            self.range(self.len() - 1).end - self.range(0).start
        }
    }
}

fn check_offsets(len: usize, offsets: impl Iterator<Item = i64>) -> Result<()> {
    let mut prev: Option<i64> = None;
    for (i, o) in offsets.enumerate() {
        if o < 0 || o as u64 > len as u64 {
            return Err(Error::invalid_data(
                format!("offset {i}"),
                format!("value {o} is outside the data buffer of {len} bytes"),
            ));
        }
        if let Some(p) = prev {
            if o < p {
                return Err(Error::invalid_data(
                    format!("offset {i}"),
                    format!("offsets must not decrease ({p} then {o})"),
                ));
            }
        }
        prev = Some(o);
    }
    Ok(())
}

/// Owned documents in the same layout, for tests and for Rust callers.
#[derive(Clone, Debug, Default)]
pub struct OwnedDocs {
    pub data: Vec<u8>,
    pub offsets: Vec<i64>,
}

impl OwnedDocs {
    pub fn new() -> Self {
        OwnedDocs { data: Vec::new(), offsets: vec![0] }
    }

    pub fn push(&mut self, doc: &[u8]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.data.extend_from_slice(doc);
        self.offsets.push(self.data.len() as i64);
    }

    pub fn view(&self) -> Docs<'_> {
        Docs::from_i64(&self.data, &self.offsets).expect("OwnedDocs offsets are valid by construction")
    }
}

impl<S: AsRef<[u8]>> FromIterator<S> for OwnedDocs {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut d = OwnedDocs::new();
        for s in iter {
            d.push(s.as_ref());
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_documents() {
        let docs: OwnedDocs = ["ab", "", "cde"].into_iter().collect();
        let v = docs.view();
        assert_eq!(v.len(), 3);
        assert_eq!(v.get(0), b"ab");
        assert_eq!(v.get(1), b"");
        assert_eq!(v.get(2), b"cde");
        assert_eq!(v.total_bytes(), 5);
    }

    #[test]
    fn rejects_bad_offsets() {
        assert!(Docs::from_i32(b"abc", &[0, 4]).is_err());
        assert!(Docs::from_i32(b"abc", &[0, 2, 1]).is_err());
        assert!(Docs::from_i32(b"abc", &[-1, 2]).is_err());
        assert!(Docs::from_i32(b"abc", &[0, 3]).is_ok());
        assert!(Docs::from_i32(b"abc", &[]).unwrap().is_empty());
    }
}
