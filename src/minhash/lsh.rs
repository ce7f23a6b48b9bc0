//! Locality-sensitive hashing over MinHash signatures: parameter choice, band keys,
//! candidate groups, deterministic connected components, keep policy and cluster report.
//!
//! Band `j` of a signature is the `rows` values `j·rows .. (j+1)·rows`; its key is
//! `xxh3_64(little-endian bytes of those values, seed = j)`. Two documents are
//! candidates when they share the key of at least one band. Candidate groups are found
//! by sorting `(key, doc)` per band, so no hash table of buckets is built.
//!
//! Components are computed with union-find where the root of a set is always its
//! smallest document index; the component id of a document is that index. The result
//! depends only on the set of edges, never on thread count or batch boundaries.

use rayon::prelude::*;

use super::shingle::{jaccard_sorted, shingle_hash_set, Scratch, ShingleConfig};
use crate::text::Docs;
use crate::{Error, Result};

/// A borrowed row-major signature matrix.
#[derive(Clone, Copy, Debug)]
pub enum SigView<'a> {
    U32(&'a [u32]),
    U64(&'a [u64]),
}

impl SigView<'_> {
    pub fn len_values(&self) -> usize {
        match self {
            SigView::U32(v) => v.len(),
            SigView::U64(v) => v.len(),
        }
    }

    /// Fraction of equal entries between rows `i` and `j` (the MinHash Jaccard estimate).
    pub fn estimate(&self, p: usize, i: usize, j: usize) -> f64 {
        let eq = match self {
            SigView::U32(v) => v[i * p..(i + 1) * p].iter().zip(&v[j * p..(j + 1) * p]).filter(|(a, b)| a == b).count(),
            SigView::U64(v) => v[i * p..(i + 1) * p].iter().zip(&v[j * p..(j + 1) * p]).filter(|(a, b)| a == b).count(),
        };
        eq as f64 / p as f64
    }
}

/// Check `threshold` is strictly between 0 and 1.
pub fn check_threshold(threshold: f64) -> Result<()> {
    if !(threshold > 0.0 && threshold < 1.0) {
        return Err(Error::invalid_argument(format!("threshold must be strictly between 0 and 1, got {threshold}")));
    }
    Ok(())
}

/// Check a hand-set band layout against `num_perm`.
pub fn check_bands(num_perm: usize, bands: usize, rows: usize) -> Result<()> {
    if bands == 0 || rows == 0 {
        return Err(Error::invalid_argument(format!("bands and rows must be at least 1, got bands={bands}, rows={rows}")));
    }
    match bands.checked_mul(rows) {
        Some(br) if br <= num_perm => Ok(()),
        _ => Err(Error::invalid_argument(format!(
            "bands × rows = {bands} × {rows} = {} exceeds num_perm = {num_perm}",
            bands as u128 * rows as u128
        ))),
    }
}

/// Probability that a pair with Jaccard `s` shares at least one band.
#[inline]
pub fn collision_probability(s: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32)
}

fn simpson(f: impl Fn(f64) -> f64, lo: f64, hi: f64, intervals: usize) -> f64 {
    let n = intervals + intervals % 2;
    let h = (hi - lo) / n as f64;
    let mut acc = f(lo) + f(hi);
    for k in 1..n {
        let x = lo + k as f64 * h;
        acc += if k % 2 == 1 { 4.0 } else { 2.0 } * f(x);
    }
    acc * h / 3.0
}

/// Weighted false-positive + false-negative area of a `(bands, rows)` layout at
/// `threshold` (datasketch's objective).
pub fn lsh_error(threshold: f64, bands: usize, rows: usize, fp_weight: f64, fn_weight: f64) -> f64 {
    const N: usize = 512;
    let fp = simpson(|s| collision_probability(s, bands, rows), 0.0, threshold, N);
    let fneg = simpson(|s| 1.0 - collision_probability(s, bands, rows), threshold, 1.0, N);
    fp * fp_weight + fneg * fn_weight
}

/// Choose `(bands, rows)` with `bands · rows ≤ num_perm` minimising the weighted
/// false-positive and false-negative probability areas, as datasketch's `_optimal_param`
/// does (here integrated with composite Simpson's rule, 512 intervals per side).
pub fn optimal_params(threshold: f64, num_perm: usize, fp_weight: f64, fn_weight: f64) -> Result<(usize, usize)> {
    check_threshold(threshold)?;
    if num_perm == 0 {
        return Err(Error::invalid_argument("num_perm must be at least 1"));
    }
    if num_perm > 1 << 16 {
        return Err(Error::invalid_argument(format!("num_perm {num_perm} is too large (at most 65536)")));
    }
    let total = fp_weight + fn_weight;
    let weights_ok = fp_weight >= 0.0 && fn_weight >= 0.0 && total > 0.0 && total.is_finite();
    if !weights_ok {
        return Err(Error::invalid_argument(format!(
            "weights must be non-negative and not both zero, got ({fp_weight}, {fn_weight})"
        )));
    }
    let mut best = (f64::INFINITY, (1, 1));
    for b in 1..=num_perm {
        for r in 1..=(num_perm / b) {
            let e = lsh_error(threshold, b, r, fp_weight, fn_weight);
            if e < best.0 {
                best = (e, (b, r));
            }
        }
    }
    Ok(best.1)
}

/// Band keys of every row: `[n_docs, bands]`, row-major.
pub fn band_keys(sig: SigView<'_>, num_perm: usize, bands: usize, rows: usize) -> Result<Vec<u64>> {
    check_bands(num_perm, bands, rows)?;
    if sig.len_values() % num_perm != 0 {
        return Err(Error::invalid_argument(format!(
            "signature matrix has {} values, not a multiple of num_perm = {num_perm}",
            sig.len_values()
        )));
    }
    let n = sig.len_values() / num_perm;
    let mut keys = vec![0u64; n * bands];
    keys.par_chunks_mut(bands).enumerate().with_min_len(64).with_max_len(crate::par::max_task_len(n, 64)).for_each_init(Vec::new, |buf: &mut Vec<u8>, (i, out)| {
        for (j, k) in out.iter_mut().enumerate() {
            buf.clear();
            let lo = i * num_perm + j * rows;
            match sig {
                SigView::U32(v) => v[lo..lo + rows].iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes())),
                SigView::U64(v) => v[lo..lo + rows].iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes())),
            }
            *k = xxhash_rust::xxh3::xxh3_64_with_seed(buf, j as u64);
        }
    });
    Ok(keys)
}

/// Groups of ≥ 2 documents sharing a band key, each sorted by document index; groups
/// are listed band by band, within a band by key. Documents with `eligible[i] == false`
/// never take part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CandidateGroups {
    pub members: Vec<u32>,
    /// Group `g` is `members[offsets[g]..offsets[g + 1]]`.
    pub offsets: Vec<usize>,
}

impl CandidateGroups {
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn group(&self, g: usize) -> &[u32] {
        &self.members[self.offsets[g]..self.offsets[g + 1]]
    }
    /// Number of candidate pairs (with repeats across bands).
    pub fn pair_count(&self) -> u64 {
        (0..self.len()).map(|g| {
            let k = self.group(g).len() as u64;
            k * (k - 1) / 2
        }).sum()
    }
}

/// Find the candidate groups from band keys (`[n, bands]`).
pub fn candidate_groups(keys: &[u64], bands: usize, eligible: &[bool]) -> Result<CandidateGroups> {
    if bands == 0 || keys.len() % bands != 0 {
        return Err(Error::invalid_argument("band key matrix does not match the number of bands"));
    }
    let n = keys.len() / bands;
    if eligible.len() != n {
        return Err(Error::invalid_argument(format!("eligible mask has {} entries for {n} documents", eligible.len())));
    }
    if n > u32::MAX as usize {
        return Err(Error::invalid_argument("more than 2^32 − 1 documents"));
    }
    let per_band: Vec<(Vec<u32>, Vec<usize>)> = (0..bands)
        .into_par_iter()
        .map(|j| {
            let mut pairs: Vec<(u64, u32)> =
                (0..n).filter(|&i| eligible[i]).map(|i| (keys[i * bands + j], i as u32)).collect();
            pairs.sort_unstable();
            let mut members = Vec::new();
            let mut lens = Vec::new();
            let mut s = 0;
            while s < pairs.len() {
                let mut e = s + 1;
                while e < pairs.len() && pairs[e].0 == pairs[s].0 {
                    e += 1;
                }
                if e - s >= 2 {
                    members.extend(pairs[s..e].iter().map(|p| p.1));
                    lens.push(e - s);
                }
                s = e;
            }
            (members, lens)
        })
        .collect();
    let mut out = CandidateGroups { members: Vec::new(), offsets: vec![0] };
    for (members, lens) in per_band {
        out.members.extend(members);
        for l in lens {
            let last = *out.offsets.last().unwrap_or(&0);
            out.offsets.push(last + l);
        }
    }
    Ok(out)
}

/// Union-find whose root is always the smallest index of its set.
#[derive(Clone, Debug)]
pub struct MinUnionFind {
    parent: Vec<u32>,
}

impl MinUnionFind {
    pub fn new(n: usize) -> Self {
        MinUnionFind { parent: (0..n as u32).collect() }
    }
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let gp = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
        x
    }
    /// Merge; returns false if already in the same set.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[hi as usize] = lo;
        true
    }
    /// Component id (smallest member) of every element.
    pub fn roots(mut self) -> Vec<u32> {
        (0..self.parent.len() as u32).map(|i| self.find(i)).collect()
    }
}

/// Exact-Jaccard verification of candidates on shingle sets.
pub struct Verify<'a> {
    pub docs: Docs<'a>,
    pub cfg: &'a ShingleConfig<'a>,
    pub threshold: f64,
}

/// Shingle hash sets of the documents flagged in `need` (others stay empty).
pub fn shingle_sets(docs: Docs<'_>, cfg: &ShingleConfig, need: &[bool]) -> Result<Vec<Vec<u64>>> {
    let mut sets = vec![Vec::new(); docs.len()];
    sets.par_iter_mut().enumerate().with_min_len(4).try_for_each_init(Scratch::new, |scratch, (i, set)| {
        if need[i] {
            let text = std::str::from_utf8(docs.get(i)).map_err(|e| {
                Error::invalid_data(format!("document {i}"), format!("invalid UTF-8 at byte {}", e.valid_up_to()))
            })?;
            shingle_hash_set(text, cfg, scratch, set)?;
        }
        Ok::<(), Error>(())
    })?;
    Ok(sets)
}

/// What [`components`] returns: component id per document, the shingle sets (when
/// verified), the joining edges and statistics.
pub type Components = (Vec<u32>, Option<Vec<Vec<u64>>>, Edges, ClusterStats);

/// Statistics of one clustering run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterStats {
    pub candidate_groups: u64,
    pub candidate_pairs: u64,
    pub verified_pairs: u64,
    pub rejected_pairs: u64,
}

/// The pairs that joined two components (a spanning forest of the clusters): `(a, b)`
/// with `a < b`, and the exact Jaccard of the pair when verified (NaN otherwise).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Edges {
    pub a: Vec<u32>,
    pub b: Vec<u32>,
    pub jaccard: Vec<f64>,
}

impl Edges {
    pub(crate) fn push(&mut self, x: u32, y: u32, j: f64) {
        let (lo, hi) = if x < y { (x, y) } else { (y, x) };
        self.a.push(lo);
        self.b.push(hi);
        self.jaccard.push(j);
    }
}

/// Connected components of the candidate graph. Without `verify`, every candidate pair
/// is an edge; with it, only pairs whose exact shingle-set Jaccard is ≥ the threshold.
/// Returns `(component id per document, shingle sets if verified, joining edges, stats)`.
pub fn components(n: usize, groups: &CandidateGroups, verify: Option<&Verify<'_>>) -> Result<Components> {
    components_with_progress(n, groups, verify, &|_| {})
}

/// [`components`], calling `progress` now and then with the number of candidate groups
/// processed so far (for progress display; the result does not depend on it).
pub fn components_with_progress(
    n: usize,
    groups: &CandidateGroups,
    verify: Option<&Verify<'_>>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Components> {
    let mut uf = MinUnionFind::new(n);
    let mut edges = Edges::default();
    let mut stats = ClusterStats {
        candidate_groups: groups.len() as u64,
        candidate_pairs: groups.pair_count(),
        ..Default::default()
    };
    let mut sets_out = None;
    match verify {
        None => {
            for g in 0..groups.len() {
                if g % 65_536 == 0 {
                    progress(g as u64);
                }
                let m = groups.group(g);
                for w in m.windows(2) {
                    if uf.union(w[0], w[1]) {
                        edges.push(w[0], w[1], f64::NAN);
                    }
                }
            }
        }
        Some(v) => {
            check_threshold(v.threshold)?;
            if v.docs.len() != n {
                return Err(Error::invalid_argument(format!(
                    "verification needs the {n} documents, got {}",
                    v.docs.len()
                )));
            }
            let mut need = vec![false; n];
            for &d in &groups.members {
                need[d as usize] = true;
            }
            let sets = shingle_sets(v.docs, v.cfg, &need)?;
            for g in 0..groups.len() {
                if g % 4096 == 0 {
                    progress(g as u64);
                }
                let m = groups.group(g);
                for (jx, &j) in m.iter().enumerate() {
                    for &k in &m[..jx] {
                        if uf.find(j) == uf.find(k) {
                            continue;
                        }
                        let jac = jaccard_sorted(&sets[j as usize], &sets[k as usize]);
                        if jac >= v.threshold {
                            stats.verified_pairs += 1;
                            uf.union(j, k);
                            edges.push(j, k, jac);
                        } else {
                            stats.rejected_pairs += 1;
                        }
                    }
                }
            }
            sets_out = Some(sets);
        }
    }
    progress(groups.len() as u64);
    Ok((uf.roots(), sets_out, edges, stats))
}

/// The kept document of every component: the member with the largest `score`
/// (ties and NaN → smallest index); without scores, the smallest index (= component id).
/// Returns the kept document per document (its component's survivor).
pub fn kept_per_doc(roots: &[u32], scores: Option<&[f64]>) -> Result<Vec<u32>> {
    let n = roots.len();
    let Some(scores) = scores else { return Ok(roots.to_vec()) };
    if scores.len() != n {
        return Err(Error::invalid_argument(format!("keep scores have {} entries for {n} documents", scores.len())));
    }
    let mut best: Vec<u32> = roots.to_vec(); // indexed by component id (root)
    for i in 0..n {
        let r = roots[i] as usize;
        let cur = best[r] as usize;
        let (s, c) = (scores[i], scores[cur]);
        if s > c || (c.is_nan() && !s.is_nan()) {
            best[r] = i as u32;
        }
    }
    Ok(roots.iter().map(|&r| best[r as usize]).collect())
}

/// One row of the cluster report per member of every cluster with ≥ 2 documents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterReport {
    pub cluster: Vec<u32>,
    pub doc: Vec<u32>,
    pub kept_doc: Vec<u32>,
    pub is_kept: Vec<bool>,
    pub est_jaccard: Vec<f64>,
    /// Exact shingle-set Jaccard to the kept document (only with verification).
    pub exact_jaccard: Option<Vec<f64>>,
}

/// Build the report, ordered by cluster id then document index.
pub fn cluster_report(sig: SigView<'_>, num_perm: usize, roots: &[u32], kept: &[u32], sets: Option<&[Vec<u64>]>) -> ClusterReport {
    let n = roots.len();
    let mut size = vec![0u32; n];
    for &r in roots {
        size[r as usize] += 1;
    }
    let mut idx: Vec<u32> = (0..n as u32).filter(|&i| size[roots[i as usize] as usize] >= 2).collect();
    idx.sort_unstable_by_key(|&i| (roots[i as usize], i));
    let mut rep = ClusterReport { exact_jaccard: sets.map(|_| Vec::with_capacity(idx.len())), ..Default::default() };
    for &i in &idx {
        let (i, k) = (i as usize, kept[i as usize] as usize);
        rep.cluster.push(roots[i]);
        rep.doc.push(i as u32);
        rep.kept_doc.push(k as u32);
        rep.is_kept.push(i == k);
        rep.est_jaccard.push(sig.estimate(num_perm, i, k));
        if let (Some(s), Some(ex)) = (sets, rep.exact_jaccard.as_mut()) {
            ex.push(if i == k { 1.0 } else { jaccard_sorted(&s[i], &s[k]) });
        }
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimal_params_known_values() {
        // Values of datasketch 2.0 `lsh._optimal_param` (scipy quad).
        assert_eq!(optimal_params(0.5, 128, 0.5, 0.5).unwrap(), (25, 5));
        assert_eq!(optimal_params(0.7, 128, 0.5, 0.5).unwrap(), (14, 9));
        assert_eq!(optimal_params(0.8, 128, 0.5, 0.5).unwrap(), (9, 13));
        assert_eq!(optimal_params(0.9, 128, 0.5, 0.5).unwrap(), (5, 25));
        assert_eq!(optimal_params(0.8, 256, 0.5, 0.5).unwrap(), (17, 15));
        assert_eq!(optimal_params(0.8, 128, 0.3, 0.7).unwrap(), (11, 11));
        assert!(optimal_params(1.0, 128, 0.5, 0.5).is_err());
        assert!(optimal_params(0.0, 128, 0.5, 0.5).is_err());
        assert!(optimal_params(f64::NAN, 128, 0.5, 0.5).is_err());
        assert!(optimal_params(0.5, 128, -1.0, 0.5).is_err());
    }

    #[test]
    fn bands_checked() {
        assert!(check_bands(128, 16, 8).is_ok());
        assert!(check_bands(128, 16, 9).is_err());
        assert!(check_bands(128, 0, 9).is_err());
        let sig = vec![0u32; 10];
        assert!(band_keys(SigView::U32(&sig), 4, 2, 2).is_err());
    }

    #[test]
    fn union_find_roots_are_minimum() {
        let mut uf = MinUnionFind::new(6);
        uf.union(5, 3);
        uf.union(3, 4);
        uf.union(2, 0);
        assert_eq!(uf.roots(), vec![0, 1, 0, 3, 3, 3]);
    }

    #[test]
    fn clusters_from_identical_bands() {
        // docs 0, 2, 3 share band 0; doc 3 and 1 share band 1; doc 4 is ineligible.
        let p = 4;
        let sig: Vec<u32> = vec![
            1, 2, 9, 9, //
            7, 7, 5, 6, //
            1, 2, 8, 8, //
            1, 2, 5, 6, //
            1, 2, 5, 6, //
        ];
        let keys = band_keys(SigView::U32(&sig), p, 2, 2).unwrap();
        let groups = candidate_groups(&keys, 2, &[true, true, true, true, false]).unwrap();
        let (roots, _, edges, stats) = components(5, &groups, None).unwrap();
        assert_eq!(edges.a.len(), 3);
        assert_eq!(roots, vec![0, 0, 0, 0, 4]);
        assert_eq!(stats.candidate_groups, 2);
        let kept = kept_per_doc(&roots, Some(&[1.0, 3.0, 3.0, 0.0, 9.0])).unwrap();
        assert_eq!(kept, vec![1, 1, 1, 1, 4]);
        let rep = cluster_report(SigView::U32(&sig), p, &roots, &kept, None);
        assert_eq!(rep.doc, vec![0, 1, 2, 3]);
        assert_eq!(rep.is_kept, vec![false, true, false, false]);
        assert_eq!(rep.est_jaccard[3], 0.5);
    }
}
