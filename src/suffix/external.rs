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
//! Memory: the bitmap, the block table, and one part (entries plus the radix sort's scratch
//! copy); `P` is chosen so that these fit in the limit, with 1.25x headroom because parts are
//! balanced by hash, not exactly. A part can only outgrow its share when a single window
//! content (or a few) occurs a very large number of times: such a part is still processed in
//! memory, and its excess is reported in the stats (`part_overflow_bytes`). The text itself
//! is only read (it may be memory-mapped); disk use is the spill file, 8 or 16 bytes per
//! window, checked against the free space of the work folder before anything is written.

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

/// The spill file of the part entries, removed on drop.
struct Spill {
    file: File,
    path: PathBuf,
    end: u64,
    /// per part: (byte offset, number of entries) of each chunk
    chunks: Vec<Vec<(u64, usize)>>,
    counts: Vec<usize>,
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Spill {
    fn create(dir: &Path, parts: usize) -> Result<Spill> {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let path = dir.join(format!("gristmill-parts-{}-{:x}.bin", std::process::id(), t as u64));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        Ok(Spill { file, path, end: 0, chunks: vec![Vec::new(); parts], counts: vec![0; parts] })
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
        self.chunks[part].push((self.end, entries.len()));
        self.counts[part] += entries.len();
        self.end += bytes.len() as u64;
        Ok(())
    }
    /// Read part `part` into `out` (cleared first), in append order.
    fn read<E: Entry>(&self, part: usize, out: &mut Vec<E>) -> Result<()> {
        out.clear();
        let n = self.counts[part];
        out.try_reserve_exact(n).map_err(|_| crate::mem::alloc_failed::<E>(n, "a hash part of the memory-limited repeat finder"))?;
        out.resize(n, E::default());
        let mut at = 0;
        for &(off, cnt) in &self.chunks[part] {
            self.file.read_exact_at(as_bytes_mut(&mut out[at..at + cnt]), off).map_err(|e| self.err(e))?;
            at += cnt;
        }
        Ok(())
    }
}

/// Free bytes for an unprivileged writer in the file system holding `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
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
#[derive(Clone, Debug)]
pub struct LimitedOptions {
    /// Working-memory bound in bytes (bitmap, block table, one part).
    pub memory_limit: Option<usize>,
    /// Number of parts instead of deriving it from `memory_limit` (tests, benchmarks).
    pub parts: Option<usize>,
    /// Folder for the spill file (default: the system temporary folder).
    pub work_dir: Option<PathBuf>,
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
    let need = (windows * E::BYTES) as u64;
    if let Some(free) = free_space(&dir) {
        // keep 1% of the disk (at least 64 MiB) free for everything else
        if need + (64 << 20) > free {
            return Err(Error::invalid_argument(format!(
                "not enough disk space in {} for the memory-limited repeat finder: it spills {} bytes \
                 ({} per window of {l} symbols, {windows} windows) but only {free} bytes are free; \
                 choose another work folder (--work-dir) or free space",
                dir.display(),
                need,
                E::BYTES
            )));
        }
    }
    let mut stats = RepeatStats { index_bytes: 0, ..Default::default() };

    // 1. hash every window once, spill entries to their parts
    let t0 = Instant::now();
    let stop = Interrupt::current();
    let mut spill = Spill::create(&dir, parts)?;
    {
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
    }
    stats.timings.push(("hash_windows", t0.elapsed().as_secs_f64()));

    // 2. classes part by part
    let t0 = Instant::now();
    let mut later = Bits::new(n)?;
    let (spans, classes, marked, overflow) = if n <= i32::MAX as usize {
        let mut occ = BlockMax::<i32>::new(n, l)?;
        let (c, m, o) = mark_parts::<S, E, i32>(text, l, opts.keep, &spill, lim, fixed, &mut later, &mut occ)?;
        drop(spill);
        stats.timings.push(("find_repeats", t0.elapsed().as_secs_f64()));
        let t0 = Instant::now();
        let spans = collect_spans(bounds, 0, l, &later, &occ)?;
        stats.timings.push(("collect_spans", t0.elapsed().as_secs_f64()));
        (spans, c, m, o)
    } else {
        let mut occ = BlockMax::<i64>::new(n, l)?;
        let (c, m, o) = mark_parts::<S, E, i64>(text, l, opts.keep, &spill, lim, fixed, &mut later, &mut occ)?;
        drop(spill);
        stats.timings.push(("find_repeats", t0.elapsed().as_secs_f64()));
        let t0 = Instant::now();
        let spans = collect_spans(bounds, 0, l, &later, &occ)?;
        stats.timings.push(("collect_spans", t0.elapsed().as_secs_f64()));
        (spans, c, m, o)
    };
    stats.classes = classes;
    stats.marked_windows = marked;
    stats.timings.insert(0, ("parts", parts as f64));
    stats.part_overflow_bytes = overflow;
    Ok((spans, stats))
}

/// Step 2 for every part; returns (classes, marked windows, largest part overflow in bytes).
#[allow(clippy::too_many_arguments)]
fn mark_parts<S: WindowSymbol, E: Entry, O: SaIndex>(
    text: &[S],
    l: usize,
    keep: Keep,
    spill: &Spill,
    lim: &LimitedOptions,
    fixed: usize,
    later: &mut Bits,
    occ: &mut BlockMax<O>,
) -> Result<(u64, u64, usize)> {
    let keep_first = keep == Keep::First;
    let (mut classes, mut marked, mut overflow) = (0u64, 0u64, 0usize);
    let mut a: Vec<E> = Vec::new();
    let mut tmp: Vec<E> = Vec::new();
    let mut split: Vec<usize> = Vec::new();
    let win = |p: usize| &text[p..p + l];
    let mut class = |members: &[usize], later: &mut Bits, occ: &mut BlockMax<O>| {
        // `members` are in increasing position order: the first is the earliest copy
        classes += 1;
        let c = members.len();
        for (i, &p) in members.iter().enumerate() {
            if keep_first && i == 0 {
                continue;
            }
            later.set(p);
            occ.note(p, c);
            marked += 1;
        }
    };
    let mut members: Vec<usize> = Vec::new();
    let stop = Interrupt::current();
    for part in 0..spill.counts.len() {
        stop.check()?;
        spill.read(part, &mut a)?;
        if let Some(m) = lim.memory_limit {
            overflow = overflow.max((fixed + 2 * E::BYTES * a.len()).saturating_sub(m));
        }
        radix_sort(&mut a, &mut tmp)?;
        stop.check()?;
        let len = a.len();
        let mut i = 0;
        let mut polled = 0;
        while i < len {
            if i - polled >= super::repeats::POLL {
                stop.check()?;
                polled = i;
            }
            let k = a[i].key();
            let mut j = i + 1;
            while j < len && a[j].key() == k {
                j += 1;
            }
            if j - i >= 2 {
                // prefetch the windows of the next group of equal keys while this one is compared
                if let Some(nx) = a.get(j + 1) {
                    if nx.key() == a[j].key() {
                        crate::mem::prefetch(&text[a[j].pos()]);
                        crate::mem::prefetch(&text[nx.pos()]);
                    }
                }
                let g = &a[i..j];
                let rep = win(g[0].pos());
                if g[1..].iter().all(|e| win(e.pos()) == rep) {
                    members.clear();
                    members.extend(g.iter().map(|e| e.pos()));
                    class(&members, later, occ);
                } else {
                    // a hash collision: split the group into its distinct windows
                    split.clear();
                    split.extend(g.iter().map(|e| e.pos()));
                    split.sort_unstable_by(|&x, &y| win(x).cmp(win(y)).then(x.cmp(&y)));
                    let mut s = 0;
                    for t in 1..=split.len() {
                        if t == split.len() || win(split[t]) != win(split[s]) {
                            if t - s >= 2 {
                                class(&split[s..t], later, occ);
                            }
                            s = t;
                        }
                    }
                }
            }
            i = j;
        }
    }
    Ok((classes, marked, overflow))
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
    find_repeats_external(docs, opts, &LimitedOptions { memory_limit: Some(memory_limit), parts: None, work_dir: None })
}

/// [`find_repeats_external`] with an explicit number of hash parts (>= 1).
pub fn find_repeats_in_parts(docs: Docs<'_>, opts: &RepeatOptions, parts: u64) -> Result<(Vec<Span>, RepeatStats)> {
    find_repeats_external(docs, opts, &LimitedOptions { memory_limit: None, parts: Some(parts as usize), work_dir: None })
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
