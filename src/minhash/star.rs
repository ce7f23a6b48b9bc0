//! Star clustering of candidate pairs: every removed document is confirmed similar to the
//! document kept for it, not merely linked to it through a chain of similar pairs.
//!
//! Connected components ([`super::lsh::components`]) join `a ~ b ~ c` into one cluster even
//! when `a` and `c` share little, so the document removed in favour of the kept one can be
//! far below the threshold. Here documents are visited in keep-priority order ([`keep_order`]:
//! the order in which the keep policy prefers them). A document not yet assigned becomes the
//! centre of a new cluster (it is kept) and takes every candidate neighbour that is still
//! unassigned and whose similarity to it is at or above the threshold: the exact shingle-set
//! Jaccard with verification, the MinHash estimate without. A neighbour below the threshold
//! stays unassigned and may become a centre itself or join a later centre.
//!
//! The result depends only on the candidate groups, the similarities and the order, never on
//! thread count: similarities of one centre's neighbours are computed in parallel, but the
//! assignment is sequential. Each pair is compared at most once (when the first of the two
//! becomes a centre while the other is unassigned).

use rayon::prelude::*;

use super::lsh::{check_threshold, shingle_sets, CandidateGroups, ClusterStats, Edges, SigView, Verify};
use super::shingle::jaccard_sorted;
use crate::{Error, Result};

/// How cluster members are chosen from the candidate pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterMode {
    /// Connected components of the confirmed pairs (chains of similar pairs join).
    Components,
    /// Stars: every member is confirmed similar to the kept document (its centre).
    Star,
}

impl ClusterMode {
    pub fn parse(s: &str) -> Result<ClusterMode> {
        match s {
            "components" => Ok(ClusterMode::Components),
            "star" => Ok(ClusterMode::Star),
            other => Err(Error::invalid_argument(format!("cluster must be 'components' or 'star', got {other:?}"))),
        }
    }
}

/// Documents in the order the keep policy prefers them: without scores, by index; with
/// scores, largest score first, ties and NaN (last) by smallest index — the same preference
/// as [`super::lsh::kept_per_doc`].
pub fn keep_order(n: usize, scores: Option<&[f64]>) -> Result<Vec<u32>> {
    if n > u32::MAX as usize {
        return Err(Error::invalid_argument("more than 2^32 − 1 documents"));
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    if let Some(s) = scores {
        if s.len() != n {
            return Err(Error::invalid_argument(format!("keep scores have {} entries for {n} documents", s.len())));
        }
        order.sort_by(|&a, &b| {
            let (sa, sb) = (s[a as usize], s[b as usize]);
            match (sa.is_nan(), sb.is_nan()) {
                (true, true) => a.cmp(&b),
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                (false, false) => sb.partial_cmp(&sa).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)),
            }
        });
    }
    Ok(order)
}

/// How a centre's neighbours are confirmed.
pub enum Confirm<'a> {
    /// Exact shingle-set Jaccard ≥ `threshold` of [`Verify`].
    Exact(&'a Verify<'a>),
    /// MinHash estimate (fraction of equal signature values) ≥ `threshold`.
    Estimate { sig: SigView<'a>, num_perm: usize, threshold: f64 },
}

/// What [`star_clusters`] returns.
#[derive(Clone, Debug, Default)]
pub struct Stars {
    /// Cluster id per document: the smallest document index of its star.
    pub roots: Vec<u32>,
    /// The kept document (centre) per document; a centre is its own.
    pub kept: Vec<u32>,
    /// Shingle hash sets of the candidates (with exact confirmation).
    pub sets: Option<Vec<Vec<u64>>>,
    /// `(centre, member)` pairs (as `a < b`), with the exact Jaccard (NaN when estimated).
    pub edges: Edges,
    pub stats: ClusterStats,
}

/// Star clusters of `n` documents from candidate groups, visiting documents in `order` (a
/// permutation of `0..n`, usually [`keep_order`]). `progress` is called with the number of
/// documents visited so far, now and then (for progress display).
pub fn star_clusters(
    n: usize,
    groups: &CandidateGroups,
    confirm: &Confirm<'_>,
    order: &[u32],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Stars> {
    if order.len() != n {
        return Err(Error::invalid_argument(format!("visit order has {} entries for {n} documents", order.len())));
    }
    let mut seen = vec![false; n];
    for &d in order {
        if d as usize >= n || std::mem::replace(&mut seen[d as usize], true) {
            return Err(Error::invalid_argument("visit order must be a permutation of the documents"));
        }
    }
    drop(seen);
    if let Some(&m) = groups.members.iter().find(|&&m| m as usize >= n) {
        return Err(Error::invalid_argument(format!("group member {m} is out of range for {n} documents")));
    }
    let mut stats = ClusterStats {
        candidate_groups: groups.len() as u64,
        candidate_pairs: groups.pair_count(),
        ..Default::default()
    };
    let (sets, threshold) = match confirm {
        Confirm::Exact(v) => {
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
            (Some(shingle_sets(v.docs, v.cfg, &need)?), v.threshold)
        }
        Confirm::Estimate { sig, num_perm, threshold } => {
            check_threshold(*threshold)?;
            if *num_perm == 0 || sig.len_values() != n * num_perm {
                return Err(Error::invalid_argument(format!(
                    "signature matrix has {} values, not {n} rows of {num_perm}",
                    sig.len_values()
                )));
            }
            (None, *threshold)
        }
    };
    let similarity = |c: u32, m: u32| -> f64 {
        match (&sets, confirm) {
            (Some(s), _) => jaccard_sorted(&s[c as usize], &s[m as usize]),
            (None, Confirm::Estimate { sig, num_perm, .. }) => sig.estimate(*num_perm, c as usize, m as usize),
            (None, Confirm::Exact(_)) => unreachable!("exact confirmation computes the shingle sets"),
        }
    };

    // the groups of every document (CSR)
    let mut start = vec![0usize; n + 1];
    for &m in &groups.members {
        start[m as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut doc_groups = vec![0u32; groups.members.len()];
    for g in 0..groups.len() {
        for &m in groups.group(g) {
            doc_groups[fill[m as usize]] = g as u32;
            fill[m as usize] += 1;
        }
    }
    drop(fill);

    let mut kept: Vec<u32> = (0..n as u32).collect();
    let mut assigned = vec![false; n];
    let mut stamp = vec![u32::MAX; n]; // last centre that listed the document
    let mut edges = Edges::default();
    let mut cand: Vec<u32> = Vec::new();
    let mut sims: Vec<f64> = Vec::new();
    for (visited, &c) in order.iter().enumerate() {
        if visited % 65_536 == 0 {
            progress(visited as u64);
        }
        if std::mem::replace(&mut assigned[c as usize], true) {
            continue;
        }
        cand.clear();
        for &g in &doc_groups[start[c as usize]..start[c as usize + 1]] {
            for &m in groups.group(g as usize) {
                if !assigned[m as usize] && stamp[m as usize] != c {
                    stamp[m as usize] = c;
                    cand.push(m);
                }
            }
        }
        if cand.is_empty() {
            continue;
        }
        sims.clear();
        if cand.len() >= 64 {
            cand.par_iter().with_min_len(16).map(|&m| similarity(c, m)).collect_into_vec(&mut sims);
        } else {
            sims.extend(cand.iter().map(|&m| similarity(c, m)));
        }
        for (&m, &s) in cand.iter().zip(&sims) {
            if s >= threshold {
                assigned[m as usize] = true;
                kept[m as usize] = c;
                edges.push(c, m, if sets.is_some() { s } else { f64::NAN });
                stats.verified_pairs += 1;
            } else {
                stats.rejected_pairs += 1;
            }
        }
    }
    progress(n as u64);
    // cluster id: the smallest member of each star
    let mut smallest: Vec<u32> = (0..n as u32).collect();
    for (i, &c) in kept.iter().enumerate() {
        smallest[c as usize] = smallest[c as usize].min(i as u32);
    }
    let roots = kept.iter().map(|&c| smallest[c as usize]).collect();
    Ok(Stars { roots, kept, sets, edges, stats })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(gs: &[&[u32]]) -> CandidateGroups {
        let mut out = CandidateGroups { members: Vec::new(), offsets: vec![0] };
        for g in gs {
            out.members.extend_from_slice(g);
            out.offsets.push(out.members.len());
        }
        out
    }

    #[test]
    fn keep_order_prefers_large_scores_then_small_index() {
        assert_eq!(keep_order(3, None).unwrap(), vec![0, 1, 2]);
        let s = [1.0, f64::NAN, 3.0, 3.0, -1.0];
        assert_eq!(keep_order(5, Some(&s)).unwrap(), vec![2, 3, 0, 4, 1]);
        assert!(keep_order(2, Some(&s)).is_err());
    }

    #[test]
    fn a_chain_is_cut_where_the_centre_is_not_similar() {
        // signatures of 4 values: 0~1 share 3 of 4 (0.75), 1~2 share 3 of 4, 0~2 share 2 (0.5)
        let sig: Vec<u32> = vec![1, 2, 3, 4, /**/ 1, 2, 3, 9, /**/ 1, 2, 8, 9];
        let g = groups(&[&[0, 1, 2]]);
        let confirm = Confirm::Estimate { sig: SigView::U32(&sig), num_perm: 4, threshold: 0.7 };
        let st = star_clusters(3, &g, &confirm, &[0, 1, 2], &|_| {}).unwrap();
        assert_eq!(st.kept, vec![0, 0, 2]);
        assert_eq!(st.roots, vec![0, 0, 2]);
        assert_eq!((st.stats.verified_pairs, st.stats.rejected_pairs), (1, 1));
        assert_eq!((st.edges.a.clone(), st.edges.b.clone()), (vec![0], vec![1]));
        // visiting 1 first keeps 1 and takes both neighbours
        let st = star_clusters(3, &g, &confirm, &[1, 0, 2], &|_| {}).unwrap();
        assert_eq!(st.kept, vec![1, 1, 1]);
        assert_eq!(st.roots, vec![0, 0, 0]);
    }

    #[test]
    fn bad_orders_are_refused() {
        let sig: Vec<u32> = vec![1, 2];
        let confirm = Confirm::Estimate { sig: SigView::U32(&sig), num_perm: 1, threshold: 0.5 };
        let g = groups(&[&[0, 1]]);
        assert!(star_clusters(2, &g, &confirm, &[0, 0], &|_| {}).is_err());
        assert!(star_clusters(2, &g, &confirm, &[0], &|_| {}).is_err());
        assert!(star_clusters(2, &groups(&[&[0, 5]]), &confirm, &[0, 1], &|_| {}).is_err());
    }
}
