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
//! `W(p) − v_p > W(m(t)) + v_t`. A [`Oracle::sweep`] walks the steps in order, keeping every
//! pair's `W(p) − v_p` in an indexed max-heap that is updated only for the pairs whose counts
//! change at that step, and at each step reads the most violated pairs off the top of the heap.
//! A sweep that returns no row proves the current solution optimal for the full LP.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

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

/// Limits of one sweep.
#[derive(Debug, Clone, Copy)]
pub struct SweepLimits {
    /// Most rows taken at one step (the most violated ones).
    pub per_step: usize,
    /// Most rows taken by one sweep; the sweep stops when reached.
    pub max_rows: usize,
    /// A constraint counts as violated when it is short by more than this (LP units).
    pub tolerance: f64,
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

    /// Find constraints violated by `(alpha, v_step, v_pair)` (`v_pair` indexed by pair id;
    /// pairs without an LP column have 0). Rows found are remembered and never returned again.
    pub fn sweep(&mut self, alpha: &[f64], v_step: &[f64], v_pair: &[f64], lim: SweepLimits) -> Result<Rows> {
        let (n, np, steps) = (self.n_cats, self.n_pairs(), self.steps());
        if alpha.len() != n || v_step.len() != steps || v_pair.len() != np {
            return Err(Error::invalid_argument(format!(
                "sweep needs {n} weights, {steps} step slacks and {np} pair slacks (got {}, {}, {})",
                alpha.len(),
                v_step.len(),
                v_pair.len()
            )));
        }
        let w_of: Vec<f64> = alpha.iter().zip(&self.norm).map(|(a, z)| a * z).collect();
        let mut cnt = vec![0u64; np * n];
        let mut weight = vec![0f64; np];
        let mut heap = IndexedHeap::new(v_pair.iter().map(|v| -v).collect());
        let mut rows = Rows::default();
        let mut found: Vec<u32> = Vec::with_capacity(lim.per_step.min(64));
        let mut search: BinaryHeap<Cand> = BinaryHeap::new();
        for t in 0..steps {
            for e in self.ev_starts[t]..self.ev_starts[t + 1] {
                let (p, c) = (self.ev_pair[e] as usize, self.ev_cat[e] as usize);
                let slot = &mut cnt[p * n + c];
                let d = self.ev_count[e] as f64 - *slot as f64;
                *slot = self.ev_count[e];
                weight[p] += w_of[c] * d;
                heap.set(p, weight[p] - v_pair[p]);
            }
            let m = self.merge_pairs[t] as usize;
            let thr = weight[m] + v_step[t];
            // Best-first walk of the heap's top: the most violated pairs first.
            found.clear();
            search.clear();
            if !heap.is_empty() {
                search.push(Cand(heap.key_at(0), 0));
            }
            while let Some(Cand(key, at)) = search.pop() {
                if key - thr <= lim.tolerance || found.len() >= lim.per_step {
                    break;
                }
                let p = heap.item_at(at);
                if p != m as u32 && !self.added.contains(&(t as u32, p)) {
                    if found.is_empty() {
                        rows.violated_steps += 1;
                    }
                    rows.max_violation = rows.max_violation.max(key - thr);
                    found.push(p);
                }
                for child in [2 * at + 1, 2 * at + 2] {
                    if child < heap.len() {
                        search.push(Cand(heap.key_at(child), child));
                    }
                }
            }
            for &p in &found {
                self.added.insert((t as u32, p));
                rows.steps.push(t as u32);
                rows.pairs.push(p);
                let (pm, pp) = (m * n, p as usize * n);
                for c in 0..n {
                    rows.coefs.push((cnt[pm + c] as f64 - cnt[pp + c] as f64) * self.norm[c]);
                }
            }
            if rows.steps.len() >= lim.max_rows {
                break;
            }
        }
        Ok(rows)
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
        if alpha.len() != n || v_step.len() != steps || v_pair.len() != np {
            return Err(Error::invalid_argument(format!(
                "sweep needs {n} weights, {steps} step slacks and {np} pair slacks (got {}, {}, {})",
                alpha.len(),
                v_step.len(),
                v_pair.len()
            )));
        }
        let mut rows = Rows::default();
        if steps == 0 {
            return Ok(rows);
        }
        let w_of: Vec<f64> = alpha.iter().zip(&self.norm).map(|(a, z)| a * z).collect();
        // Pass 1: the threshold of every step.
        let mut weight = vec![0f64; np];
        let mut cnt = vec![0u64; np * n];
        let mut thr = Vec::with_capacity(steps);
        for t in 0..steps {
            self.apply(t, &w_of, &mut cnt, &mut weight);
            thr.push(weight[self.merge_pairs[t] as usize] + v_step[t]);
        }
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
        weight.iter_mut().for_each(|w| *w = 0.0);
        cnt.iter_mut().for_each(|c| *c = 0);
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

/// A heap position with its key, ordered by key (ties: smaller position first).
#[derive(Debug, Clone, Copy)]
struct Cand(f64, usize);

impl PartialEq for Cand {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then_with(|| o.1.cmp(&self.1))
    }
}

/// A binary max-heap over items `0..n` with a key each, where any item's key can change.
struct IndexedHeap {
    heap: Vec<u32>,
    pos: Vec<u32>,
    key: Vec<f64>,
}

impl IndexedHeap {
    fn new(key: Vec<f64>) -> Self {
        let n = key.len();
        let mut h = IndexedHeap { heap: (0..n as u32).collect(), pos: (0..n as u32).collect(), key };
        for i in (0..n / 2).rev() {
            h.down(i);
        }
        h
    }

    fn len(&self) -> usize {
        self.heap.len()
    }

    fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    fn item_at(&self, i: usize) -> u32 {
        self.heap[i]
    }

    fn key_at(&self, i: usize) -> f64 {
        self.key[self.heap[i] as usize]
    }

    #[inline]
    fn above(&self, i: usize, j: usize) -> bool {
        // Does position i belong above position j? Larger key, ties by smaller item.
        let (a, b) = (self.heap[i], self.heap[j]);
        match self.key[a as usize].total_cmp(&self.key[b as usize]) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => a < b,
        }
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.heap.swap(i, j);
        self.pos[self.heap[i] as usize] = i as u32;
        self.pos[self.heap[j] as usize] = j as u32;
    }

    fn up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.above(i, parent) {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut best = i;
            if l < n && self.above(l, best) {
                best = l;
            }
            if r < n && self.above(r, best) {
                best = r;
            }
            if best == i {
                break;
            }
            self.swap(i, best);
            i = best;
        }
    }

    #[inline]
    fn set(&mut self, item: usize, key: f64) {
        let old = self.key[item];
        if old == key {
            return;
        }
        self.key[item] = key;
        let i = self.pos[item] as usize;
        if key > old {
            self.up(i);
        } else {
            self.down(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_heap_keeps_the_maximum_on_top() {
        let mut h = IndexedHeap::new(vec![0.0; 50]);
        let mut keys = vec![0.0f64; 50];
        let mut x = 12345u64;
        for _ in 0..2000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let item = (x >> 33) as usize % 50;
            let k = ((x >> 8) % 1000) as f64 - 500.0;
            keys[item] = k;
            h.set(item, k);
            let top = h.item_at(0) as usize;
            let best = keys.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(keys[top], best);
            for i in 1..h.len() {
                assert!(h.key_at((i - 1) / 2) >= h.key_at(i));
            }
        }
    }
}
