//! Property and determinism tests of the MinHash core (no Python needed).

use gristmill::minhash::lsh::{
    band_keys, candidate_groups, components, kept_per_doc, MinUnionFind, SigView, Verify,
};
use gristmill::minhash::shingle::{jaccard_sorted, shingle_hash_set, shingles, Scratch, ShingleConfig, Unit};
use gristmill::minhash::signature::{mod_mersenne61, signatures, Scheme, Signatures};
use gristmill::minhash::star::{keep_order, star_clusters, Confirm};
use gristmill::text::corpus::OwnedDocs;
use proptest::prelude::*;

fn words() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["alpha", "beta", "gamma", "delta", "Eps,", "ζήτα", "ÉTÉ", "42", "x.y", " ", "\n"]), 0..40)
        .prop_map(|w| w.join(" "))
}

fn u32_rows(sig: &Signatures) -> Vec<u32> {
    match sig {
        Signatures::U32(v) => v.clone(),
        Signatures::U64(_) => panic!("expected u32 signatures"),
    }
}

/// Connected components by brute force over all pairs sharing a band.
fn brute_components(sig: &[u32], p: usize, bands: usize, rows: usize, eligible: &[bool]) -> Vec<u32> {
    let n = sig.len() / p;
    let mut uf = MinUnionFind::new(n);
    for i in 0..n {
        for j in 0..i {
            if !(eligible[i] && eligible[j]) {
                continue;
            }
            let share = (0..bands).any(|b| sig[i * p + b * rows..i * p + (b + 1) * rows] == sig[j * p + b * rows..j * p + (b + 1) * rows]);
            if share {
                uf.union(i as u32, j as u32);
            }
        }
    }
    uf.roots()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mersenne_reduction_is_exact(x in any::<u64>()) {
        prop_assert_eq!(mod_mersenne61(x), x % ((1u64 << 61) - 1));
    }

    #[test]
    fn normalised_words_are_a_fixed_point(text in words()) {
        let cfg = ShingleConfig { n: 1, ..Default::default() };
        let w = shingles(&text, &cfg).unwrap();
        let again = shingles(&w.join(" "), &cfg).unwrap();
        prop_assert_eq!(&again, &w);
        for s in &w {
            prop_assert!(!s.contains(' ') && !s.is_empty());
        }
    }

    #[test]
    fn shingle_count_formula(text in words(), n in 1usize..7) {
        let cfg = ShingleConfig { n, unit: Unit::Word, ..Default::default() };
        let w = shingles(&text, &ShingleConfig { n: 1, ..cfg.clone() }).unwrap().len();
        let s = shingles(&text, &cfg).unwrap().len();
        let expect = if w == 0 { 0 } else if w < n { 1 } else { w - n + 1 };
        prop_assert_eq!(s, expect);
    }

    #[test]
    fn jaccard_is_symmetric_and_bounded(a in prop::collection::btree_set(0u64..50, 0..30), b in prop::collection::btree_set(0u64..50, 0..30)) {
        let a: Vec<u64> = a.into_iter().collect();
        let b: Vec<u64> = b.into_iter().collect();
        let j = jaccard_sorted(&a, &b);
        prop_assert_eq!(j, jaccard_sorted(&b, &a));
        prop_assert!((0.0..=1.0).contains(&j));
        if !a.is_empty() {
            prop_assert_eq!(jaccard_sorted(&a, &a), 1.0);
        }
    }

    #[test]
    fn components_equal_brute_force(docs in prop::collection::vec(words(), 1..25), rows in 1usize..4) {
        let p = 12;
        let bands = p / rows;
        let owned: OwnedDocs = docs.iter().collect();
        let cfg = ShingleConfig { n: 2, ..Default::default() };
        let sig = u32_rows(&signatures(owned.view(), &cfg, &Scheme::fast(p, 3).unwrap()).unwrap());
        let eligible: Vec<bool> = (0..docs.len()).map(|i| sig[i * p..(i + 1) * p].iter().any(|&v| v != u32::MAX)).collect();
        let keys = band_keys(SigView::U32(&sig), p, bands, rows).unwrap();
        let groups = candidate_groups(&keys, bands, &eligible).unwrap();
        let (roots, _, edges, _) = components(docs.len(), &groups, None).unwrap();
        prop_assert_eq!(&roots, &brute_components(&sig, p, bands, rows, &eligible));
        // the joining edges form a spanning forest: n - #components edges
        let ncomp = roots.iter().enumerate().filter(|(i, &r)| *i as u32 == r).count();
        prop_assert_eq!(edges.a.len(), docs.len() - ncomp);
        // keep: exactly one survivor per component, the one with the best score
        let scores: Vec<f64> = docs.iter().map(|d| d.len() as f64).collect();
        let kept = kept_per_doc(&roots, Some(&scores)).unwrap();
        for i in 0..docs.len() {
            prop_assert_eq!(roots[kept[i] as usize], roots[i]);
            prop_assert!(scores[kept[i] as usize] >= scores[i]);
        }
    }

    #[test]
    fn verified_edges_meet_threshold(docs in prop::collection::vec(words(), 1..20)) {
        let p = 16;
        let owned: OwnedDocs = docs.iter().collect();
        let cfg = ShingleConfig { n: 2, ..Default::default() };
        let sig = u32_rows(&signatures(owned.view(), &cfg, &Scheme::fast(p, 9).unwrap()).unwrap());
        let eligible = vec![true; docs.len()];
        let keys = band_keys(SigView::U32(&sig), p, 8, 2).unwrap();
        let groups = candidate_groups(&keys, 8, &eligible).unwrap();
        let v = Verify { docs: owned.view(), cfg: &cfg, threshold: 0.6 };
        let (_, sets, edges, _) = components(docs.len(), &groups, Some(&v)).unwrap();
        let sets = sets.unwrap();
        let mut scratch = Scratch::new();
        let mut s = Vec::new();
        for ((&a, &b), &j) in edges.a.iter().zip(&edges.b).zip(&edges.jaccard) {
            prop_assert!(j >= 0.6);
            shingle_hash_set(&docs[a as usize], &cfg, &mut scratch, &mut s).unwrap();
            prop_assert_eq!(&s, &sets[a as usize]);
            prop_assert_eq!(jaccard_sorted(&sets[a as usize], &sets[b as usize]), j);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Star clusters: every member is within the threshold of its centre (exact Jaccard with
    /// verification, the estimate without); the centre is the member the keep order prefers;
    /// two centres sharing a candidate group are below the threshold; any thread count gives
    /// the same stars.
    #[test]
    fn star_members_are_similar_to_their_centre(docs in prop::collection::vec(words(), 1..25), t in 0.3f64..0.9) {
        let p = 16;
        let owned: OwnedDocs = docs.iter().collect();
        let cfg = ShingleConfig { n: 2, ..Default::default() };
        let sig = u32_rows(&signatures(owned.view(), &cfg, &Scheme::fast(p, 4).unwrap()).unwrap());
        let eligible: Vec<bool> = (0..docs.len()).map(|i| sig[i * p..(i + 1) * p].iter().any(|&v| v != u32::MAX)).collect();
        let keys = band_keys(SigView::U32(&sig), p, 16, 1).unwrap();
        let groups = candidate_groups(&keys, 16, &eligible).unwrap();
        let scores: Vec<f64> = docs.iter().map(|d| d.len() as f64).collect();
        let order = keep_order(docs.len(), Some(&scores)).unwrap();
        let rank: Vec<usize> = { let mut r = vec![0; docs.len()]; for (k, &d) in order.iter().enumerate() { r[d as usize] = k; } r };
        let v = Verify { docs: owned.view(), cfg: &cfg, threshold: t };
        let exact = Confirm::Exact(&v);
        let est = Confirm::Estimate { sig: SigView::U32(&sig), num_perm: p, threshold: t };
        let mut scratch = Scratch::new();
        let sets: Vec<Vec<u64>> = docs.iter().map(|d| { let mut s = Vec::new(); shingle_hash_set(d, &cfg, &mut scratch, &mut s).unwrap(); s }).collect();
        for (confirm, is_exact) in [(&exact, true), (&est, false)] {
            let sim = |a: usize, b: usize| if is_exact { jaccard_sorted(&sets[a], &sets[b]) } else { SigView::U32(&sig).estimate(p, a, b) };
            let st = star_clusters(docs.len(), &groups, confirm, &order, &|_| {}).unwrap();
            for i in 0..docs.len() {
                let c = st.kept[i] as usize;
                prop_assert_eq!(st.kept[c] as usize, c);
                if c != i {
                    prop_assert!(sim(i, c) >= t, "doc {} centre {} sim {}", i, c, sim(i, c));
                    prop_assert!(rank[c] < rank[i]);
                }
                prop_assert!(st.roots[i] as usize <= i && st.kept[st.roots[i] as usize] as usize == c);
            }
            for g in 0..groups.len() {
                let m = groups.group(g);
                for (x, &a) in m.iter().enumerate() {
                    for &b in &m[..x] {
                        let (a, b) = (a as usize, b as usize);
                        if st.kept[a] as usize == a && st.kept[b] as usize == b {
                            prop_assert!(sim(a, b) < t, "centres {} and {} are similar", a, b);
                        }
                    }
                }
            }
            let other = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap()
                .install(|| star_clusters(docs.len(), &groups, confirm, &order, &|_| {}).unwrap());
            prop_assert_eq!(&other.kept, &st.kept);
            prop_assert_eq!((&other.edges.a, &other.edges.b), (&st.edges.a, &st.edges.b));
        }
    }
}

#[test]
fn signatures_identical_at_any_thread_count() {
    let texts: Vec<String> = (0..500)
        .map(|i| format!("document {i} shares most words with its neighbours, word {} and {}", i % 7, i % 13))
        .collect();
    let owned: OwnedDocs = texts.iter().collect();
    let cfg = ShingleConfig { n: 3, ..Default::default() };
    for scheme in [Scheme::fast(64, 5).unwrap(), Scheme::DatasketchLegacy { a: (1..=64).collect(), b: (0..64).collect() }] {
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| signatures(owned.view(), &cfg, &scheme).unwrap())
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }
}
