"""Tokenizer speed per source: each corpus (English man pages, Linux C, man pages in each other
language) encoded once by a fresh gristmill tokenizer and by tiktoken, 1 thread, CPU time of
the calling thread. Shows which languages hold a mixed corpus's ratio down.

    GRISTMILL_BENCH_DATA=<cache dir> python benches/bench_tokenizer_sources.py [--encoding o200k_base] [--mb 32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

SOURCES = ["man-en", "linux", "man-de", "man-fr", "man-es", "man-it", "man-pl", "man-nl", "man-pt_BR",
           "man-cs", "man-ru", "man-uk", "man-ja"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoding", default="o200k_base")
    ap.add_argument("--mb", type=float, default=32, help="at most this many MB per source")
    args = ap.parse_args()
    import data  # benches/data.py
    from tokenizer_ref import reference  # tests/tokenizer_ref.py: tiktoken built offline

    from gristmill import Tokenizer

    ref = reference(args.encoding)
    print(f"{args.encoding}, one pass per source, fresh tokenizer per source, thread CPU time\n")
    print("| source | MB | gristmill s | MB/s | tiktoken s | speed-up |\n|---|---:|---:|---:|---:|---:|")
    total_ours = total_ref = 0.0
    for src in SOURCES:
        texts = data.load_texts(src, int(args.mb * 1e6))
        n = sum(len(t.encode()) for t in texts)
        enc = Tokenizer.from_tiktoken(args.encoding)
        c = time.thread_time()
        ours = [enc.encode_ordinary(t) for t in texts]
        t_ours = time.thread_time() - c
        c = time.thread_time()
        theirs = [ref.encode_ordinary(t) for t in texts]
        t_ref = time.thread_time() - c
        if any(a != b for a, b in zip(ours, theirs)):
            sys.exit(f"{src}: ids differ from tiktoken's")
        total_ours += t_ours
        total_ref += t_ref
        print(f"| {src} | {n / 1e6:.1f} | {t_ours:.3f} | {n / 1e6 / t_ours:.1f} | {t_ref:.2f} | {t_ref / t_ours:.1f}x |",
              flush=True)
    print(f"| all | | {total_ours:.2f} | | {total_ref:.2f} | {total_ref / total_ours:.1f}x |")


if __name__ == "__main__":
    main()
