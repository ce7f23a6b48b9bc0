//! The violated-constraint oracle of the mixture LP.
//!
//! The LP has one constraint per merge step `t` and pair `p ≠ m(t)`:
//!
//! ```text
//! Σ_i α_i (c_i(t, m(t)) − c_i(t, p)) + v_t + v_p ≥ 0
//! ```
//!
//! where `c_i(t, p)` is category `i`'s count of `p` just before merge `t`, divided by the
//! category's total pair count (and multiplied by [`SCALE`] to keep LP coefficients near 1).
//! With `W(p) = Σ_i α_i c_i(t, p)`, the constraint is violated exactly when
//! `W(p) − v_p > W(m(t)) + v_t`. A pair's counts only change at the steps whose merge touches
//! it, so [`Oracle::stretch_sweep`] walks the steps once, closes each pair's stretch of constant
//! counts when they change, and compares the pair's `W(p) − v_p` with the smallest threshold
//! `W(m(t)) + v_t` on the stretch (range minima over a segment tree of the steps). It returns
//! rows that each cover a whole tree node of a stretch; a sweep that returns none proves the
//! current solution optimal for the full LP. [`Oracle::pair_sweep`] returns each violated
//! pair's single worst `(step, pair)` constraint (used to certify a bound).

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use super::replay::{PairKey, Trace};
use crate::{Error, Result};

/// Counts enter the LP per million pairs of their category.
pub const SCALE: f64 = 1e6;

/// Per-step changes of all categories, with pairs numbered globally.
#[derive(Debug)]
pub struct Oracle {
    n_cats: usize,
    /// Pair id → `(left, right)` token ids packed ([`super::replay::pair_key`]).
    pair_keys: Vec<PairKey>,
    /// Pair id of merge `t`.
    merge_pairs: Vec<u32>,
    /// `SCALE / total pairs` of each category.
    norm: Vec<f64>,
    /// Changes of step `s` are `ev_*[ev_starts[s]..ev_starts[s + 1]]` (step 0: initial counts).
    ev_starts: Vec<usize>,
    ev_pair: Vec<u32>,
    ev_cat: Vec<u32>,
    ev_count: Vec<u64>,
    /// Rows already handed out, as `(step, pair)`: never handed out twice.
    added: FxHashSet<(u32, u32)>,
    /// Segment tree over the steps, for [`Oracle::stretch_sweep`].
    tree: StepTree,
    /// Stretch rows already handed out, as `(tree node, pair)`.
    added_nodes: FxHashSet<(u32, u32)>,
}

/// Rows found by [`Oracle::stretch_sweep`]: row `r` says that pair `pairs[r]`, whose
/// normalised counts are `counts[r * n_cats..(r + 1) * n_cats]` on all steps of tree node
/// `nodes[r]`, does not beat any of those steps' merges by more than the slacks allow:
///
/// ```text
/// z_N − Σ_i α_i c_i(p) + v_p ≥ 0        (N an internal node; z_N ≤ every step's W(m(t)) + v_t)
/// Σ_i α_i (c_i(t, m(t)) − c_i(p)) + v_t + v_p ≥ 0        (N = step t, a leaf)
/// ```
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StretchRows {
    pub nodes: Vec<u32>,
    pub pairs: Vec<u32>,
    pub counts: Vec<f64>,
    /// Largest violation seen (0 when none).
    pub max_violation: f64,
    /// Stretches (a pair's steps of constant counts) with at least one violated constraint.
    pub stretches: usize,
}

/// A segment tree over steps `0..T`. Nodes `0..T` are the steps themselves (leaves); nodes
/// `T..2T − 1` are internal, each covering the steps of its two children. A child's id is
/// smaller than its parent's; the root is the last node.
#[derive(Debug, Clone, Default)]
pub struct StepTree {
    steps: usize,
    /// Children of internal node `steps + i`.
    children: Vec<(u32, u32)>,
    /// First and last step of every node.
    span: Vec<(u32, u32)>,
}

impl StepTree {
    pub fn new(steps: usize) -> StepTree {
        let mut tree = StepTree {
            steps,
            children: Vec::with_capacity(steps.saturating_sub(1)),
            span: (0..steps as u32).map(|t| (t, t)).collect(),
        };
        if steps > 0 {
            tree.build(0, steps as u32 - 1);
        }
        tree
    }

    fn build(&mut self, lo: u32, hi: u32) -> u32 {
        if lo == hi {
            return lo;
        }
        let mid = lo + (hi - lo) / 2;
        let l = self.build(lo, mid);
        let r = self.build(mid + 1, hi);
        self.children.push((l, r));
        self.span.push((lo, hi));
        (self.span.len() - 1) as u32
    }

    /// Number of nodes (`2T − 1`; 0 without steps).
    pub fn len(&self) -> usize {
        self.span.len()
    }

    pub fn is_empty(&self) -> bool {
        self.span.is_empty()
    }

    /// First and last step of `node`.
    pub fn span(&self, node: u32) -> (u32, u32) {
        self.span[node as usize]
    }

    /// Children of the internal nodes, in node order (node `T + i` has `children()[i]`).
    pub fn children(&self) -> &[(u32, u32)] {
        &self.children
    }

    /// The fewest nodes whose steps are exactly `a..=b`, appended to `out` left to right.
    pub fn cover(&self, a: u32, b: u32, out: &mut Vec<u32>) {
        if self.steps == 0 || a > b {
            return;
        }
        let mut stack = vec![(self.span.len() - 1) as u32];
        while let Some(node) = stack.pop() {
            let (lo, hi) = self.span[node as usize];
            if hi < a || lo > b {
                continue;
            }
            if a <= lo && hi <= b {
                out.push(node);
                continue;
            }
            let (l, r) = self.children[node as usize - self.steps];
            stack.push(r);
            stack.push(l);
        }
    }
}

/// Rows found by one sweep; row `r` is step `steps[r]`, pair `pairs[r]`, and α coefficients
/// `coefs[r * n_cats..(r + 1) * n_cats]` (the coefficients of `v_t` and `v_p` are 1).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rows {
    pub steps: Vec<u32>,
    pub pairs: Vec<u32>,
    pub coefs: Vec<f64>,
    /// Largest violation seen (0 when none).
    pub max_violation: f64,
    /// Steps at which at least one violated constraint was found.
    pub violated_steps: usize,
}

impl Oracle {
    /// Number the pairs of all traces and merge their changes step by step.
    /// `merges[t]` is merge `t`'s pair; every trace must have replayed exactly these merges.
    pub fn new(traces: &[Trace], merges: &[PairKey]) -> Result<Oracle> {
        let steps = merges.len();
        if traces.is_empty() {
            return Err(Error::invalid_argument("at least one category is needed"));
        }
        if traces.len() > u32::MAX as usize {
            return Err(Error::invalid_argument("too many categories"));
        }
        for tr in traces {
            if tr.steps() != steps {
                return Err(Error::invalid_argument("every category must replay the same merges"));
            }
        }
        let mut keys: Vec<PairKey> = traces.par_iter().flat_map_iter(|t| t.pairs.iter().copied()).collect();
        keys.extend_from_slice(merges);
        keys.par_sort_unstable();
        keys.dedup();
        if keys.len() > u32::MAX as usize {
            return Err(Error::invalid_argument("more than 2^32 distinct pairs"));
        }
        let id: FxHashMap<PairKey, u32> = keys.iter().enumerate().map(|(i, &k)| (k, i as u32)).collect();
        let merge_pairs = merges.iter().map(|k| id[k]).collect();
        let total: usize = traces.iter().map(|t| t.pairs.len()).sum();
        let mut ev_starts = Vec::with_capacity(steps + 2);
        let mut ev_pair = Vec::with_capacity(total);
        let mut ev_cat = Vec::with_capacity(total);
        let mut ev_count = Vec::with_capacity(total);
        ev_starts.push(0);
        for s in 0..=steps {
            for (c, tr) in traces.iter().enumerate() {
                for (k, n) in tr.changes(s) {
                    ev_pair.push(id[&k]);
                    ev_cat.push(c as u32);
                    ev_count.push(n);
                }
            }
            ev_starts.push(ev_pair.len());
        }
        let norm = traces
            .iter()
            .map(|t| if t.total_pairs == 0 { 0.0 } else { SCALE / t.total_pairs as f64 })
            .collect();
        Ok(Oracle {
            n_cats: traces.len(),
            pair_keys: keys,
            merge_pairs,
            norm,
            ev_starts,
            ev_pair,
            ev_cat,
            ev_count,
            added: FxHashSet::default(),
            tree: StepTree::new(steps),
            added_nodes: FxHashSet::default(),
        })
    }

    pub fn n_cats(&self) -> usize {
        self.n_cats
    }

    pub fn n_pairs(&self) -> usize {
        self.pair_keys.len()
    }

    pub fn steps(&self) -> usize {
        self.merge_pairs.len()
    }

    /// Stored changes over all steps and categories.
    pub fn n_events(&self) -> usize {
        self.ev_pair.len()
    }

    /// Pair id → packed `(left, right)` token ids.
    pub fn pair_keys(&self) -> &[PairKey] {
        &self.pair_keys
    }

    /// Rows handed out so far.
    pub fn rows_added(&self) -> usize {
        self.added.len()
    }

    /// Forget that rows `(steps[i], pairs[i])` were handed out (the LP dropped them), so a
    /// later sweep may return them again.
    pub fn forget(&mut self, steps: &[u32], pairs: &[u32]) {
        for (&t, &p) in steps.iter().zip(pairs) {
            self.added.remove(&(t, p));
        }
    }

    /// For every pair, its most violated constraint over all steps at `(alpha, v_step,
    /// v_pair)`: one row per violated pair (skipping rows already handed out), in pair order.
    ///
    /// A pair's weighted count is constant between the steps where one of its counts changes,
    /// so its worst step on such a stretch is the one with the smallest threshold
    /// `W(m(t)) + v_t` there: a range-minimum query. The sweep is exact: it returns no row
    /// exactly when no constraint is violated by more than `tolerance`.
    pub fn pair_sweep(&mut self, alpha: &[f64], v_step: &[f64], v_pair: &[f64], tolerance: f64) -> Result<Rows> {
        let (n, np, steps) = (self.n_cats, self.n_pairs(), self.steps());
        self.check_point(alpha, v_step, v_pair)?;
        let mut rows = Rows::default();
        if steps == 0 {
            return Ok(rows);
        }
        let w_of: Vec<f64> = alpha.iter().zip(&self.norm).map(|(a, z)| a * z).collect();
        // Pass 1: the threshold of every step.
        let thr = self.thresholds(&w_of, v_step);
        let mut weight = vec![0f64; np];
        let mut cnt = vec![0u64; np * n];
        let rmq = RangeMin::new(&thr);
        let mut merge_step = vec![u32::MAX; np];
        for (t, &m) in self.merge_pairs.iter().enumerate() {
            if merge_step[m as usize] == u32::MAX {
                merge_step[m as usize] = t as u32;
            }
        }
        // The worst step of pair `p` on steps `a..=b`, and by how much it is violated there.
        let worst_on = |p: usize, w: f64, a: usize, b: usize| -> Option<(f64, usize)> {
            let ms = merge_step[p] as usize;
            let mut best: Option<(f64, usize)> = None;
            let mut take = |lo: usize, hi: usize| {
                if lo <= hi {
                    let t = rmq.argmin(lo, hi);
                    let v = w - v_pair[p] - thr[t];
                    if best.is_none_or(|(bv, _)| v > bv) {
                        best = Some((v, t));
                    }
                }
            };
            if ms >= a && ms <= b {
                if ms > a {
                    take(a, ms - 1);
                }
                take(ms + 1, b);
            } else {
                take(a, b);
            }
            best
        };
        // Pass 2: each pair's stretches of constant weight.
        let mut since = vec![u32::MAX; np];
        let mut best_v = vec![tolerance; np];
        let mut best_t = vec![u32::MAX; np];
        let close = |p: usize, w: f64, a: usize, b: usize, best_v: &mut [f64], best_t: &mut [u32]| {
            if w > tolerance {
                if let Some((v, t)) = worst_on(p, w, a, b) {
                    if v > best_v[p] && !self.added.contains(&(t as u32, p as u32)) {
                        best_v[p] = v;
                        best_t[p] = t as u32;
                    }
                }
            }
        };
        for t in 0..steps {
            for e in self.ev_starts[t]..self.ev_starts[t + 1] {
                let (p, c) = (self.ev_pair[e] as usize, self.ev_cat[e] as usize);
                if since[p] != t as u32 {
                    if since[p] != u32::MAX {
                        close(p, weight[p], since[p] as usize, t - 1, &mut best_v, &mut best_t);
                    }
                    since[p] = t as u32;
                }
                let slot = &mut cnt[p * n + c];
                weight[p] += w_of[c] * (self.ev_count[e] as f64 - *slot as f64);
                *slot = self.ev_count[e];
            }
        }
        for p in 0..np {
            if since[p] != u32::MAX {
                close(p, weight[p], since[p] as usize, steps - 1, &mut best_v, &mut best_t);
            }
        }
        // Pass 3: the coefficients of the chosen rows, read at their steps.
        let mut at_step: Vec<Vec<u32>> = vec![Vec::new(); steps];
        for p in 0..np {
            if best_t[p] != u32::MAX {
                at_step[best_t[p] as usize].push(p as u32);
            }
        }
        cnt.iter_mut().for_each(|c| *c = 0);
        weight.iter_mut().for_each(|w| *w = 0.0);
        let mut out: Vec<(u32, u32, Vec<f64>, f64)> = Vec::new();
        for t in 0..steps {
            self.apply(t, &w_of, &mut cnt, &mut weight);
            if at_step[t].is_empty() {
                continue;
            }
            rows.violated_steps += 1;
            let m = self.merge_pairs[t] as usize;
            for &p in &at_step[t] {
                let (pm, pp) = (m * n, p as usize * n);
                let coef = (0..n).map(|c| (cnt[pm + c] as f64 - cnt[pp + c] as f64) * self.norm[c]).collect();
                out.push((t as u32, p, coef, best_v[p as usize]));
            }
        }
        out.sort_unstable_by_key(|r| r.1);
        for (t, p, coef, v) in out {
            self.added.insert((t, p));
            rows.steps.push(t);
            rows.pairs.push(p);
            rows.coefs.extend(coef);
            rows.max_violation = rows.max_violation.max(v);
        }
        Ok(rows)
    }

    /// The segment tree the rows of [`Oracle::stretch_sweep`] refer to.
    pub fn tree(&self) -> &StepTree {
        &self.tree
    }

    /// Stretch rows handed out so far.
    pub fn stretch_rows_added(&self) -> usize {
        self.added_nodes.len()
    }

    /// Let stretch rows `(nodes[i], pairs[i])` be returned again by later sweeps.
    pub fn forget_stretches(&mut self, nodes: &[u32], pairs: &[u32]) {
        for (&k, &p) in nodes.iter().zip(pairs) {
            self.added_nodes.remove(&(k, p));
        }
    }

    /// Violated constraints at `(alpha, v_step, v_pair)`, one row per pair and tree node.
    ///
    /// A pair's counts are constant on a stretch of steps (between two steps where one of them
    /// changes), so one row per tree node of the stretch's cover states every constraint of the
    /// pair on that node's steps at once (see [`StretchRows`]); a row is returned for each
    /// cover node where some step's constraint is violated by more than `tolerance`, the most
    /// violated first when there are more than `max_rows`, and at most `per_pair` rows per pair
    /// (its most violated ones; 0: no limit). Only the constraints of the first `first_steps`
    /// steps are checked (all of them when `first_steps` ≥ the number of steps). Exact: no row means no constraint
    /// is violated by more than `tolerance`, provided the internal nodes' `z` satisfy the tree
    /// rows. Rows are never returned twice (unless forgotten).
    pub fn stretch_sweep(
        &mut self,
        alpha: &[f64],
        v_step: &[f64],
        v_pair: &[f64],
        first_steps: usize,
        per_pair: usize,
        max_rows: usize,
        tolerance: f64,
    ) -> Result<StretchRows> {
        let (n, np, steps) = (self.n_cats, self.n_pairs(), self.steps());
        self.check_point(alpha, v_step, v_pair)?;
        let mut out = StretchRows::default();
        if steps == 0 {
            return Ok(out);
        }
        let w_of: Vec<f64> = alpha.iter().zip(&self.norm).map(|(a, z)| a * z).collect();
        // Pass 1: every step's threshold W(m(t)) + v_t, and every node's smallest threshold.
        let mut node_min = self.thresholds(&w_of, v_step);
        node_min.reserve(self.tree.len() - steps);
        let mut weight = vec![0f64; np];
        let mut cnt = vec![0u64; np * n];
        for &(l, r) in self.tree.children() {
            node_min.push(node_min[l as usize].min(node_min[r as usize]));
        }
        let rmq = RangeMin::new(&node_min[..steps]);
        // Pass 2: close every stretch; keep the violated cover nodes not handed out yet.
        let mut since = vec![u32::MAX; np];
        let mut found: Vec<(f64, u32, u32, Vec<f64>)> = Vec::new();
        let mut cover = Vec::new();
        let mut close = |p: usize, a: usize, b: usize, cnt: &[u64], weight: &[f64], found: &mut Vec<_>, stretches: &mut usize| {
            let key = weight[p] - v_pair[p];
            if key <= tolerance || key - node_min[rmq.argmin(a, b)] <= tolerance {
                return;
            }
            cover.clear();
            self.tree.cover(a as u32, b as u32, &mut cover);
            let mut any = false;
            for &k in &cover {
                let v = key - node_min[k as usize];
                if v > tolerance && !self.added_nodes.contains(&(k, p as u32)) {
                    let c = (0..n).map(|c| cnt[p * n + c] as f64 * self.norm[c]).collect();
                    found.push((v, k, p as u32, c));
                    any = true;
                }
            }
            if any {
                *stretches += 1;
            }
        };
        let mut stretches = 0;
        let limit = first_steps.clamp(1, steps);
        for t in 0..limit {
            for e in self.ev_starts[t]..self.ev_starts[t + 1] {
                let (p, c) = (self.ev_pair[e] as usize, self.ev_cat[e] as usize);
                if since[p] != t as u32 {
                    if since[p] != u32::MAX {
                        close(p, since[p] as usize, t - 1, &cnt, &weight, &mut found, &mut stretches);
                    }
                    since[p] = t as u32;
                }
                let slot = &mut cnt[p * n + c];
                weight[p] += w_of[c] * (self.ev_count[e] as f64 - *slot as f64);
                *slot = self.ev_count[e];
            }
        }
        for (p, &a) in since.iter().enumerate() {
            if a != u32::MAX {
                close(p, a as usize, limit - 1, &cnt, &weight, &mut found, &mut stretches);
            }
        }
        out.stretches = stretches;
        if per_pair > 0 {
            found.sort_unstable_by(|x, y| x.2.cmp(&y.2).then(y.0.total_cmp(&x.0)).then(x.1.cmp(&y.1)));
            let mut last = u32::MAX;
            let mut run = 0;
            found.retain(|r| {
                if r.2 != last {
                    last = r.2;
                    run = 0;
                }
                run += 1;
                run <= per_pair
            });
        }
        if found.len() > max_rows {
            found.sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then((x.2, x.1).cmp(&(y.2, y.1))));
            found.truncate(max_rows);
        }
        found.sort_unstable_by_key(|r| (r.2, r.1));
        for (v, k, p, c) in found {
            self.added_nodes.insert((k, p));
            out.nodes.push(k);
            out.pairs.push(p);
            out.counts.extend(c);
            out.max_violation = out.max_violation.max(v);
        }
        Ok(out)
    }

    /// A point of the LP must have one weight per category and one slack per step and pair.
    fn check_point(&self, alpha: &[f64], v_step: &[f64], v_pair: &[f64]) -> Result<()> {
        let (n, np, steps) = (self.n_cats, self.n_pairs(), self.steps());
        if alpha.len() != n || v_step.len() != steps || v_pair.len() != np {
            return Err(Error::invalid_argument(format!(
                "sweep needs {n} weights, {steps} step slacks and {np} pair slacks (got {}, {}, {})",
                alpha.len(),
                v_step.len(),
                v_pair.len()
            )));
        }
        Ok(())
    }

    /// Every step's threshold `W(m(t)) + v_t` for the per-category weights `w_of`.
    fn thresholds(&self, w_of: &[f64], v_step: &[f64]) -> Vec<f64> {
        let (n, np, steps) = (self.n_cats, self.n_pairs(), self.steps());
        let mut weight = vec![0f64; np];
        let mut cnt = vec![0u64; np * n];
        let mut thr = Vec::with_capacity(steps);
        for t in 0..steps {
            self.apply(t, w_of, &mut cnt, &mut weight);
            thr.push(weight[self.merge_pairs[t] as usize] + v_step[t]);
        }
        thr
    }

    /// Apply step `t`'s count changes to `cnt` and the weighted counts `weight`.
    #[inline]
    fn apply(&self, t: usize, w_of: &[f64], cnt: &mut [u64], weight: &mut [f64]) {
        let n = self.n_cats;
        for e in self.ev_starts[t]..self.ev_starts[t + 1] {
            let (p, c) = (self.ev_pair[e] as usize, self.ev_cat[e] as usize);
            let slot = &mut cnt[p * n + c];
            weight[p] += w_of[c] * (self.ev_count[e] as f64 - *slot as f64);
            *slot = self.ev_count[e];
        }
    }

    /// Normalised count of merge `t`'s pair in each category just before merge `t`
    /// (`steps × n_cats`, row-major), as the LP sees it.
    pub fn merge_counts(&self) -> Vec<f64> {
        let (n, steps) = (self.n_cats, self.steps());
        let mut cur: FxHashMap<(u32, u32), u64> = FxHashMap::default();
        let mut out = Vec::with_capacity(steps * n);
        for t in 0..steps {
            for e in self.ev_starts[t]..self.ev_starts[t + 1] {
                cur.insert((self.ev_pair[e], self.ev_cat[e]), self.ev_count[e]);
            }
            let m = self.merge_pairs[t];
            for c in 0..n {
                out.push(cur.get(&(m, c as u32)).copied().unwrap_or(0) as f64 * self.norm[c]);
            }
        }
        out
    }
}

/// Range-minimum queries over a fixed array (sparse table of positions; ties: the first).
struct RangeMin<'a> {
    v: &'a [f64],
    levels: Vec<Vec<u32>>,
}

impl<'a> RangeMin<'a> {
    fn new(v: &'a [f64]) -> Self {
        let mut levels: Vec<Vec<u32>> = vec![(0..v.len() as u32).collect()];
        let mut span = 1;
        while 2 * span <= v.len() {
            let prev = levels.last().unwrap();
            let next = (0..=v.len() - 2 * span).map(|i| Self::pick(v, prev[i], prev[i + span])).collect();
            levels.push(next);
            span *= 2;
        }
        RangeMin { v, levels }
    }

    #[inline]
    fn pick(v: &[f64], a: u32, b: u32) -> u32 {
        if v[b as usize] < v[a as usize] { b } else { a }
    }

    /// Position of the minimum of `v[lo..=hi]`.
    #[inline]
    fn argmin(&self, lo: usize, hi: usize) -> usize {
        let k = (usize::BITS - 1 - (hi - lo + 1).leading_zeros()) as usize;
        let lvl = &self.levels[k];
        Self::pick(self.v, lvl[lo], lvl[hi + 1 - (1 << k)]) as usize
    }
}
