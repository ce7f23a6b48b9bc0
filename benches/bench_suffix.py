"""Suffix-array construction and exact-substring dedup on real text, vs pydivsufsort.

    GRISTMILL_BENCH_DATA=<cache dir> python benches/bench_suffix.py --corpus linux --mb 100
    python benches/bench_suffix.py --corpus linux --mb 0 --skip-peer    # whole corpus

Stages (each in the same run, on the same bytes):

1. suffix array of the concatenated text: gristmill (libsais, 1 thread and all cores) vs
   ``pydivsufsort.divsufsort`` (one core), checked equal;
2. the full ``dedup_exact`` pipeline (keep none and keep first) in a fresh child process that
   memory-maps the text as an Arrow IPC file, reporting time per stage and peak RSS
   (``ru_maxrss``) per input byte, total and above the pre-dedup baseline;
3. a suffix index: build time, file size, and ``count`` latency (median of many queries).

Prints a Markdown table ready for benches/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

LIMIT_CHILD = r"""
import hashlib, json, sys, time
from gristmill import Corpus
from gristmill.suffix import find_repeats
path, min_length, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def status():
    out = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmHWM", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) * 1024
    return out
t0 = time.perf_counter()
spans = find_repeats(Corpus([path]), min_length, "first", memory_limit=None if limit == "none" else int(limit))
wall = time.perf_counter() - t0
digest = hashlib.sha256(b"".join(c.to_numpy().tobytes() for c in spans.columns)).hexdigest()
print(json.dumps({"wall": wall, "rows": spans.num_rows, "sha256": digest, **status()}))
"""

CHILD = r"""
import json, sys, time
import pyarrow as pa
from gristmill.suffix import dedup_exact
path, min_length, keep, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
t0 = time.perf_counter()
texts = pa.ipc.open_file(pa.memory_map(path)).get_batch(0).column(0)
def hwm():
    # VmHWM is per address space and reset by exec (ru_maxrss would inherit the parent's peak)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
base = hwm()
r = dedup_exact(texts, min_length, keep, num_threads=threads or None)
total = time.perf_counter() - t0
peak = hwm()
print(json.dumps({"summary": r.summary, "timings": r.timings, "wall": total, "peak_rss": peak, "baseline_rss": base}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="linux", help="benches/data.py corpus name (default: linux)")
    ap.add_argument("--mb", type=float, default=100, help="first MB of the corpus (0 = all)")
    ap.add_argument("--min-length", type=int, default=100)
    ap.add_argument("--skip-peer", action="store_true", help="do not run pydivsufsort")
    ap.add_argument("--skip-dedup", action="store_true")
    ap.add_argument("--skip-sa", action="store_true", help="skip the suffix-array comparison")
    ap.add_argument("--skip-index", action="store_true")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--limit-demo", action="store_true",
                    help="only: find_repeats(keep=first) on a Corpus with memory_limit = a third of it, vs in-memory")
    a = ap.parse_args()

    import data  # benches/data.py
    from gristmill import __version__
    from gristmill.suffix import SuffixIndex, suffix_array

    limit = int(a.mb * 1e6) if a.mb else None
    if a.limit_demo:
        limit_demo(a, limit)
        return
    t0 = time.perf_counter()
    texts = data.load_texts(a.corpus, limit)
    arr = pa.array(texts, type=pa.large_string())
    del texts
    from gristmill._arrow import string_buffers

    data_u8, offs = string_buffers(arr)
    n_bytes = int(offs[-1] - offs[0]) if len(arr) else 0
    print(f"# corpus {a.corpus}: {len(arr):,} documents, {n_bytes / 1e6:.1f} MB (loaded in {time.perf_counter() - t0:.1f}s); "
          f"gristmill {__version__}; {os.cpu_count()} CPUs", flush=True)
    rows = []

    # 1. suffix array
    buf = None if a.skip_sa else data_u8[offs[0] : offs[-1]].copy()  # pydivsufsort needs a writable array
    res = {}
    for name, threads in () if a.skip_sa else (("gristmill (libsais, 1 thread)", 1), (f"gristmill (libsais, {os.cpu_count()} threads)", None)):
        t = time.perf_counter()
        sa = suffix_array(buf, num_threads=threads)
        res[name] = time.perf_counter() - t
        rows.append((f"suffix array, {name}", res[name], n_bytes / res[name] / 1e6))
        print(rows[-1], flush=True)
    if not a.skip_peer and not a.skip_sa:
        import pydivsufsort

        t = time.perf_counter()
        peer = pydivsufsort.divsufsort(buf)
        tp = time.perf_counter() - t
        rows.append(("suffix array, pydivsufsort.divsufsort (1 core)", tp, n_bytes / tp / 1e6))
        print(rows[-1], flush=True)
        assert np.array_equal(peer.astype(np.int64), sa.astype(np.int64)), "suffix arrays differ"
        del peer
        for name, secs in res.items():
            print(f"  speed-up vs pydivsufsort, {name}: {tp / secs:.2f}x")
    if not a.skip_sa:
        del sa
    del buf

    # 2. dedup pipeline in a child process (peak RSS isolated)
    dedup_rows = []
    if not a.skip_dedup:
        with tempfile.TemporaryDirectory() as tmp:
            ipc = Path(tmp) / "texts.arrow"
            with pa.OSFile(str(ipc), "wb") as f, pa.ipc.new_file(f, pa.schema([("text", pa.large_string())])) as w:
                w.write_batch(pa.record_batch([arr], names=["text"]))
            for keep in ("none", "first"):
                out = subprocess.run([sys.executable, "-c", CHILD, str(ipc), str(a.min_length), keep, "0"],
                                     capture_output=True, text=True, check=True)
                r = json.loads(out.stdout)
                dedup_rows.append((keep, r))
                print(keep, json.dumps(r), flush=True)

    # 3. index
    idx_rows = []
    if not a.skip_index:
        with tempfile.TemporaryDirectory(dir=os.environ.get("GRISTMILL_BENCH_TMP")) as tmp:
            path = Path(tmp) / "c.gsi"
            t = time.perf_counter()
            idx = SuffixIndex.build(arr, path)
            tb = time.perf_counter() - t
            rng = np.random.default_rng(0)
            data_bytes = data_u8[offs[0] : offs[-1]]
            starts = rng.integers(0, max(1, n_bytes - 64), a.queries)
            pats = []
            for s in starts:
                ln = int(rng.integers(4, 40))
                p = bytes(data_bytes[s : s + ln])
                pats.append(p)
            lat = []
            hits = 0
            for p in pats:
                t = time.perf_counter()
                hits += idx.count(p)
                lat.append(time.perf_counter() - t)
            absent = [b"zq\x01" + p for p in pats[:200]]
            lat_absent = []
            for p in absent:
                t = time.perf_counter()
                idx.count(p)
                lat_absent.append(time.perf_counter() - t)
            idx.locate(b"the ", limit=100)  # warm the pages it touches
            tl = []
            for p in pats[:200]:
                t = time.perf_counter()
                idx.locate(p, limit=100)
                tl.append(time.perf_counter() - t)
            t_loc = statistics.median(tl)
            idx_rows = [tb, idx.info["file_bytes"], statistics.median(lat), float(np.percentile(lat, 99)),
                        statistics.median(lat_absent), t_loc, hits]
            print("index", idx_rows, flush=True)

    print()
    print(f"| benchmark ({a.corpus}, {n_bytes / 1e6:.0f} MB) | seconds | MB/s |")
    print("|---|---:|---:|")
    for name, secs, mbs in rows:
        print(f"| {name} | {secs:.2f} | {mbs:.1f} |")
    for keep, r in dedup_rows:
        s = r["summary"]
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in r["timings"].items())
        print(f"| dedup_exact keep={keep}, L={a.min_length}: {stages}; removed {s['bytes_removed'] / 1e6:.1f} MB "
              f"({100 * s['bytes_removed'] / max(1, s['bytes']):.1f}%), {s['documents_touched']:,} docs touched; "
              f"peak RSS {r['peak_rss'] / n_bytes:.2f} B/input byte total, "
              f"{(r['peak_rss'] - r['baseline_rss']) / n_bytes:.2f} above baseline | {r['wall']:.2f} | {n_bytes / r['wall'] / 1e6:.1f} |")
    if idx_rows:
        tb, size, med, p99, med_abs, t_loc, _ = idx_rows
        print(f"| index build ({size / 1e9:.2f} GB file) | {tb:.2f} | {n_bytes / tb / 1e6:.1f} |")
        print(f"| index count, median / p99 over {a.queries} substrings of the corpus (4-40 B) | "
              f"{med * 1e3:.3f} ms / {p99 * 1e3:.3f} ms | |")
        print(f"| index count, absent patterns (median) | {med_abs * 1e3:.3f} ms | |")
        print(f"| index locate limit 100, median over 200 substrings of the corpus | {t_loc * 1e3:.3f} ms | |")


def limit_demo(a: argparse.Namespace, limit) -> None:
    import data

    texts = data.load_texts(a.corpus, limit)
    n = sum(len(t.encode()) for t in texts)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "corpus.jsonl"
        with open(p, "w") as f:
            for t in texts:
                f.write(json.dumps({"text": t}) + "\n")
        del texts
        res = {}
        for label, lim in (("in-memory", "none"), ("memory_limit = corpus / 3", str(n // 3))):
            out = subprocess.run([sys.executable, "-c", LIMIT_CHILD, str(p), str(a.min_length), lim],
                                 capture_output=True, text=True, check=True)
            res[label] = json.loads(out.stdout)
            print(label, res[label], flush=True)
    print()
    print(f"| find_repeats keep=first, L={a.min_length}, {a.corpus} {n / 1e6:.0f} MB | seconds | peak RSS (VmHWM) | anon RSS at end | spans | sha256 of spans |")
    print("|---|---:|---:|---:|---:|---|")
    for label, r in res.items():
        print(f"| {label} | {r['wall']:.1f} | {r['VmHWM'] / 1e6:.0f} MB | {r['RssAnon'] / 1e6:.0f} MB | {r['rows']:,} | {r['sha256'][:16]} |")
    same = len({r["sha256"] for r in res.values()}) == 1
    print(f"identical spans: {same}")


if __name__ == "__main__":
    main()
