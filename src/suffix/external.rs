//! Repeat finding under a memory limit: an external-memory scheme that gives exactly the
//! spans of the in-memory suffix-array path, for bytes and for token ids.
//!
//! The repeat finder never needs the full suffix order, only the *classes* of equal
//! `L`-windows (a class is a maximal SA run with LCP >= L restricted to in-document
//! windows). Those classes are computed part by part:
//!
//! 1. **One hashing pass** over the text: every in-document window gets a rolling hash; its
//!    top bits choose one of `P` parts, and the entry `(low 32 hash bits, position)` (8 bytes
//!    while positions fit in 32 bits, else 16) is appended to that part's buffer. Full
//!    buffers are written as chunks to one spill file in a work folder (sequential writes;
//!    the chunk offsets of every part are kept in memory).
//! 2. **Part by part**: a part's chunks are read back, radix-sorted by the 32 hash bits
//!    (stable, so positions stay increasing inside equal keys), and every group of equal keys
//!    is checked **byte by byte** against its first window — hash collisions are split by
//!    sorting the group by window bytes — so the classes are exact. The marking is the
//!    in-memory path's: every occurrence of a duplicate class (keep none) or every occurrence
//!    but the earliest (keep first) goes to a bitmap (1 bit per symbol), and the class size
//!    to the largest-class-per-block table of the in-memory path (4 bytes per
//!    `min(64, 2^floor(log2 L))` symbols).
//! 3. Spans are the maximal unions of marked windows, exactly as in memory.
//!
//!    The sorted part keeps only entries whose key occurs twice or more, and the windows of
//!    the entries a few places ahead are prefetched (first and last cache line, and the
//!    bitmap word and block-table entry they mark): these are random accesses into the
//!    text, and keeping many of them in flight made this step 2x faster.
//!
//! **Resumable runs** ([`LimitedOptions::resume`]): the spill file gets a fixed name in the
//! work folder and, once the hashing pass is complete, a manifest (chunk table and one xxh3
//! per part, bound to a key hashing the text, the document bounds, `L`, the part count and
//! the entry width). Every finished part writes its marks (window, class size; 8 or 16 bytes
//! each, in the radix sort's scratch buffer, so no extra memory) to its own file with the
//! same key, `keep` and a trailing xxh3, through a temporary name and a rename. A rerun
//! replays the parts whose files verify, rebuilds the others, reuses the spill file when
//! its manifest verifies (each part's entries are checked against their checksum when read;
//! a mismatch redoes the hashing pass) and removes everything after success.
//!
//! Memory: the bitmap, the block table, and one part (entries plus the radix sort's scratch
//! copy); `P` is chosen so that these fit in the limit, with 1.25x headroom because parts are
//! balanced by hash, not exactly. A part can only outgrow its share when a single window
//! content (or a few) occurs a very large number of times: such a part is still processed in
//! memory, and its excess is reported in the stats (`part_overflow_bytes`). The text itself
//! is only read (it may be memory-mapped); disk use is the spill file, 8 or 16 bytes per
//! window (plus at most as much again for a resumable run's marks), checked against the free
//! space of the work folder before anything is written.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::repeats::{collect_spans, snap_utf8, text_and_bounds, BlockMax, Bits, Keep, RepeatOptions, RepeatStats, Span};
use super::sa::SaIndex;
use crate::interrupt::Interrupt;
use crate::text::Docs;
use crate::{Error, Result};

const BASE: u64 = 0x100_0000_01b3;

#[inline]
fn mix(h: u64) -> u64 {
    let h = (h ^ (h >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

/// A symbol the rolling hash can read: bytes or token ids.
pub trait WindowSymbol: Copy + Eq + Ord + Send + Sync + 'static {
    fn code(self) -> u64;
}
impl WindowSymbol for u8 {
    #[inline]
    fn code(self) -> u64 {
        self as u64 + 1
    }
}
impl WindowSymbol for u32 {
    #[inline]
    fn code(self) -> u64 {
        self as u64 + 1
    }
}

/// A part entry: 32 hash bits (the sort key) and a position.
trait Entry: Copy + Default + Send + Sync + 'static {
    const BYTES: usize;
    fn new(key: u32, pos: usize) -> Self;
    /// A finished part's mark: window `pos` belongs to a class of `count` occurrences.
    fn mark(pos: usize, count: usize) -> Self;
    fn count(self) -> usize;
    fn key(self) -> u32;
    fn pos(self) -> usize;
}

impl Entry for u64 {
    const BYTES: usize = 8;
    #[inline]
    fn new(key: u32, pos: usize) -> Self {
        ((key as u64) << 32) | pos as u64
    }
    #[inline]
    fn mark(pos: usize, count: usize) -> Self {
        // both fit: this width is used while the text has at most u32::MAX symbols
        ((count as u64) << 32) | pos as u64
    }
    #[inline]
    fn count(self) -> usize {
        (self >> 32) as usize
    }
    #[inline]
    fn key(self) -> u32 {
        (self >> 32) as u32
    }
    #[inline]
    fn pos(self) -> usize {
        self as u32 as usize
    }
}

impl Entry for [u64; 2] {
    const BYTES: usize = 16;
    #[inline]
    fn new(key: u32, pos: usize) -> Self {
        [key as u64, pos as u64]
    }
    #[inline]
    fn mark(pos: usize, count: usize) -> Self {
        [count as u64, pos as u64]
    }
    #[inline]
    fn count(self) -> usize {
        self[0] as usize
    }
    #[inline]
    fn key(self) -> u32 {
        self[0] as u32
    }
    #[inline]
    fn pos(self) -> usize {
        self[1] as usize
    }
}

/// Entries as raw bytes (plain integers, no padding).
fn as_bytes<E: Entry>(v: &[E]) -> &[u8] {
    // SAFETY: E is u64 or [u64; 2]: plain integers, every byte initialised, no padding.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

fn as_bytes_mut<E: Entry>(v: &mut [E]) -> &mut [u8] {
    // SAFETY: as in `as_bytes`; every bit pattern is a valid u64.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of_val(v)) }
}

/// File names in the work folder of a resumable run (`LimitedOptions::resume`).
pub const SPILL_FILE: &str = "exact-parts.bin";
/// The table of the spill file's chunks and the checksum of every part, written once the
/// hashing pass is complete.
pub const MANIFEST_FILE: &str = "exact-parts.idx";
const MANIFEST_MAGIC: &[u8; 8] = b"GMPARTS1";
const MARKS_MAGIC: &[u8; 8] = b"GMMARKS1";

/// The marks of finished part `part` (a resumable run keeps one such file per part).
pub fn marks_file(part: usize) -> String {
    format!("exact-part-{part:06}.marks")
}

fn xxh3(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}

fn u64s_bytes(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_u64s(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Write `data` to `path` through a temporary name and a rename, so that a kill never leaves
/// a file that looks complete.
fn write_atomic(path: &Path, parts: &[&[u8]]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let io = |e| Error::io(tmp.display().to_string(), e);
    let mut f = File::create(&tmp).map_err(io)?;
    for p in parts {
        f.write_all(p).map_err(io)?;
    }
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path.display().to_string(), e))
}

/// The spill file of the part entries; removed on drop unless it is kept for a rerun.
struct Spill {
    file: File,
    path: PathBuf,
    end: u64,
    /// per part: (byte offset, number of entries) of each chunk
    chunks: Vec<Vec<(u64, usize)>>,
    counts: Vec<usize>,
    /// per part: xxh3 of its entries in append order (resumable runs only)
    sums: Vec<Option<xxhash_rust::xxh3::Xxh3>>,
    digests: Vec<u64>,
    keep: bool,
}

impl Drop for Spill {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Spill {
    fn create(dir: &Path, parts: usize, resume: bool) -> Result<Spill> {
        let path = if resume {
            dir.join(SPILL_FILE)
        } else {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            dir.join(format!("gristmill-parts-{}-{:x}.bin", std::process::id(), t as u64))
        };
        let mut oo = std::fs::OpenOptions::new();
        oo.read(true).write(true);
        if resume {
            // a spill file without a valid manifest is an unfinished hashing pass: start over
            let _ = std::fs::remove_file(dir.join(MANIFEST_FILE));
            oo.create(true).truncate(true);
        } else {
            oo.create_new(true);
        }
        let file = oo.open(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let sums = (0..parts).map(|_| resume.then(xxhash_rust::xxh3::Xxh3::new)).collect();
        Ok(Spill { file, path, end: 0, chunks: vec![Vec::new(); parts], counts: vec![0; parts], sums, digests: vec![0; parts], keep: resume })
    }
    fn err(&self, e: std::io::Error) -> Error {
        Error::io(self.path.display().to_string(), e)
    }
    fn append<E: Entry>(&mut self, part: usize, entries: &[E]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let bytes = as_bytes(entries);
        (&self.file).write_all(bytes).map_err(|e| self.err(e))?;
        if let Some(h) = &mut self.sums[part] {
            h.update(bytes);
        }
        self.chunks[part].push((self.end, entries.len()));
        self.counts[part] += entries.len();
        self.end += bytes.len() as u64;
        Ok(())
    }
    /// Finish the hashing pass of a resumable run: the manifest (chunk table and the
    /// checksum of every part, bound to `key`) is written last, so its presence means the
    /// spill file is complete.
    fn finish(&mut self, dir: &Path, key: u64, entry_bytes: usize) -> Result<()> {
        for (d, h) in self.digests.iter_mut().zip(&self.sums) {
            if let Some(h) = h {
                *d = h.digest();
            }
        }
        if !self.keep {
            return Ok(());
        }
        let mut v = vec![key, self.counts.len() as u64, entry_bytes as u64, self.end];
        for p in 0..self.counts.len() {
            v.extend([self.counts[p] as u64, self.digests[p], self.chunks[p].len() as u64]);
        }
        for c in &self.chunks {
            for &(off, cnt) in c {
                v.extend([off, cnt as u64]);
            }
        }
        let mut body = MANIFEST_MAGIC.to_vec();
        body.extend(u64s_bytes(&v));
        let sum = xxh3(&body).to_le_bytes();
        write_atomic(&dir.join(MANIFEST_FILE), &[&body, &sum])
    }
    /// The spill file of an earlier run with the same `key`, if its manifest is intact
    /// (the parts' entries are verified against their checksums when they are read).
    fn reuse(dir: &Path, key: u64, parts: usize, entry_bytes: usize) -> Option<Spill> {
        let raw = std::fs::read(dir.join(MANIFEST_FILE)).ok()?;
        if raw.len() < 16 || raw.len() % 8 != 0 || &raw[..8] != MANIFEST_MAGIC {
            return None;
        }
        let (body, sum) = raw.split_at(raw.len() - 8);
        if xxh3(body).to_le_bytes() != sum {
            return None;
        }
        let v = bytes_u64s(&body[8..]);
        if v.len() < 4 + 3 * parts || v[0] != key || v[1] != parts as u64 || v[2] != entry_bytes as u64 {
            return None;
        }
        let path = dir.join(SPILL_FILE);
        let file = std::fs::OpenOptions::new().read(true).open(&path).ok()?;
        if file.metadata().ok()?.len() != v[3] {
            return None;
        }
        let (mut counts, mut digests, mut chunks) = (Vec::new(), Vec::new(), Vec::new());
        let mut at = 4 + 3 * parts;
        for p in 0..parts {
            let (cnt, dig, nch) = (v[4 + 3 * p] as usize, v[5 + 3 * p], v[6 + 3 * p] as usize);
            let c: Vec<(u64, usize)> = v.get(at..at + 2 * nch)?.chunks_exact(2).map(|x| (x[0], x[1] as usize)).collect();
            if c.iter().map(|x| x.1).sum::<usize>() != cnt || c.iter().any(|x| x.0 + (x.1 * entry_bytes) as u64 > v[3]) {
                return None;
            }
            at += 2 * nch;
            counts.push(cnt);
            digests.push(dig);
            chunks.push(c);
        }
        Some(Spill { file, path, end: v[3], chunks, counts, sums: (0..parts).map(|_| None).collect(), digests, keep: true })
    }
    /// Read part `part` into `out` (cleared first), in append order. For a resumable run,
    /// `Ok(false)` when the entries do not match the part's checksum.
    fn read<E: Entry>(&self, part: usize, out: &mut Vec<E>) -> Result<bool> {
        out.clear();
        let n = self.counts[part];
        out.try_reserve_exact(n).map_err(|_| crate::mem::alloc_failed::<E>(n, "a hash part of the memory-limited repeat finder"))?;
        out.resize(n, E::default());
        let mut at = 0;
        for &(off, cnt) in &self.chunks[part] {
            self.file.read_exact_at(as_bytes_mut(&mut out[at..at + cnt]), off).map_err(|e| self.err(e))?;
            at += cnt;
        }
        Ok(!self.keep || xxh3(as_bytes(&out[..])) == self.digests[part])
    }
}

/// Environment variable that overrides the free disk space seen by the memory-limited path
/// (a byte count, or `500M`, `2G`…). Meant for tests of the disk check; not a tuning knob.
pub const FREE_DISK_ENV: &str = "GRISTMILL_FREE_DISK";

/// Free bytes for an unprivileged writer in the file system holding `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    if let Some(b) = std::env::var(FREE_DISK_ENV).ok().and_then(|v| crate::mem::parse_size(&v)) {
        return Some(b);
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Stable LSD radix sort of `a` by the 32-bit key (three passes of 11, 11 and 10 bits);
/// `tmp` is scratch of the same length. The result is in `a`.
fn radix_sort<E: Entry>(a: &mut Vec<E>, tmp: &mut Vec<E>) -> Result<()> {
    let n = a.len();
    if n < 2 {
        return Ok(());
    }
    tmp.clear();
    tmp.try_reserve_exact(n).map_err(|_| crate::mem::alloc_failed::<E>(n, "sorting a hash part"))?;
    tmp.resize(n, E::default());
    let mut counts = [[0usize; 2048]; 3];
    for e in a.iter() {
        let k = e.key();
        counts[0][(k & 0x7ff) as usize] += 1;
        counts[1][((k >> 11) & 0x7ff) as usize] += 1;
        counts[2][(k >> 22) as usize] += 1;
    }
    for (pass, c) in counts.iter_mut().enumerate() {
        let shift = 11 * pass as u32;
        let mut sum = 0;
        for x in c.iter_mut() {
            let v = *x;
            *x = sum;
            sum += v;
        }
        for e in a.iter() {
            let d = ((e.key() >> shift) & 0x7ff) as usize;
            tmp[c[d]] = *e;
            c[d] += 1;
        }
        std::mem::swap(a, tmp);
    }
    Ok(())
}

/// How the parts are sized and where they are spilled.
#[derive(Clone, Debug, Default)]
pub struct LimitedOptions {
    /// Working-memory bound in bytes (bitmap, block table, one part).
    pub memory_limit: Option<usize>,
    /// Number of parts instead of deriving it from `memory_limit` (tests, benchmarks).
    pub parts: Option<usize>,
    /// Folder for the spill file (default: the system temporary folder).
    pub work_dir: Option<PathBuf>,
    /// Resumable run: the spill file, its manifest ([`SPILL_FILE`], [`MANIFEST_FILE`]) and
    /// the marks of every finished part ([`marks_file`]) are kept in `work_dir` under fixed
    /// names until the run succeeds, so that a rerun after a kill or an error reuses the
    /// hashing pass and the finished parts of the same corpus, `min_length` and part count,
    /// each verified by its xxh3 checksum (a file that fails is rebuilt).
    pub resume: bool,
    /// Testing: stop with [`Error::Interrupted`] once this many parts were finished in this
    /// call, leaving the work folder as a kill at that point would.
    pub stop_after_parts: Option<usize>,
}

/// Fixed memory of the limited path for `n` symbols: the removal bitmap and the block table.
fn fixed_bytes(n: usize, l: usize) -> usize {
    n.div_ceil(64) * 8 + 4 * ((n >> l.ilog2().min(6)) + 1)
}

/// Self-dedup over symbols with bounded working memory; spans in symbol units relative to
/// their document (before any UTF-8 snapping), equal to [`super::repeats::find_repeats_symbols`].
pub fn find_repeats_symbols_limited<S: WindowSymbol>(
    text: &[S],
    bounds: &[usize],
    opts: &RepeatOptions,
    lim: &LimitedOptions,
    unit: &str,
) -> Result<(Vec<Span>, RepeatStats)> {
    super::repeats::check_bounds(bounds, text.len())?;
    super::repeats::check_min_length(opts.min_length, bounds, "the corpus", unit)?;
    if text.len() <= u32::MAX as usize {
        run::<S, u64>(text, bounds, opts, lim)
    } else {
        run::<S, [u64; 2]>(text, bounds, opts, lim)
    }
}

fn run<S: WindowSymbol, E: Entry>(
    text: &[S],
    bounds: &[usize],
    opts: &RepeatOptions,
    lim: &LimitedOptions,
) -> Result<(Vec<Span>, RepeatStats)> {
    let l = opts.min_length;
    let n = text.len();
    let windows: usize = bounds.windows(2).map(|w| (w[1] - w[0]).saturating_sub(l - 1)).sum();
    let fixed = fixed_bytes(n, l);
    // a part costs 2 entries per window (the entries and the radix sort's scratch)
    let per_entry = 2 * E::BYTES;
    let parts = match (lim.parts, lim.memory_limit) {
        (Some(p), _) => p.max(1),
        (None, Some(m)) => {
            let min_budget = fixed + 256 * per_entry;
            if m < min_budget {
                return Err(Error::invalid_argument(format!(
                    "memory_limit of {m} bytes is too small for {n} {} of text with min_length {l}: at least \
                     {min_budget} bytes are needed (1 bit per symbol for the marks, 4 bytes per {} symbols \
                     for the class sizes, and a minimal part)",
                    if std::mem::size_of::<S>() == 1 { "bytes" } else { "tokens" },
                    1usize << l.ilog2().min(6)
                )));
            }
            let per_part = (m - fixed) / per_entry;
            ((windows as f64 * 1.25 / per_part as f64).ceil() as usize).max(1)
        }
        (None, None) => 1,
    };
    let dir = lim.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let resume = lim.resume;
    // freed memory of the corpus reader goes back to the OS before the limit is spent
    super::sa::release_free_heap();
    if resume {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    }
    let stop = Interrupt::current();
    let mut stats = RepeatStats { index_bytes: 0, ..Default::default() };
    let t0 = Instant::now();
    // what the files of a resumable run are bound to: this text, its documents, the window
    // length, the part count and the entry width (the hash function is fixed by the format)
    let key = if resume { run_key(text, bounds, l, parts, E::BYTES) } else { 0 };
    let marks_key = key ^ (opts.keep == Keep::First) as u64;

    let mut later = Bits::new(n)?;
    let (spans, classes, marked, overflow) = if n <= i32::MAX as usize {
        let mut occ = BlockMax::<i32>::new(n, l)?;
        let mut st = PartState { later: &mut later, occ: &mut occ, classes: 0, marked: 0, overflow: 0 };
        drive::<S, E, i32>(text, bounds, opts, lim, &dir, parts, windows, fixed, key, marks_key, &mut st, &mut stats, t0, &stop)?;
        let (c, m, o) = (st.classes, st.marked, st.overflow);
        let t0 = Instant::now();
        let spans = collect_spans(bounds, 0, l, &later, &occ)?;
        stats.timings.push(("collect_spans", t0.elapsed().as_secs_f64()));
        (spans, c, m, o)
    } else {
        let mut occ = BlockMax::<i64>::new(n, l)?;
        let mut st = PartState { later: &mut later, occ: &mut occ, classes: 0, marked: 0, overflow: 0 };
        drive::<S, E, i64>(text, bounds, opts, lim, &dir, parts, windows, fixed, key, marks_key, &mut st, &mut stats, t0, &stop)?;
        let (c, m, o) = (st.classes, st.marked, st.overflow);
        let t0 = Instant::now();
        let spans = collect_spans(bounds, 0, l, &later, &occ)?;
        stats.timings.push(("collect_spans", t0.elapsed().as_secs_f64()));
        (spans, c, m, o)
    };
    if resume {
        // done: the work folder is left as it was found
        let _ = std::fs::remove_file(dir.join(MANIFEST_FILE));
        let _ = std::fs::remove_file(dir.join(SPILL_FILE));
        for p in 0..parts {
            let _ = std::fs::remove_file(dir.join(marks_file(p)));
        }
    }
    stats.classes = classes;
    stats.marked_windows = marked;
    stats.timings.insert(0, ("parts", parts as f64));
    stats.part_overflow_bytes = overflow;
    Ok((spans, stats))
}

/// xxh3 of everything the files of a resumable run depend on.
fn run_key<S: WindowSymbol>(text: &[S], bounds: &[usize], l: usize, parts: usize, entry_bytes: usize) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for x in [1u64, std::mem::size_of::<S>() as u64, entry_bytes as u64, text.len() as u64, l as u64, parts as u64, bounds.len() as u64] {
        h.update(&x.to_le_bytes());
    }
    for &b in bounds {
        h.update(&(b as u64).to_le_bytes());
    }
    // SAFETY: S is u8 or u32: plain integers, every byte initialised.
    h.update(unsafe { std::slice::from_raw_parts(text.as_ptr() as *const u8, std::mem::size_of_val(text)) });
    h.digest()
}

/// The marks being gathered: removal windows, class sizes, counters.
struct PartState<'a, O: SaIndex> {
    later: &'a mut Bits,
    occ: &'a mut BlockMax<O>,
    classes: u64,
    marked: u64,
    overflow: usize,
}

/// The marks file of part `part`, if it exists, belongs to `key` and passes its checksum:
/// its marks in `buf`, and the number of classes it found. `Err(())` for a file that is
/// there but fails verification.
fn read_marks<E: Entry>(dir: &Path, part: usize, key: u64, buf: &mut Vec<E>) -> std::result::Result<Option<u64>, ()> {
    let path = dir.join(marks_file(part));
    let Ok(raw) = std::fs::read(&path) else { return Ok(None) };
    const HEAD: usize = 8 + 5 * 8;
    if raw.len() < HEAD + 8 || &raw[..8] != MARKS_MAGIC {
        return Err(());
    }
    let (body, sum) = raw.split_at(raw.len() - 8);
    if xxh3(body).to_le_bytes() != sum {
        return Err(());
    }
    let h = bytes_u64s(&body[8..HEAD]);
    let count = h[3] as usize;
    if h[0] != key || h[1] != part as u64 || h[2] != E::BYTES as u64 || body.len() != HEAD + count * E::BYTES {
        return Err(());
    }
    buf.clear();
    buf.resize(count, E::default());
    as_bytes_mut(&mut buf[..]).copy_from_slice(&body[HEAD..]);
    Ok(Some(h[4]))
}

fn write_marks<E: Entry>(dir: &Path, part: usize, key: u64, marks: &[E], classes: u64) -> Result<()> {
    let mut head = MARKS_MAGIC.to_vec();
    head.extend(u64s_bytes(&[key, part as u64, E::BYTES as u64, marks.len() as u64, classes]));
    let body = as_bytes(marks);
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&head);
    h.update(body);
    write_atomic(&dir.join(marks_file(part)), &[&head, body, &h.digest().to_le_bytes()])
}

/// The hashing pass (or its reuse) and every part (or its reuse), into `st`.
#[allow(clippy::too_many_arguments)]
fn drive<S: WindowSymbol, E: Entry, O: SaIndex>(
    text: &[S],
    bounds: &[usize],
    opts: &RepeatOptions,
    lim: &LimitedOptions,
    dir: &Path,
    parts: usize,
    windows: usize,
    fixed: usize,
    key: u64,
    marks_key: u64,
    st: &mut PartState<'_, O>,
    stats: &mut RepeatStats,
    t0: Instant,
    stop: &Interrupt,
) -> Result<()> {
    let l = opts.min_length;
    let resume = lim.resume;
    let mut a: Vec<E> = Vec::new();
    let mut tmp: Vec<E> = Vec::new();
    // finished parts of an earlier run: replay their marks
    let mut todo: Vec<usize> = Vec::new();
    if resume {
        for p in 0..parts {
            stop.check()?;
            match read_marks::<E>(dir, p, marks_key, &mut a) {
                Ok(Some(classes)) => {
                    for &m in &a {
                        st.later.set(m.pos());
                        st.occ.note(m.pos(), m.count());
                    }
                    st.classes += classes;
                    st.marked += a.len() as u64;
                    stats.parts_reused += 1;
                }
                Ok(None) => todo.push(p),
                Err(()) => {
                    stats.parts_rebuilt += 1;
                    let _ = std::fs::remove_file(dir.join(marks_file(p)));
                    todo.push(p);
                }
            }
        }
    } else {
        todo.extend(0..parts);
    }
    if todo.is_empty() {
        stats.timings.push(("hash_windows", 0.0));
        stats.timings.push(("find_repeats", t0.elapsed().as_secs_f64()));
        return Ok(());
    }
    let mut spill = if resume { Spill::reuse(dir, key, parts, E::BYTES) } else { None };
    stats.hash_reused = spill.is_some();
    // disk: the spill file (unless reused) and, for a resumable run, the marks of the
    // parts still to do (at most one entry per window of those parts)
    let marks_need = if !resume {
        0
    } else if let Some(sp) = &spill {
        todo.iter().map(|&p| sp.counts[p]).sum::<usize>() * E::BYTES
    } else {
        windows * E::BYTES
    } as u64;
    let spill_need = if spill.is_some() { 0 } else { (windows * E::BYTES) as u64 };
    check_disk(dir, spill_need, marks_need, windows, l, E::BYTES)?;
    let mut spill = match spill.take() {
        Some(sp) => sp,
        None => hash_pass::<S, E>(text, bounds, l, lim, dir, parts, fixed, key, stop)?,
    };
    stats.timings.push(("hash_windows", t0.elapsed().as_secs_f64()));

    let t0 = Instant::now();
    for (i, &part) in todo.iter().enumerate() {
        stop.check()?;
        if !spill.read(part, &mut a)? {
            // the spill file of an earlier run is damaged: hash again (same entries)
            stats.hash_reused = false;
            stats.hash_rebuilt = true;
            drop(spill);
            spill = hash_pass::<S, E>(text, bounds, l, lim, dir, parts, fixed, key, stop)?;
            if !spill.read(part, &mut a)? {
                return Err(Error::invalid_data(spill.path.display().to_string(), "the hash part just written does not match its checksum"));
            }
        }
        if let Some(m) = lim.memory_limit {
            st.overflow = st.overflow.max((fixed + 2 * E::BYTES * a.len()).saturating_sub(m));
        }
        let classes_before = st.classes;
        mark_part::<S, E, O>(text, l, opts.keep, &mut a, &mut tmp, resume, st, stop)?;
        if resume {
            write_marks(dir, part, marks_key, &tmp, st.classes - classes_before)?;
        }
        if lim.stop_after_parts.is_some_and(|k| i + 1 >= k) {
            return Err(Error::Interrupted);
        }
    }
    stats.timings.push(("find_repeats", t0.elapsed().as_secs_f64()));
    Ok(())
}

/// Up-front disk check of the memory-limited path.
fn check_disk(dir: &Path, spill: u64, marks: u64, windows: usize, l: usize, entry: usize) -> Result<()> {
    let need = spill + marks;
    if need == 0 {
        return Ok(());
    }
    if let Some(free) = free_space(dir) {
        // keep at least 64 MiB free for everything else
        if need + (64 << 20) > free {
            let g = crate::mem::gb;
            return Err(Error::invalid_argument(format!(
                "not enough disk space in {} for the memory-limited repeat finder: it needs {need} bytes ({}: \
                 {spill} for the hash parts, {entry} per window of {l} symbols, {windows} windows; {marks} at most \
                 for the finished parts' marks) plus 64 MiB of headroom, but only {free} bytes ({}) are free; \
                 choose another work folder (--work-dir) or free space",
                dir.display(),
                g(need),
                g(free)
            )));
        }
    }
    Ok(())
}

/// Step 1: hash every window once and spill its entry to its part.
#[allow(clippy::too_many_arguments)]
fn hash_pass<S: WindowSymbol, E: Entry>(
    text: &[S],
    bounds: &[usize],
    l: usize,
    lim: &LimitedOptions,
    dir: &Path,
    parts: usize,
    fixed: usize,
    key: u64,
    stop: &Interrupt,
) -> Result<Spill> {
    let mut spill = Spill::create(dir, parts, lim.resume)?;
    // buffers: at most an eighth of the budget, 4..64 KiB per part
    let budget = lim.memory_limit.map_or(usize::MAX, |m| m.saturating_sub(fixed) / 8);
    let cap = (budget / parts.max(1) / E::BYTES).clamp(512, 8192);
    let mut bufs: Vec<Vec<E>> = (0..parts).map(|_| Vec::with_capacity(cap)).collect();
    let pow = (1..l).fold(1u64, |a, _| a.wrapping_mul(BASE));
    for w in bounds.windows(2) {
        let (s, e) = (w[0], w[1]);
        if e - s < l {
            continue;
        }
        let mut h = 0u64;
        for &b in &text[s..s + l] {
            h = h.wrapping_mul(BASE).wrapping_add(b.code());
        }
        let mut p = s;
        stop.check()?;
        loop {
            if (p - s) % super::repeats::POLL == super::repeats::POLL - 1 {
                stop.check()?;
            }
            let m = mix(h);
            let part = ((m as u128 * parts as u128) >> 64) as usize;
            let buf = &mut bufs[part];
            buf.push(E::new(m as u32, p));
            if buf.len() == cap {
                spill.append(part, buf)?;
                buf.clear();
            }
            if p + l >= e {
                break;
            }
            h = h.wrapping_sub(text[p].code().wrapping_mul(pow)).wrapping_mul(BASE).wrapping_add(text[p + l].code());
            p += 1;
        }
    }
    for (part, buf) in bufs.iter().enumerate() {
        spill.append(part, buf)?;
    }
    spill.finish(dir, key, E::BYTES)?;
    Ok(spill)
}

/// Entries of a part ahead of the one being compared whose windows are prefetched.
const PREFETCH: usize = 16;

/// Keep, in order, only the entries of `a` (sorted by key) whose key occurs at least twice.
fn keep_repeated_keys<E: Entry>(a: &mut Vec<E>) {
    let n = a.len();
    let (mut w, mut i) = (0, 0);
    while i < n {
        let k = a[i].key();
        let mut j = i + 1;
        while j < n && a[j].key() == k {
            j += 1;
        }
        if j - i >= 2 {
            a.copy_within(i..j, w);
            w += j - i;
        }
        i = j;
    }
    a.truncate(w);
}

/// Mark one class (`members` in increasing position order: the first is the earliest copy).
fn note_class<E: Entry, O: SaIndex>(members: &[usize], keep_first: bool, record: bool, tmp: &mut Vec<E>, st: &mut PartState<'_, O>) {
    st.classes += 1;
    let c = members.len();
    for (i, &p) in members.iter().enumerate() {
        if keep_first && i == 0 {
            continue;
        }
        st.later.set(p);
        st.occ.note(p, c);
        if record {
            tmp.push(E::mark(p, c));
        }
        st.marked += 1;
    }
}

/// Step 2 for one part: its entries `a` are sorted and its classes marked into `st`; with
/// `record`, the marks (window, class size) are also left in `tmp` for the part's file.
#[allow(clippy::too_many_arguments)]
fn mark_part<S: WindowSymbol, E: Entry, O: SaIndex>(
    text: &[S],
    l: usize,
    keep: Keep,
    a: &mut Vec<E>,
    tmp: &mut Vec<E>,
    record: bool,
    st: &mut PartState<'_, O>,
    stop: &Interrupt,
) -> Result<()> {
    let keep_first = keep == Keep::First;
    let win = |p: usize| &text[p..p + l];
    radix_sort(a, tmp)?;
    stop.check()?;
    // only keys that occur twice or more can be windows that do: drop the rest, so that
    // the windows can be prefetched a fixed distance ahead of the comparisons
    keep_repeated_keys(a);
    // the radix sort's scratch (as long as the part) now holds the marks to record
    tmp.clear();
    let mut members: Vec<usize> = Vec::new();
    let mut split: Vec<usize> = Vec::new();
    let len = a.len();
    let mut ahead = 0;
    let mut i = 0;
    let mut polled = 0;
    while i < len {
        if i - polled >= super::repeats::POLL {
            stop.check()?;
            polled = i;
        }
        // the windows are random accesses into the text: keep many cache misses in flight
        while ahead < len && ahead < i + PREFETCH {
            let p = a[ahead].pos();
            let w = win(p);
            crate::mem::prefetch(&w[0]);
            crate::mem::prefetch(&w[l - 1]);
            st.later.prefetch(p);
            st.occ.prefetch(p);
            ahead += 1;
        }
        let k = a[i].key();
        let mut j = i + 1;
        while j < len && a[j].key() == k {
            j += 1;
        }
        let g = &a[i..j];
        let rep = win(g[0].pos());
        if g[1..].iter().all(|e| win(e.pos()) == rep) {
            members.clear();
            members.extend(g.iter().map(|e| e.pos()));
            note_class(&members, keep_first, record, tmp, st);
        } else {
            // a hash collision: split the group into its distinct windows
            split.clear();
            split.extend(g.iter().map(|e| e.pos()));
            split.sort_unstable_by(|&x, &y| win(x).cmp(win(y)).then(x.cmp(&y)));
            let mut s = 0;
            for t in 1..=split.len() {
                if t == split.len() || win(split[t]) != win(split[s]) {
                    if t - s >= 2 {
                        note_class(&split[s..t], keep_first, record, tmp, st);
                    }
                    s = t;
                }
            }
        }
        i = j;
    }
    Ok(())
}

/// Bytes-mode self-dedup with bounded working memory: the spans of
/// [`super::find_repeats`] (tested), shrunk to UTF-8 character boundaries the same way.
pub fn find_repeats_external(docs: Docs<'_>, opts: &RepeatOptions, lim: &LimitedOptions) -> Result<(Vec<Span>, RepeatStats)> {
    let (text, bounds) = text_and_bounds(&docs);
    let (spans, mut stats) = find_repeats_symbols_limited::<u8>(text, &bounds, opts, lim, "bytes")?;
    let t0 = Instant::now();
    let spans = snap_utf8(spans, &docs);
    if let Some(t) = stats.timings.iter_mut().find(|t| t.0 == "collect_spans") {
        t.1 += t0.elapsed().as_secs_f64();
    }
    Ok((spans, stats))
}

/// [`find_repeats_external`] with the number of parts derived from `memory_limit` (bytes).
/// Returns an error if the limit cannot even hold the bitmap, the block table and a minimal
/// part.
pub fn find_repeats_limited(docs: Docs<'_>, opts: &RepeatOptions, memory_limit: usize) -> Result<(Vec<Span>, RepeatStats)> {
    find_repeats_external(docs, opts, &LimitedOptions { memory_limit: Some(memory_limit), ..Default::default() })
}

/// [`find_repeats_external`] with an explicit number of hash parts (>= 1).
pub fn find_repeats_in_parts(docs: Docs<'_>, opts: &RepeatOptions, parts: u64) -> Result<(Vec<Span>, RepeatStats)> {
    find_repeats_external(docs, opts, &LimitedOptions { parts: Some(parts as usize), ..Default::default() })
}

/// Token-id self-dedup with bounded working memory: the spans of
/// [`super::find_repeats_tokens`] (token units).
pub fn find_repeats_tokens_external(
    ids: &[u32],
    bounds: &[usize],
    opts: &RepeatOptions,
    lim: &LimitedOptions,
) -> Result<(Vec<Span>, RepeatStats)> {
    find_repeats_symbols_limited::<u32>(ids, bounds, opts, lim, "tokens")
}

/// Token-mode self-dedup of UTF-8 documents with bounded working memory (beyond the token
/// ids, 4 bytes per token, and their byte offsets): the spans of
/// [`super::find_repeats_tokenized`].
pub fn find_repeats_tokenized_external(
    docs: Docs<'_>,
    tokenizer: &crate::bpe::Tokenizer,
    opts: &RepeatOptions,
    lim: &LimitedOptions,
) -> Result<(Vec<Span>, RepeatStats)> {
    let enc = super::repeats::encode_docs(&docs, tokenizer, opts.threads)?;
    let (spans, mut stats) = find_repeats_tokens_external(&enc.ids, &enc.bounds, opts, lim)?;
    let spans = enc.byte_spans(&spans, &docs, &mut stats)?;
    stats.timings.insert(1, ("tokenize", enc.secs));
    Ok((spans, stats))
}
