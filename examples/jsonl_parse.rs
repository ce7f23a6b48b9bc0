//! Time the JSONL parser on a file already in memory (`parse_chunk` over 8 MiB pieces of whole
//! lines) and through `read_jsonl` (file reads included), one thread unless RAYON_NUM_THREADS.
//!
//!     cargo run --profile profiling --example jsonl_parse -- FILE.jsonl [FIELD]
use std::time::Instant;

use gristmill::corpus::{parse_chunk, read_jsonl, Compression, Options, Utf8Policy};

/// CPU seconds of the whole process (all threads).
fn cpu() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = &args[1];
    let extra: Vec<String> = args[2..].to_vec();
    let data = std::fs::read(path).unwrap();
    let opts = Options {
        display: path.clone(),
        text_field: "text".into(),
        id_field: None,
        policy: Utf8Policy::Error,
        number_fields: extra,
    };
    let mut chunks = Vec::new();
    let mut pos = 0;
    let mut line = 1u64;
    while pos < data.len() {
        let mut end = (pos + (8 << 20)).min(data.len());
        if end < data.len() {
            end = pos + memchr::memrchr(b'\n', &data[pos..end]).unwrap() + 1;
        }
        chunks.push((pos, end, line));
        line += memchr::memchr_iter(b'\n', &data[pos..end]).count() as u64;
        pos = end;
    }
    for rep in 0..3 {
        let t = Instant::now();
        let c = cpu();
        let mut docs = 0;
        let mut bytes = 0;
        for &(s, e, l) in &chunks {
            let b = parse_chunk(&data[s..e], l, s as u64, &opts).unwrap();
            docs += b.len();
            bytes += b.text.len();
        }
        let (dt, dc) = (t.elapsed().as_secs_f64(), cpu() - c);
        println!("parse_chunk rep {rep}: {docs} docs, {bytes} text bytes, wall {dt:.3} s, cpu {dc:.3} s, {:.2} GB/cpu-s", data.len() as f64 / dc / 1e9);
    }
    for rep in 0..2 {
        let t = Instant::now();
        let c = cpu();
        let mut docs = 0;
        read_jsonl(path, Compression::None, &opts, 1, |b| {
            docs += b.len();
            Ok(())
        })
        .unwrap();
        let (dt, dc) = (t.elapsed().as_secs_f64(), cpu() - c);
        println!("read_jsonl  rep {rep}: {docs} docs, wall {dt:.3} s, cpu {dc:.3} s, {:.2} GB/cpu-s", data.len() as f64 / dc / 1e9);
    }
}
