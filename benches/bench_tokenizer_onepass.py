"""One cold pass over a large mixed corpus: gristmill vs tiktoken, encode_ordinary, 1 thread.

bench_tokenizer.py repeats its 12.9 MB corpus and keeps the best run, so gristmill's
per-thread piece caches are warm. This script answers the other question — what a user
encoding a big corpus once gets — by encoding every document exactly once in a fresh
process (empty caches), interleaving English and other-language man pages and Linux C source:

    GRISTMILL_BENCH_DATA=<cache dir> python benches/bench_tokenizer_onepass.py --mb 96

Ids are compared with tiktoken's on every document.

With ``--steady``, every source (English man pages, each other language, Linux) is cut into a
first and a second half. gristmill is timed on the second halves twice: once with empty caches,
and once after encoding the first halves (untimed) — the throughput a long job reaches on
documents it has not seen, since its caches then hold the language's common pieces, not these
documents' pieces. tiktoken keeps no cache; it is timed on the same second halves.

This VM's speed drifts by +-10 % from minute to minute, so every measurement is repeated
(``--repeat``, default 3), each gristmill pass with a new tokenizer (new, empty caches; the
steady one warmed again), and both the best and the median of the runs are reported, for
gristmill and tiktoken alike.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=96, help="MB per third (English man, other man, Linux)")
    ap.add_argument("--encoding", default="o200k_base")
    ap.add_argument("--steady", action="store_true", help="also time after warming on other documents")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement (best and median shown)")
    args = ap.parse_args()
    import data  # benches/data.py
    from tokenizer_ref import reference  # tests/tokenizer_ref.py: tiktoken built offline

    third = int(args.mb * 1e6 / 3)
    sources = [data.load_texts("man-en", third)]
    for lang in ("de", "fr", "ja", "ru", "pl", "es", "uk", "it", "nl", "pt_BR", "cs"):
        sources.append(data.load_texts(f"man-{lang}", third))
    sources.append(data.load_texts("linux", third))

    def interleave(groups):
        # One document from each of English, the other languages (one after another), Linux.
        parts = [groups[0], [t for g in groups[1:-1] for t in g], groups[-1]]
        return [t for grp in itertools.zip_longest(*parts) for t in grp if t is not None]

    warm: list = []
    if args.steady:
        warm = interleave([src[: len(src) // 2] for src in sources])
        texts = interleave([src[len(src) // 2 :] for src in sources])
    else:
        texts = interleave(sources)
    n = sum(len(t.encode()) for t in texts)
    from gristmill import Tokenizer

    ref = reference(args.encoding)
    runs: dict = {"cold": [], "steady": [], "tiktoken": []}
    ours: list = []
    theirs: list = []
    for r in range(args.repeat):
        enc = Tokenizer.from_tiktoken(args.encoding)  # new tokenizer: new, empty caches
        t0 = time.perf_counter()
        ours = [enc.encode_ordinary(t) for t in texts]
        runs["cold"].append(time.perf_counter() - t0)
        if args.steady:
            warmed = Tokenizer.from_tiktoken(args.encoding)
            for t in warm:
                warmed.encode_ordinary(t)
            t0 = time.perf_counter()
            again = [warmed.encode_ordinary(t) for t in texts]
            runs["steady"].append(time.perf_counter() - t0)
            assert all(a == b for a, b in zip(again, ours))
            del again
        t0 = time.perf_counter()
        theirs = [ref.encode_ordinary(t) for t in texts]
        runs["tiktoken"].append(time.perf_counter() - t0)
        print(f"run {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in runs.items() if v), file=sys.stderr)
    bad = sum(1 for a, b in zip(ours, theirs) if a != b)
    print(f"{len(texts):,} documents, {n / 1e6:.1f} MB, {args.encoding}, one pass each, 1 thread; mismatches: {bad}")
    if args.steady:
        nw = sum(len(t.encode()) for t in warm)
        print(f"(steady: caches first warmed on {len(warm):,} other documents, {nw / 1e6:.1f} MB, same sources)")
    best = {k: min(v) for k, v in runs.items() if v}
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    print(f"best and median of {args.repeat} runs each")
    print("| library | best s | MB/s | speed-up (best) | median s | speed-up (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    names = {"cold": "gristmill (cold caches)", "steady": "gristmill (steady: warmed on other documents)"}
    for k in ("cold", "steady", "tiktoken"):
        if k in best:
            print(
                f"| {names.get(k, k)} | {best[k]:.2f} | {n / 1e6 / best[k]:.1f} | {best['tiktoken'] / best[k]:.1f}x"
                f" | {med[k]:.2f} | {med['tiktoken'] / med[k]:.1f}x |"
            )
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
