//! The promise of `keep first`, checked directly on the output (not by re-implementing the
//! marking rule): after removal, no `L`-window lying wholly inside kept text occurs twice in
//! the corpus, and every removed symbol lies inside a later copy of a window — one whose
//! content also occurs at an earlier corpus position (no over-removal). Also for
//! contamination: no kept eval window occurs in the training corpus, and every removed eval
//! symbol lies in a window that does. Bytes and tokens, random and real periodic text, and
//! the in-memory and memory-limited paths side by side.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::path::PathBuf;

use gristmill::suffix::repeats::{contamination_symbols, find_repeats_symbols, Keep, RepeatOptions};
use gristmill::suffix::sa::IndexWidth;
use gristmill::suffix::{find_repeats, find_repeats_in_parts, find_repeats_limited, find_repeats_tokens, Span};
use gristmill::text::corpus::OwnedDocs;
use proptest::prelude::*;

fn opts(l: usize, keep: Keep, width: IndexWidth) -> RepeatOptions {
    RepeatOptions { min_length: l, keep, threads: 1, width }
}

fn flat<T: Clone>(docs: &[Vec<T>]) -> (Vec<T>, Vec<usize>) {
    let mut text = Vec::new();
    let mut b = vec![0];
    for d in docs {
        text.extend_from_slice(d);
        b.push(text.len());
    }
    (text, b)
}

/// `removed[d][i]`: whether symbol `i` of document `d` is inside one of `spans`.
fn removed_mask(lens: &[usize], spans: &[Span]) -> Vec<Vec<bool>> {
    let mut m: Vec<Vec<bool>> = lens.iter().map(|&n| vec![false; n]).collect();
    for s in spans {
        assert!(s.start < s.end && s.end <= lens[s.doc], "bad span {s:?}");
        for x in &mut m[s.doc][s.start..s.end] {
            *x = true;
        }
    }
    m
}

/// Per document, per window start: whether the window's content occurs at an earlier
/// corpus position (document order, then offset).
fn has_earlier_copy<T: Hash + Eq>(docs: &[Vec<T>], l: usize) -> Vec<Vec<bool>> {
    let mut seen: HashSet<&[T]> = HashSet::new();
    docs.iter()
        .map(|doc| {
            if doc.len() < l {
                return Vec::new();
            }
            (0..=doc.len() - l).map(|p| !seen.insert(&doc[p..p + l])).collect()
        })
        .collect()
}

/// Whether symbol `i` of a document is covered by some window start `p` with `flag[p]`.
fn covered(flags: &[bool], len: usize, l: usize) -> Vec<bool> {
    let mut cov = vec![false; len];
    let mut reach = 0;
    for i in 0..len {
        if i < flags.len() && flags[i] {
            reach = i + l;
        }
        cov[i] = i < reach;
    }
    cov
}

/// The keep-first promise for `spans` over `docs` (in symbol units). Returns a description
/// of the first violation.
fn check_keep_first<T: Hash + Eq + Debug>(docs: &[Vec<T>], l: usize, spans: &[Span]) -> Result<(), String> {
    let lens: Vec<usize> = docs.iter().map(|d| d.len()).collect();
    let removed = removed_mask(&lens, spans);
    // 1. no window wholly inside kept text occurs twice
    let mut kept: HashMap<&[T], (usize, usize)> = HashMap::new();
    for (d, doc) in docs.iter().enumerate() {
        let mut run = 0; // kept symbols ending at i
        for (i, &gone) in removed[d].iter().enumerate() {
            run = if gone { 0 } else { run + 1 };
            if run >= l {
                let p = i + 1 - l;
                if let Some(&(d0, p0)) = kept.get(&doc[p..p + l]) {
                    return Err(format!(
                        "window {:?} is kept at doc {d} offset {p} and at doc {d0} offset {p0}",
                        &doc[p..p + l]
                    ));
                }
                kept.insert(&doc[p..p + l], (d, p));
            }
        }
    }
    // 2. every removed symbol lies in a window that occurs earlier
    let earlier = has_earlier_copy(docs, l);
    for (d, doc) in docs.iter().enumerate() {
        let cov = covered(&earlier[d], doc.len(), l);
        if let Some(i) = (0..doc.len()).find(|&i| removed[d][i] && !cov[i]) {
            return Err(format!("doc {d} offset {i} is removed but no window covering it occurs earlier"));
        }
    }
    Ok(())
}

/// The contamination promise: no kept eval window occurs in `train`, every removed eval
/// symbol lies in a window that does.
fn check_contamination<T: Hash + Eq + Debug>(train: &[Vec<T>], eval: &[Vec<T>], l: usize, spans: &[Span]) -> Result<(), String> {
    let in_train: HashSet<&[T]> = train.iter().filter(|d| d.len() >= l).flat_map(|d| d.windows(l)).collect();
    let lens: Vec<usize> = eval.iter().map(|d| d.len()).collect();
    let removed = removed_mask(&lens, spans);
    for (d, doc) in eval.iter().enumerate() {
        let flags: Vec<bool> = if doc.len() >= l { doc.windows(l).map(|w| in_train.contains(w)).collect() } else { Vec::new() };
        let cov = covered(&flags, doc.len(), l);
        for i in 0..doc.len() {
            if removed[d][i] && !cov[i] {
                return Err(format!("eval doc {d} offset {i} is removed but no window covering it occurs in train"));
            }
            if i + 1 >= l && (i + 1 - l..=i).all(|j| !removed[d][j]) && flags[i + 1 - l] {
                return Err(format!("eval doc {d} keeps the training window at offset {}", i + 1 - l));
            }
        }
    }
    Ok(())
}

fn bytes_spans(docs: &[Vec<u8>], l: usize, keep: Keep) -> Vec<Span> {
    let owned: OwnedDocs = docs.iter().collect();
    find_repeats(owned.view(), &opts(l, keep, IndexWidth::Auto)).unwrap().0
}

fn removed_bytes(spans: &[Span]) -> usize {
    spans.iter().map(|s| s.end - s.start).sum()
}

// ---------------------------------------------------------------------------------------
// random text

fn small_alphabet_docs() -> impl Strategy<Value = Vec<Vec<u8>>> {
    // three letters: long, overlapping and periodic repeats are the common case
    prop::collection::vec(prop::collection::vec(prop::sample::select(b"abc".to_vec()), 0..48), 1..10)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn keep_first_keeps_no_duplicate_and_removes_only_later_copies(
        docs in small_alphabet_docs(), l in 1usize..10, w64 in any::<bool>(), parts in 1u64..6,
    ) {
        prop_assume!(l <= docs.iter().map(|d| d.len()).max().unwrap_or(0));
        let width = if w64 { IndexWidth::W64 } else { IndexWidth::Auto };
        let (text, b) = flat(&docs);
        let (spans, _) = find_repeats_symbols::<u8>(&text, &b, &opts(l, Keep::First, width)).unwrap();
        if let Err(e) = check_keep_first(&docs, l, &spans) {
            return Err(TestCaseError::fail(e));
        }
        // the bytes entry point and the memory-limited path agree (ASCII: nothing to snap)
        let owned: OwnedDocs = docs.iter().collect();
        prop_assert_eq!(&find_repeats(owned.view(), &opts(l, Keep::First, width)).unwrap().0, &spans);
        prop_assert_eq!(&find_repeats_in_parts(owned.view(), &opts(l, Keep::First, width), parts).unwrap().0, &spans);
    }

    /// Multi-byte characters: spans are shrunk to character boundaries, and for `L >= 4` the
    /// promise still holds byte for byte.
    #[test]
    fn keep_first_promise_holds_after_utf8_snapping(
        docs in prop::collection::vec(prop::collection::vec(prop::sample::select(vec!["a", "é", "🎉", " "]), 0..30), 1..8),
        l in 4usize..14, parts in 1u64..6,
    ) {
        let docs: Vec<Vec<u8>> = docs.into_iter().map(|d| d.concat().into_bytes()).collect();
        prop_assume!(l <= docs.iter().map(|d| d.len()).max().unwrap_or(0));
        let spans = bytes_spans(&docs, l, Keep::First);
        if let Err(e) = check_keep_first(&docs, l, &spans) {
            return Err(TestCaseError::fail(e));
        }
        let owned: OwnedDocs = docs.iter().collect();
        prop_assert_eq!(find_repeats_in_parts(owned.view(), &opts(l, Keep::First, IndexWidth::Auto), parts).unwrap().0, spans);
    }

    #[test]
    fn keep_first_promise_for_tokens(
        docs in prop::collection::vec(prop::collection::vec(0u32..4, 0..40), 1..8),
        l in 1usize..7, big in any::<bool>(),
    ) {
        prop_assume!(l <= docs.iter().map(|d| d.len()).max().unwrap_or(0));
        let mut docs = docs;
        if big {
            // sparse ids and more than 65,536 distinct ones: libsais' integer-alphabet path
            docs = docs.into_iter().map(|d| d.into_iter().map(|x| x * 1_000_003 + 7).collect()).collect();
            docs.push((0..70_000u32).map(|i| 3_000_000_000 + i).collect());
        }
        let (ids, b) = flat(&docs);
        let (spans, _) = find_repeats_tokens(&ids, &b, &opts(l, Keep::First, IndexWidth::Auto)).unwrap();
        if let Err(e) = check_keep_first(&docs, l, &spans) {
            return Err(TestCaseError::fail(e));
        }
    }

    #[test]
    fn contamination_promise_bytes_and_tokens(
        train in small_alphabet_docs(), eval in small_alphabet_docs(), l in 1usize..10, tokens in any::<bool>(),
    ) {
        prop_assume!(l <= train.iter().map(|d| d.len()).max().unwrap_or(0));
        prop_assume!(l <= eval.iter().map(|d| d.len()).max().unwrap_or(0));
        let o = opts(l, Keep::None, IndexWidth::Auto);
        let (tt, tb) = flat(&train);
        let (et, eb) = flat(&eval);
        let spans = if tokens {
            let wide = |t: &[u8]| t.iter().map(|&x| x as u16 * 300).collect::<Vec<u16>>();
            contamination_symbols::<u16>(&wide(&tt), &tb, &wide(&et), &eb, &o).unwrap().0
        } else {
            contamination_symbols::<u8>(&tt, &tb, &et, &eb, &o).unwrap().0
        };
        if let Err(e) = check_contamination(&train, &eval, l, &spans) {
            return Err(TestCaseError::fail(e));
        }
    }

    /// A corpus followed by a copy of itself: the copy vanishes (every document of at least
    /// `L` symbols), the original is cut exactly as when it is alone.
    #[test]
    fn a_repeated_corpus_keeps_its_first_copy(docs in small_alphabet_docs(), l in 1usize..10) {
        prop_assume!(l <= docs.iter().map(|d| d.len()).max().unwrap_or(0));
        let alone = bytes_spans(&docs, l, Keep::First);
        let twice: Vec<Vec<u8>> = docs.iter().chain(docs.iter()).cloned().collect();
        let spans = bytes_spans(&twice, l, Keep::First);
        let n = docs.len();
        let copy: Vec<Span> = docs.iter().enumerate()
            .filter(|(_, d)| d.len() >= l)
            .map(|(i, d)| Span { doc: n + i, start: 0, end: d.len(), occurrences: 0 })
            .collect();
        // (occurrence counts double, the ranges are the same)
        let ranges = |v: &[Span]| v.iter().map(|s| (s.doc, s.start, s.end)).collect::<Vec<_>>();
        let head: Vec<Span> = spans.iter().filter(|s| s.doc < n).copied().collect();
        prop_assert_eq!(ranges(&head), ranges(&alone));
        let got: Vec<Span> = spans.iter().filter(|s| s.doc >= n).map(|s| Span { occurrences: 0, ..*s }).collect();
        prop_assert_eq!(got, copy);
    }
}

// ---------------------------------------------------------------------------------------
// real periodic text

/// A tiny deterministic generator (no external randomness in tests).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// C sources of the kind that defeated the old rule: register tables whose rows repeat with
/// a changing field, struct initialisers repeated across files, and one 100-byte-plus block
/// written nine times in one file.
fn periodic_c_sources() -> Vec<Vec<u8>> {
    let mut rng = Lcg(19);
    let mut files = Vec::new();
    let golden: String = (0..40)
        .map(|i| format!("\t{{ mmGFX_REG_{:03X}, 0xffffffff, 0x{:08x} }},\n", i * 4, if i % 3 == 0 { 0 } else { 0x0001_0000 }))
        .collect();
    for f in 0..12 {
        let mut s = format!("// SPDX-License-Identifier: MIT\n/* generated golden settings, asic {f} */\n#include \"gfx_v{f}.h\"\n\n");
        s += &format!("static const struct soc15_reg_golden golden_settings_gc_{f}[] = {{\n");
        for r in 0..60 {
            // mostly identical rows: only a register number or a value changes
            let reg = if rng.next() % 4 == 0 { rng.next() % 4096 } else { (r * 4) as u64 };
            let val = if rng.next() % 5 == 0 { rng.next() as u32 } else { 0x0000_0100 };
            s += &format!("\tSOC15_REG_GOLDEN_VALUE(GC, 0, mmCB_HW_CONTROL_{reg:X}, 0xffffffff, 0x{val:08x}),\n");
        }
        s += "};\n\n";
        if f % 2 == 0 {
            s += "static const struct reg_init golden_common[] = {\n";
            s += &golden;
            s += "};\n\n";
        }
        for port in 0..8 {
            s += &format!(
                "\t[PORT_{port}] = {{\n\t\t.name = \"port-{port}\",\n\t\t.irq = {},\n\t\t.flags = PORT_FLAG_SHARED | PORT_FLAG_LEVEL,\n\t\t.ops = &default_port_ops,\n\t}},\n",
                32 + port
            );
        }
        if f == 5 {
            let block = "\tWREG32_FIELD15(GC, 0, SPI_CONFIG_CNTL, GPR_WRITE_PRIORITY, 0x2f);\n\tudelay(50); /* wait for the fifo */\n";
            assert!(block.len() > 100);
            for _ in 0..9 {
                s += block;
            }
        }
        files.push(s.into_bytes());
    }
    files
}

/// The code-page tables of this Python's `encodings` package (`cp*.py`): long periodic
/// tables of real, shipped source.
fn python_codepage_tables() -> Vec<Vec<u8>> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for root in ["/usr/lib", "/usr/local/lib"] {
        if let Ok(rd) = std::fs::read_dir(root) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("python3") && e.path().join("encodings").is_dir() {
                    dirs.push(e.path().join("encodings"));
                }
            }
        }
    }
    dirs.sort();
    let dir = dirs.first().expect("a Python 3 standard library under /usr/lib or /usr/local/lib");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("cp")) && p.extension().is_some_and(|x| x == "py"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "expected the cp*.py code-page tables in {}", dir.display());
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Keep first on real text: the promise holds, something is removed, less than keep none,
/// the memory-limited path gives the same spans, and in-memory 64-bit indices too.
fn check_real(docs: &[Vec<u8>], l: usize) -> (usize, usize) {
    let first = bytes_spans(docs, l, Keep::First);
    check_keep_first(docs, l, &first).unwrap();
    let none = bytes_spans(docs, l, Keep::None);
    let (rf, rn) = (removed_bytes(&first), removed_bytes(&none));
    assert!(0 < rf && rf < rn, "l={l}: keep first removed {rf}, keep none {rn}");
    let owned: OwnedDocs = docs.iter().collect();
    let total: usize = docs.iter().map(|d| d.len()).sum();
    let o = opts(l, Keep::First, IndexWidth::Auto);
    assert_eq!(find_repeats_limited(owned.view(), &o, total / 2 + (64 << 10)).unwrap().0, first);
    assert_eq!(find_repeats_in_parts(owned.view(), &o, 5).unwrap().0, first);
    assert_eq!(find_repeats(owned.view(), &opts(l, Keep::First, IndexWidth::W64)).unwrap().0, first);
    (rf, rn)
}

#[test]
fn keep_first_on_register_tables_and_struct_initialisers() {
    let docs = periodic_c_sources();
    for l in [20, 50, 100] {
        check_real(&docs, l);
    }
}

#[test]
fn keep_first_on_python_codepage_tables() {
    let docs = python_codepage_tables();
    for l in [30, 100] {
        check_real(&docs, l);
    }
}

/// Two identical real documents: the second vanishes, the first is cut only where it
/// repeats itself — exactly as when it is alone — so the two never both vanish.
#[test]
fn two_identical_documents_do_not_both_vanish() {
    let tables = python_codepage_tables();
    let c = periodic_c_sources();
    for x in [&tables[0], &tables[3], &c[5]] {
        let alone = bytes_spans(std::slice::from_ref(x), 100, Keep::First);
        let spans = bytes_spans(&[x.clone(), x.clone()], 100, Keep::First);
        let (d0, d1): (Vec<Span>, Vec<Span>) = spans.into_iter().partition(|s| s.doc == 0);
        let ranges = |v: &[Span]| v.iter().map(|s| (s.start, s.end)).collect::<Vec<_>>();
        assert_eq!(ranges(&d0), ranges(&alone));
        assert!(removed_bytes(&d0) < x.len() / 2, "the first copy keeps most of itself");
        assert_eq!(d1, vec![Span { doc: 1, start: 0, end: x.len(), occurrences: d1[0].occurrences }]);
    }
}

/// Words of real text as token ids: the promise holds in token units.
#[test]
fn keep_first_on_real_text_in_tokens() {
    let mut vocab: HashMap<&[u8], u32> = HashMap::new();
    let sources = python_codepage_tables().into_iter().chain(periodic_c_sources()).collect::<Vec<_>>();
    let mut docs: Vec<Vec<u32>> = Vec::new();
    for s in &sources {
        let mut ids = Vec::new();
        let mut i = 0;
        while i < s.len() {
            // a token: a run of alphanumerics, or one other byte
            let mut j = i + 1;
            if s[i].is_ascii_alphanumeric() {
                while j < s.len() && s[j].is_ascii_alphanumeric() {
                    j += 1;
                }
            }
            let n = vocab.len() as u32;
            ids.push(*vocab.entry(&s[i..j]).or_insert(n));
            i = j;
        }
        docs.push(ids);
    }
    let (ids, b) = flat(&docs);
    for l in [10, 40] {
        let (first, _) = find_repeats_tokens(&ids, &b, &opts(l, Keep::First, IndexWidth::Auto)).unwrap();
        check_keep_first(&docs, l, &first).unwrap();
        let (none, _) = find_repeats_tokens(&ids, &b, &opts(l, Keep::None, IndexWidth::Auto)).unwrap();
        assert!(0 < removed_bytes(&first) && removed_bytes(&first) < removed_bytes(&none));
    }
}

#[test]
fn contamination_promise_on_real_text() {
    let tables = python_codepage_tables();
    let (train, eval) = tables.split_at(tables.len() / 2);
    for l in [30, 100] {
        let (tt, tb) = flat(train);
        let (et, eb) = flat(eval);
        let (spans, _) = contamination_symbols::<u8>(&tt, &tb, &et, &eb, &opts(l, Keep::None, IndexWidth::Auto)).unwrap();
        assert!(!spans.is_empty());
        check_contamination(train, eval, l, &spans).unwrap();
    }
}
