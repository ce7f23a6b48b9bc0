//! The on-disk suffix index: one memory-mapped file holding the corpus text, the document
//! offsets and the suffix array, answering `count` / `locate` by binary search.
//!
//! # File format (version 1, little-endian)
//!
//! | bytes | content |
//! |---|---|
//! | 0..128 | header: magic `GMSUFIDX`, version, SA width, #docs, text length, section offsets, file length, body checksum, corpus checksum, header checksum |
//! | 128.. | text: every document followed by one `0xFF` byte |
//! | 8-aligned | `num_docs + 1` u64 offsets of the documents inside the text |
//! | 8-aligned | suffix array, `text_len` entries of 4 or 8 bytes |
//!
//! `0xFF` never occurs in UTF-8, so it separates documents without any possible
//! collision: a pattern without `0xFF` can only match inside one document, and `count` is
//! exactly the width of the suffix-array interval (no per-occurrence filtering). Documents
//! containing `0xFF` (not valid UTF-8) are rejected at build time.
//!
//! The file is written to a temporary name in the target directory, the header (with its
//! own checksum and the expected file length) is written last, the file is fsynced and only
//! then renamed into place. A truncated, partially written or foreign file fails
//! [`SuffixIndex::open`]; `verify` additionally re-hashes the whole body.

use std::fs::{self, File};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::sa::{suffix_array, IndexWidth};
use crate::text::Docs;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"GMSUFIDX";
const VERSION: u32 = 1;
const HEADER: usize = 128;
const SEP: u8 = 0xFF;

/// Header fields of an index file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexInfo {
    pub version: u32,
    pub sa_width: u32,
    pub num_docs: u64,
    /// Bytes of text including one separator per document.
    pub text_len: u64,
    pub text_off: u64,
    pub docs_off: u64,
    pub sa_off: u64,
    pub file_len: u64,
    pub body_checksum: u64,
    /// xxh3-64 of the documents each followed by `0xFF` (see [`corpus_checksum`]).
    pub corpus_checksum: u64,
}

impl IndexInfo {
    fn encode(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&self.version.to_le_bytes());
        h[12..16].copy_from_slice(&self.sa_width.to_le_bytes());
        let fields = [
            self.num_docs,
            self.text_len,
            self.text_off,
            self.docs_off,
            self.sa_off,
            self.file_len,
            self.body_checksum,
            self.corpus_checksum,
        ];
        for (k, v) in fields.iter().enumerate() {
            h[16 + 8 * k..24 + 8 * k].copy_from_slice(&v.to_le_bytes());
        }
        let c = xxh3_64(&h[..120]);
        h[120..128].copy_from_slice(&c.to_le_bytes());
        h
    }

    fn decode(h: &[u8], path: &str) -> Result<IndexInfo> {
        let bad = |m: String| Error::invalid_data(path, m);
        if h.len() < HEADER {
            return Err(bad(format!("file of {} bytes is too short to be a gristmill suffix index", h.len())));
        }
        if &h[0..8] != MAGIC {
            return Err(bad("not a gristmill suffix index (bad magic; the file may be incomplete)".into()));
        }
        if u64_at(h, 120) != xxh3_64(&h[..120]) {
            return Err(bad("index header checksum mismatch (corrupted file)".into()));
        }
        let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if version != VERSION {
            return Err(bad(format!("unsupported index version {version} (this gristmill reads version {VERSION})")));
        }
        let f = |k: usize| u64_at(h, 16 + 8 * k);
        let info = IndexInfo {
            version,
            sa_width: u32::from_le_bytes([h[12], h[13], h[14], h[15]]),
            num_docs: f(0),
            text_len: f(1),
            text_off: f(2),
            docs_off: f(3),
            sa_off: f(4),
            file_len: f(5),
            body_checksum: f(6),
            corpus_checksum: f(7),
        };
        let expect = layout(info.text_len, info.num_docs, info.sa_width);
        if !(info.sa_width == 4 || info.sa_width == 8)
            || expect != Some((info.docs_off, info.sa_off, info.file_len))
            || info.text_off != HEADER as u64
        {
            return Err(bad("inconsistent index header (corrupted file)".into()));
        }
        Ok(info)
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// `(docs_off, sa_off, file_len)` for the given sizes, or `None` on overflow.
fn layout(text_len: u64, num_docs: u64, width: u32) -> Option<(u64, u64, u64)> {
    let docs_off = (HEADER as u64).checked_add(text_len)?.checked_next_multiple_of(8)?;
    let sa_off = docs_off.checked_add(num_docs.checked_add(1)?.checked_mul(8)?)?;
    let end = sa_off.checked_add(text_len.checked_mul(width as u64)?)?;
    Some((docs_off, sa_off, end))
}

/// xxh3-64 of the documents, each followed by `0xFF`: equal to an index's
/// `corpus_checksum` iff the index was built from exactly these documents.
pub fn corpus_checksum(docs: Docs<'_>) -> u64 {
    let mut h = Xxh3::new();
    for d in docs.iter() {
        h.update(d);
        h.update(&[SEP]);
    }
    h.digest()
}

enum SaBuf {
    W32(Vec<i32>),
    W64(Vec<i64>),
}

impl SaBuf {
    fn len(&self) -> usize {
        match self {
            SaBuf::W32(v) => v.len(),
            SaBuf::W64(v) => v.len(),
        }
    }
}

/// A memory-mapped suffix index.
pub struct SuffixIndex {
    map: Mmap,
    info: IndexInfo,
    path: String,
}

struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl SuffixIndex {
    /// Build an index of `docs` at `path` (atomically replacing any existing file) and
    /// return its header. `threads` as in suffix-array construction (0 = all cores).
    pub fn build(docs: Docs<'_>, path: &Path, threads: usize, width: IndexWidth) -> Result<IndexInfo> {
        let shown = path.display().to_string();
        let mut text = Vec::with_capacity(docs.total_bytes() + docs.len());
        let mut offsets = Vec::with_capacity(docs.len() + 1);
        for (i, d) in docs.iter().enumerate() {
            if let Some(at) = d.iter().position(|&b| b == SEP) {
                return Err(Error::invalid_data(
                    format!("document {i}"),
                    format!("byte 0xFF at offset {at}: documents must be valid UTF-8"),
                ));
            }
            offsets.push(text.len() as u64);
            text.extend_from_slice(d);
            text.push(SEP);
        }
        offsets.push(text.len() as u64);
        let w = width.bytes_for(text.len())? as u32;
        let corpus_checksum = xxh3_64(&text);
        let sa = if w == 4 {
            SaBuf::W32(suffix_array::<u8, i32>(&text, threads)?)
        } else {
            SaBuf::W64(suffix_array::<u8, i64>(&text, threads)?)
        };
        let (docs_off, sa_off, file_len) = layout(text.len() as u64, docs.len() as u64, w)
            .ok_or_else(|| Error::invalid_argument("corpus too large for the index format"))?;

        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or_else(|| Error::invalid_argument(format!("{shown}: index path must name a file")))?;
        let tmp = TempFile {
            path: dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id())),
            keep: false,
        };
        let io = |e: std::io::Error| Error::io(&shown, e);
        let file = File::create(&tmp.path).map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut hasher = Xxh3::new();
        let mut put = |out: &mut BufWriter<File>, b: &[u8]| -> std::io::Result<()> {
            hasher.update(b);
            out.write_all(b)
        };
        out.write_all(&[0u8; HEADER]).map_err(io)?; // placeholder: no magic until the end
        put(&mut out, &text).map_err(io)?;
        let pad = (docs_off - (HEADER + text.len()) as u64) as usize;
        put(&mut out, &[0u8; 8][..pad]).map_err(io)?;
        let off_bytes: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        put(&mut out, &off_bytes).map_err(io)?;
        debug_assert_eq!(sa_off, docs_off + off_bytes.len() as u64);
        // stream the suffix array out in little-endian chunks (no second n-sized buffer)
        let mut chunk = Vec::with_capacity(1 << 20);
        let entries = sa.len();
        let mut i = 0;
        while i < entries {
            chunk.clear();
            let j = (i + (1 << 17)).min(entries);
            match &sa {
                SaBuf::W32(v) => v[i..j].iter().for_each(|x| chunk.extend_from_slice(&x.to_le_bytes())),
                SaBuf::W64(v) => v[i..j].iter().for_each(|x| chunk.extend_from_slice(&x.to_le_bytes())),
            }
            put(&mut out, &chunk).map_err(io)?;
            i = j;
        }
        drop(sa);
        let info = IndexInfo {
            version: VERSION,
            sa_width: w,
            num_docs: docs.len() as u64,
            text_len: text.len() as u64,
            text_off: HEADER as u64,
            docs_off,
            sa_off,
            file_len,
            body_checksum: hasher.digest(),
            corpus_checksum,
        };
        let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&info.encode()).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        fs::rename(&tmp.path, path).map_err(io)?;
        let mut tmp = tmp;
        tmp.keep = true;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(info)
    }

    /// Open and validate an index (header, checksum of the header, exact file length).
    /// With `verify`, also re-hash the whole body (detects any corruption).
    pub fn open(path: &Path, verify: bool) -> Result<SuffixIndex> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|e| Error::io(&shown, e))?;
        // SAFETY: the map is read-only; gristmill never writes index files in place (they are
        // replaced by rename), so the mapped bytes do not change under us.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&shown, e))?;
        let info = IndexInfo::decode(&map[..map.len().min(HEADER)], &shown)?;
        if map.len() as u64 != info.file_len {
            return Err(Error::invalid_data(
                &shown,
                format!("index file has {} bytes but its header says {} (truncated or corrupted)", map.len(), info.file_len),
            ));
        }
        let idx = SuffixIndex { map, info, path: shown };
        if verify {
            idx.verify()?;
        }
        Ok(idx)
    }

    /// Re-hash the body and check it against the header.
    pub fn verify(&self) -> Result<()> {
        if xxh3_64(&self.map[HEADER..]) != self.info.body_checksum {
            return Err(Error::invalid_data(&self.path, "index body checksum mismatch (corrupted file)"));
        }
        Ok(())
    }

    pub fn info(&self) -> IndexInfo {
        self.info
    }

    /// Error unless `docs` are exactly the documents this index was built from.
    pub fn check_corpus(&self, docs: Docs<'_>) -> Result<()> {
        if docs.len() as u64 != self.info.num_docs || corpus_checksum(docs) != self.info.corpus_checksum {
            return Err(Error::invalid_data(
                &self.path,
                format!(
                    "index does not match the corpus ({} documents given, index has {}; checksums differ)",
                    docs.len(),
                    self.info.num_docs
                ),
            ));
        }
        Ok(())
    }

    fn text(&self) -> &[u8] {
        &self.map[HEADER..HEADER + self.info.text_len as usize]
    }

    #[inline]
    fn sa(&self, i: usize) -> usize {
        let at = self.info.sa_off as usize + i * self.info.sa_width as usize;
        if self.info.sa_width == 4 {
            let b = &self.map[at..at + 4];
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        } else {
            u64_at(&self.map, at) as usize
        }
    }

    fn doc_offset(&self, d: usize) -> u64 {
        u64_at(&self.map, self.info.docs_off as usize + 8 * d)
    }

    /// Suffix-array interval `[lo, hi)` of suffixes starting with `pattern`.
    fn interval(&self, pattern: &[u8]) -> Result<(usize, usize)> {
        if pattern.is_empty() {
            return Err(Error::invalid_argument("pattern must not be empty"));
        }
        let text = self.text();
        let n = self.info.text_len as usize;
        let prefix = |i: usize| -> Result<&[u8]> {
            let p = self.sa(i);
            if p >= n {
                return Err(Error::invalid_data(&self.path, "suffix array entry out of range (corrupted index)"));
            }
            Ok(&text[p..n.min(p + pattern.len())])
        };
        // first suffix whose prefix is >= pattern
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if prefix(mid)? < pattern {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let start = lo;
        let mut hi = n;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if prefix(mid)? <= pattern {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok((start, lo))
    }

    /// Number of occurrences of `pattern` inside documents. Patterns containing `0xFF`
    /// cannot occur in UTF-8 documents and count 0.
    pub fn count(&self, pattern: &[u8]) -> Result<u64> {
        if pattern.contains(&SEP) {
            return Ok(0);
        }
        let (lo, hi) = self.interval(pattern)?;
        Ok((hi - lo) as u64)
    }

    /// Up to `limit` occurrences as `(document, byte offset in document)`, sorted. Which
    /// occurrences are returned when there are more than `limit` is deterministic (the first
    /// ones in suffix order).
    pub fn locate(&self, pattern: &[u8], limit: usize) -> Result<Vec<(u64, u64)>> {
        if pattern.contains(&SEP) {
            return Ok(Vec::new());
        }
        let (lo, hi) = self.interval(pattern)?;
        let nd = self.info.num_docs as usize;
        let mut out = Vec::with_capacity((hi - lo).min(limit));
        for i in lo..hi.min(lo.saturating_add(limit)) {
            let p = self.sa(i) as u64;
            // last document whose start is <= p
            let (mut a, mut b) = (0usize, nd);
            while a < b {
                let m = a + (b - a).div_ceil(2);
                if self.doc_offset(m) <= p {
                    a = m;
                } else {
                    b = m - 1;
                }
            }
            let off = p
                .checked_sub(self.doc_offset(a))
                .ok_or_else(|| Error::invalid_data(&self.path, "document offsets out of order (corrupted index)"))?;
            out.push((a as u64, off));
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Document `d` as stored in the index.
    pub fn document(&self, d: usize) -> Result<&[u8]> {
        if d as u64 >= self.info.num_docs {
            return Err(Error::invalid_argument(format!("document {d} out of range ({} documents)", self.info.num_docs)));
        }
        let (s, e) = (self.doc_offset(d) as usize, self.doc_offset(d + 1) as usize);
        if s >= e || e > self.text().len() {
            return Err(Error::invalid_data(&self.path, "document offsets out of range (corrupted index)"));
        }
        Ok(&self.text()[s..e - 1])
    }
}
