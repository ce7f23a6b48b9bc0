//! Kernels of distributed near-duplicate detection (run on one shard each by an engine
//! such as Ray Data; see `python/gristmill/ray.py`).
//!
//! * [`band_groups`]: candidate groups of one shard of `(band, key, doc)` rows, where the
//!   engine has sent every row of a `(band, key)` to the same shard.
//! * [`large_star`] / [`small_star`]: the two reduce steps of the alternating
//!   connected-components algorithm of Kiveris, Lattanzi, Mirrokni, Rastogi and
//!   Vassilvitskii, "Connected Components in MapReduce and Beyond" (SoCC 2014). Nodes are
//!   `u64` labels ordered by value; the fixed point is a star per component whose centre
//!   is its smallest label, so the component id equals the one of
//!   [`super::lsh::MinUnionFind`] (the smallest document index).
//!
//! Each function sees only its shard and is deterministic in its input as a multiset: the
//! order in which an engine delivers rows never changes the output.

use crate::{Error, Result};

/// Candidate groups of one shard of band-key rows: every group of ≥ 2 distinct documents
/// sharing `(band[i], key[i])`, members sorted by document; groups ordered by
/// `(band, key)`. Returns `(members, offsets)`: group `g` is
/// `members[offsets[g]..offsets[g + 1]]`. A repeated `(band, key, doc)` row counts once.
pub fn band_groups(band: &[u32], key: &[u64], doc: &[u64]) -> Result<(Vec<u64>, Vec<usize>)> {
    if band.len() != key.len() || key.len() != doc.len() {
        return Err(Error::invalid_argument(format!(
            "band, key and doc columns differ in length: {}, {}, {}",
            band.len(),
            key.len(),
            doc.len()
        )));
    }
    let mut rows: Vec<(u32, u64, u64)> = (0..band.len()).map(|i| (band[i], key[i], doc[i])).collect();
    rows.sort_unstable();
    rows.dedup();
    let mut members = Vec::new();
    let mut offsets = vec![0usize];
    let mut s = 0;
    while s < rows.len() {
        let mut e = s + 1;
        while e < rows.len() && rows[e].0 == rows[s].0 && rows[e].1 == rows[s].1 {
            e += 1;
        }
        if e - s >= 2 {
            members.extend(rows[s..e].iter().map(|r| r.2));
            offsets.push(members.len());
        }
        s = e;
    }
    Ok((members, offsets))
}

/// Edges `(child, parent)` produced by a star step, plus the number of nodes of this shard
/// at which the input was not yet a star forest (see [`large_star`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StarOut {
    pub child: Vec<u64>,
    pub parent: Vec<u64>,
    pub not_star: u64,
}

fn check_len(a: &[u64], b: &[u64]) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::invalid_argument(format!("edge columns differ in length: {} and {}", a.len(), b.len())));
    }
    Ok(())
}

/// Large-star at every node `u` of this shard. The input holds each edge of the current
/// graph twice, once from each end: row `i` is the half-edge `node[i] → other[i]`, and
/// `is_child[i]` says that `node[i]` is the child end (the larger label) of that edge.
/// Every half-edge of a node must be in the same shard.
///
/// For each `u` with neighbours `Γ(u)`, `m = min(Γ(u) ∪ {u})`; emits `(v, m)` for every
/// neighbour `v > u`. Also counts the nodes that show the input is not a star forest with
/// centres = smallest labels: a node that is both a child and a parent, or a child of two
/// different parents. When the count over all shards is 0 the input graph is the answer.
pub fn large_star(node: &[u64], other: &[u64], is_child: &[bool]) -> Result<StarOut> {
    check_len(node, other)?;
    if is_child.len() != node.len() {
        return Err(Error::invalid_argument("is_child column differs in length"));
    }
    let mut rows: Vec<(u64, u64, bool)> = (0..node.len()).map(|i| (node[i], other[i], is_child[i])).collect();
    rows.sort_unstable();
    rows.dedup();
    let mut out = StarOut::default();
    let mut s = 0;
    while s < rows.len() {
        let u = rows[s].0;
        let mut e = s;
        let (mut child, mut parent) = (false, false);
        let mut parents = 0usize;
        let mut last_parent = None;
        while e < rows.len() && rows[e].0 == u {
            let (_, v, c) = rows[e];
            if c {
                child = true;
                if last_parent != Some(v) {
                    parents += 1;
                    last_parent = Some(v);
                }
            } else {
                parent = true;
            }
            e += 1;
        }
        if (child && parent) || parents > 1 {
            out.not_star += 1;
        }
        // rows of u are sorted by neighbour: the first is the smallest
        let m = rows[s].1.min(u);
        let mut prev = None;
        for &(_, v, _) in &rows[s..e] {
            if v > u && prev != Some(v) {
                out.child.push(v);
                out.parent.push(m);
                prev = Some(v);
            }
        }
        s = e;
    }
    Ok(out)
}

/// Small-star at every node `u` of this shard. Row `i` is the edge from `node[i]` to a
/// smaller neighbour `smaller[i]` (every edge appears once, at its larger end, and all of a
/// node's edges are in the same shard). With `N` = the smaller neighbours of `u` and
/// `m = min(N)`, emits `(x, m)` for every `x ∈ N ∪ {u}`, `x ≠ m`.
pub fn small_star(node: &[u64], smaller: &[u64]) -> Result<StarOut> {
    check_len(node, smaller)?;
    let mut rows: Vec<(u64, u64)> = Vec::with_capacity(node.len());
    for i in 0..node.len() {
        if smaller[i] >= node[i] {
            return Err(Error::invalid_argument(format!(
                "small-star edge {} -> {} does not point to a smaller node",
                node[i], smaller[i]
            )));
        }
        rows.push((node[i], smaller[i]));
    }
    rows.sort_unstable();
    rows.dedup();
    let mut out = StarOut::default();
    let mut s = 0;
    while s < rows.len() {
        let u = rows[s].0;
        let mut e = s;
        while e < rows.len() && rows[e].0 == u {
            e += 1;
        }
        let m = rows[s].1;
        for &(_, v) in &rows[s + 1..e] {
            out.child.push(v);
            out.parent.push(m);
        }
        out.child.push(u);
        out.parent.push(m);
        s = e;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minhash::lsh::MinUnionFind;

    /// Run the alternating algorithm with `shards` hash partitions, as an engine would.
    fn run(n: u64, edges: &[(u64, u64)], shards: u64) -> (Vec<u64>, usize) {
        let mut e: Vec<(u64, u64)> = edges.iter().map(|&(a, b)| (a.max(b), a.min(b))).filter(|(a, b)| a != b).collect();
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 200, "no convergence");
            let mut parts: Vec<(Vec<u64>, Vec<u64>, Vec<bool>)> = vec![Default::default(); shards as usize];
            for &(c, p) in &e {
                let s = &mut parts[(c % shards) as usize];
                s.0.push(c);
                s.1.push(p);
                s.2.push(true);
                let s = &mut parts[(p % shards) as usize];
                s.0.push(p);
                s.1.push(c);
                s.2.push(false);
            }
            let mut bad = 0;
            let mut l = Vec::new();
            for (u, v, c) in &parts {
                let o = large_star(u, v, c).unwrap();
                bad += o.not_star;
                l.extend(o.child.into_iter().zip(o.parent));
            }
            if bad == 0 {
                break;
            }
            let mut parts: Vec<(Vec<u64>, Vec<u64>)> = vec![Default::default(); shards as usize];
            for &(c, p) in &l {
                let s = &mut parts[(c % shards) as usize];
                s.0.push(c);
                s.1.push(p);
            }
            e.clear();
            for (u, v) in &parts {
                let o = small_star(u, v).unwrap();
                e.extend(o.child.into_iter().zip(o.parent));
            }
        }
        let mut comp: Vec<u64> = (0..n).collect();
        for &(c, p) in &e {
            comp[c as usize] = p;
        }
        (comp, rounds)
    }

    fn reference(n: u64, edges: &[(u64, u64)]) -> Vec<u64> {
        let mut uf = MinUnionFind::new(n as usize);
        for &(a, b) in edges {
            uf.union(a as u32, b as u32);
        }
        uf.roots().into_iter().map(u64::from).collect()
    }

    #[test]
    fn long_chain_in_log_rounds() {
        for &n in &[2u64, 3, 17, 1000, 100_000] {
            // chain with labels shuffled so the minimum sits in the middle
            let label = |i: u64| (i * 7919) % n;
            let edges: Vec<(u64, u64)> = (1..n).map(|i| (label(i - 1), label(i))).collect();
            for shards in [1, 3] {
                let (comp, rounds) = run(n, &edges, shards);
                assert_eq!(comp, reference(n, &edges));
                let log = (n as f64).log2().ceil() as usize;
                assert!(rounds <= 2 * log + 3, "n={n}: {rounds} rounds");
            }
        }
    }

    #[test]
    fn star_and_forest() {
        let n = 5000u64;
        let mut edges: Vec<(u64, u64)> = (0..n - 1).map(|i| (n - 1, i)).collect(); // star at the largest
        edges.extend([(10, 10), (3, 4), (4, 3)]);
        let (comp, rounds) = run(n + 10, &edges, 4);
        assert_eq!(comp, reference(n + 10, &edges));
        assert!(rounds <= 4, "{rounds} rounds");
        // isolated extra nodes stay alone
        assert_eq!(comp[n as usize + 3], n + 3);
    }

    #[test]
    fn random_graphs_match_union_find() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..40 {
            let n = 1 + next() % 300;
            let m = next() % (2 * n);
            let edges: Vec<(u64, u64)> = (0..m).map(|_| (next() % n, next() % n)).collect();
            let (comp, _) = run(n, &edges, 1 + next() % 5);
            assert_eq!(comp, reference(n, &edges));
        }
    }

    #[test]
    fn band_groups_dedup_and_order() {
        let (m, o) = band_groups(&[0, 0, 1, 0, 1, 0], &[5, 5, 5, 7, 5, 5], &[3, 1, 2, 9, 8, 3]).unwrap();
        assert_eq!(m, vec![1, 3, 2, 8]);
        assert_eq!(o, vec![0, 2, 4]);
        assert!(band_groups(&[0], &[1, 2], &[0]).is_err());
        assert!(small_star(&[1], &[2]).is_err());
    }
}
