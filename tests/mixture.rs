//! Mixture inference core against slow references: the replayed pair counts equal counts
//! recomputed from scratch at every step, and the oracle returns exactly the constraints a
//! brute-force check over every (step, pair) finds violated.

use std::collections::BTreeMap;

use gristmill::mixture::{pair_key, replay, ByteIds, Oracle, PairKey, StepTree, Trace, SCALE};
use proptest::prelude::*;

const ALPHABET: usize = 4;

fn byte_ids() -> ByteIds {
    let mut ids = [None; 256];
    for i in 0..ALPHABET {
        ids[b'a' as usize + i] = Some(i as u32);
    }
    ids
}

/// BPE training's merge step, written plainly: left to right, non-overlapping.
fn apply(word: &[u32], (a, b, c): (u32, u32, u32)) -> Vec<u32> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < word.len() {
        if i + 1 < word.len() && word[i] == a && word[i + 1] == b {
            out.push(c);
            i += 2;
        } else {
            out.push(word[i]);
            i += 1;
        }
    }
    out
}

/// Pair counts of the whole table after the first `s` merges, recomputed from scratch.
fn counts_after(words: &[(Vec<u8>, u64)], merges: &[(u32, u32, u32)], s: usize) -> BTreeMap<PairKey, u64> {
    let ids = byte_ids();
    let mut out = BTreeMap::new();
    for (w, c) in words {
        let mut sym: Vec<u32> = w.iter().map(|&b| ids[b as usize].unwrap_or(u32::MAX)).collect();
        for &m in &merges[..s] {
            sym = apply(&sym, m);
        }
        for p in sym.windows(2) {
            if p[0] != u32::MAX && p[1] != u32::MAX {
                *out.entry(pair_key(p[0], p[1])).or_insert(0) += c;
            }
        }
    }
    out
}

/// The trace's counts after step `s` (changes of steps `0..=s` applied).
fn trace_counts(tr: &Trace, s: usize) -> BTreeMap<PairKey, u64> {
    let mut cur = BTreeMap::new();
    for step in 0..=s {
        for (k, n) in tr.changes(step) {
            if n == 0 {
                cur.remove(&k);
            } else {
                cur.insert(k, n);
            }
        }
    }
    cur
}

fn words_strategy() -> impl Strategy<Value = Vec<(Vec<u8>, u64)>> {
    // Mostly the 4-letter alphabet, sometimes a byte without a token ('z').
    let byte = prop_oneof![10 => (0u8..ALPHABET as u8).prop_map(|x| b'a' + x), 1 => Just(b'z')];
    proptest::collection::vec((proptest::collection::vec(byte, 1..12), 1u64..50), 1..12)
}

fn merges_strategy() -> impl Strategy<Value = Vec<(u32, u32, u32)>> {
    proptest::collection::vec((any::<u32>(), any::<u32>()), 1..14).prop_map(|raw| {
        raw.iter()
            .enumerate()
            .map(|(k, &(x, y))| {
                let have = (ALPHABET + k) as u32;
                // Prefer recent tokens so long merges appear.
                let pick = |v: u32| if v % 3 == 0 { have - 1 - (v / 3) % have.min(3) } else { v % have };
                (pick(x), pick(y), have)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn replay_matches_counts_recomputed_at_every_step(words in words_strategy(), merges in merges_strategy()) {
        let tr = replay(&words, &byte_ids(), &merges, None).unwrap();
        prop_assert_eq!(tr.steps(), merges.len());
        prop_assert_eq!(tr.total_pairs, counts_after(&words, &merges, 0).values().sum::<u64>());
        for s in 0..=merges.len() {
            let want = counts_after(&words, &merges, s);
            prop_assert_eq!(trace_counts(&tr, s), want.clone(), "after {} merges", s);
            if s < merges.len() {
                let (a, b, _) = merges[s];
                prop_assert_eq!(tr.merge_counts[s], want.get(&pair_key(a, b)).copied().unwrap_or(0));
            }
        }
    }

    #[test]
    fn oracle_finds_exactly_the_violated_constraints(
        cats in proptest::collection::vec(words_strategy(), 1..4),
        merges in merges_strategy(),
        seed in any::<u64>(),
    ) {
        let ids = byte_ids();
        let traces: Vec<Trace> = cats.iter().map(|w| replay(w, &ids, &merges, None).unwrap()).collect();
        let keys: Vec<PairKey> = merges.iter().map(|&(a, b, _)| pair_key(a, b)).collect();
        let oracle = Oracle::new(&traces, &keys).unwrap();
        let n = cats.len();
        // A random point: weights on the simplex, small slacks on some steps and pairs.
        let mut x = seed | 1;
        let mut rnd = || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; (x >> 11) as f64 / (1u64 << 53) as f64 };
        let mut alpha: Vec<f64> = (0..n).map(|_| rnd() + 0.01).collect();
        let s: f64 = alpha.iter().sum();
        alpha.iter_mut().for_each(|a| *a /= s);
        let v_step: Vec<f64> = (0..merges.len()).map(|_| if rnd() < 0.3 { rnd() * 2e5 } else { 0.0 }).collect();
        let v_pair: Vec<f64> = (0..oracle.n_pairs()).map(|_| if rnd() < 0.3 { rnd() * 2e5 } else { 0.0 }).collect();
        let norm: Vec<f64> = traces.iter().map(|t| SCALE / t.total_pairs.max(1) as f64).collect();
        let keys_by_id = oracle.pair_keys().to_vec();
        let tol = 1e-6;
        // Brute force: every (step, pair) with every category's recomputed counts.
        let mut want = Vec::new();
        for t in 0..merges.len() {
            let per_cat: Vec<BTreeMap<PairKey, u64>> = cats.iter().map(|w| counts_after(w, &merges, t)).collect();
            let w = |k: PairKey| -> f64 { (0..n).map(|c| alpha[c] * norm[c] * per_cat[c].get(&k).copied().unwrap_or(0) as f64).sum() };
            let m = keys[t];
            for (pid, &k) in keys_by_id.iter().enumerate() {
                if k == m { continue; }
                let short = w(k) - v_pair[pid] - (w(m) + v_step[t]);
                if short > tol {
                    let coef: Vec<f64> = (0..n).map(|c| {
                        let cm = per_cat[c].get(&m).copied().unwrap_or(0) as f64;
                        let cp = per_cat[c].get(&k).copied().unwrap_or(0) as f64;
                        (cm - cp) * norm[c]
                    }).collect();
                    want.push((t as u32, pid as u32, coef));
                }
            }
        }
        // The pair sweep: one row per violated pair, at a step where it is violated most.
        let mut fresh = Oracle::new(&traces, &keys).unwrap();
        let pr = fresh.pair_sweep(&alpha, &v_step, &v_pair, tol).unwrap();
        let short = |t: u32, p: u32, coef: &[f64]| -> f64 {
            -(coef.iter().zip(&alpha).map(|(c, a)| c * a).sum::<f64>() + v_step[t as usize] + v_pair[p as usize])
        };
        let mut worst: BTreeMap<u32, f64> = BTreeMap::new();
        for (t, p, coef) in &want {
            let v = short(*t, *p, coef);
            let e = worst.entry(*p).or_insert(f64::NEG_INFINITY);
            *e = e.max(v);
        }
        prop_assert_eq!(pr.pairs.clone(), worst.keys().copied().collect::<Vec<u32>>());
        for r in 0..pr.pairs.len() {
            let (t, p) = (pr.steps[r], pr.pairs[r]);
            let coef = &pr.coefs[r * n..(r + 1) * n];
            let w = want.iter().find(|x| x.0 == t && x.1 == p);
            prop_assert!(w.is_some(), "pair sweep row ({}, {}) is not violated", t, p);
            for (a, b) in coef.iter().zip(&w.unwrap().2) {
                prop_assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0));
            }
            let (v, best) = (short(t, p, coef), worst[&p]);
            prop_assert!((v - best).abs() <= 1e-9 * best.abs().max(1.0), "pair {}: {} < {}", p, v, best);
        }
        // A second sweep hands out no row twice.
        let again = fresh.pair_sweep(&alpha, &v_step, &v_pair, tol).unwrap();
        for r in 0..again.pairs.len() {
            prop_assert!(!(0..pr.pairs.len()).any(|q| (pr.steps[q], pr.pairs[q]) == (again.steps[r], again.pairs[r])));
            prop_assert!(want.iter().any(|x| (x.0, x.1) == (again.steps[r], again.pairs[r])));
        }
        // The stretch sweep: every violated (step, pair) lies in a returned node of its pair,
        // and every returned row is violated at some step of its node, where the pair's counts
        // are the row's counts.
        let mut st = Oracle::new(&traces, &keys).unwrap();
        let sr = st.stretch_sweep(&alpha, &v_step, &v_pair, usize::MAX, 0, usize::MAX, tol).unwrap();
        prop_assert_eq!(sr.nodes.is_empty(), want.is_empty());
        let tree = st.tree().clone();
        for (t, p, _) in &want {
            prop_assert!((0..sr.nodes.len()).any(|r| {
                let (lo, hi) = tree.span(sr.nodes[r]);
                sr.pairs[r] == *p && lo <= *t && *t <= hi
            }), "violated ({}, {}) is in no stretch row", t, p);
        }
        for r in 0..sr.nodes.len() {
            let (lo, hi) = tree.span(sr.nodes[r]);
            let p = sr.pairs[r];
            let cnt = &sr.counts[r * n..(r + 1) * n];
            let k = keys_by_id[p as usize];
            for t in lo..=hi {
                for c in 0..n {
                    let have = counts_after(&cats[c], &merges, t as usize).get(&k).copied().unwrap_or(0) as f64 * norm[c];
                    prop_assert!((have - cnt[c]).abs() <= 1e-9 * have.abs().max(1.0), "pair {} step {}: counts differ", p, t);
                }
            }
            prop_assert!(want.iter().any(|x| x.1 == p && lo <= x.0 && x.0 <= hi), "row ({}, {}) is not violated", sr.nodes[r], p);
        }
        let sr2 = st.stretch_sweep(&alpha, &v_step, &v_pair, usize::MAX, 0, usize::MAX, tol).unwrap();
        prop_assert!(sr2.nodes.is_empty(), "stretch rows were handed out twice");
        // Only the first k steps when asked: rows stay inside them and cover their violations.
        let k = 1 + (seed as usize >> 7) % merges.len();
        let mut part = Oracle::new(&traces, &keys).unwrap();
        let sk = part.stretch_sweep(&alpha, &v_step, &v_pair, k, 0, usize::MAX, tol).unwrap();
        for r in 0..sk.nodes.len() {
            prop_assert!(tree.span(sk.nodes[r]).1 < k as u32);
        }
        for (t, p, _) in want.iter().filter(|x| (x.0 as usize) < k) {
            prop_assert!((0..sk.nodes.len()).any(|r| {
                let (lo, hi) = tree.span(sk.nodes[r]);
                sk.pairs[r] == *p && lo <= *t && *t <= hi
            }), "violated ({}, {}) in the first {} steps is in no row", t, p, k);
        }
        // At most one row per pair when asked, the most violated.
        let mut one = Oracle::new(&traces, &keys).unwrap();
        let s1 = one.stretch_sweep(&alpha, &v_step, &v_pair, usize::MAX, 1, usize::MAX, tol).unwrap();
        let mut seen = s1.pairs.clone();
        seen.dedup();
        prop_assert_eq!(seen.len(), s1.pairs.len());
        prop_assert_eq!(seen, worst.keys().copied().collect::<Vec<u32>>());
    }
}

#[test]
fn step_tree_covers_every_range_exactly_with_few_nodes() {
    for steps in 1..40u32 {
        let tree = StepTree::new(steps as usize);
        assert_eq!(tree.len(), 2 * steps as usize - 1);
        for a in 0..steps {
            for b in a..steps {
                let mut cover = Vec::new();
                tree.cover(a, b, &mut cover);
                let mut next = a;
                for &k in &cover {
                    let (lo, hi) = tree.span(k);
                    assert_eq!(lo, next, "steps {steps}: cover of {a}..={b} has a gap or overlap");
                    next = hi + 1;
                }
                assert_eq!(next, b + 1);
                let bound = 2 * (u32::BITS - steps.leading_zeros()) as usize;
                assert!(cover.len() <= bound.max(1), "{} nodes for {a}..={b} of {steps}", cover.len());
            }
        }
        for (i, &(l, r)) in tree.children().iter().enumerate() {
            let k = steps + i as u32;
            let (lo, hi) = tree.span(k);
            assert!(l < k && r < k);
            assert_eq!((tree.span(l).0, tree.span(r).1), (lo, hi));
            assert_eq!(tree.span(l).1 + 1, tree.span(r).0);
        }
    }
}

#[test]
fn a_merge_absent_from_the_sample_keeps_steps_aligned() {
    let words = vec![(b"abab".to_vec(), 3u64), (b"cd".to_vec(), 2)];
    // Merge 0 (d, d) never occurs; merge 1 (a, b) does.
    let merges = vec![(3, 3, 4), (0, 1, 5), (5, 5, 6)];
    let tr = replay(&words, &byte_ids(), &merges, None).unwrap();
    assert_eq!(tr.merge_counts, vec![0, 6, 3]);
    assert_eq!(tr.changes(1).count(), 0);
    assert_eq!(trace_counts(&tr, 3), counts_after(&words, &merges, 3));
}

#[test]
fn per_pair_and_total_limits_bound_the_rows() {
    let words: Vec<(Vec<u8>, u64)> = vec![(b"abcdabcdaabbccdd".to_vec(), 5), (b"dcbadcba".to_vec(), 7)];
    let merges = vec![(0, 1, 4), (2, 3, 5), (4, 5, 6)];
    let tr = replay(&words, &byte_ids(), &merges, None).unwrap();
    let keys: Vec<PairKey> = merges.iter().map(|&(a, b, _)| pair_key(a, b)).collect();
    // v_pair must have one entry per pair: a wrong length is an error, not a panic.
    let bad = Oracle::new(std::slice::from_ref(&tr), &keys).unwrap().stretch_sweep(&[1.0], &[0.0; 3], &[0.0; 1], usize::MAX, 0, usize::MAX, 1e-9);
    assert!(bad.is_err());
    let mut o = Oracle::new(std::slice::from_ref(&tr), &keys).unwrap();
    let vp = vec![0.0; o.n_pairs()];
    let all = Oracle::new(std::slice::from_ref(&tr), &keys).unwrap().stretch_sweep(&[1.0], &[0.0; 3], &vp, usize::MAX, 0, usize::MAX, 1e-9).unwrap();
    assert!(all.nodes.len() > 2, "{:?}", all.nodes);
    let rows = o.stretch_sweep(&[1.0], &[0.0; 3], &vp, usize::MAX, 0, 2, 1e-9).unwrap();
    assert_eq!(rows.nodes.len(), 2);
    // The most violated row is among those kept.
    assert_eq!(rows.max_violation, all.max_violation);
    let one = Oracle::new(std::slice::from_ref(&tr), &keys).unwrap().stretch_sweep(&[1.0], &[0.0; 3], &vp, usize::MAX, 1, usize::MAX, 1e-9).unwrap();
    assert!(one.pairs.windows(2).all(|w| w[0] < w[1]), "one row per pair: {:?}", one.pairs);
}

/// The same tables give the same oracle and the same rows at any thread count.
#[test]
fn build_and_sweep_are_identical_at_any_thread_count() {
    use gristmill::bpe::trainer::WordCounter;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let tables: Vec<WordCounter> = (0..3)
        .map(|_| {
            let mut t = WordCounter::new();
            for _ in 0..400 {
                let len = 1 + (next() % 7) as usize;
                let w: Vec<u8> = (0..len).map(|_| b'a' + (next() % ALPHABET as u64) as u8).collect();
                t.add_word(&w, 1 + next() % 5);
            }
            t
        })
        .collect();
    let merges = vec![(0, 1, 4), (2, 3, 5), (4, 5, 6), (1, 0, 7), (6, 6, 8), (3, 3, 9)];
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let (mut o, summaries) = gristmill::mixture::build(&tables, &byte_ids(), &merges, &|_| true).unwrap();
            let vp = vec![0.0; o.n_pairs()];
            let rows = o.stretch_sweep(&[0.2, 0.3, 0.5], &[0.0; 6], &vp, usize::MAX, 0, 100, 1e-9).unwrap();
            (summaries, o.merge_counts(), rows.nodes, rows.pairs, rows.counts)
        })
    };
    let one = run(1);
    assert!(!one.2.is_empty());
    assert_eq!(one, run(2));
    assert_eq!(one, run(4));
}
