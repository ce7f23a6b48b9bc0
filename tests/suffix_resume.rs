//! Resumable memory-limited repeat finding (`LimitedOptions::resume`): a run stopped after
//! some parts (as a kill would leave it) is finished by a rerun that reuses the hashing pass
//! and the finished parts, damaged files are detected by their checksums and rebuilt, and
//! the spans are always those of the in-memory path.

use std::path::{Path, PathBuf};

use gristmill::suffix::external::{marks_file, MANIFEST_FILE, SPILL_FILE};
use gristmill::suffix::repeats::{Keep, RepeatOptions};
use gristmill::suffix::sa::IndexWidth;
use gristmill::suffix::{self, LimitedOptions};
use gristmill::text::corpus::OwnedDocs;
use gristmill::Error;

/// Real text: this crate's own Rust sources (license headers, imports and repeated idioms
/// give plenty of long repeats), in a fixed order.
fn corpus() -> OwnedDocs {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    files.sort();
    files.into_iter().map(|p| String::from_utf8(std::fs::read(p).unwrap()).unwrap()).collect()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gristmill-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts(keep: Keep) -> RepeatOptions {
    RepeatOptions { min_length: 50, keep, threads: 1, width: IndexWidth::Auto }
}

fn lim(dir: &Path, stop: Option<usize>) -> LimitedOptions {
    LimitedOptions { parts: Some(7), work_dir: Some(dir.to_path_buf()), resume: true, stop_after_parts: stop, ..Default::default() }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_stopped_run_is_finished_by_a_rerun_that_reuses_its_parts() {
    let docs = corpus();
    for keep in [Keep::First, Keep::None] {
        let (want, _) = suffix::find_repeats(docs.view(), &opts(keep)).unwrap();
        assert!(want.len() > 20, "the corpus should have repeats");
        let dir = tmpdir(&format!("stop-{keep:?}"));
        let r = suffix::find_repeats_external(docs.view(), &opts(keep), &lim(&dir, Some(3)));
        assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
        // what a kill after three parts leaves: the hash parts, their manifest, three parts' marks
        let mut expect: Vec<String> = vec![SPILL_FILE.into(), MANIFEST_FILE.into()];
        expect.extend((0..3).map(marks_file));
        expect.sort();
        assert_eq!(files(&dir), expect);
        let (got, st) = suffix::find_repeats_external(docs.view(), &opts(keep), &lim(&dir, None)).unwrap();
        assert_eq!(got, want);
        assert_eq!((st.parts_reused, st.parts_rebuilt, st.hash_reused, st.hash_rebuilt), (3, 0, true, false));
        assert!(files(&dir).is_empty(), "a finished run leaves the work folder empty: {:?}", files(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn parts_of_other_settings_are_not_reused() {
    let docs = corpus();
    let dir = tmpdir("settings");
    let r = suffix::find_repeats_external(docs.view(), &opts(Keep::None), &lim(&dir, Some(2)));
    assert!(matches!(r, Err(Error::Interrupted)));
    // keep first cannot use keep none's marks, but the hashing pass is the same
    let (want, _) = suffix::find_repeats(docs.view(), &opts(Keep::First)).unwrap();
    let (got, st) = suffix::find_repeats_external(docs.view(), &opts(Keep::First), &lim(&dir, None)).unwrap();
    assert_eq!(got, want);
    assert_eq!((st.parts_reused, st.parts_rebuilt, st.hash_reused), (0, 2, true));
    // another text: nothing is reused
    let r = suffix::find_repeats_external(docs.view(), &opts(Keep::First), &lim(&dir, Some(2)));
    assert!(matches!(r, Err(Error::Interrupted)));
    let mut other: Vec<String> = docs.view().iter().map(|d| String::from_utf8(d.to_vec()).unwrap()).collect();
    other[0].push('!');
    let other: OwnedDocs = other.into_iter().collect();
    let (want, _) = suffix::find_repeats(other.view(), &opts(Keep::First)).unwrap();
    let (got, st) = suffix::find_repeats_external(other.view(), &opts(Keep::First), &lim(&dir, None)).unwrap();
    assert_eq!(got, want);
    assert_eq!((st.parts_reused, st.parts_rebuilt, st.hash_reused), (0, 2, false));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn flip_byte(path: &Path, at_from_end: usize) {
    let mut b = std::fs::read(path).unwrap();
    let i = b.len() - at_from_end;
    b[i] ^= 0x40;
    std::fs::write(path, b).unwrap();
}

#[test]
fn damaged_parts_are_detected_and_rebuilt() {
    let docs = corpus();
    let (want, _) = suffix::find_repeats(docs.view(), &opts(Keep::First)).unwrap();
    let dir = tmpdir("damaged");
    let r = suffix::find_repeats_external(docs.view(), &opts(Keep::First), &lim(&dir, Some(3)));
    assert!(matches!(r, Err(Error::Interrupted)));
    // a bit flip in the marks of part 1, and in the entries of the last (unfinished) part
    flip_byte(&dir.join(marks_file(1)), 20);
    flip_byte(&dir.join(SPILL_FILE), 4);
    let (got, st) = suffix::find_repeats_external(docs.view(), &opts(Keep::First), &lim(&dir, None)).unwrap();
    assert_eq!(got, want);
    assert_eq!((st.parts_reused, st.parts_rebuilt, st.hash_rebuilt), (2, 1, true));
    // a truncated marks file and a damaged manifest
    let r = suffix::find_repeats_external(docs.view(), &opts(Keep::First), &lim(&dir, Some(2)));
    assert!(matches!(r, Err(Error::Interrupted)));
    let m = dir.join(marks_file(0));
    let len = std::fs::metadata(&m).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&m).unwrap().set_len(len - 9).unwrap();
    flip_byte(&dir.join(MANIFEST_FILE), 12);
    let (got, st) = suffix::find_repeats_external(docs.view(), &opts(Keep::First), &lim(&dir, None)).unwrap();
    assert_eq!(got, want);
    assert_eq!((st.parts_reused, st.parts_rebuilt, st.hash_reused), (1, 1, false));
    assert!(files(&dir).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
