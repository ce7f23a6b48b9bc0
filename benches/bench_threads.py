"""2-thread vs 1-thread scaling of the batch kernels — tokenizer ``encode_batch_flat(..., ordinary=True)`` and
MinHash ``signatures`` — measured only while the machine is idle (on a shared machine,
wall-clock scaling means nothing while another job holds a core).

    python benches/bench_threads.py [--seconds 600] [--mb 16]

Loads the same corpus as bench_tokenizer.py, warms both thread counts, then until --seconds
have passed: whenever /proc/stat shows the CPUs >= 90 % idle for one second, times best of 5
``encode_batch_flat(arr, num_threads=1, ordinary=True)`` and ``num_threads=2`` per encoding, and
``MinHasher(...).signatures(arr, num_threads=1)`` and ``num_threads=2`` (fast and datasketch-compat
modes), and prints one line with the idle fraction before and after, the load average and the
ratios; at the end, the median of each ratio.

Each line also times a pure-computation reference at the same moment: ``hashlib.sha256`` over
4 MiB buffers (no shared data, the GIL released) on 1 thread and split over 2 threads. It shows
what the two vCPUs give plain arithmetic right then (on this VM often well under 2x, while the
memory-bound tokenizer can do better), so a bad line can be told apart from a busy machine.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pyarrow as pa  # noqa: E402

from bench_tokenizer import load_corpus  # noqa: E402
from gristmill import Tokenizer  # noqa: E402
from gristmill.minhash import MinHasher  # noqa: E402


def idle(dt: float = 1.0) -> float:
    def snap() -> tuple:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)

    a = snap()
    time.sleep(dt)
    b = snap()
    return (b[0] - a[0]) / max(1, b[1] - a[1])


def best(fn, k: int = 5) -> float:
    ts = []
    for _ in range(k):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


_BUF = bytes(range(256)) * (1 << 14)  # 4 MiB


def _hash(n: int) -> None:
    for _ in range(n):
        hashlib.sha256(_BUF).digest()


def hash_threads(k: int, n: int = 40) -> None:
    """``n`` SHA-256 digests of 4 MiB, split over ``k`` threads."""
    ts = [threading.Thread(target=_hash, args=(n // k,)) for _ in range(k)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--mb", type=float, default=16.0)
    args = ap.parse_args()
    docs = load_corpus(args.mb)
    arr = pa.array(docs, type=pa.large_string())
    toks = {n: Tokenizer.from_tiktoken(n) for n in ["cl100k_base", "o200k_base"]}
    kernels = {n: (lambda k, t=t: t.encode_batch_flat(arr, num_threads=k, ordinary=True)) for n, t in toks.items()}
    for mode, kw in (("minhash fast", {}), ("minhash compat", {"compat": "datasketch"})):
        h = MinHasher(num_perm=128, seed=1, ngram=5, **kw)
        kernels[mode] = lambda k, h=h: h.signatures(arr, num_threads=k)
    for run in kernels.values():
        run(1)
        run(2)
    ratios: dict = {}
    deadline = time.time() + args.seconds
    while time.time() < deadline:
        before = idle()
        if before < 0.9:
            continue
        res = []
        c1 = best(lambda: hash_threads(1))
        c2 = best(lambda: hash_threads(2))
        res.append(f"sha256 reference: 1t {c1:.4f}s 2t {c2:.4f}s ratio {c1 / c2:.2f}")
        for n, run in kernels.items():
            t1 = best(lambda: run(1))
            t2 = best(lambda: run(2))
            ratios.setdefault(n, []).append(t1 / t2)
            res.append(f"{n}: 1t {t1:.4f}s 2t {t2:.4f}s ratio {t1 / t2:.2f}")
        ratios.setdefault("sha256 reference", []).append(c1 / c2)
        after = idle(0.5)
        with open("/proc/loadavg") as f:
            la = " ".join(f.read().split()[:3])
        print(time.strftime("%H:%M:%S"), f"idle before {before:.2f} after {after:.2f} load {la} |",
              " | ".join(res), flush=True)
    if ratios:
        print("medians over", len(ratios["sha256 reference"]), "lines:",
              ", ".join(f"{k} {statistics.median(v):.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
