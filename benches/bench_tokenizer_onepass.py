"""One cold pass over a large mixed corpus: gristmill vs tiktoken, encode_ordinary, 1 thread.

bench_tokenizer.py repeats its 12.9 MB corpus and keeps the best run, so gristmill's
per-thread piece caches are warm. This script answers the other question — what a user
encoding a big corpus once gets — by encoding every document exactly once in a fresh
process (empty caches), interleaving English and other-language man pages and Linux C source:

    GRISTMILL_BENCH_DATA=<cache dir> python benches/bench_tokenizer_onepass.py --mb 96

Ids are compared with tiktoken's on every document.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=96, help="MB per third (English man, other man, Linux)")
    ap.add_argument("--encoding", default="o200k_base")
    args = ap.parse_args()
    import data  # benches/data.py
    from tokenizer_ref import reference  # tests/tokenizer_ref.py: tiktoken built offline

    third = int(args.mb * 1e6 / 3)
    other = []
    for lang in ("de", "fr", "ja", "ru", "pl", "es", "uk", "it", "nl", "pt_BR", "cs"):
        other += data.load_texts(f"man-{lang}", third)
    parts = [data.load_texts("man-en", third), other, data.load_texts("linux", third)]
    texts = [t for grp in itertools.zip_longest(*parts) for t in grp if t is not None]
    n = sum(len(t.encode()) for t in texts)
    from gristmill import Tokenizer

    enc = Tokenizer.from_tiktoken(args.encoding)
    ref = reference(args.encoding)
    t0 = time.perf_counter()
    ours = [enc.encode_ordinary(t) for t in texts]
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = [ref.encode_ordinary(t) for t in texts]
    t_ref = time.perf_counter() - t0
    bad = sum(1 for a, b in zip(ours, theirs) if a.tolist() != b)
    print(f"{len(texts):,} documents, {n / 1e6:.1f} MB, {args.encoding}, one pass each, 1 thread; mismatches: {bad}")
    print("| library | seconds | MB/s | speed-up |\n|---|---:|---:|---:|")
    print(f"| gristmill (cold caches) | {t_ours:.2f} | {n / 1e6 / t_ours:.1f} | {t_ref / t_ours:.1f}x |")
    print(f"| tiktoken | {t_ref:.2f} | {n / 1e6 / t_ref:.1f} | 1.0x |")
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
