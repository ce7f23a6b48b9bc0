//! On-disk suffix index: counts and locations against a naive scan, and damaged files.

use std::path::PathBuf;

use gristmill::suffix::sa::IndexWidth;
use gristmill::suffix::SuffixIndex;
use gristmill::text::corpus::OwnedDocs;
use proptest::prelude::*;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gristmill-idx-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn naive(docs: &[Vec<u8>], pat: &[u8]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        if doc.len() >= pat.len() {
            for p in 0..=doc.len() - pat.len() {
                if &doc[p..p + pat.len()] == pat {
                    out.push((d as u64, p as u64));
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]
    #[test]
    fn count_and_locate_match_naive(
        docs in prop::collection::vec(prop::collection::vec(prop::sample::select(b"ab\xc3\xa9".to_vec()), 0..30), 0..8),
        pats in prop::collection::vec(prop::collection::vec(prop::sample::select(b"ab\xc3\xa9".to_vec()), 1..5), 1..6),
        w64 in any::<bool>(),
    ) {
        let dir = tmpdir("prop");
        let path = dir.join("p.idx");
        let owned: OwnedDocs = docs.iter().collect();
        let width = if w64 { IndexWidth::W64 } else { IndexWidth::Auto };
        SuffixIndex::build(owned.view(), &path, 1, width).unwrap();
        let idx = SuffixIndex::open(&path, true).unwrap();
        for p in &pats {
            let expect = naive(&docs, p);
            prop_assert_eq!(idx.count(p).unwrap(), expect.len() as u64);
            prop_assert_eq!(idx.locate(p, usize::MAX).unwrap(), expect.clone());
            prop_assert_eq!(idx.locate(p, 1).unwrap().len(), expect.len().min(1));
        }
        for (d, doc) in docs.iter().enumerate() {
            prop_assert_eq!(idx.document(d).unwrap(), &doc[..]);
        }
        idx.check_corpus(owned.view()).unwrap();
    }
}

#[test]
fn damaged_or_foreign_files_are_rejected() {
    let dir = tmpdir("damage");
    let path = dir.join("x.idx");
    let docs: OwnedDocs = ["alpha beta gamma", "beta gamma delta", "gamma"].into_iter().collect();
    SuffixIndex::build(docs.view(), &path, 0, IndexWidth::Auto).unwrap();
    let good = std::fs::read(&path).unwrap();
    let idx = SuffixIndex::open(&path, true).unwrap();
    assert_eq!(idx.count(b"gamma").unwrap(), 3);
    assert_eq!(idx.count(b"a b").unwrap(), 1);
    assert_eq!(idx.count(b"a\xffb").unwrap(), 0);
    assert_eq!(idx.count(b"agamma").unwrap(), 0, "matches must not cross documents");
    assert!(idx.count(b"").is_err());

    let other: OwnedDocs = ["alpha beta gamma", "beta gamma delta", "gammA"].into_iter().collect();
    let e = idx.check_corpus(other.view()).unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
    drop(idx);

    // Truncated at every interesting length.
    for cut in [0, 10, 127, 128, good.len() / 2, good.len() - 1] {
        std::fs::write(&path, &good[..cut]).unwrap();
        assert!(SuffixIndex::open(&path, false).is_err(), "cut at {cut} opened");
    }
    // Extra bytes.
    let mut longer = good.clone();
    longer.push(0);
    std::fs::write(&path, &longer).unwrap();
    assert!(SuffixIndex::open(&path, false).is_err());
    // A flipped header byte.
    let mut bad = good.clone();
    bad[20] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let e = SuffixIndex::open(&path, false).err().unwrap();
    assert!(e.to_string().contains("checksum"), "{e}");
    // A flipped body byte: only detected by verify.
    let mut bad = good.clone();
    bad[130] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    assert!(SuffixIndex::open(&path, false).is_ok());
    assert!(SuffixIndex::open(&path, true).is_err());
    // Not an index at all.
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    assert!(SuffixIndex::open(&path, false).err().unwrap().to_string().contains("not a gristmill suffix index"));
    // Missing file is an I/O error.
    assert!(matches!(SuffixIndex::open(&dir.join("missing.idx"), false), Err(gristmill::Error::Io { .. })));
}

#[test]
fn rejects_ff_bytes_and_leaves_no_temp_file() {
    let dir = tmpdir("ff");
    let path = dir.join("y.idx");
    let mut docs = OwnedDocs::new();
    docs.push(b"fine");
    docs.push(b"bad\xffbyte");
    let e = SuffixIndex::build(docs.view(), &path, 1, IndexWidth::Auto).unwrap_err();
    assert!(e.to_string().contains("document 1"), "{e}");
    assert!(!path.exists());
    // Writing into a directory that does not exist is an I/O error and leaves nothing behind.
    let e = SuffixIndex::build(docs.view(), &dir.join("nope").join("z.idx"), 1, IndexWidth::Auto).unwrap_err();
    assert!(matches!(e, gristmill::Error::InvalidData { .. } | gristmill::Error::Io { .. }));
    let ok: OwnedDocs = ["a"].into_iter().collect();
    let e = SuffixIndex::build(ok.view(), &dir.join("nope").join("z.idx"), 1, IndexWidth::Auto).unwrap_err();
    assert!(matches!(e, gristmill::Error::Io { .. }));
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).collect();
    assert!(leftovers.is_empty());
}
