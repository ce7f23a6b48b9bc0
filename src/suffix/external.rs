//! Repeat finding under a memory limit: an external-memory scheme that gives exactly the
//! spans of the in-memory suffix-array path.
//!
//! The repeat finder never needs the full suffix order, only the *classes* of equal
//! `L`-windows (a class is a maximal SA run with LCP >= L restricted to in-document
//! windows). Those classes are computed part by part: every in-document window gets a
//! rolling hash; pass `k` of `P` collects the windows whose hash falls in part `k`, sorts
//! them by (hash, window bytes) — so equal windows are adjacent and hash collisions are
//! split by comparing bytes — and marks the classes exactly as the in-memory path does.
//! `P` is chosen so that one part's entries (16 bytes each) plus the marking bitmap
//! (1 bit per byte) fit in `memory_limit`. Removal windows and their class sizes are
//! appended to a sequential log in the temporary directory (16 bytes each), read back once
//! to compute the `occurrences` of each span. The text itself is only read (it may be
//! memory-mapped).
//!
//! Cost: every pass re-hashes the whole text (about 1 ns per byte), so time grows with the
//! number of parts, `P ~ 1.25 * 16 * windows / (memory_limit - n / 8)`. A limit of a third
//! of the corpus means about 240 hashing passes; a limit of half the corpus about 80.
//! Spilling the part entries to bucket files in one pass would remove that factor; it is
//! not done yet.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use super::repeats::{Bits, Keep, RepeatOptions, RepeatStats, Span};
use crate::text::utf8::{ceil_char_boundary, floor_char_boundary};
use crate::text::Docs;
use crate::{Error, Result};

const BASE: u64 = 0x100_0000_01b3;
const ENTRY: usize = 16;

#[inline]
fn mix(h: u64) -> u64 {
    let h = (h ^ (h >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

/// Visit every in-document window `(hash, absolute position)` whose part is `part`.
fn windows_of_part(text: &[u8], bounds: &[usize], l: usize, parts: u64, part: u64, mut f: impl FnMut(u64, usize)) {
    let pow = (1..l).fold(1u64, |a, _| a.wrapping_mul(BASE));
    for w in bounds.windows(2) {
        let (s, e) = (w[0], w[1]);
        if e - s < l {
            continue;
        }
        let mut h = 0u64;
        for &b in &text[s..s + l] {
            h = h.wrapping_mul(BASE).wrapping_add(b as u64 + 1);
        }
        let mut p = s;
        loop {
            let m = mix(h);
            if ((m as u128 * parts as u128) >> 64) as u64 == part {
                f(m, p);
            }
            if p + l >= e {
                break;
            }
            h = h
                .wrapping_sub((text[p] as u64 + 1).wrapping_mul(pow))
                .wrapping_mul(BASE)
                .wrapping_add(text[p + l] as u64 + 1);
            p += 1;
        }
    }
}

/// A temporary file removed on drop.
struct LogFile {
    path: PathBuf,
}

impl Drop for LogFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sort one part and call `f(class)` with the positions of every class of >= 2 windows.
fn classes_of_part(text: &[u8], l: usize, entries: &mut [(u64, u64)], mut f: impl FnMut(&[(u64, u64)])) {
    let win = |p: u64| &text[p as usize..p as usize + l];
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| win(a.1).cmp(win(b.1))));
    let mut s = 0;
    for i in 1..=entries.len() {
        if i == entries.len() || entries[i].0 != entries[s].0 || win(entries[i].1) != win(entries[s].1) {
            if i - s >= 2 {
                f(&entries[s..i]);
            }
            s = i;
        }
    }
}

/// Bytes-mode self-dedup with bounded working memory; same result as
/// [`super::find_repeats`] (tested). Returns an error if `memory_limit` cannot even hold the
/// bitmap plus a minimal part.
pub fn find_repeats_limited(docs: Docs<'_>, opts: &RepeatOptions, memory_limit: usize) -> Result<(Vec<Span>, RepeatStats)> {
    let l = opts.min_length;
    let (text, bounds) = super::repeats::text_and_bounds(&docs);
    super::repeats::check_min_length(l, &bounds, "the corpus", "bytes")?;
    let n = text.len();
    let bitmaps = n.div_ceil(64) * 8;
    let min_budget = bitmaps + 1024 * ENTRY;
    if memory_limit < min_budget {
        return Err(Error::invalid_argument(format!(
            "memory_limit of {memory_limit} bytes is too small for {n} bytes of text: at least {min_budget} bytes are needed"
        )));
    }
    let windows: usize = bounds.windows(2).map(|w| (w[1] - w[0]).saturating_sub(l - 1)).sum();
    let per_part = (memory_limit - bitmaps) / ENTRY;
    // 1.25x headroom: parts are hash-balanced, not exact
    let parts = ((windows as f64 * 1.25 / per_part as f64).ceil() as u64).max(1);
    find_repeats_in_parts(docs, opts, parts)
}

/// [`find_repeats_limited`] with an explicit number of hash parts (>= 1).
pub fn find_repeats_in_parts(docs: Docs<'_>, opts: &RepeatOptions, parts: u64) -> Result<(Vec<Span>, RepeatStats)> {
    let l = opts.min_length;
    let (text, bounds) = super::repeats::text_and_bounds(&docs);
    super::repeats::check_min_length(l, &bounds, "the corpus", "bytes")?;
    let n = text.len();
    let parts = parts.max(1);
    let mut stats = RepeatStats { index_bytes: 0, ..Default::default() };

    let t0 = Instant::now();
    // the removal windows, as in the in-memory path: every occurrence of a duplicate class,
    // or every occurrence but the earliest one for keep first
    let mut later = Bits::new(n);
    let keep_first = opts.keep == Keep::First;
    let mut entries: Vec<(u64, u64)> = Vec::new();
    let (mut classes, mut marked) = (0u64, 0u64);
    // Removal windows and their class sizes go to a sequential log on disk, so the span
    // occurrences can be filled in afterwards without re-sorting every part.
    let log_path = std::env::temp_dir().join(format!(
        "gristmill-repeats-{}-{:x}.log",
        std::process::id(),
        t0.elapsed().as_nanos() as u64 ^ (text.as_ptr() as u64)
    ));
    let log = LogFile { path: log_path };
    let shown = log.path.display().to_string();
    let io = |e: std::io::Error| Error::io(&shown, e);
    let mut writer = BufWriter::with_capacity(1 << 20, File::create(&log.path).map_err(io)?);
    let mut write_err: Option<std::io::Error> = None;
    for part in 0..parts {
        entries.clear();
        windows_of_part(text, &bounds, l, parts, part, |h, p| entries.push((h, p as u64)));
        classes_of_part(text, l, &mut entries, |class| {
            classes += 1;
            let c = class.len() as u64;
            let min_p = class.iter().map(|e| e.1).min().unwrap_or(0);
            for &(_, p) in class {
                if keep_first && p == min_p {
                    continue;
                }
                later.set(p as usize);
                marked += 1;
                let mut rec = [0u8; 16];
                rec[..8].copy_from_slice(&p.to_le_bytes());
                rec[8..].copy_from_slice(&c.to_le_bytes());
                if write_err.is_none() {
                    if let Err(e) = writer.write_all(&rec) {
                        write_err = Some(e);
                    }
                }
            }
        });
        if let Some(e) = write_err.take() {
            return Err(io(e));
        }
    }
    writer.flush().map_err(io)?;
    drop(writer);
    drop(entries);
    stats.classes = classes;
    stats.marked_windows = marked;
    stats.timings.push(("find_repeats", t0.elapsed().as_secs_f64()));

    // spans from the bitmap alone, then occurrences from the log
    let t0 = Instant::now();
    let mut raw = Vec::new();
    for w in bounds.windows(2) {
        super::repeats::sweep_doc(w[0], w[1], l, &later, &mut raw);
    }
    drop(later);
    let mut occ = vec![0u64; raw.len()];
    let mut reader = BufReader::with_capacity(1 << 20, File::open(&log.path).map_err(io)?);
    let mut rec = [0u8; 16];
    for _ in 0..marked {
        reader.read_exact(&mut rec).map_err(io)?;
        let p = u64::from_le_bytes(rec[..8].try_into().unwrap_or([0; 8])) as usize;
        let c = u64::from_le_bytes(rec[8..].try_into().unwrap_or([0; 8]));
        let q = p + l;
        let mut k = raw.partition_point(|s: &(usize, usize)| s.1 <= p);
        while k < raw.len() && raw[k].0 < q {
            occ[k] = occ[k].max(c);
            k += 1;
        }
    }
    drop(reader);
    drop(log);
    let mut spans = Vec::with_capacity(raw.len());
    let mut d = 0;
    for (k, &(s, e)) in raw.iter().enumerate() {
        while bounds[d + 1] <= s {
            d += 1;
        }
        let doc = &text[bounds[d]..bounds[d + 1]];
        let (st, en) = (ceil_char_boundary(doc, s - bounds[d]), floor_char_boundary(doc, e - bounds[d]));
        if st < en {
            spans.push(Span { doc: d, start: st, end: en, occurrences: occ[k] });
        }
    }
    stats.timings.push(("collect_spans", t0.elapsed().as_secs_f64()));
    stats.timings.insert(0, ("parts", parts as f64));
    Ok((spans, stats))
}
