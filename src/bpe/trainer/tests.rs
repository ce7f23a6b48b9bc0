use super::*;
use proptest::prelude::*;

/// Slow reference: recompute every pair count from scratch before each merge.
fn naive(words: &[(Vec<u8>, u64)], vocab_size: usize, min_frequency: u64) -> (Vec<Vec<u8>>, Vec<(u32, u32)>) {
    let order = byte_order();
    let mut tokens: Vec<Vec<u8>> = order.iter().map(|&b| vec![b]).collect();
    let mut id_of = std::collections::HashMap::new();
    for (i, t) in tokens.iter().enumerate() {
        id_of.insert(t.clone(), i as u32);
    }
    let mut ws: Vec<(Vec<u32>, u64)> = words.iter().map(|(w, c)| (w.iter().map(|b| id_of[&vec![*b]]).collect(), *c)).collect();
    let mut merges = Vec::new();
    while tokens.len() < vocab_size {
        let mut counts: std::collections::BTreeMap<(u32, u32), u64> = Default::default();
        for (w, c) in &ws {
            for p in w.windows(2) {
                *counts.entry((p[0], p[1])).or_default() += c;
            }
        }
        // max count, then smallest pair
        let best = counts.iter().fold(None, |best: Option<((u32, u32), u64)>, (&p, &c)| match best {
            Some((_, bc)) if bc >= c => best,
            _ => Some((p, c)),
        });
        let Some(((a, b), c)) = best else { break };
        if c < min_frequency.max(1) {
            break;
        }
        let mut m = tokens[a as usize].clone();
        m.extend_from_slice(&tokens[b as usize]);
        let t = match id_of.get(&m) {
            Some(&t) => t,
            None => {
                let t = tokens.len() as u32;
                id_of.insert(m.clone(), t);
                tokens.push(m);
                t
            }
        };
        merges.push((a, b));
        for (w, _) in ws.iter_mut() {
            let mut out = Vec::with_capacity(w.len());
            let mut i = 0;
            while i < w.len() {
                if i + 1 < w.len() && w[i] == a && w[i + 1] == b {
                    out.push(t);
                    i += 2;
                } else {
                    out.push(w[i]);
                    i += 1;
                }
            }
            *w = out;
        }
    }
    let mut last = std::collections::HashMap::new();
    for (i, m) in merges.iter().enumerate() {
        last.insert(*m, i);
    }
    let merges = merges.iter().enumerate().filter(|(i, m)| last[*m] == *i).map(|(_, m)| *m).collect();
    (tokens, merges)
}

fn cfg(vocab_size: usize) -> TrainConfig {
    TrainConfig { vocab_size, min_frequency: 0, special_tokens: vec![] }
}

fn boxed(words: &[(Vec<u8>, u64)]) -> Vec<(Box<[u8]>, u64)> {
    words.iter().map(|(w, c)| (w.clone().into_boxed_slice(), *c)).collect()
}

#[allow(clippy::type_complexity)] // the closure type is spelled out once, here
fn whitespace() -> FnSplitter<impl Fn(&str, &mut dyn FnMut(usize, usize)) -> Result<()> + Sync> {
    FnSplitter(|text: &str, f: &mut dyn FnMut(usize, usize)| {
        // " word" pieces, like GPT-2: a space attaches to the following word.
        let b = text.as_bytes();
        let mut start = 0;
        for (i, &c) in b.iter().enumerate().skip(1) {
            if c == b' ' {
                f(start, i);
                start = i;
            }
        }
        if start < b.len() {
            f(start, b.len());
        }
        Ok(())
    })
}

#[test]
fn byte_level_alphabet() {
    assert_eq!(byte_level_char(b'!'), '!');
    assert_eq!(byte_level_char(0), 'Ā');
    assert_eq!(byte_level_char(b' '), 'Ġ');
    assert_eq!(byte_level_char(0xAD), 'Ń');
    let o = byte_order();
    assert_eq!(o[0], b'!');
    assert_eq!(o[93], b'~');
    assert_eq!(o[188], 0);
    let mut s = o.to_vec();
    s.sort();
    assert_eq!(s, (0..=255u8).collect::<Vec<_>>());
}

#[test]
fn hf_documented_example() {
    // The word table of HF tokenizers' trainer unit test, min_frequency 2: merges re, are, is.
    let words: Vec<(Vec<u8>, u64)> = [
        ("roses", 1), ("are", 2), ("red", 1), ("voilets", 1), ("blue", 1), ("BERT", 1),
        ("is", 2), ("big", 1), ("and", 1), ("so", 1), ("GPT-2", 1),
    ]
    .iter()
    .map(|(w, c)| (w.as_bytes().to_vec(), *c))
    .collect();
    let t = train(&boxed(&words), &TrainConfig { vocab_size: 30000, min_frequency: 2, special_tokens: vec![] }, None).unwrap();
    let m: Vec<(Vec<u8>, Vec<u8>)> = t.merge_bytes();
    assert_eq!(m, vec![(b"r".to_vec(), b"e".to_vec()), (b"a".to_vec(), b"re".to_vec()), (b"i".to_vec(), b"s".to_vec())]);
    assert_eq!(t.tokens.len(), 259);
}

#[test]
fn overlapping_pairs_counted_like_windows() {
    // "aaaa" x1: (a,a) has 3 windows; after the merge the word is "aa aa".
    let t = train(&boxed(&[(b"aaaa".to_vec(), 1)]), &cfg(258), None).unwrap();
    assert_eq!(t.merge_bytes(), vec![(b"a".to_vec(), b"a".to_vec()), (b"aa".to_vec(), b"aa".to_vec())]);
}

#[test]
fn specials_appended_and_vocab_size_respected() {
    let words = boxed(&[(b"hello".to_vec(), 5), (b" world".to_vec(), 3)]);
    let c = TrainConfig { vocab_size: 262, min_frequency: 0, special_tokens: vec!["<|endoftext|>".into(), "<pad>".into()] };
    let t = train(&words, &c, None).unwrap();
    assert_eq!(t.tokens.len(), 260);
    assert_eq!(t.special_tokens, vec![("<|endoftext|>".to_string(), 260), ("<pad>".to_string(), 261)]);
}

#[test]
fn bad_input() {
    let words = boxed(&[(b"ab".to_vec(), 1)]);
    let e = train(&words, &cfg(255), None).unwrap_err().to_string();
    assert!(e.contains("vocab_size 255 is too small") && e.contains("256"), "{e}");
    let c = TrainConfig { vocab_size: 257, min_frequency: 0, special_tokens: vec!["a".into(), "b".into()] };
    let e = train(&words, &c, None).unwrap_err().to_string();
    assert!(e.contains("2 special tokens") && e.contains("258"), "{e}");
    let e = train::<&[u8]>(&[], &cfg(1000), None).unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
    let c = TrainConfig { vocab_size: 300, min_frequency: 0, special_tokens: vec!["x".into(), "x".into()] };
    assert!(train(&words, &c, None).is_err());
}

#[test]
fn min_frequency_stops() {
    let words = boxed(&[(b"abab".to_vec(), 3), (b"cd".to_vec(), 2)]);
    let c = TrainConfig { vocab_size: 1000, min_frequency: 3, special_tokens: vec![] };
    let t = train(&words, &c, None).unwrap();
    // (a,b) count 6 -> ab; (ab,ab) count 3 -> abab; (c,d) count 2 < 3 stops.
    assert_eq!(t.merge_bytes(), vec![(b"a".to_vec(), b"b".to_vec()), (b"ab".to_vec(), b"ab".to_vec())]);
}

#[test]
fn counting_is_batch_and_thread_invariant() {
    let texts: Vec<String> = (0..3000).map(|i| format!("doc {} has words like x{} and y{} ", i, i % 17, i % 5)).collect();
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let sp = whitespace();
    let mut one = WordCounter::new();
    let docs: crate::text::corpus::OwnedDocs = refs.iter().collect();
    one.add_docs(&docs.view(), &sp, 0).unwrap();
    let mut batched = WordCounter::new();
    for (k, ch) in refs.chunks(77).enumerate() {
        let d: crate::text::corpus::OwnedDocs = ch.iter().collect();
        batched.add_docs(&d.view(), &sp, (k * 77) as u64).unwrap();
    }
    assert_eq!(one.to_sorted(None), batched.to_sorted(None));
    assert_eq!(one.get(b" words"), Some(3000));
    let pool1 = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let pool3 = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    let a = pool1.install(|| train_texts(&refs, &sp, &cfg(400)).unwrap());
    let b = pool3.install(|| train_texts(&refs, &sp, &cfg(400)).unwrap());
    assert_eq!(a, b);
}

#[test]
fn max_word_count_keeps_most_frequent() {
    let mut wc = WordCounter::new();
    wc.add_word(b"a", 5);
    wc.add_word(b"b", 7);
    wc.add_word(b"c", 5);
    wc.add_word(b"d", 1);
    let v = wc.to_sorted(Some(2));
    assert_eq!(v, vec![(&b"a"[..], 5), (&b"b"[..], 7)]);
}

#[test]
fn invalid_utf8_names_document() {
    let mut d = crate::text::corpus::OwnedDocs::new();
    d.push(b"fine");
    d.push(b"bad \xff here");
    let e = WordCounter::new().add_docs(&d.view(), &whitespace(), 10).unwrap_err().to_string();
    assert!(e.contains("document 11") && e.contains("byte 4"), "{e}");
}

/// Python standard library sources: real text present wherever Python is installed.
fn stdlib_texts(max_bytes: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut total = 0;
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib")
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("python3"))).collect())
        .unwrap_or_default();
    dirs.sort();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        let mut files: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "py")).collect();
        files.sort();
        for f in files {
            if let Ok(s) = std::fs::read_to_string(&f) {
                total += s.len();
                out.push(s);
                if total > max_bytes {
                    return out;
                }
            }
        }
    }
    out
}

#[test]
fn real_text_matches_reference_and_threads() {
    let texts = stdlib_texts(400_000);
    if texts.is_empty() {
        eprintln!("no Python stdlib found; skipping");
        return;
    }
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let sp = super::super::Pretokenizer::new(super::super::pretok::CL100K_PATTERN).unwrap();
    let mut wc = WordCounter::new();
    let docs: crate::text::corpus::OwnedDocs = refs.iter().collect();
    wc.add_docs(&docs.view(), &sp, 0).unwrap();
    let words = wc.to_sorted(None);
    let plain: Vec<(Vec<u8>, u64)> = words.iter().map(|(w, c)| (w.to_vec(), *c)).collect();
    let vs = 256 + 300;
    let (rt, rm) = naive(&plain, vs, 0);
    let pool1 = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let pool2 = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let a = pool1.install(|| train(&words, &cfg(vs), None).unwrap());
    let b = pool2.install(|| train(&words, &cfg(vs), None).unwrap());
    assert_eq!(a, b);
    assert_eq!(a.tokens, rt);
    assert_eq!(a.merges, rm);
    // every merge rewritten in parallel / every merge sequential: same result
    let p = pool2.install(|| train_with(&words, &cfg(vs), None, 1).unwrap());
    let q = pool2.install(|| train_with(&words, &cfg(vs), None, usize::MAX).unwrap());
    assert_eq!(p, a);
    assert_eq!(q, a);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]
    #[test]
    fn matches_naive_reference(
        words in proptest::collection::vec((proptest::collection::vec(0u8..4, 1..12), 1u64..5), 1..30),
        extra in 0usize..40,
        min_frequency in 0u64..3,
    ) {
        // Tiny alphabet: many ties, overlapping pairs and tokens reachable by several merges.
        let words: Vec<(Vec<u8>, u64)> = words.into_iter().map(|(w, c)| (w.into_iter().map(|b| b"ab \n"[b as usize]).collect(), c)).collect();
        let mut wc = WordCounter::new();
        for (w, c) in &words { wc.add_word(w, *c); }
        let table = wc.to_sorted(None);
        let plain: Vec<(Vec<u8>, u64)> = table.iter().map(|(w, c)| (w.to_vec(), *c)).collect();
        let (rt, rm) = naive(&plain, 256 + extra, min_frequency);
        let c = TrainConfig { vocab_size: 256 + extra, min_frequency, special_tokens: vec![] };
        let t = train(&table, &c, None).unwrap();
        prop_assert_eq!(&t.tokens, &rt);
        prop_assert_eq!(&t.merges, &rm);
        prop_assert_eq!(&train_with(&table, &c, None, 1).unwrap(), &t);
        // Reversed input order gives the same result.
        let mut rev = table.clone();
        rev.reverse();
        prop_assert_eq!(train(&rev, &c, None).unwrap(), t);
    }
}
