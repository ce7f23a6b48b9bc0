//! A raised interrupt flag makes every long suffix computation stop with
//! `Error::Interrupted` and leave nothing behind (no index file, no temporary or spill file).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use gristmill::interrupt::Interrupt;
use gristmill::suffix::repeats::{Keep, RepeatOptions};
use gristmill::suffix::sa::IndexWidth;
use gristmill::suffix::{self, LimitedOptions, SuffixIndex};
use gristmill::text::corpus::OwnedDocs;
use gristmill::Error;

fn corpus() -> OwnedDocs {
    let mut seed = 5u64;
    (0..200)
        .map(|i| {
            let mut d = format!("document {i}: ");
            for _ in 0..400 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                d.push((b'a' + (seed >> 60) as u8) as char);
            }
            d.push_str(" and a shared tail that repeats in every document of the corpus");
            d
        })
        .collect()
}

fn raised() -> Interrupt {
    Interrupt::new(Arc::new(AtomicBool::new(true)))
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gristmill-interrupt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn interrupted<T: std::fmt::Debug>(r: gristmill::Result<T>) {
    match r {
        Err(Error::Interrupted) => {}
        other => panic!("expected Error::Interrupted, got {other:?}"),
    }
}

#[test]
fn raised_flag_stops_every_repeat_finder() {
    let docs = corpus();
    let opts = RepeatOptions { min_length: 20, keep: Keep::First, threads: 2, width: IndexWidth::Auto };
    // the same calls succeed without the flag (so the error really comes from the interrupt)
    assert!(!suffix::find_repeats(docs.view(), &opts).unwrap().0.is_empty());
    let stop = raised();
    interrupted(stop.run(|| suffix::find_repeats(docs.view(), &opts)));
    interrupted(stop.run(|| suffix::contamination(docs.view(), docs.view(), &opts)));
    let ids: Vec<u32> = docs.data.iter().map(|&b| b as u32 * 1000).collect();
    let bounds: Vec<usize> = docs.offsets.iter().map(|&o| o as usize).collect();
    interrupted(stop.run(|| suffix::find_repeats_tokens(&ids, &bounds, &opts)));
    // more than 65,536 distinct ids: libsais' integer-alphabet path
    let wide: Vec<u32> = (0..ids.len() as u32).map(|i| i % 70_000).collect();
    interrupted(stop.run(|| suffix::find_repeats_tokens(&wide, &bounds, &opts)));
    // a long min_length goes through the PLCP array
    let long = RepeatOptions { min_length: 600, ..opts };
    let big: OwnedDocs = [vec![b'x'; 5000], vec![b'x'; 5000]].into_iter().collect();
    interrupted(stop.run(|| suffix::find_repeats(big.view(), &long)));
}

#[test]
fn raised_flag_stops_the_memory_limited_path_and_removes_its_spill_file() {
    let docs = corpus();
    let dir = tmpdir("spill");
    let opts = RepeatOptions { min_length: 20, keep: Keep::None, threads: 1, width: IndexWidth::Auto };
    let lim = LimitedOptions { parts: Some(4), work_dir: Some(dir.clone()), ..Default::default() };
    interrupted(raised().run(|| suffix::find_repeats_external(docs.view(), &opts, &lim)));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "spill file left behind");
    // and the flag is only seen inside `run`: the same call then succeeds
    assert!(!suffix::find_repeats_external(docs.view(), &opts, &lim).unwrap().0.is_empty());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn raised_flag_stops_index_build_without_output_or_temp_file() {
    let docs = corpus();
    let dir = tmpdir("index");
    let path = dir.join("c.gsi");
    interrupted(raised().run(|| SuffixIndex::build(docs.view(), &path, 1, IndexWidth::Auto)));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "index or temporary file left behind");
    SuffixIndex::build(docs.view(), &path, 1, IndexWidth::Auto).unwrap();
    assert!(path.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
