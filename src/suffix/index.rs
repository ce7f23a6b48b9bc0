//! The on-disk suffix index: one memory-mapped file holding the corpus text, the document
//! offsets, optional document ids and the suffix array, answering `count` / `locate` by
//! binary search.
//!
//! # File format (version 2, little-endian)
//!
//! | bytes | content |
//! |---|---|
//! | 0..256 | header: magic `GMSUFIDX`, version, SA width, #docs, section offsets and sizes, file length, one xxh3-64 checksum per section, header checksum |
//! | 256.. | text: every document followed by one `0xFF` byte |
//! | 8-aligned | `num_docs + 1` u64 offsets of the documents inside the text |
//! | next | ids (optional): `num_docs + 1` u64 offsets into the id bytes, then the id bytes (UTF-8) |
//! | 8-aligned | suffix array, `text_len` entries of 4 or 8 bytes |
//!
//! `0xFF` never occurs in UTF-8, so it separates documents without any possible
//! collision: a pattern without `0xFF` can only match inside one document, and `count` is
//! exactly the width of the suffix-array interval (no per-occurrence filtering). Documents
//! containing `0xFF` (not valid UTF-8) are rejected at build time.
//!
//! Every section has its own checksum. [`SuffixIndex::open`] checks what is cheap: the
//! header (magic, version, its checksum, section sizes against the file length) and the
//! small document-offset section (checksum, order); the id section is checked the first time
//! an id is read. `verify` re-hashes the text and the suffix array too. Queries check what
//! they touch (suffix-array entries in range, matches really there, documents valid UTF-8)
//! and report a corrupted index, never a wrong answer they can detect. Version 1 files
//! (one body checksum) are refused with a message to rebuild them.
//!
//! The file is written to a temporary name in the target directory, the header is written
//! last, the file is fsynced and only then renamed into place. A truncated, partially
//! written or foreign file fails [`SuffixIndex::open`].

use std::fs::{self, File};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::Mmap;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::sa::{suffix_array, IndexWidth};
use crate::text::Docs;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"GMSUFIDX";
const VERSION: u32 = 2;
const HEADER: usize = 256;
const V1_HEADER: usize = 128;
const SEP: u8 = 0xFF;
const FIELDS: usize = 14;

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
    /// Start of the id offsets (equal to `sa_off` rounded down when there are no ids).
    pub ids_off: u64,
    /// Bytes of id text (0 without ids).
    pub ids_len: u64,
    pub has_ids: bool,
    pub sa_off: u64,
    pub file_len: u64,
    /// xxh3-64 of the documents each followed by `0xFF` (the text section; see [`corpus_checksum`]).
    pub corpus_checksum: u64,
    pub docs_checksum: u64,
    pub ids_checksum: u64,
    pub sa_checksum: u64,
}

/// Byte offsets of the sections for the given sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    docs_off: u64,
    ids_off: u64,
    sa_off: u64,
    file_len: u64,
}

/// The layout for the given sizes, or `None` on overflow.
fn layout(text_len: u64, num_docs: u64, has_ids: bool, ids_len: u64, width: u32) -> Option<Layout> {
    let docs_off = (HEADER as u64).checked_add(text_len)?.checked_next_multiple_of(8)?;
    let offsets = num_docs.checked_add(1)?.checked_mul(8)?;
    let ids_off = docs_off.checked_add(offsets)?;
    let ids_end = if has_ids { ids_off.checked_add(offsets)?.checked_add(ids_len)? } else { ids_off };
    let sa_off = ids_end.checked_next_multiple_of(8)?;
    let file_len = sa_off.checked_add(text_len.checked_mul(width as u64)?)?;
    Some(Layout { docs_off, ids_off, sa_off, file_len })
}

impl IndexInfo {
    fn encode(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&self.version.to_le_bytes());
        h[12..16].copy_from_slice(&self.sa_width.to_le_bytes());
        let fields: [u64; FIELDS] = [
            self.num_docs,
            self.text_len,
            self.text_off,
            self.docs_off,
            self.ids_off,
            self.ids_len,
            self.has_ids as u64,
            self.sa_off,
            self.file_len,
            self.corpus_checksum,
            self.docs_checksum,
            self.ids_checksum,
            self.sa_checksum,
            0, // reserved
        ];
        for (k, v) in fields.iter().enumerate() {
            h[16 + 8 * k..24 + 8 * k].copy_from_slice(&v.to_le_bytes());
        }
        let c = xxh3_64(&h[..HEADER - 8]);
        h[HEADER - 8..].copy_from_slice(&c.to_le_bytes());
        h
    }

    fn decode(h: &[u8], path: &str) -> Result<IndexInfo> {
        let bad = |m: String| Error::invalid_data(path, m);
        if h.len() < 16 || &h[0..8] != MAGIC {
            if h.len() < 16 {
                return Err(bad(format!("file of {} bytes is too short to be a gristmill suffix index", h.len())));
            }
            return Err(bad("not a gristmill suffix index (bad magic; the file may be incomplete)".into()));
        }
        let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if version != VERSION {
            // a genuine older file has a valid header of its own version
            if version == 1 && h.len() >= V1_HEADER && u64_at(h, V1_HEADER - 8) == xxh3_64(&h[..V1_HEADER - 8]) {
                return Err(bad(format!(
                    "suffix index format version 1, written by an older gristmill; this gristmill reads \
                     version {VERSION} (with per-section checksums): rebuild it with `gristmill index build`"
                )));
            }
            if h.len() >= HEADER && u64_at(h, HEADER - 8) != xxh3_64(&h[..HEADER - 8]) {
                return Err(bad("corrupted suffix index: header checksum mismatch".into()));
            }
            return Err(bad(format!("unsupported suffix index version {version} (this gristmill reads version {VERSION})")));
        }
        if h.len() < HEADER {
            return Err(bad(format!("file of {} bytes is too short to be a gristmill suffix index (truncated)", h.len())));
        }
        if u64_at(h, HEADER - 8) != xxh3_64(&h[..HEADER - 8]) {
            return Err(bad("corrupted suffix index: header checksum mismatch".into()));
        }
        let f = |k: usize| u64_at(h, 16 + 8 * k);
        let info = IndexInfo {
            version,
            sa_width: u32::from_le_bytes([h[12], h[13], h[14], h[15]]),
            num_docs: f(0),
            text_len: f(1),
            text_off: f(2),
            docs_off: f(3),
            ids_off: f(4),
            ids_len: f(5),
            has_ids: f(6) == 1,
            sa_off: f(7),
            file_len: f(8),
            corpus_checksum: f(9),
            docs_checksum: f(10),
            ids_checksum: f(11),
            sa_checksum: f(12),
        };
        let expect = layout(info.text_len, info.num_docs, info.has_ids, info.ids_len, info.sa_width);
        let got = Layout { docs_off: info.docs_off, ids_off: info.ids_off, sa_off: info.sa_off, file_len: info.file_len };
        if !(info.sa_width == 4 || info.sa_width == 8)
            || f(6) > 1
            || (!info.has_ids && info.ids_len != 0)
            || expect != Some(got)
            || info.text_off != HEADER as u64
        {
            return Err(bad("corrupted suffix index: inconsistent section sizes in the header".into()));
        }
        Ok(info)
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
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

fn offsets_bytes(offsets: &[u64]) -> Vec<u8> {
    offsets.iter().flat_map(|o| o.to_le_bytes()).collect()
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
    /// Whether the id section matched its checksum (checked on first use).
    ids_ok: OnceLock<bool>,
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
        Self::build_with_ids(docs, None, path, threads, width)
    }

    /// [`SuffixIndex::build`], also storing one id (UTF-8) per document.
    pub fn build_with_ids(
        docs: Docs<'_>,
        ids: Option<Docs<'_>>,
        path: &Path,
        threads: usize,
        width: IndexWidth,
    ) -> Result<IndexInfo> {
        let shown = path.display().to_string();
        if let Some(ids) = &ids {
            if ids.len() != docs.len() {
                return Err(Error::invalid_argument(format!("{} ids for {} documents", ids.len(), docs.len())));
            }
            for (i, id) in ids.iter().enumerate() {
                if std::str::from_utf8(id).is_err() {
                    return Err(Error::invalid_data(format!("id of document {i}"), "not valid UTF-8"));
                }
            }
        }
        let stop = crate::interrupt::Interrupt::current();
        let text_len = docs.total_bytes() + docs.len();
        let w_est = width.bytes_for(text_len)?;
        crate::mem::ensure_fits(
            (text_len * (1 + w_est) + 16 * docs.len()) as u64 + (16 << 20),
            format_args!(
                "building the suffix index of {text_len} bytes in memory (a copy of the text and {w_est} bytes of suffix array per byte)"
            ),
        )?;
        let mut text = crate::mem::try_with_capacity(text_len, "the text of the suffix index")?;
        let mut offsets = Vec::with_capacity(docs.len() + 1);
        for (i, d) in docs.iter().enumerate() {
            if i % 4096 == 0 {
                stop.check()?;
            }
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
        stop.check()?;
        let sa = if w == 4 {
            SaBuf::W32(suffix_array::<u8, i32>(&text, threads)?)
        } else {
            SaBuf::W64(suffix_array::<u8, i64>(&text, threads)?)
        };
        stop.check()?;
        let ids_len = ids.as_ref().map_or(0, |d| d.total_bytes() as u64);
        let lay = layout(text.len() as u64, docs.len() as u64, ids.is_some(), ids_len, w)
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
        out.write_all(&[0u8; HEADER]).map_err(io)?; // placeholder: no magic until the end
        for part in text.chunks(64 << 20) {
            stop.check()?; // the temporary file is removed by its guard
            out.write_all(part).map_err(io)?;
        }
        let pad = (lay.docs_off - (HEADER + text.len()) as u64) as usize;
        out.write_all(&[0u8; 8][..pad]).map_err(io)?;
        let off_bytes = offsets_bytes(&offsets);
        let docs_checksum = xxh3_64(&off_bytes);
        out.write_all(&off_bytes).map_err(io)?;
        drop(off_bytes);
        let mut ids_hash = Xxh3::new();
        let mut at = lay.ids_off;
        if let Some(ids) = &ids {
            let mut id_offsets = Vec::with_capacity(ids.len() + 1);
            let mut o = 0u64;
            for id in ids.iter() {
                id_offsets.push(o);
                o += id.len() as u64;
            }
            id_offsets.push(o);
            let b = offsets_bytes(&id_offsets);
            ids_hash.update(&b);
            out.write_all(&b).map_err(io)?;
            at += b.len() as u64;
            for id in ids.iter() {
                ids_hash.update(id);
                out.write_all(id).map_err(io)?;
            }
            at += o;
        }
        let ids_checksum = ids_hash.digest();
        out.write_all(&[0u8; 8][..(lay.sa_off - at) as usize]).map_err(io)?;
        // stream the suffix array out in little-endian chunks (no second n-sized buffer)
        let mut sa_hash = Xxh3::new();
        let mut chunk = Vec::with_capacity(1 << 20);
        let entries = sa.len();
        let mut i = 0;
        while i < entries {
            stop.check()?;
            chunk.clear();
            let j = (i + (1 << 17)).min(entries);
            match &sa {
                SaBuf::W32(v) => v[i..j].iter().for_each(|x| chunk.extend_from_slice(&x.to_le_bytes())),
                SaBuf::W64(v) => v[i..j].iter().for_each(|x| chunk.extend_from_slice(&x.to_le_bytes())),
            }
            sa_hash.update(&chunk);
            out.write_all(&chunk).map_err(io)?;
            i = j;
        }
        drop(sa);
        let info = IndexInfo {
            version: VERSION,
            sa_width: w,
            num_docs: docs.len() as u64,
            text_len: text.len() as u64,
            text_off: HEADER as u64,
            docs_off: lay.docs_off,
            ids_off: lay.ids_off,
            ids_len,
            has_ids: ids.is_some(),
            sa_off: lay.sa_off,
            file_len: lay.file_len,
            corpus_checksum,
            docs_checksum,
            ids_checksum,
            sa_checksum: sa_hash.digest(),
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

    fn corrupt(&self, what: impl std::fmt::Display) -> Error {
        corrupt(&self.path, what)
    }

    /// Open and validate an index: header (magic, version, checksum), section sizes against
    /// the file length, and the document offsets (checksum and order). With `verify`, also
    /// re-hash the text, the ids and the suffix array (detects any corruption).
    pub fn open(path: &Path, verify: bool) -> Result<SuffixIndex> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|e| Error::io(&shown, e))?;
        // SAFETY: the map is read-only; gristmill never writes index files in place (they are
        // replaced by rename), so the mapped bytes do not change under us.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&shown, e))?;
        let info = IndexInfo::decode(&map[..map.len().min(HEADER)], &shown)?;
        if map.len() as u64 != info.file_len {
            return Err(corrupt(
                &shown,
                format!("the file has {} bytes but its header says {} (truncated or extended)", map.len(), info.file_len),
            ));
        }
        let idx = SuffixIndex { map, info, path: shown, ids_ok: OnceLock::new() };
        let offs = &idx.map[info.docs_off as usize..info.ids_off as usize];
        if xxh3_64(offs) != info.docs_checksum {
            return Err(idx.corrupt("document offsets checksum mismatch"));
        }
        let mut prev = 0u64;
        for d in 0..=info.num_docs as usize {
            let o = idx.doc_offset(d);
            if (d == 0 && o != 0) || o < prev || (d > 0 && o == prev) {
                return Err(idx.corrupt("document offsets out of order"));
            }
            prev = o;
        }
        if prev != info.text_len {
            return Err(idx.corrupt("document offsets do not end at the end of the text"));
        }
        if verify {
            idx.verify()?;
        }
        Ok(idx)
    }

    /// Re-hash every section and check it against the header.
    pub fn verify(&self) -> Result<()> {
        if xxh3_64(self.text()) != self.info.corpus_checksum {
            return Err(self.corrupt("text checksum mismatch"));
        }
        self.check_ids()?;
        let sa = &self.map[self.info.sa_off as usize..];
        if xxh3_64(sa) != self.info.sa_checksum {
            return Err(self.corrupt("suffix array checksum mismatch"));
        }
        Ok(())
    }

    fn check_ids(&self) -> Result<()> {
        let ok = *self.ids_ok.get_or_init(|| {
            let i = &self.info;
            !i.has_ids || xxh3_64(&self.map[i.ids_off as usize..(i.sa_off as usize).min(self.ids_end())]) == i.ids_checksum
        });
        if ok {
            Ok(())
        } else {
            Err(self.corrupt("document ids checksum mismatch"))
        }
    }

    fn ids_end(&self) -> usize {
        let i = &self.info;
        (i.ids_off + 8 * (i.num_docs + 1) + i.ids_len) as usize
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
                return Err(self.corrupt("suffix array entry out of range"));
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
        // cheap consistency: the ends of a sorted interval hold the pattern, their outer
        // neighbours do not
        if start < lo && (prefix(start)? != pattern || prefix(lo - 1)? != pattern) {
            return Err(self.corrupt("suffix array out of order"));
        }
        if (start > 0 && prefix(start - 1)? >= pattern) || (lo < n && prefix(lo)? <= pattern) {
            return Err(self.corrupt("suffix array out of order"));
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
    /// ones in suffix order). Each returned occurrence is checked against the text.
    pub fn locate(&self, pattern: &[u8], limit: usize) -> Result<Vec<(u64, u64)>> {
        if pattern.contains(&SEP) {
            return Ok(Vec::new());
        }
        let (lo, hi) = self.interval(pattern)?;
        let nd = self.info.num_docs as usize;
        let text = self.text();
        let mut out = Vec::with_capacity((hi - lo).min(limit));
        for i in lo..hi.min(lo.saturating_add(limit)) {
            let p = self.sa(i) as u64;
            if text.get(p as usize..p as usize + pattern.len()) != Some(pattern) {
                return Err(self.corrupt("suffix array entry does not match the text"));
            }
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
            let off = p.checked_sub(self.doc_offset(a)).ok_or_else(|| self.corrupt("document offsets out of order"))?;
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
        if s >= e || e > self.text().len() || self.text()[e - 1] != SEP {
            return Err(self.corrupt(format!("document {d} is not where the offsets say")));
        }
        Ok(&self.text()[s..e - 1])
    }

    /// Document `d` as text: an index built from text (all gristmill corpora are UTF-8)
    /// whose document is not UTF-8 any more is corrupted.
    pub fn document_str(&self, d: usize) -> Result<&str> {
        std::str::from_utf8(self.document(d)?).map_err(|_| self.corrupt(format!("document {d} is not valid UTF-8")))
    }

    /// The id stored for document `d`, or `None` when the index was built without ids.
    pub fn doc_id(&self, d: usize) -> Result<Option<&str>> {
        if d as u64 >= self.info.num_docs {
            return Err(Error::invalid_argument(format!("document {d} out of range ({} documents)", self.info.num_docs)));
        }
        if !self.info.has_ids {
            return Ok(None);
        }
        self.check_ids()?;
        let base = self.info.ids_off as usize;
        let bytes = base + 8 * (self.info.num_docs as usize + 1);
        let (s, e) = (u64_at(&self.map, base + 8 * d) as usize, u64_at(&self.map, base + 8 * d + 8) as usize);
        let id = self
            .map
            .get(bytes + s..bytes + e)
            .filter(|_| s <= e && bytes + e <= self.ids_end())
            .ok_or_else(|| self.corrupt("document id offsets out of range"))?;
        std::str::from_utf8(id).map(Some).map_err(|_| self.corrupt(format!("id of document {d} is not UTF-8")))
    }
}

fn corrupt(path: &str, what: impl std::fmt::Display) -> Error {
    Error::invalid_data(
        path,
        format!("corrupted suffix index ({what}); rebuild it with `gristmill index build`"),
    )
}
