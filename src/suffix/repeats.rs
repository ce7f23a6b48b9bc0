//! The repeat finder: which `L`-symbol windows occur at least twice inside documents, which
//! copies to remove, and the merged per-document spans that result.
//!
//! # Definitions (the contract the tests check against a brute-force reference)
//!
//! * An **occurrence** of a window is a position `p` of document `d` with `p + L <= len(d)`:
//!   the window `d[p..p + L]` lies entirely inside one document.
//! * A **class** is the set of occurrences of one distinct window content. A class with at
//!   least two occurrences (anywhere in the corpus, same or different documents) is a
//!   **duplicate class**; its size is its number of occurrences.
//! * `Keep::None` (Lee et al.): every byte covered by any occurrence of a duplicate class is
//!   removed.
//! * `Keep::First`: an occurrence is a **later copy** when an occurrence of the same window
//!   content starts earlier in corpus order (document order, then offset); the earliest
//!   occurrence of a class is its *first copy*. A symbol is removed iff it is covered by a
//!   later copy. This is the promise it buys, checked directly by the tests:
//!   - **no duplicate survives**: every `L`-window lying wholly inside kept text (a
//!     contiguous kept stretch of one document) is the first copy of its content, so no
//!     window of the kept text occurs twice in it;
//!   - **no over-removal**: every removed symbol lies inside a later copy of a window that
//!     occurs earlier;
//!   - nothing is removed that `Keep::None` keeps; of two identical documents the later one
//!     is removed whole and the earlier keeps at least its first symbol unless an earlier
//!     document contains its first window, so the two never both vanish.
//!
//!   The cost, on self-overlapping text: a first copy is not always kept whole. A window of
//!   a first copy that repeats text seen earlier (an earlier document, or earlier in the same
//!   passage) is cut. A periodic run of period `q < L` (`abcabcabc…`, a register table whose
//!   rows repeat with a changing field shorter than `L - q`…) keeps only its first `q`
//!   symbols, because the window at offset `q` equals the one at offset 0; those `q` symbols
//!   are shorter than `L`, so no kept window remains to be a duplicate. Windows that the
//!   removal *creates* by joining the text before and after a removed span are not windows of
//!   the input and are not considered (as in Lee et al.).
//! * **Spans** are maximal runs of removed positions within a document, `[start, end)`
//!   relative to the document. `occurrences` of a span is the largest class size among the
//!   removal windows covering any of its positions.
//! * In bytes mode spans are then **shrunk inward** to UTF-8 character boundaries
//!   (`start` rounded up, `end` rounded down; empty spans dropped), so removal never cuts a
//!   character: a partially covered multi-byte character is kept. A kept later copy can
//!   then only be a window lying inside a single multi-byte character (so `L <= 3`): for
//!   `L >= 4` the no-duplicate promise holds byte for byte after snapping.
//!
//! # Algorithm
//! Build the suffix array of the concatenated documents (no separators). A maximal run of
//! adjacent SA entries whose suffixes share their first `L` symbols is a class once the
//! suffixes whose window leaves their document are skipped (skipping never splits the run,
//! because the comparison is on the raw concatenation). The run starts go to a
//! bitmap over ranks, found by comparing the `L`-windows of adjacent suffixes directly (the
//! previous window is still in cache, later ones are prefetched; rayon over rank chunks), so
//! no PLCP array is built for `L <= 512` (beyond, libsais' PLCP gives the same bitmap and is
//! then freed). One scan over the runs marks the removal windows in a bitmap (1 bit per
//! symbol) and notes each class size in the block of its window start ([`BlockMax`], one
//! index per `min(64, 2^floor(log2 L))` symbols); spans are the maximal unions of marked
//! windows, their `occurrences` the largest block value under their window starts. Peak
//! memory with 32-bit indices and `L >= 64`: text 1 + SA 4 + three bitmaps 3/8 + block
//! maxima 1/16 bytes per input byte (5.44; 9 more bytes per symbol for tiny `L`, 64-bit
//! indices beyond 2^31 symbols).

use std::time::Instant;

use super::sa::{suffix_array, suffix_array_with_plcp, IndexWidth, SaIndex, Symbol};
use crate::interrupt::Interrupt;
use crate::text::utf8::{ceil_char_boundary, floor_char_boundary};
use crate::text::Docs;
use crate::{Error, Result};

/// Which copies of a repeated window to remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Remove every copy (the behaviour of Lee et al. 2021).
    None,
    /// Remove every symbol covered by a later copy of a window (one with an earlier
    /// occurrence in corpus order): the output contains no window twice.
    First,
}

impl std::str::FromStr for Keep {
    type Err = Error;
    fn from_str(s: &str) -> Result<Keep> {
        match s {
            "none" => Ok(Keep::None),
            "first" => Ok(Keep::First),
            _ => Err(Error::invalid_argument(format!("keep must be 'none' or 'first', got {s:?}"))),
        }
    }
}

/// A removed (or contaminated) range `[start, end)` of document `doc`, in bytes (or symbols
/// for token input) relative to the start of the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub doc: usize,
    pub start: usize,
    pub end: usize,
    /// Largest class size (for contamination: number of occurrences in the training
    /// corpus) among the windows covering the span.
    pub occurrences: u64,
}

/// Options shared by [`find_repeats`] and [`contamination`].
#[derive(Clone, Copy, Debug)]
pub struct RepeatOptions {
    pub min_length: usize,
    pub keep: Keep,
    /// OpenMP threads for suffix-array construction (0 = all cores).
    pub threads: usize,
    pub width: IndexWidth,
}

impl RepeatOptions {
    pub fn new(min_length: usize) -> Self {
        RepeatOptions { min_length, keep: Keep::None, threads: 0, width: IndexWidth::Auto }
    }
}

/// What happened, for reports.
#[derive(Clone, Debug, Default)]
pub struct RepeatStats {
    /// Seconds per stage, in order.
    pub timings: Vec<(&'static str, f64)>,
    /// Number of duplicate classes found (contamination: classes shared by both corpora).
    pub classes: u64,
    /// Number of windows marked for removal (contamination: eval windows).
    pub marked_windows: u64,
    /// Bytes of suffix-array index used (4 or 8 per symbol).
    pub index_bytes: usize,
    /// Memory-limited path: by how many bytes the largest part exceeded the limit (0 unless
    /// one window content occurs a very large number of times).
    pub part_overflow_bytes: usize,
    /// Resumable memory-limited path: parts whose marks were reused from an earlier run.
    pub parts_reused: usize,
    /// Resumable memory-limited path: parts whose file of an earlier run failed its
    /// checksum (or belonged to other settings) and was rebuilt.
    pub parts_rebuilt: usize,
    /// Resumable memory-limited path: the hashing pass of an earlier run was reused.
    pub hash_reused: bool,
    /// Resumable memory-limited path: the reused hashing pass failed a checksum and was redone.
    pub hash_rebuilt: bool,
}

// ---------------------------------------------------------------------------------------
// bitmaps

pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub(crate) fn new(n: usize) -> Result<Self> {
        Ok(Bits(super::sa::huge_vec(n.div_ceil(64), 0u64, "a bitmap")?))
    }
    #[inline]
    pub(crate) fn set(&mut self, i: usize) {
        self.0[i >> 6] |= 1u64 << (i & 63);
    }
    #[inline]
    pub(crate) fn get(&self, i: usize) -> bool {
        self.0[i >> 6] >> (i & 63) & 1 == 1
    }
    /// Start loading the word of bit `i` (no effect on results).
    #[inline]
    pub(crate) fn prefetch(&self, i: usize) {
        crate::mem::prefetch(&self.0[i >> 6]);
    }
    fn set_range(&mut self, lo: usize, hi: usize) {
        let mut i = lo;
        while i < hi && i & 63 != 0 {
            self.set(i);
            i += 1;
        }
        while i + 64 <= hi {
            self.0[i >> 6] = u64::MAX;
            i += 64;
        }
        while i < hi {
            self.set(i);
            i += 1;
        }
    }
    /// Smallest set index in `[from, to)`.
    fn next_set(&self, from: usize, to: usize) -> Option<usize> {
        if from >= to {
            return None;
        }
        let mut w = from >> 6;
        let mut word = self.0[w] & (u64::MAX << (from & 63));
        loop {
            if word != 0 {
                let i = (w << 6) + word.trailing_zeros() as usize;
                return (i < to).then_some(i);
            }
            w += 1;
            if w << 6 >= to {
                return None;
            }
            word = self.0[w];
        }
    }
    /// Smallest clear index in `[from, to)`.
    fn next_zero(&self, from: usize, to: usize) -> Option<usize> {
        if from >= to {
            return None;
        }
        let mut w = from >> 6;
        let mut word = !self.0[w] & (u64::MAX << (from & 63));
        loop {
            if word != 0 {
                let i = (w << 6) + word.trailing_zeros() as usize;
                return (i < to).then_some(i);
            }
            w += 1;
            if w << 6 >= to {
                return None;
            }
            word = !self.0[w];
        }
    }
}

// ---------------------------------------------------------------------------------------
// core, generic over the symbol type

/// Document boundaries in symbol units: doc `i` is `bounds[i]..bounds[i + 1]`, `bounds[0] == 0`.
fn real_positions(bounds: &[usize], n: usize, l: usize) -> Result<Bits> {
    let mut real = Bits::new(n)?;
    for w in bounds.windows(2) {
        if w[1] - w[0] >= l {
            real.set_range(w[0], w[1] - l + 1);
        }
    }
    Ok(real)
}

/// Ranks (or positions) between two polls of the interrupt flag in the long loops: a few
/// milliseconds of work, so Ctrl-C is answered well within a second.
pub(crate) const POLL: usize = 1 << 20;

/// Call `f(members)` for every maximal run of at least two suffix-array entries whose
/// suffixes share their first `l` symbols, given the run starts of [`run_starts_direct`].
/// Stops with [`Error::Interrupted`] when `stop` is raised.
fn scan_runs<O: SaIndex>(sa: &[O], starts: &Bits, stop: &Interrupt, mut f: impl FnMut(&[O])) -> Result<()> {
    let n = sa.len();
    let mut i = 1;
    let mut polled = 0;
    // a clear bit at `z` continues the run that the set bit at `z - 1` (the first clear bit
    // after a run end is always preceded by a run start) opened
    while let Some(z) = starts.next_zero(i, n) {
        let e = starts.next_set(z + 1, n).unwrap_or(n);
        f(&sa[z - 1..e]);
        i = e + 1;
        if i - polled >= POLL {
            stop.check()?;
            polled = i;
        }
    }
    Ok(())
}

/// Whether the `l` symbols at `a` and at `b` exist and are equal.
#[inline]
fn same_window<S: Eq>(text: &[S], a: usize, b: usize, l: usize) -> bool {
    let n = text.len();
    a + l <= n && b + l <= n && text[a..a + l] == text[b..b + l]
}

/// Longest `min_length` for which run starts are found by comparing the windows of adjacent
/// suffixes (at most `l` symbols per pair) instead of from a PLCP array (4 bytes per symbol).
pub(crate) const DIRECT_RUNS_MAX: usize = 512;

/// Run starts over suffix-array ranks: bit `i` is set iff `i == 0` or the suffixes of ranks
/// `i - 1` and `i` share fewer than `l` symbols. Found by comparing the two windows directly:
/// the previous suffix's window is still in cache, so each rank costs one random access
/// into the text, as a PLCP lookup would, without the PLCP array. Ranks are split into
/// chunks for rayon when `threads != 1` (the result does not depend on it). Stops with
/// [`Error::Interrupted`] when `stop` is raised.
fn run_starts_direct<S: Eq + Sync, O: SaIndex>(text: &[S], sa: &[O], l: usize, threads: usize, stop: &Interrupt) -> Result<Bits> {
    let n = sa.len();
    let mut bits = Bits::new(n)?;
    let fill = |w0: usize, words: &mut [u64]| {
        for (k, word) in words.iter_mut().enumerate() {
            if k % (POLL >> 6) == 0 && stop.is_set() {
                return;
            }
            let base = (w0 + k) << 6;
            let end = (base + 64).min(n);
            let mut prev = if base == 0 { usize::MAX } else { sa[base - 1].get() };
            let mut x = 0u64;
            for (i, q) in sa[base..end].iter().enumerate() {
                // the loads are independent across ranks: start the text access of a later
                // rank now, so that many cache misses are in flight at once
                if let Some(ahead) = sa.get(base + i + PREFETCH) {
                    let a = ahead.get();
                    if let Some(w) = text.get(a..a + l) {
                        // first and last cache line of the window (l symbols may span several)
                        crate::mem::prefetch(&w[0]);
                        crate::mem::prefetch(&w[l - 1]);
                    }
                }
                let p = q.get();
                if prev == usize::MAX || !same_window(text, prev, p, l) {
                    x |= 1u64 << i;
                }
                prev = p;
            }
            *word = x;
        }
    };
    const CHUNK: usize = 1 << 12; // words (262,144 ranks) per task
    const PREFETCH: usize = 24; // ranks ahead
    if threads == 1 || n < CHUNK << 6 {
        fill(0, &mut bits.0);
    } else {
        use rayon::prelude::*;
        bits.0.par_chunks_mut(CHUNK).enumerate().for_each(|(c, ch)| fill(c * CHUNK, ch));
    }
    stop.check()?;
    Ok(bits)
}

/// [`run_starts_direct`] from a PLCP array (for long `min_length`).
fn run_starts_from_plcp<O: SaIndex>(sa: &[O], plcp: &[O], l: usize, stop: &Interrupt) -> Result<Bits> {
    let mut bits = Bits::new(sa.len())?;
    for (i, q) in sa.iter().enumerate() {
        if i % POLL == 0 {
            stop.check()?;
        }
        if i == 0 || plcp[q.get()].get() < l {
            bits.set(i);
        }
    }
    Ok(bits)
}

/// The suffix array of `text` and its run starts for windows of `l` symbols, with the
/// seconds of both stages (`suffix_array`, `lcp`). Below [`DIRECT_RUNS_MAX`] no PLCP array
/// is built, so the peak is the text, the suffix array and one bitmap.
fn sorted_runs<S: Symbol, O>(text: &[S], l: usize, threads: usize) -> Result<(Vec<O>, Bits, [f64; 2])>
where
    O: SaIndex + libsais::OutputElement + libsais::SupportsPlcpOutputFor<S>,
{
    let stop = Interrupt::current();
    if l <= DIRECT_RUNS_MAX {
        let t0 = Instant::now();
        let sa = suffix_array::<S, O>(text, threads)?;
        let t_sa = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let runs = run_starts_direct(text, &sa, l, threads, &stop)?;
        Ok((sa, runs, [t_sa, t0.elapsed().as_secs_f64()]))
    } else {
        let (sa, plcp, t) = suffix_array_with_plcp::<S, O>(text, threads)?;
        let t0 = Instant::now();
        let runs = run_starts_from_plcp(&sa, &plcp, l, &stop)?;
        Ok((sa, runs, [t[0], t[1] + t0.elapsed().as_secs_f64()]))
    }
}

/// [`sorted_runs`] for an integer text with symbols in `0..k` (libsais' large-alphabet
/// path, which uses `text` as scratch space and restores it).
fn sorted_runs_int(text: &mut [i32], k: usize, l: usize, threads: usize) -> Result<(Vec<i32>, Bits, [f64; 2])> {
    let stop = Interrupt::current();
    if l <= DIRECT_RUNS_MAX {
        let t0 = Instant::now();
        let sa = super::sa::suffix_array_int(text, k, threads)?;
        let t_sa = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let runs = run_starts_direct(&*text, &sa, l, threads, &stop)?;
        Ok((sa, runs, [t_sa, t0.elapsed().as_secs_f64()]))
    } else {
        let (sa, plcp, t) = super::sa::suffix_array_with_plcp_int(text, k, threads)?;
        let t0 = Instant::now();
        let runs = run_starts_from_plcp(&sa, &plcp, l, &stop)?;
        Ok((sa, runs, [t[0], t[1] + t0.elapsed().as_secs_f64()]))
    }
}

/// Append the maximal removed runs of `[ds, de)` as absolute `(start, end)`: the union of
/// the windows `[p, p + l)` for every `p` set in `remove` (all of which lie inside the
/// document).
pub(crate) fn sweep_doc(ds: usize, de: usize, l: usize, remove: &Bits, out: &mut Vec<(usize, usize)>) {
    let mut from = ds;
    while let Some(start) = remove.next_set(from, de) {
        let mut end = start + l;
        let mut q = start + 1;
        // a window starting at or before `end` overlaps or touches the run: extend it
        while let Some(p) = remove.next_set(q, (end + 1).min(de)) {
            end = end.max(p + l);
            q = p + 1;
        }
        let end = end.min(de);
        out.push((start, end));
        from = end;
    }
}

/// Largest class size per block of `2^shift` positions, `shift = min(6, floor(log2 l))`:
/// a block is at most `l` positions wide, while window starts of two different spans are at
/// least `l + 1` apart (the first span ends before the second starts), so every block holds
/// the marked window starts of at most one span and a span's `occurrences` is the maximum
/// over the blocks of its window starts. Costs `O::BYTES / 2^shift` bytes per symbol
/// (1/16 with 32-bit indices for `l >= 64`).
pub(crate) struct BlockMax<O: SaIndex> {
    shift: u32,
    max: Vec<O>,
}

impl<O: SaIndex> BlockMax<O> {
    pub(crate) fn new(n: usize, l: usize) -> Result<Self> {
        let shift = l.ilog2().min(6);
        Ok(BlockMax { shift, max: super::sa::huge_vec((n >> shift) + 1, O::ZERO, "the class-size table")? })
    }
    /// A window starting at `p` belongs to a class of `count` occurrences.
    #[inline]
    pub(crate) fn note(&mut self, p: usize, count: usize) {
        let b = &mut self.max[p >> self.shift];
        if b.get() < count {
            *b = O::from_usize(count);
        }
    }
    /// Start loading the entry of position `p` (no effect on results).
    #[inline]
    pub(crate) fn prefetch(&self, p: usize) {
        crate::mem::prefetch(&self.max[p >> self.shift]);
    }
    /// `occurrences` of the span `[s, e)` made of windows of `l` symbols starting in
    /// `[s, e - l]`.
    fn span(&self, s: usize, e: usize, l: usize) -> u64 {
        self.max[s >> self.shift..=(e - l) >> self.shift].iter().map(|x| x.get() as u64).max().unwrap_or(0)
    }
}

/// Bytes the in-memory repeat finder allocates for a text of `n` symbols with windows of `l`
/// symbols and `index_bytes`-wide suffix-array entries, beyond the text itself: the suffix
/// array, then either the PLCP array (`l > 512`) or the three bitmaps and the class-size
/// table, whichever is larger, plus 1/16 and 32 MiB of margin for libsais' and the
/// allocator's own buffers. Measured (`/usr/bin/time -v gristmill dedup exact`, 50 and 280 MB
/// of text): 5.48 bytes of peak RSS per input byte above a fixed ~120 MB (Python, pyarrow)
/// for 32-bit indices and `l >= 64`; this function says 4.5 for that case, the text (1 byte
/// per byte, already in memory when it is called) not counted.
pub fn repeats_memory_need(n: usize, l: usize, index_bytes: usize) -> u64 {
    let (n, w) = (n as u64, index_bytes as u64);
    let shift = l.max(1).ilog2().min(6);
    let bits = n.div_ceil(64) * 8;
    let marking = 3 * bits + w * ((n >> shift) + 1);
    let runs = if l > DIRECT_RUNS_MAX { (n * w + bits).max(marking) } else { marking };
    n * w + runs + n / 16 + (32 << 20)
}

fn ensure_repeats_fit<S: Symbol>(n: usize, l: usize, index_bytes: usize, what: &str) -> Result<()> {
    crate::mem::ensure_fits(
        repeats_memory_need(n, l, index_bytes),
        format_args!("the in-memory suffix array of {what} ({n} {})", S::UNIT),
    )
}

pub(crate) fn check_min_length(l: usize, bounds: &[usize], what: &str, unit: &str) -> Result<()> {
    if l < 1 {
        return Err(Error::invalid_argument("min_length must be at least 1"));
    }
    let longest = bounds.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    if bounds.len() > 1 && l > longest {
        return Err(Error::invalid_argument(format!(
            "min_length {l} is larger than every document of {what} (the longest has {longest} {unit}), \
             so no repeat can be found"
        )));
    }
    Ok(())
}

/// Self-dedup over symbols: returns spans as `(doc, start, end, occurrences)` in symbol
/// units relative to their document, before any UTF-8 snapping.
pub fn find_repeats_symbols<S: Symbol>(
    text: &[S],
    bounds: &[usize],
    opts: &RepeatOptions,
) -> Result<(Vec<Span>, RepeatStats)>
where
    i32: libsais::SupportsPlcpOutputFor<S>,
    i64: libsais::SupportsPlcpOutputFor<S>,
{
    check_bounds(bounds, text.len())?;
    check_min_length(opts.min_length, bounds, "the corpus", S::UNIT)?;
    match opts.width.bytes_for(text.len())? {
        4 => self_dedup::<S, i32>(text, bounds, opts),
        _ => self_dedup::<S, i64>(text, bounds, opts),
    }
}

pub(crate) fn check_bounds(bounds: &[usize], n: usize) -> Result<()> {
    if bounds.first().is_some_and(|&b| b != 0) || bounds.last().is_some_and(|&b| b != n) {
        return Err(Error::invalid_argument("document bounds must start at 0 and end at the text length"));
    }
    if bounds.windows(2).any(|w| w[1] < w[0]) {
        return Err(Error::invalid_argument("document bounds must not decrease"));
    }
    Ok(())
}

fn self_dedup<S: Symbol, O>(text: &[S], bounds: &[usize], opts: &RepeatOptions) -> Result<(Vec<Span>, RepeatStats)>
where
    O: SaIndex + libsais::OutputElement + libsais::SupportsPlcpOutputFor<S>,
{
    ensure_repeats_fit::<S>(text.len(), opts.min_length, O::BYTES, "the corpus")?;
    let (sa, runs, t) = sorted_runs::<S, O>(text, opts.min_length, opts.threads)?;
    dedup_from_sa(sa, runs, t, bounds, opts)
}

/// The marking and span collection of [`self_dedup`], given a suffix array and its runs.
fn dedup_from_sa<O: SaIndex>(
    sa: Vec<O>,
    runs: Bits,
    t: [f64; 2],
    bounds: &[usize],
    opts: &RepeatOptions,
) -> Result<(Vec<Span>, RepeatStats)> {
    let l = opts.min_length;
    let n = sa.len();
    let mut stats = RepeatStats { index_bytes: O::BYTES * n, ..Default::default() };
    stats.timings.push(("suffix_array", t[0]));
    stats.timings.push(("lcp", t[1]));

    let t0 = Instant::now();
    let stop = Interrupt::current();
    let real = real_positions(bounds, n, l)?;
    // `later`: the removal windows — every occurrence of a duplicate class (keep none), or
    // every occurrence but the earliest (keep first). A symbol is removed iff a removal
    // window covers it.
    let mut later = Bits::new(n)?;
    let mut occ = BlockMax::<O>::new(n, l)?;
    let keep_first = opts.keep == Keep::First;
    let (mut classes, mut marked) = (0u64, 0u64);
    scan_runs(&sa, &runs, &stop, |members| {
        let mut count = 0usize;
        let mut min_p = usize::MAX;
        for &m in members {
            let p = m.get();
            if real.get(p) {
                count += 1;
                min_p = min_p.min(p);
            }
        }
        if count < 2 {
            return;
        }
        classes += 1;
        for &m in members {
            let p = m.get();
            if real.get(p) && !(keep_first && p == min_p) {
                later.set(p);
                occ.note(p, count);
                marked += 1;
            }
        }
    })?;
    drop(sa);
    drop(runs);
    drop(real);
    stats.classes = classes;
    stats.marked_windows = marked;
    stats.timings.push(("find_repeats", t0.elapsed().as_secs_f64()));

    let t0 = Instant::now();
    let spans = collect_spans(bounds, 0, l, &later, &occ)?;
    stats.timings.push(("collect_spans", t0.elapsed().as_secs_f64()));
    Ok((spans, stats))
}

/// Merged spans of the documents from `first_doc` on (numbered from 0 there): positions
/// covered by a window marked in `remove`, with occurrence counts from `occ`.
/// Stops with [`Error::Interrupted`] when the current interrupt is raised.
pub(crate) fn collect_spans<O: SaIndex>(bounds: &[usize], first_doc: usize, l: usize, remove: &Bits, occ: &BlockMax<O>) -> Result<Vec<Span>> {
    let stop = Interrupt::current();
    let mut raw = Vec::new();
    let mut spans = Vec::new();
    let mut polled = 0;
    for (d, w) in bounds.windows(2).enumerate().skip(first_doc) {
        if w[1] - polled >= POLL {
            stop.check()?;
            polled = w[1];
        }
        raw.clear();
        sweep_doc(w[0], w[1], l, remove, &mut raw);
        spans.extend(raw.iter().map(|&(s, e)| Span {
            doc: d - first_doc,
            start: s - w[0],
            end: e - w[0],
            occurrences: occ.span(s, e, l),
        }));
    }
    Ok(spans)
}

/// Cross-corpus contamination over symbols: spans of `eval` documents (doc = eval index)
/// covered by windows of length `>= L` that also occur inside some training document.
/// `occurrences` = the largest number of training occurrences among covering windows.
pub fn contamination_symbols<S: Symbol>(
    train: &[S],
    train_bounds: &[usize],
    eval: &[S],
    eval_bounds: &[usize],
    opts: &RepeatOptions,
) -> Result<(Vec<Span>, RepeatStats)>
where
    i32: libsais::SupportsPlcpOutputFor<S>,
    i64: libsais::SupportsPlcpOutputFor<S>,
{
    check_bounds(train_bounds, train.len())?;
    check_bounds(eval_bounds, eval.len())?;
    check_min_length(opts.min_length, eval_bounds, "the evaluation corpus", S::UNIT)?;
    check_min_length(opts.min_length, train_bounds, "the training corpus", S::UNIT)?;
    let n = train.len() + eval.len();
    let w = opts.width.bytes_for(n)?;
    crate::mem::ensure_fits(
        (n * std::mem::size_of::<S>()) as u64 + repeats_memory_need(n, opts.min_length, w),
        format_args!("contamination's in-memory suffix array of the training and evaluation corpora ({n} {})", S::UNIT),
    )?;
    let mut text = crate::mem::try_with_capacity(train.len() + eval.len(), "the concatenated training and evaluation text")?;
    text.extend_from_slice(train);
    text.extend_from_slice(eval);
    let split = train.len();
    let mut bounds: Vec<usize> = train_bounds.to_vec();
    bounds.extend(eval_bounds.iter().skip(1).map(|&b| b + split));
    let n_train_docs = train_bounds.len().saturating_sub(1);
    let (spans, stats) = match opts.width.bytes_for(text.len())? {
        4 => contaminate::<S, i32>(&text, &bounds, split, n_train_docs, opts)?,
        _ => contaminate::<S, i64>(&text, &bounds, split, n_train_docs, opts)?,
    };
    Ok((spans, stats))
}

fn contaminate<S: Symbol, O>(
    text: &[S],
    bounds: &[usize],
    split: usize,
    n_train_docs: usize,
    opts: &RepeatOptions,
) -> Result<(Vec<Span>, RepeatStats)>
where
    O: SaIndex + libsais::OutputElement + libsais::SupportsPlcpOutputFor<S>,
{
    ensure_repeats_fit::<S>(text.len(), opts.min_length, O::BYTES, "the training and evaluation corpora")?;
    let (sa, runs, t) = sorted_runs::<S, O>(text, opts.min_length, opts.threads)?;
    contaminate_from_sa(sa, runs, t, bounds, split, n_train_docs, opts)
}

/// The marking and span collection of [`contaminate`], given a suffix array and its runs.
fn contaminate_from_sa<O: SaIndex>(
    sa: Vec<O>,
    runs: Bits,
    t: [f64; 2],
    bounds: &[usize],
    split: usize,
    n_train_docs: usize,
    opts: &RepeatOptions,
) -> Result<(Vec<Span>, RepeatStats)> {
    let l = opts.min_length;
    let n = sa.len();
    let mut stats = RepeatStats { index_bytes: O::BYTES * n, ..Default::default() };
    stats.timings.push(("suffix_array", t[0]));
    stats.timings.push(("lcp", t[1]));
    let t0 = Instant::now();
    let stop = Interrupt::current();
    let real = real_positions(bounds, n, l)?;
    let mut mark = Bits::new(n)?;
    let mut occ = BlockMax::<O>::new(n, l)?;
    let (mut classes, mut marked) = (0u64, 0u64);
    scan_runs(&sa, &runs, &stop, |members| {
        let (mut tr, mut ev) = (0usize, 0usize);
        for &m in members {
            let p = m.get();
            if real.get(p) {
                if p < split {
                    tr += 1
                } else {
                    ev += 1
                }
            }
        }
        if tr == 0 || ev == 0 {
            return;
        }
        classes += 1;
        for &m in members {
            let p = m.get();
            if p >= split && real.get(p) {
                mark.set(p);
                occ.note(p, tr);
                marked += 1;
            }
        }
    })?;
    drop(sa);
    drop(runs);
    drop(real);
    stats.classes = classes;
    stats.marked_windows = marked;
    stats.timings.push(("find_repeats", t0.elapsed().as_secs_f64()));
    let t0 = Instant::now();
    let spans = collect_spans(bounds, n_train_docs, l, &mark, &occ)?;
    stats.timings.push(("collect_spans", t0.elapsed().as_secs_f64()));
    Ok((spans, stats))
}

// ---------------------------------------------------------------------------------------
// token mode

/// Self-dedup over token ids (any vocabulary size). Spans are in token units relative to
/// each document (`bounds` are token offsets). Ids are first renumbered densely — repeats do
/// not depend on the order of the alphabet — so corpora using at most 65,536 distinct ids
/// are sorted as 16-bit symbols, larger ones through libsais' integer-alphabet path.
pub fn find_repeats_tokens(ids: &[u32], bounds: &[usize], opts: &RepeatOptions) -> Result<(Vec<Span>, RepeatStats)> {
    check_bounds(bounds, ids.len())?;
    check_min_length(opts.min_length, bounds, "the corpus", "tokens")?;
    crate::mem::ensure_fits(8 * ids.len() as u64, format_args!("renumbering {} token ids", ids.len()))?;
    let (text, t_remap) = TokenText::new(ids, opts.width)?;
    let (spans, mut stats) = match text {
        TokenText::Small(text) => find_repeats_symbols::<u16>(&text, bounds, opts)?,
        TokenText::Large(mut text, k) => {
            ensure_repeats_fit::<u16>(text.len(), opts.min_length, 4, "the corpus")?;
            let (sa, runs, t) = sorted_runs_int(&mut text, k, opts.min_length, opts.threads)?;
            drop(text);
            dedup_from_sa(sa, runs, t, bounds, opts)?
        }
    };
    stats.timings.insert(0, ("remap_ids", t_remap));
    Ok((spans, stats))
}

/// Token ids renumbered densely (repeats do not depend on the order of the alphabet), as
/// the symbol text libsais sorts: 16-bit symbols when at most 65,536 distinct ids occur,
/// else libsais' integer-alphabet path (32-bit indices) with alphabet size `k`.
enum TokenText {
    Small(Vec<u16>),
    Large(Vec<i32>, usize),
}

impl TokenText {
    /// The text and the seconds spent renumbering.
    fn new(ids: &[u32], width: IndexWidth) -> Result<(TokenText, f64)> {
        let t0 = Instant::now();
        let (dense, k) = dense_ids(ids);
        let text = if k <= 1 << 16 {
            TokenText::Small(dense.iter().map(|&x| x as u16).collect())
        } else {
            if ids.len() > i32::MAX as usize || width == IndexWidth::W64 {
                return Err(Error::invalid_argument(format!(
                    "token mode with more than 65536 distinct ids supports at most {} tokens with 32-bit indices",
                    i32::MAX
                )));
            }
            TokenText::Large(dense.iter().map(|&x| x as i32).collect(), k)
        };
        Ok((text, t0.elapsed().as_secs_f64()))
    }
}

/// Renumber ids to `0..k` (order-preserving); returns the new ids and `k`.
fn dense_ids(ids: &[u32]) -> (Vec<u32>, usize) {
    let max = ids.iter().copied().max().unwrap_or(0) as usize;
    if max < 1 << 24 {
        let mut rank = vec![u32::MAX; max + 1];
        for &x in ids {
            rank[x as usize] = 0;
        }
        let mut k = 0u32;
        for r in rank.iter_mut() {
            if *r == 0 {
                *r = k;
                k += 1;
            }
        }
        (ids.iter().map(|&x| rank[x as usize]).collect(), k as usize)
    } else {
        let mut uniq = ids.to_vec();
        uniq.sort_unstable();
        uniq.dedup();
        let dense = ids.iter().map(|x| uniq.binary_search(x).map_or(0, |i| i as u32)).collect();
        (dense, uniq.len())
    }
}

/// Map token spans to byte spans: `token_starts[i]` is the byte offset of token `i` (global
/// token index) inside its document, `doc_bytes[d]` the byte length of document `d`.
pub fn token_spans_to_bytes(
    spans: &[Span],
    bounds: &[usize],
    token_starts: &[u64],
    doc_bytes: &[u64],
) -> Result<Vec<Span>> {
    if token_starts.len() != bounds.last().copied().unwrap_or(0) || doc_bytes.len() + 1 != bounds.len() {
        return Err(Error::invalid_argument(
            "token_starts must have one entry per token and doc_bytes one entry per document",
        ));
    }
    spans
        .iter()
        .map(|s| {
            let base = bounds[s.doc];
            let ntok = bounds[s.doc + 1] - base;
            let byte = |t: usize| if t < ntok { token_starts[base + t] } else { doc_bytes[s.doc] };
            let (start, end) = (byte(s.start), byte(s.end));
            if start > end || end > doc_bytes[s.doc] {
                return Err(Error::invalid_data(
                    format!("document {}", s.doc),
                    "token byte offsets are not increasing or exceed the document length",
                ));
            }
            Ok(Span { start: start as usize, end: end as usize, ..*s })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// bytes mode

/// The contiguous text of a [`Docs`] batch and its boundaries relative to that text.
pub(crate) fn text_and_bounds<'a>(docs: &Docs<'a>) -> (&'a [u8], Vec<usize>) {
    if docs.is_empty() {
        return (&[], vec![0]);
    }
    let base = docs.range(0).start;
    let end = docs.range(docs.len() - 1).end;
    let mut bounds = Vec::with_capacity(docs.len() + 1);
    bounds.push(0);
    for i in 0..docs.len() {
        bounds.push(docs.range(i).end - base);
    }
    (&docs.data()[base..end], bounds)
}

/// Shrink byte spans inward to UTF-8 character boundaries of their documents; drop empties.
pub(crate) fn snap_utf8(spans: Vec<Span>, docs: &Docs<'_>) -> Vec<Span> {
    spans
        .into_iter()
        .filter_map(|s| {
            let d = docs.get(s.doc);
            let start = ceil_char_boundary(d, s.start);
            let end = floor_char_boundary(d, s.end);
            (start < end).then_some(Span { start, end, ..s })
        })
        .collect()
}

/// Self-dedup of a batch of UTF-8 documents in bytes mode. Spans are byte ranges relative
/// to each document, merged, and shrunk to character boundaries.
pub fn find_repeats(docs: Docs<'_>, opts: &RepeatOptions) -> Result<(Vec<Span>, RepeatStats)> {
    let (text, bounds) = text_and_bounds(&docs);
    let (spans, mut stats) = find_repeats_symbols::<u8>(text, &bounds, opts)?;
    let t0 = Instant::now();
    let spans = snap_utf8(spans, &docs);
    if let Some(t) = stats.timings.last_mut() {
        t.1 += t0.elapsed().as_secs_f64();
    }
    Ok((spans, stats))
}

/// Contamination of `eval` by `train` in bytes mode (spans refer to eval documents).
pub fn contamination(train: Docs<'_>, eval: Docs<'_>, opts: &RepeatOptions) -> Result<(Vec<Span>, RepeatStats)> {
    let (tt, tb) = text_and_bounds(&train);
    let (et, eb) = text_and_bounds(&eval);
    let (spans, stats) = contamination_symbols::<u8>(tt, &tb, et, &eb, opts)?;
    Ok((snap_utf8(spans, &eval), stats))
}

/// Remove `spans` (sorted by document then start, non-overlapping, in range) from `docs`;
/// returns the new documents as `(data, offsets)` buffers (offsets has `len + 1` entries).
pub fn trim_docs(docs: Docs<'_>, spans: &[Span]) -> Result<(Vec<u8>, Vec<i64>)> {
    let removed: usize = spans.iter().map(|s| s.end.saturating_sub(s.start)).sum();
    let mut data = crate::mem::try_with_capacity(docs.total_bytes().saturating_sub(removed), "the trimmed documents")?;
    let mut offsets = Vec::with_capacity(docs.len() + 1);
    offsets.push(0i64);
    let mut k = 0;
    for d in 0..docs.len() {
        let doc = docs.get(d);
        let mut pos = 0;
        while k < spans.len() && spans[k].doc == d {
            let s = spans[k];
            if s.start < pos || s.end < s.start || s.end > doc.len() {
                return Err(Error::invalid_argument(format!(
                    "span {k} (document {d}, [{}, {})) is out of order, overlapping or outside the document of {} bytes",
                    s.start,
                    s.end,
                    doc.len()
                )));
            }
            data.extend_from_slice(&doc[pos..s.start]);
            pos = s.end;
            k += 1;
        }
        data.extend_from_slice(&doc[pos..]);
        offsets.push(data.len() as i64);
    }
    if k != spans.len() {
        return Err(Error::invalid_argument(format!(
            "span {k} refers to document {} but the spans must be sorted by document and the batch has {} documents",
            spans[k].doc,
            docs.len()
        )));
    }
    Ok((data, offsets))
}

/// Documents encoded for token mode: flat ids, token bounds per document, the byte offset
/// of every token inside its document, and each document's byte length.
pub(crate) struct Encoded {
    pub(crate) ids: Vec<u32>,
    pub(crate) bounds: Vec<usize>,
    starts: Vec<u64>,
    doc_bytes: Vec<u64>,
    pub(crate) secs: f64,
}

impl Encoded {
    /// Token spans of these documents as byte spans shrunk to UTF-8 character boundaries;
    /// the time is added to the last stage of `stats`.
    pub(crate) fn byte_spans(&self, spans: &[Span], docs: &Docs<'_>, stats: &mut RepeatStats) -> Result<Vec<Span>> {
        let t0 = Instant::now();
        let spans = snap_utf8(token_spans_to_bytes(spans, &self.bounds, &self.starts, &self.doc_bytes)?, docs);
        if let Some(t) = stats.timings.last_mut() {
            t.1 += t0.elapsed().as_secs_f64();
        }
        Ok(spans)
    }
}

pub(crate) fn encode_docs(docs: &Docs<'_>, tokenizer: &crate::bpe::Tokenizer, threads: usize) -> Result<Encoded> {
    let t0 = Instant::now();
    let none = crate::bpe::SpecialSet::None;
    let threads = if threads == 0 { None } else { Some(threads) };
    let (ids, offsets) = tokenizer.encode_batch(*docs, &none, &none, true, threads)?;
    let bounds: Vec<usize> = offsets.iter().map(|&o| o as usize).collect();
    let mut starts = Vec::with_capacity(ids.len());
    let mut doc_bytes = Vec::with_capacity(docs.len());
    for d in 0..docs.len() {
        let mut o = 0u64;
        for &id in &ids[bounds[d]..bounds[d + 1]] {
            starts.push(o);
            o += tokenizer.token_bytes(id).map_or(0, |b| b.len()) as u64;
        }
        if o != docs.get(d).len() as u64 {
            return Err(Error::invalid_data(
                format!("document {d}"),
                "its tokens do not decode to its bytes (the tokenizer is not lossless)",
            ));
        }
        doc_bytes.push(o);
    }
    Ok(Encoded { ids, bounds, starts, doc_bytes, secs: t0.elapsed().as_secs_f64() })
}

/// Self-dedup of UTF-8 documents in token mode: each document is encoded with `tokenizer`
/// (ordinary text, special-token strings are plain text), repeats of at least
/// `opts.min_length` tokens are found over the ids, and the token spans are mapped back to
/// exact byte ranges of the documents, shrunk inward to UTF-8 character boundaries (a
/// byte-level BPE token may end inside a character). `opts.threads` is also the number of
/// encoding threads (0 = all cores); results never depend on it.
pub fn find_repeats_tokenized(
    docs: Docs<'_>,
    tokenizer: &crate::bpe::Tokenizer,
    opts: &RepeatOptions,
) -> Result<(Vec<Span>, RepeatStats)> {
    let enc = encode_docs(&docs, tokenizer, opts.threads)?;
    let (spans, mut stats) = find_repeats_tokens(&enc.ids, &enc.bounds, opts)?;
    let spans = enc.byte_spans(&spans, &docs, &mut stats)?;
    stats.timings.insert(0, ("tokenize", enc.secs));
    Ok((spans, stats))
}

/// Contamination of `eval` by `train` in token mode: both corpora are encoded with
/// `tokenizer`, windows of at least `opts.min_length` tokens shared with the training corpus
/// are found over the ids, and the eval spans are returned as exact byte ranges shrunk to
/// UTF-8 character boundaries.
pub fn contamination_tokenized(
    train: Docs<'_>,
    eval: Docs<'_>,
    tokenizer: &crate::bpe::Tokenizer,
    opts: &RepeatOptions,
) -> Result<(Vec<Span>, RepeatStats)> {
    let tr = encode_docs(&train, tokenizer, opts.threads)?;
    let ev = encode_docs(&eval, tokenizer, opts.threads)?;
    check_min_length(opts.min_length, &ev.bounds, "the evaluation corpus", "tokens")?;
    check_min_length(opts.min_length, &tr.bounds, "the training corpus", "tokens")?;
    let split = tr.ids.len();
    let mut all = tr.ids;
    all.extend_from_slice(&ev.ids);
    let mut bounds = tr.bounds.clone();
    bounds.extend(ev.bounds.iter().skip(1).map(|&b| b + split));
    let n_train_docs = tr.bounds.len() - 1;
    let (text, t_remap) = TokenText::new(&all, opts.width)?;
    drop(all);
    let (spans, mut stats) = match text {
        TokenText::Small(text) => match opts.width.bytes_for(text.len())? {
            4 => contaminate::<u16, i32>(&text, &bounds, split, n_train_docs, opts)?,
            _ => contaminate::<u16, i64>(&text, &bounds, split, n_train_docs, opts)?,
        },
        TokenText::Large(mut text, k) => {
            let (sa, runs, t) = sorted_runs_int(&mut text, k, opts.min_length, opts.threads)?;
            drop(text);
            contaminate_from_sa(sa, runs, t, &bounds, split, n_train_docs, opts)?
        }
    };
    let spans = ev.byte_spans(&spans, &eval, &mut stats)?;
    stats.timings.insert(0, ("remap_ids", t_remap));
    stats.timings.insert(0, ("tokenize", tr.secs + ev.secs));
    Ok((spans, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suffix::sa::suffix_array_with_plcp;

    /// A small deterministic generator.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// Periodic and random stretches over a tiny alphabet: long equal windows everywhere.
    fn text(n: usize, seed: &mut u64) -> Vec<u8> {
        let mut t = Vec::with_capacity(n);
        while t.len() < n {
            let period = 1 + lcg(seed) as usize % 7;
            let unit: Vec<u8> = (0..period).map(|_| b'a' + (lcg(seed) % 3) as u8).collect();
            let reps = lcg(seed) as usize % 40;
            for _ in 0..reps {
                t.extend_from_slice(&unit);
            }
            t.push(b'a' + (lcg(seed) % 3) as u8);
        }
        t.truncate(n);
        t
    }

    #[test]
    fn direct_run_starts_equal_the_plcp_ones() {
        let mut seed = 7;
        for n in [1usize, 2, 63, 64, 65, 1000, 300_000] {
            let t = text(n, &mut seed);
            let (sa, plcp, _) = suffix_array_with_plcp::<u8, i32>(&t, 1).unwrap();
            for l in [1usize, 2, 5, 17, 64, 200] {
                let want = run_starts_from_plcp(&sa, &plcp, l, &Interrupt::none()).unwrap();
                for threads in [1, 2] {
                    let got = run_starts_direct(&t, &sa, l, threads, &Interrupt::none()).unwrap();
                    assert!(got.0 == want.0, "n={n} l={l} threads={threads}");
                }
            }
        }
    }

    #[test]
    fn runs_visit_every_nontrivial_run_once() {
        let mut seed = 11;
        let t = text(5000, &mut seed);
        let (sa, plcp, _) = suffix_array_with_plcp::<u8, i32>(&t, 1).unwrap();
        for l in [1usize, 3, 30] {
            let runs = run_starts_direct(&t, &sa, l, 1, &Interrupt::none()).unwrap();
            let mut seen = Vec::new();
            scan_runs(&sa, &runs, &Interrupt::none(), |m| seen.push((m.as_ptr() as usize - sa.as_ptr() as usize) / 4..(m.as_ptr() as usize - sa.as_ptr() as usize) / 4 + m.len())).unwrap();
            // the brute-force runs: maximal rank ranges of length >= 2 with adjacent LCP >= l
            let mut want = Vec::new();
            let mut s = 0;
            for i in 1..=sa.len() {
                if i == sa.len() || (plcp[sa[i] as usize] as usize) < l {
                    if i - s >= 2 {
                        want.push(s..i);
                    }
                    s = i;
                }
            }
            assert_eq!(seen, want, "l={l}");
        }
    }
}
