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
    // A flipped text byte: only detected by verify.
    let mut bad = good.clone();
    bad[260] ^= 1;
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

/// Flip one byte at `at` of a fresh copy of `good` and open it.
fn open_flipped(path: &std::path::Path, good: &[u8], at: usize, verify: bool) -> gristmill::Result<SuffixIndex> {
    let mut bad = good.to_vec();
    bad[at] ^= 0x5A;
    std::fs::write(path, &bad).unwrap();
    SuffixIndex::open(path, verify)
}

#[test]
fn every_section_is_checked_and_errors_say_corrupted() {
    let dir = tmpdir("sections");
    let path = dir.join("s.idx");
    let texts: Vec<String> = (0..50).map(|i| format!("document {i} with shared words and more shared words")).collect();
    let docs: OwnedDocs = texts.iter().collect();
    let ids: OwnedDocs = (0..50).map(|i| format!("file-{i}.txt")).collect();
    let info = SuffixIndex::build_with_ids(docs.view(), Some(ids.view()), &path, 1, IndexWidth::Auto).unwrap();
    assert!(info.has_ids && info.version == 2);
    let good = std::fs::read(&path).unwrap();
    let idx = SuffixIndex::open(&path, true).unwrap();
    assert_eq!(idx.doc_id(7).unwrap(), Some("file-7.txt"));
    assert_eq!(idx.count(b"shared words").unwrap(), 100);
    drop(idx);
    let name = path.display().to_string();
    let is_corrupt = |e: gristmill::Error| {
        let m = e.to_string();
        assert!(m.starts_with(&name) && m.contains("corrupted suffix index"), "{m}");
    };
    // the document offsets are checked at open, without --verify
    is_corrupt(open_flipped(&path, &good, info.docs_off as usize + 8 * 10 + 1, false).err().unwrap());
    // the ids when first read
    let idx = open_flipped(&path, &good, info.ids_off as usize + 8 * 51 + 3, false).unwrap();
    is_corrupt(idx.doc_id(0).unwrap_err());
    drop(idx);
    // the text and the suffix array with verify
    is_corrupt(open_flipped(&path, &good, 256 + 5, true).err().unwrap());
    is_corrupt(open_flipped(&path, &good, info.sa_off as usize + 9, true).err().unwrap());
    // without verify, a damaged text never yields a non-UTF-8 document
    let mut bad = good.clone();
    bad[256 + 3] = 0xC3; // a lone lead byte inside document 0
    std::fs::write(&path, &bad).unwrap();
    let idx = SuffixIndex::open(&path, false).unwrap();
    is_corrupt(idx.document_str(0).unwrap_err());
    // locate checks every hit it returns against the text
    let mut bad = good.clone();
    bad[256 + texts[0].len() - 4] ^= 0x20; // "words" -> "worDs" in the first document
    std::fs::write(&path, &bad).unwrap();
    let idx = SuffixIndex::open(&path, false).unwrap();
    is_corrupt(idx.locate(b"shared words", usize::MAX).unwrap_err());
    drop(idx);
    // a header field edited together with the header checksum: the sizes no longer add up
    let mut bad = good.clone();
    bad[24] ^= 8; // text length
    let c = xxhash_rust::xxh3::xxh3_64(&bad[..248]);
    bad[248..256].copy_from_slice(&c.to_le_bytes());
    std::fs::write(&path, &bad).unwrap();
    is_corrupt(SuffixIndex::open(&path, false).err().unwrap());
    std::fs::write(&path, &good).unwrap();
    SuffixIndex::open(&path, true).unwrap();
}

#[test]
fn version_1_files_are_refused_with_a_rebuild_hint() {
    let dir = tmpdir("v1");
    let path = dir.join("old.idx");
    // a version-1 header: magic, version 1, then fields; its checksum over the first 120 bytes
    let mut h = vec![0u8; 128];
    h[..8].copy_from_slice(b"GMSUFIDX");
    h[8..12].copy_from_slice(&1u32.to_le_bytes());
    h[12..16].copy_from_slice(&4u32.to_le_bytes());
    let c = xxhash_rust::xxh3::xxh3_64(&h[..120]);
    h[120..].copy_from_slice(&c.to_le_bytes());
    h.extend_from_slice(&[0u8; 64]);
    std::fs::write(&path, &h).unwrap();
    let m = SuffixIndex::open(&path, false).err().unwrap().to_string();
    assert!(m.contains("version 1") && m.contains("rebuild"), "{m}");
}
