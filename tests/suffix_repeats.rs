//! Differential tests of the suffix-array repeat finder against a brute-force reference.

use std::collections::HashMap;

use gristmill::suffix::repeats::{contamination_symbols, find_repeats_symbols, Keep, RepeatOptions};
use gristmill::suffix::sa::{suffix_array_with_plcp, IndexWidth};
use gristmill::suffix::{contamination, find_repeats, find_repeats_in_parts, find_repeats_limited, find_repeats_tokens, token_spans_to_bytes, trim_docs, Span};
use gristmill::text::corpus::OwnedDocs;
use proptest::prelude::*;

/// Brute force: per-position removal flags and occurrence counts, then maximal runs. A
/// window occurrence is a removal window when its content occurs at least twice (keep none)
/// or when the same content occurs at an earlier corpus position (keep first).
fn reference<T: std::hash::Hash + Eq>(docs: &[Vec<T>], l: usize, keep: Keep) -> Vec<Span> {
    // occurrences of each content, pushed in corpus order
    let mut classes: HashMap<&[T], Vec<(usize, usize)>> = HashMap::new();
    for (d, doc) in docs.iter().enumerate() {
        if doc.len() >= l {
            for p in 0..=doc.len() - l {
                classes.entry(&doc[p..p + l]).or_default().push((d, p));
            }
        }
    }
    let mut cov: Vec<Vec<u64>> = docs.iter().map(|d| vec![0; d.len()]).collect(); // max occ, 0 = kept
    for occs in classes.values() {
        if occs.len() < 2 {
            continue;
        }
        let skip = usize::from(keep == Keep::First);
        for &(d, p) in &occs[skip..] {
            for x in &mut cov[d][p..p + l] {
                *x = (*x).max(occs.len() as u64);
            }
        }
    }
    runs(&cov)
}

fn runs(cov: &[Vec<u64>]) -> Vec<Span> {
    let mut out = Vec::new();
    for (d, c) in cov.iter().enumerate() {
        let mut cur: Option<Span> = None;
        for i in 0..=c.len() {
            let removed = i < c.len() && c[i] > 0;
            if removed {
                let o = c[i];
                cur = Some(match cur {
                    None => Span { doc: d, start: i, end: i + 1, occurrences: o },
                    Some(s) => Span { end: i + 1, occurrences: s.occurrences.max(o), ..s },
                });
            } else if let Some(s) = cur.take() {
                out.push(s);
            }
        }
    }
    out
}

fn reference_contamination(train: &[Vec<u8>], eval: &[Vec<u8>], l: usize) -> Vec<Span> {
    let mut counts: HashMap<&[u8], u64> = HashMap::new();
    for doc in train {
        if doc.len() >= l {
            for p in 0..=doc.len() - l {
                *counts.entry(&doc[p..p + l]).or_default() += 1;
            }
        }
    }
    let mut cov: Vec<Vec<u64>> = eval.iter().map(|d| vec![0; d.len()]).collect();
    for (d, doc) in eval.iter().enumerate() {
        if doc.len() >= l {
            for p in 0..=doc.len() - l {
                if let Some(&c) = counts.get(&doc[p..p + l]) {
                    for x in &mut cov[d][p..p + l] {
                        *x = (*x).max(c);
                    }
                }
            }
        }
    }
    runs(&cov)
}

fn bounds(docs: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
    let mut text = Vec::new();
    let mut b = vec![0];
    for d in docs {
        text.extend_from_slice(d);
        b.push(text.len());
    }
    (text, b)
}

fn opts(l: usize, keep: Keep, threads: usize, width: IndexWidth) -> RepeatOptions {
    RepeatOptions { min_length: l, keep, threads, width }
}

fn docs_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    // Tiny alphabets make long repeats likely; empty documents included.
    prop::collection::vec(prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c']), 0..40), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn matches_brute_force(docs in docs_strategy(), l in 1usize..9, first in any::<bool>(), w64 in any::<bool>()) {
        let longest = docs.iter().map(|d| d.len()).max().unwrap_or(0);
        prop_assume!(l <= longest);
        let keep = if first { Keep::First } else { Keep::None };
        let width = if w64 { IndexWidth::W64 } else { IndexWidth::Auto };
        let (text, b) = bounds(&docs);
        let (got, _) = find_repeats_symbols::<u8>(&text, &b, &opts(l, keep, 1, width)).unwrap();
        prop_assert_eq!(got, reference(&docs, l, keep));
    }

    #[test]
    fn contamination_matches_brute_force(train in docs_strategy(), eval in docs_strategy(), l in 1usize..9) {
        prop_assume!(l <= train.iter().map(|d| d.len()).max().unwrap_or(0));
        prop_assume!(l <= eval.iter().map(|d| d.len()).max().unwrap_or(0));
        let (tt, tb) = bounds(&train);
        let (et, eb) = bounds(&eval);
        let (got, _) = contamination_symbols::<u8>(&tt, &tb, &et, &eb, &opts(l, Keep::None, 1, IndexWidth::Auto)).unwrap();
        prop_assert_eq!(got, reference_contamination(&train, &eval, l));
    }

    #[test]
    fn token_symbols_match_brute_force(docs in prop::collection::vec(prop::collection::vec(0u16..4, 0..30), 1..8), l in 1usize..6) {
        prop_assume!(l <= docs.iter().map(|d| d.len()).max().unwrap_or(0));
        // Reference on a byte re-encoding of the same symbols (alphabet < 256).
        let bytes: Vec<Vec<u8>> = docs.iter().map(|d| d.iter().map(|&t| t as u8).collect()).collect();
        let mut text = Vec::new();
        let mut b = vec![0];
        for d in &docs { text.extend_from_slice(d); b.push(text.len()); }
        let (got, _) = find_repeats_symbols::<u16>(&text, &b, &opts(l, Keep::First, 1, IndexWidth::Auto)).unwrap();
        prop_assert_eq!(got, reference(&bytes, l, Keep::First));
    }

    #[test]
    fn suffix_array_is_sorted(text in prop::collection::vec(0u8..4, 0..200)) {
        for threads in [1, 2] {
            let (sa, plcp, _) = suffix_array_with_plcp::<u8, i32>(&text, threads).unwrap();
            let mut naive: Vec<usize> = (0..text.len()).collect();
            naive.sort_by(|&a, &b| text[a..].cmp(&text[b..]));
            prop_assert_eq!(sa.iter().map(|&x| x as usize).collect::<Vec<_>>(), naive.clone());
            for i in 0..text.len() {
                let lcp = if i == 0 { 0 } else {
                    text[naive[i]..].iter().zip(&text[naive[i - 1]..]).take_while(|(a, b)| a == b).count()
                };
                prop_assert_eq!(plcp[naive[i]] as usize, lcp);
            }
            let (sa64, _, _) = suffix_array_with_plcp::<u8, i64>(&text, threads).unwrap();
            prop_assert!(sa64.iter().map(|&x| x as usize).eq(naive.iter().copied()));
        }
    }
}

fn utf8_docs() -> Vec<Vec<u8>> {
    let a = "préambule — «ça» 中文字符 emoji 🎉🎉 and more text ".repeat(3);
    vec![
        format!("x{a}y").into_bytes(),
        format!("zz{a}").into_bytes(),
        "🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉".as_bytes().to_vec(),
        "🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉".as_bytes().to_vec(),
        Vec::new(),
    ]
}

#[test]
fn utf8_snapping_shrinks_inward_and_never_cuts_characters() {
    let docs = utf8_docs();
    let owned: OwnedDocs = docs.iter().collect();
    for l in [3usize, 5, 7, 16, 40] {
        for keep in [Keep::None, Keep::First] {
            let (spans, _) = find_repeats(owned.view(), &opts(l, keep, 1, IndexWidth::Auto)).unwrap();
            let raw = reference(&docs, l, keep);
            let expect: Vec<Span> = raw
                .into_iter()
                .filter_map(|s| {
                    let d = std::str::from_utf8(&docs[s.doc]).unwrap();
                    let mut st = s.start;
                    while !d.is_char_boundary(st) {
                        st += 1;
                    }
                    let mut en = s.end;
                    while !d.is_char_boundary(en) {
                        en -= 1;
                    }
                    (st < en).then_some(Span { start: st, end: en, ..s })
                })
                .collect();
            assert_eq!(spans, expect, "l={l} keep={keep:?}");
            let (data, offs) = trim_docs(owned.view(), &spans).unwrap();
            for w in offs.windows(2) {
                assert!(std::str::from_utf8(&data[w[0] as usize..w[1] as usize]).is_ok());
            }
        }
    }
}

#[test]
fn keep_first_keeps_first_copy_of_long_passage_intact() {
    let passage = b"The quick brown fox jumps over the lazy dog, again and again and again.".to_vec();
    let mut d0 = b"intro one:".to_vec();
    d0.extend_from_slice(&passage);
    d0.extend_from_slice(b"!outro one");
    let mut d1 = b"second doc;".to_vec();
    d1.extend_from_slice(&passage);
    d1.extend_from_slice(b"?tail two");
    let docs = [d0.clone(), d1.clone(), passage.clone()];
    let owned: OwnedDocs = docs.iter().collect();
    let (spans, _) = find_repeats(owned.view(), &opts(20, Keep::First, 0, IndexWidth::Auto)).unwrap();
    // doc 0 untouched; doc 1 loses exactly the passage; doc 2 is entirely removed.
    assert_eq!(
        spans,
        vec![
            Span { doc: 1, start: 11, end: 11 + passage.len(), occurrences: 3 },
            Span { doc: 2, start: 0, end: passage.len(), occurrences: 3 },
        ]
    );
    let (spans_none, _) = find_repeats(owned.view(), &opts(20, Keep::None, 0, IndexWidth::Auto)).unwrap();
    assert_eq!(spans_none.len(), 3);
    assert_eq!(spans_none[0], Span { doc: 0, start: 10, end: 10 + passage.len(), occurrences: 3 });
}

#[test]
fn repeats_never_cross_document_boundaries() {
    // "abc|def" + "abcdef": the window "cde" exists only across the boundary of docs 0/1.
    let docs = [b"abc".to_vec(), b"def".to_vec(), b"xabcdefx".to_vec()];
    let owned: OwnedDocs = docs.iter().collect();
    let (spans, _) = find_repeats(owned.view(), &opts(3, Keep::None, 1, IndexWidth::Auto)).unwrap();
    assert_eq!(
        spans,
        vec![
            Span { doc: 0, start: 0, end: 3, occurrences: 2 },
            Span { doc: 1, start: 0, end: 3, occurrences: 2 },
            Span { doc: 2, start: 1, end: 7, occurrences: 2 },
        ]
    );
    let (spans, _) = find_repeats(owned.view(), &opts(4, Keep::None, 1, IndexWidth::Auto)).unwrap();
    assert!(spans.is_empty());
}

#[test]
fn bad_min_length_is_a_clear_error() {
    let owned: OwnedDocs = ["hello", "world"].into_iter().collect();
    let e = find_repeats(owned.view(), &opts(0, Keep::None, 1, IndexWidth::Auto)).unwrap_err();
    assert!(e.to_string().contains("at least 1"), "{e}");
    let e = find_repeats(owned.view(), &opts(6, Keep::None, 1, IndexWidth::Auto)).unwrap_err();
    assert!(e.to_string().contains("larger than every document"), "{e}");
    let e = contamination(owned.view(), owned.view(), &opts(9, Keep::None, 1, IndexWidth::Auto)).unwrap_err();
    assert!(e.to_string().contains("evaluation"), "{e}");
}

#[test]
fn real_text_thread_count_and_width_determinism() {
    let src = include_str!("../src/suffix/repeats.rs").as_bytes().to_vec();
    let sa_src = include_str!("../src/suffix/sa.rs").as_bytes().to_vec();
    let docs: Vec<Vec<u8>> = src.chunks(700).chain(sa_src.chunks(500)).chain(src.chunks(300)).map(|c| c.to_vec()).collect();
    let (text, b) = bounds(&docs);
    for keep in [Keep::None, Keep::First] {
        let (base, _) = find_repeats_symbols::<u8>(&text, &b, &opts(25, keep, 1, IndexWidth::Auto)).unwrap();
        assert_eq!(base, reference(&docs, 25, keep));
        assert!(!base.is_empty());
        for (threads, width) in [(2, IndexWidth::Auto), (0, IndexWidth::W64), (2, IndexWidth::W64)] {
            let (got, _) = find_repeats_symbols::<u8>(&text, &b, &opts(25, keep, threads, width)).unwrap();
            assert_eq!(got, base);
        }
    }
}

#[test]
fn trim_rejects_bad_spans() {
    let owned: OwnedDocs = ["hello", "world"].into_iter().collect();
    let bad = [Span { doc: 0, start: 2, end: 9, occurrences: 1 }];
    assert!(trim_docs(owned.view(), &bad).is_err());
    let unsorted = [Span { doc: 1, start: 0, end: 1, occurrences: 1 }, Span { doc: 0, start: 0, end: 1, occurrences: 1 }];
    assert!(trim_docs(owned.view(), &unsorted).is_err());
    let ok = [Span { doc: 0, start: 1, end: 3, occurrences: 2 }];
    let (data, offs) = trim_docs(owned.view(), &ok).unwrap();
    assert_eq!(data, b"hloworld");
    assert_eq!(offs, vec![0, 3, 8]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    /// u32 token ids: a small alphabet (16-bit path) and a huge sparse one (> 65536 distinct
    /// ids: libsais' integer path) both match the brute force.
    #[test]
    fn u32_tokens_match_brute_force(
        docs in prop::collection::vec(prop::collection::vec(0u32..5, 0..30), 1..8),
        l in 1usize..6,
        first in any::<bool>(),
        big in any::<bool>(),
    ) {
        prop_assume!(l <= docs.iter().map(|d| d.len()).max().unwrap_or(0));
        let keep = if first { Keep::First } else { Keep::None };
        let mut ids = Vec::new();
        let mut b = vec![0];
        for d in &docs { ids.extend_from_slice(d); b.push(ids.len()); }
        if big {
            // spread the ids out and append a filler document with 70,000 distinct ids
            for x in ids.iter_mut() { *x = *x * 1_000_003 + 7; }
            let filler: Vec<u32> = (0..70_000u32).map(|i| 3_000_000_000 + i).collect();
            ids.extend_from_slice(&filler);
            b.push(ids.len());
        }
        let (got, _) = find_repeats_tokens(&ids, &b, &opts(l, keep, 1, IndexWidth::Auto)).unwrap();
        let mut all: Vec<Vec<u32>> = docs.clone();
        if big {
            all = all.into_iter().map(|d| d.into_iter().map(|x| x * 1_000_003 + 7).collect()).collect();
            all.push((0..70_000u32).map(|i| 3_000_000_000 + i).collect());
        }
        prop_assert_eq!(got, reference(&all, l, keep));
    }
}

#[test]
fn token_spans_map_to_bytes() {
    // doc 0: tokens "ab" "c" "de" (bytes 0,2,3; 5 bytes); doc 1: "ab" "c" (bytes 0,2; 3 bytes)
    let bounds = [0usize, 3, 5];
    let starts = [0u64, 2, 3, 0, 2];
    let doc_bytes = [5u64, 3];
    let spans = [Span { doc: 0, start: 0, end: 2, occurrences: 2 }, Span { doc: 1, start: 1, end: 2, occurrences: 2 }];
    let got = token_spans_to_bytes(&spans, &bounds, &starts, &doc_bytes).unwrap();
    assert_eq!(got, vec![Span { doc: 0, start: 0, end: 3, occurrences: 2 }, Span { doc: 1, start: 2, end: 3, occurrences: 2 }]);
    assert!(token_spans_to_bytes(&spans, &bounds, &starts[..4], &doc_bytes).is_err());
    let bad = [0u64, 4, 3, 0, 2];
    let one = [Span { doc: 0, start: 1, end: 2, occurrences: 2 }];
    assert!(token_spans_to_bytes(&one, &bounds, &bad, &doc_bytes).is_err());
    let too_long = [0u64, 2, 9, 0, 2];
    assert!(token_spans_to_bytes(&one, &bounds, &too_long, &doc_bytes).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The limited-memory (hash-partitioned) path gives exactly the in-memory spans.
    #[test]
    fn partitioned_equals_in_memory(docs in prop::collection::vec(
            prop::collection::vec(prop::sample::select(b"ab\xc3\xa9 ".to_vec()), 0..40), 1..10),
        l in 1usize..9, first in any::<bool>(), parts in 1u64..9) {
        prop_assume!(l <= docs.iter().map(|d| d.len()).max().unwrap_or(0));
        let keep = if first { Keep::First } else { Keep::None };
        let owned: OwnedDocs = docs.iter().collect();
        let o = opts(l, keep, 1, IndexWidth::Auto);
        let (mem, _) = find_repeats(owned.view(), &o).unwrap();
        let (ext, _) = find_repeats_in_parts(owned.view(), &o, parts).unwrap();
        prop_assert_eq!(ext, mem);
    }
}

#[test]
fn memory_limit_too_small_is_an_error_and_real_text_matches() {
    let src = include_str!("../src/suffix/repeats.rs").as_bytes().to_vec();
    let docs: Vec<Vec<u8>> = src.chunks(400).chain(src.chunks(250)).map(|c| c.to_vec()).collect();
    let owned: OwnedDocs = docs.iter().collect();
    let o = opts(30, Keep::First, 1, IndexWidth::Auto);
    let e = find_repeats_limited(owned.view(), &o, 1000).unwrap_err();
    assert!(e.to_string().contains("memory_limit"), "{e}");
    let (mem, _) = find_repeats(owned.view(), &o).unwrap();
    let (lim, _) = find_repeats_limited(owned.view(), &o, 4 << 20).unwrap();
    assert_eq!(lim, mem);
    for parts in [2, 7, 31] {
        assert_eq!(find_repeats_in_parts(owned.view(), &o, parts).unwrap().0, mem);
    }
}

/// Long windows: run boundaries come from libsais' PLCP above 512 symbols and from direct
/// window comparisons up to it; both agree with the brute force.
#[test]
fn long_min_length_on_both_sides_of_the_direct_limit() {
    let src = include_str!("../src/suffix/repeats.rs").as_bytes();
    let mut docs: Vec<Vec<u8>> = src.chunks(2500).map(|c| c.to_vec()).collect();
    let copies: Vec<Vec<u8>> = docs.iter().step_by(3).map(|d| [b"copy:".as_slice(), d, d].concat()).collect();
    docs.extend(copies);
    let (text, b) = bounds(&docs);
    for l in [300usize, 512, 513, 800] {
        for keep in [Keep::None, Keep::First] {
            let want = reference(&docs, l, keep);
            assert!(!want.is_empty());
            for width in [IndexWidth::Auto, IndexWidth::W64] {
                let (got, _) = find_repeats_symbols::<u8>(&text, &b, &opts(l, keep, 2, width)).unwrap();
                assert_eq!(got, want, "l={l} keep={keep:?}");
            }
            // token ids, with more than 65,536 distinct ones (libsais' integer-alphabet path)
            let mut ids: Vec<u32> = text.iter().map(|&x| x as u32 * 1000).collect();
            ids.extend(1_000_000..1_070_000u32);
            let mut tb = b.clone();
            tb.push(ids.len());
            assert_eq!(find_repeats_tokens(&ids, &tb, &opts(l, keep, 1, IndexWidth::Auto)).unwrap().0, want);
        }
    }
}
