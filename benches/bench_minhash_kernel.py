"""The MinHash signature kernel from pre-made shingles (Python lists) against rensa's
``RMinHash.update``, measured longer than ``bench_minhash.py`` does (there the section lasts
~13 ms per call and its best-of-3 ratio moves by about ±10 % between runs).

    GRISTMILL_BENCH_DATA=<cache dir> python benches/bench_minhash_kernel.py [--mb 4] [--calls 60] [--rounds 3]

Same data and calls as ``bench_minhash.py``'s kernel section (first ``--mb`` MB of
``linux.jsonl``, word 5-grams made in Python, 128 permutations, one core). Each round times
gristmill then rensa, each the best (minimum CPU time) of ``--calls`` calls; the ratio is
per round.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_minhash as B  # noqa: E402


def best(fn, calls: int) -> float:
    fn()
    t = float("inf")
    for _ in range(calls):
        c = time.process_time()
        fn()
        t = min(t, time.process_time() - c)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=4)
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import rensa

    from gristmill.minhash import MinHasher

    texts, desc = B.load_texts(args.mb)
    pre = [B.py_shingles(t) for t in texts]
    print(f"data: {desc}; {sum(map(len, pre)):,} shingles in {len(pre)} lists")
    mh = MinHasher(num_perm=128, seed=1, ngram=5, num_threads=1)

    def rensa_kernel() -> None:
        for sh in pre:
            m = rensa.RMinHash(num_perm=128, seed=1)
            m.update(sh)
            m.digest()

    for r in range(args.rounds):
        g = best(lambda: mh.signatures_of_shingles(pre), args.calls)
        q = best(rensa_kernel, args.calls)
        print(f"round {r + 1}: gristmill {g * 1e3:7.2f} ms  rensa {q * 1e3:7.2f} ms  ratio (rensa time / gristmill time) {q / g:5.3f}x")


if __name__ == "__main__":
    main()
