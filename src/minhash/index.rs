//! A persistent MinHash LSH index: a directory of memory-mapped, immutable sorted runs.
//!
//! Layout of the index directory:
//!
//! * `header.bin` — magic `GMHINDEX`, format version (u32), `num_perm`, `bands`, `rows`,
//!   signature width in bytes (4 or 8), number of items, number of runs (all u32/u64
//!   little-endian), then an opaque metadata string (the Python layer stores the hashing
//!   parameters there as JSON). It is rewritten (temporary file + rename) after every
//!   insert, last, so it is the commit point: items and runs beyond its counts are ignored.
//! * `keys.bin` — every item key, in insertion order, as `u32` length + UTF-8 bytes.
//! * `run-NNNNNN.bin` — one per insert batch (or compaction): entries `(band key u64,
//!   item id u64)` sorted ascending, memory-mapped and searched by binary search. The band
//!   key of band `j` is `xxh3_64(band values, seed = j)` as in [`super::lsh::band_keys`],
//!   so keys of different bands never need a separate table.
//!
//! A query computes the signature's band keys and looks each up in every run, so a query
//! costs `bands × runs` binary searches; [`MinHashIndex::compact`] merges the runs into one.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rayon::prelude::*;

use super::lsh::{band_keys, check_bands, SigView};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"GMHINDEX";
/// Version of the on-disk format; an index of another version is refused.
pub const FORMAT_VERSION: u32 = 1;
const ENTRY: usize = 16;

/// The parameters an index is built with; reopening with others is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexParams {
    pub num_perm: u32,
    pub bands: u32,
    pub rows: u32,
    /// 4 (uint32 signatures) or 8 (uint64).
    pub sig_bytes: u32,
    pub meta: String,
}

struct Run {
    map: Option<Mmap>, // None for an empty run file (cannot map 0 bytes)
}

impl Run {
    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
    fn len(&self) -> usize {
        self.bytes().len() / ENTRY
    }
    fn entry(&self, i: usize) -> (u64, u64) {
        let b = &self.bytes()[i * ENTRY..(i + 1) * ENTRY];
        let mut k = [0u8; 8];
        let mut v = [0u8; 8];
        k.copy_from_slice(&b[..8]);
        v.copy_from_slice(&b[8..]);
        (u64::from_le_bytes(k), u64::from_le_bytes(v))
    }
    /// Item ids stored under `key`.
    fn lookup(&self, key: u64, out: &mut Vec<u64>) {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).0 < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut i = lo;
        while i < self.len() {
            let (k, v) = self.entry(i);
            if k != key {
                break;
            }
            out.push(v);
            i += 1;
        }
    }
}

/// An open index.
pub struct MinHashIndex {
    dir: PathBuf,
    params: IndexParams,
    keys: Vec<String>,
    key_ids: HashMap<String, u64>,
    runs: Vec<Run>,
    /// Run file numbers named in the header, in order.
    run_ids: Vec<u64>,
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::io(path.display(), e)
}

fn read_u32(b: &[u8], at: &mut usize, ctx: &Path) -> Result<u32> {
    let s = b.get(*at..*at + 4).ok_or_else(|| Error::invalid_data(ctx.display(), "header is truncated"))?;
    *at += 4;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Ok(u32::from_le_bytes(a))
}

fn read_u64(b: &[u8], at: &mut usize, ctx: &Path) -> Result<u64> {
    let s = b.get(*at..*at + 8).ok_or_else(|| Error::invalid_data(ctx.display(), "header is truncated"))?;
    *at += 8;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

/// Write `data` to `path` through a temporary file and a rename.
fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(data).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

impl MinHashIndex {
    fn run_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("run-{id:06}.bin"))
    }

    /// Open the index in `dir`, creating it with `params` if it does not exist. An
    /// existing index must have been built with exactly `params`; otherwise the error
    /// names every field that differs.
    pub fn open(dir: impl AsRef<Path>, params: &IndexParams) -> Result<MinHashIndex> {
        let dir = dir.as_ref().to_path_buf();
        if params.sig_bytes != 4 && params.sig_bytes != 8 {
            return Err(Error::invalid_argument("signature width must be 4 or 8 bytes"));
        }
        check_bands(params.num_perm as usize, params.bands as usize, params.rows as usize)?;
        let header = dir.join("header.bin");
        if !header.exists() {
            fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
            let idx = MinHashIndex {
                dir,
                params: params.clone(),
                keys: Vec::new(),
                key_ids: HashMap::new(),
                runs: Vec::new(),
                run_ids: Vec::new(),
            };
            File::create(idx.dir.join("keys.bin")).map_err(|e| io_err(&idx.dir.join("keys.bin"), e))?;
            idx.write_header()?;
            return Ok(idx);
        }
        let (stored, count, run_ids) = Self::read_header(&header)?;
        let mut diffs = Vec::new();
        let fields = [
            ("num_perm", stored.num_perm, params.num_perm),
            ("bands", stored.bands, params.bands),
            ("rows", stored.rows, params.rows),
            ("signature bytes", stored.sig_bytes, params.sig_bytes),
        ];
        for (name, s, p) in fields {
            if s != p {
                diffs.push(format!("{name}: index has {s}, requested {p}"));
            }
        }
        if stored.meta != params.meta {
            diffs.push(format!("hashing parameters: index has {}, requested {}", stored.meta, params.meta));
        }
        if !diffs.is_empty() {
            return Err(Error::invalid_data(
                dir.display(),
                format!("index was built with other parameters ({})", diffs.join("; ")),
            ));
        }
        // keys
        let kp = dir.join("keys.bin");
        let mut raw = Vec::new();
        File::open(&kp).and_then(|mut f| f.read_to_end(&mut raw)).map_err(|e| io_err(&kp, e))?;
        let mut keys = Vec::with_capacity(count as usize);
        let mut at = 0usize;
        while (keys.len() as u64) < count {
            let len = read_u32(&raw, &mut at, &kp)? as usize;
            let s = raw
                .get(at..at + len)
                .ok_or_else(|| Error::invalid_data(kp.display(), format!("key {} is truncated", keys.len())))?;
            let s = std::str::from_utf8(s)
                .map_err(|_| Error::invalid_data(kp.display(), format!("key {} is not UTF-8", keys.len())))?;
            keys.push(s.to_owned());
            at += len;
        }
        if at != raw.len() {
            // an insert that did not reach its commit point: drop its keys
            let f = OpenOptions::new().write(true).open(&kp).map_err(|e| io_err(&kp, e))?;
            f.set_len(at as u64).map_err(|e| io_err(&kp, e))?;
        }
        let key_ids = keys.iter().enumerate().map(|(i, k)| (k.clone(), i as u64)).collect();
        let mut idx = MinHashIndex { dir, params: stored, keys, key_ids, runs: Vec::new(), run_ids: Vec::new() };
        for id in run_ids {
            let run = idx.map_run(id)?;
            idx.runs.push(run);
            idx.run_ids.push(id);
        }
        Ok(idx)
    }

    fn map_run(&self, id: u64) -> Result<Run> {
        let p = self.run_path(id);
        let f = File::open(&p).map_err(|e| io_err(&p, e))?;
        let len = f.metadata().map_err(|e| io_err(&p, e))?.len();
        if len % ENTRY as u64 != 0 {
            return Err(Error::invalid_data(p.display(), format!("size {len} is not a multiple of {ENTRY}")));
        }
        if len == 0 {
            return Ok(Run { map: None });
        }
        // SAFETY: run files are immutable once renamed into place (never written again;
        // compaction writes a new file), so the mapping does not change under us.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| io_err(&p, e))?;
        Ok(Run { map: Some(map) })
    }

    fn read_header(path: &Path) -> Result<(IndexParams, u64, Vec<u64>)> {
        let b = fs::read(path).map_err(|e| io_err(path, e))?;
        if b.len() < 8 || &b[..8] != MAGIC {
            return Err(Error::invalid_data(path.display(), "not a gristmill MinHash index (bad magic)"));
        }
        let mut at = 8;
        let version = read_u32(&b, &mut at, path)?;
        if version != FORMAT_VERSION {
            return Err(Error::invalid_data(
                path.display(),
                format!("index format version {version}, this gristmill reads version {FORMAT_VERSION}"),
            ));
        }
        let num_perm = read_u32(&b, &mut at, path)?;
        let bands = read_u32(&b, &mut at, path)?;
        let rows = read_u32(&b, &mut at, path)?;
        let sig_bytes = read_u32(&b, &mut at, path)?;
        let count = read_u64(&b, &mut at, path)?;
        let nruns = read_u64(&b, &mut at, path)?;
        let mut runs = Vec::new();
        for _ in 0..nruns {
            runs.push(read_u64(&b, &mut at, path)?);
        }
        let mlen = read_u32(&b, &mut at, path)? as usize;
        let meta = b
            .get(at..at + mlen)
            .and_then(|m| std::str::from_utf8(m).ok())
            .ok_or_else(|| Error::invalid_data(path.display(), "header metadata is truncated or not UTF-8"))?
            .to_owned();
        Ok((IndexParams { num_perm, bands, rows, sig_bytes, meta }, count, runs))
    }

    fn write_header(&self) -> Result<()> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        for v in [self.params.num_perm, self.params.bands, self.params.rows, self.params.sig_bytes] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&(self.keys.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.run_ids.len() as u64).to_le_bytes());
        for id in &self.run_ids {
            b.extend_from_slice(&id.to_le_bytes());
        }
        b.extend_from_slice(&(self.params.meta.len() as u32).to_le_bytes());
        b.extend_from_slice(self.params.meta.as_bytes());
        atomic_write(&self.dir.join("header.bin"), &b)
    }

    pub fn params(&self) -> &IndexParams {
        &self.params
    }
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    pub fn num_runs(&self) -> usize {
        self.runs.len()
    }
    pub fn contains(&self, key: &str) -> bool {
        self.key_ids.contains_key(key)
    }
    pub fn key(&self, id: u64) -> Option<&str> {
        self.keys.get(id as usize).map(|s| s.as_str())
    }

    fn check_sig(&self, sig: &SigView<'_>) -> Result<usize> {
        let width = match sig {
            SigView::U32(_) => 4,
            SigView::U64(_) => 8,
        };
        if width != self.params.sig_bytes {
            return Err(Error::invalid_argument(format!(
                "signatures are uint{} but the index holds uint{} signatures",
                width * 8,
                self.params.sig_bytes * 8
            )));
        }
        let p = self.params.num_perm as usize;
        if sig.len_values() % p != 0 {
            return Err(Error::invalid_argument(format!(
                "signature length does not match the index's num_perm = {p}"
            )));
        }
        Ok(sig.len_values() / p)
    }

    fn keys_of(&self, sig: SigView<'_>) -> Result<Vec<u64>> {
        band_keys(sig, self.params.num_perm as usize, self.params.bands as usize, self.params.rows as usize)
    }

    /// Add items. Keys must be new and distinct (the error names the first repeated key).
    pub fn insert(&mut self, keys: &[String], sig: SigView<'_>) -> Result<()> {
        let n = self.check_sig(&sig)?;
        if keys.len() != n {
            return Err(Error::invalid_argument(format!("{} keys for {n} signatures", keys.len())));
        }
        let mut batch = HashMap::with_capacity(n);
        for (i, k) in keys.iter().enumerate() {
            if self.key_ids.contains_key(k) || batch.insert(k.as_str(), i).is_some() {
                return Err(Error::invalid_argument(format!("key {k:?} is already in the index")));
            }
        }
        if n == 0 {
            return Ok(());
        }
        let bk = self.keys_of(sig)?;
        let bands = self.params.bands as usize;
        let base = self.keys.len() as u64;
        let mut entries: Vec<(u64, u64)> =
            bk.iter().enumerate().map(|(x, &k)| (k, base + (x / bands) as u64)).collect();
        entries.par_sort_unstable();
        let mut data = Vec::with_capacity(entries.len() * ENTRY);
        for (k, v) in &entries {
            data.extend_from_slice(&k.to_le_bytes());
            data.extend_from_slice(&v.to_le_bytes());
        }
        let id = self.run_ids.iter().copied().max().map_or(0, |m| m + 1);
        let rp = self.run_path(id);
        atomic_write(&rp, &data)?;
        // keys, then the header (commit point)
        let kp = self.dir.join("keys.bin");
        let mut kb = Vec::new();
        for k in keys {
            let len = u32::try_from(k.len()).map_err(|_| Error::invalid_argument("key longer than 4 GiB"))?;
            kb.extend_from_slice(&len.to_le_bytes());
            kb.extend_from_slice(k.as_bytes());
        }
        let mut f = OpenOptions::new().append(true).open(&kp).map_err(|e| io_err(&kp, e))?;
        f.write_all(&kb).map_err(|e| io_err(&kp, e))?;
        f.sync_all().map_err(|e| io_err(&kp, e))?;
        let run = self.map_run(id)?;
        for (i, k) in keys.iter().enumerate() {
            self.key_ids.insert(k.clone(), base + i as u64);
            self.keys.push(k.clone());
        }
        self.runs.push(run);
        self.run_ids.push(id);
        self.write_header()
    }

    fn lookup_row(&self, keys: &[u64], out: &mut Vec<u64>) {
        out.clear();
        for &k in keys {
            for r in &self.runs {
                r.lookup(k, out);
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Ids of the items sharing at least one band with `sig` (one signature), ascending.
    pub fn query(&self, sig: SigView<'_>) -> Result<Vec<u64>> {
        let n = self.check_sig(&sig)?;
        if n != 1 {
            return Err(Error::invalid_argument(format!("query takes one signature, got {n}")));
        }
        let keys = self.keys_of(sig)?;
        let mut out = Vec::new();
        self.lookup_row(&keys, &mut out);
        Ok(out)
    }

    /// For each signature row, the smallest id of a candidate item, or -1 (parallel).
    pub fn query_first(&self, sig: SigView<'_>) -> Result<Vec<i64>> {
        self.check_sig(&sig)?;
        let bands = self.params.bands as usize;
        let keys = self.keys_of(sig)?;
        let mut out = vec![-1i64; keys.len() / bands.max(1)];
        out.par_iter_mut().enumerate().for_each_init(Vec::new, |buf, (i, o)| {
            self.lookup_row(&keys[i * bands..(i + 1) * bands], buf);
            if let Some(&f) = buf.first() {
                *o = f as i64;
            }
        });
        Ok(out)
    }

    /// For each row `i`, the id of the indexed item with key `keys[i]` if that item holds
    /// the same signature (every band of row `i` is stored under that id), else -1. This
    /// recognises documents an earlier, committed run already added (parallel).
    pub fn find_same(&self, keys: &[String], sig: SigView<'_>) -> Result<Vec<i64>> {
        let n = self.check_sig(&sig)?;
        if keys.len() != n {
            return Err(Error::invalid_argument(format!("{} keys for {n} signatures", keys.len())));
        }
        let bands = self.params.bands as usize;
        let bk = self.keys_of(sig)?;
        let mut out = vec![-1i64; n];
        out.par_iter_mut().enumerate().for_each_init(Vec::new, |buf: &mut Vec<u64>, (i, o)| {
            let Some(&id) = self.key_ids.get(&keys[i]) else { return };
            let same = bk[i * bands..(i + 1) * bands].iter().all(|&k| {
                buf.clear();
                for r in &self.runs {
                    r.lookup(k, buf);
                }
                buf.contains(&id)
            });
            if same {
                *o = id as i64;
            }
        });
        Ok(out)
    }

    /// Merge every run into one (queries then need `bands` searches instead of
    /// `bands × runs`).
    pub fn compact(&mut self) -> Result<()> {
        if self.runs.len() <= 1 {
            return Ok(());
        }
        let mut all: Vec<(u64, u64)> = Vec::with_capacity(self.runs.iter().map(|r| r.len()).sum());
        for r in &self.runs {
            all.extend((0..r.len()).map(|i| r.entry(i)));
        }
        all.par_sort_unstable();
        let mut data = Vec::with_capacity(all.len() * ENTRY);
        for (k, v) in &all {
            data.extend_from_slice(&k.to_le_bytes());
            data.extend_from_slice(&v.to_le_bytes());
        }
        let id = self.run_ids.iter().copied().max().map_or(0, |m| m + 1);
        atomic_write(&self.run_path(id), &data)?;
        let old = std::mem::replace(&mut self.run_ids, vec![id]);
        let run = self.map_run(id)?;
        self.runs = vec![run];
        self.write_header()?;
        for o in old {
            let _ = fs::remove_file(self.run_path(o)); // best effort: unreferenced now
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(meta: &str) -> IndexParams {
        IndexParams { num_perm: 4, bands: 2, rows: 2, sig_bytes: 4, meta: meta.into() }
    }

    #[test]
    fn insert_query_reopen_compact() {
        let dir = std::env::temp_dir().join(format!("gm-index-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut idx = MinHashIndex::open(&dir, &params("m")).unwrap();
        let sig: Vec<u32> = vec![1, 2, 3, 4, 1, 2, 9, 9, 7, 7, 7, 7];
        idx.insert(&["a".into(), "b".into(), "c".into()], SigView::U32(&sig)).unwrap();
        assert!(idx.insert(&["a".into()], SigView::U32(&sig[..4])).is_err());
        idx.insert(&["d".into()], SigView::U32(&[5, 5, 3, 4])).unwrap();
        assert_eq!(idx.query(SigView::U32(&[1, 2, 0, 0])).unwrap(), vec![0, 1]);
        assert_eq!(idx.query(SigView::U32(&[0, 0, 3, 4])).unwrap(), vec![0, 3]);
        assert_eq!(idx.query_first(SigView::U32(&[0, 0, 0, 0, 7, 7, 0, 0])).unwrap(), vec![-1, 2]);
        let same = idx.find_same(&["a".into(), "b".into(), "z".into(), "d".into()], SigView::U32(&[1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 5, 5, 3, 4]));
        assert_eq!(same.unwrap(), vec![0, -1, -1, 3]); // b's second band differs; z is not indexed
        drop(idx);
        let mut idx = MinHashIndex::open(&dir, &params("m")).unwrap();
        assert_eq!(idx.len(), 4);
        assert!(idx.contains("d") && !idx.contains("e"));
        assert_eq!(idx.num_runs(), 2);
        idx.compact().unwrap();
        assert_eq!(idx.num_runs(), 1);
        assert_eq!(idx.query(SigView::U32(&[0, 0, 3, 4])).unwrap(), vec![0, 3]);
        drop(idx);
        let err = MinHashIndex::open(&dir, &IndexParams { bands: 1, rows: 4, ..params("x") }).err().unwrap();
        let msg = err.to_string();
        assert!(msg.contains("bands: index has 2, requested 1") && msg.contains("hashing parameters"), "{msg}");
        let idx = MinHashIndex::open(&dir, &params("m")).unwrap();
        assert_eq!(idx.query(SigView::U32(&[1, 2, 0, 0])).unwrap(), vec![0, 1]);
        assert!(idx.query(SigView::U64(&[1, 2, 0, 0])).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
