"""`gristmill dedup exact` with --keep none / first on the first MB of real Linux source: bytes
removed, CPU time, peak RSS (``/usr/bin/time -v``), and how many windows of the output still
occur twice.

    python benches/bench_keep_first.py --mb 100 --min-length 100
    python benches/bench_keep_first.py --mb 100 --gristmill /path/to/other/bin/gristmill --label old

Each run is one CLI invocation in a fresh process. "Kept duplicates" counts the windows of
``--min-length`` bytes lying wholly inside kept text (a contiguous kept stretch of one input
document) whose content occurs at two or more such places: keep first promises 0. They are
found exactly: a 64-bit polynomial hash of every window (numpy, vectorised), the repeated
hashes then checked byte by byte. ``--gristmill`` runs another build's command (e.g. an older
commit installed in another venv) on the same corpus slice.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))


def corpus_slice(mb: float) -> Path:
    """The first documents of the Linux corpus (benches/data.py) up to `mb` MB of text, as JSONL."""
    import data  # benches/data.py

    src = data.corpus("linux")
    out = src.with_name(f"linux-{mb:g}mb.jsonl")
    if out.exists():
        return out
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    n, limit = 0, int(mb * 1e6)
    with open(src, encoding="utf-8") as f, open(tmp, "w", encoding="utf-8") as g:
        for line in f:
            g.write(line)
            n += len(json.loads(line)["text"].encode())
            if n >= limit:
                break
    tmp.rename(out)
    return out


def load(path: Path) -> List[bytes]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"].encode() for line in f]


def kept_duplicates(docs: List[bytes], spans: Tuple[np.ndarray, np.ndarray, np.ndarray], L: int) -> Tuple[int, int]:
    """(kept windows whose content occurs at >= 2 kept places, all kept windows)."""
    lens = np.array([len(d) for d in docs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)])
    text = np.frombuffer(b"".join(docs), dtype=np.uint8)
    n = len(text)
    removed = np.zeros(n + 1, dtype=np.int32)
    d, s, e = spans
    np.add.at(removed, starts[d] + s, 1)
    np.add.at(removed, starts[d] + e, -1)
    gone = np.cumsum(removed[:n]) > 0
    # a window starting at p is "kept" when its L bytes are kept and inside one document
    csum = np.concatenate([[0], np.cumsum(gone, dtype=np.int64)])
    p = np.arange(max(n - L + 1, 0), dtype=np.int64)
    doc_of = np.searchsorted(starts, p, side="right") - 1
    ok = (p + L <= starts[doc_of + 1]) & (csum[p + L] - csum[p] == 0)
    p = p[ok]
    # hash every window: h(p) = sum t[p+j] * B^(L-1-j), from prefix sums of t[i] * B^-i
    B = np.uint64(0x100000001B3)
    inv = np.uint64(pow(int(B), -1, 1 << 64))
    with np.errstate(over="ignore"):
        powers = np.empty(n + 1, dtype=np.uint64)
        powers[0] = 1
        ipow = np.empty(n + 1, dtype=np.uint64)
        ipow[0] = 1
        # B^i and B^-i by repeated squaring in blocks
        step, istep = np.uint64(1), np.uint64(1)
        blk = 1 << 16
        base = np.cumprod(np.full(blk, B, dtype=np.uint64))  # B^1 .. B^blk
        ibase = np.cumprod(np.full(blk, inv, dtype=np.uint64))
        for o in range(0, n, blk):
            m = min(blk, n - o)
            powers[o + 1 : o + 1 + m] = base[:m] * step
            ipow[o + 1 : o + 1 + m] = ibase[:m] * istep
            step = powers[o + m]
            istep = ipow[o + m]
        pre = np.concatenate([[np.uint64(0)], np.cumsum((text.astype(np.uint64) + np.uint64(1)) * ipow[:n], dtype=np.uint64)])
        h = (pre[p + L] - pre[p]) * powers[p + L - 1]
    del powers, ipow, pre
    order = np.argsort(h, kind="stable")
    hs = h[order]
    same = np.flatnonzero(hs[1:] == hs[:-1])
    dup_positions = set()
    for i in same:  # confirm byte for byte (a 64-bit hash collision is not a duplicate)
        a, b = int(p[order[i]]), int(p[order[i + 1]])
        if text[a : a + L].tobytes() == text[b : b + L].tobytes():
            dup_positions.add(a)
            dup_positions.add(b)
    return len(dup_positions), len(p)


def run_cli(gristmill: str, src: Path, keep: str, L: int) -> Dict[str, object]:
    out = Path(tempfile.mkdtemp(prefix="gristmill-keep-"))
    try:
        cmd = ["/usr/bin/time", "-v", gristmill, "--quiet", "dedup", "exact", str(src), "-o", str(out / "o"),
               "--min-length", str(L), "--keep", keep, "--json"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr}")
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        tv = dict(line.strip().rpartition(": ")[::2] for line in r.stderr.splitlines() if ": " in line)
        t = pq.read_table(out / "o" / "dedup-exact.spans.parquet")
        spans = tuple(t.column(c).to_numpy() for c in ("doc", "start", "end"))
        return {
            "summary": summary,
            "cpu": float(tv["User time (seconds)"]) + float(tv["System time (seconds)"]),
            "wall": tv["Elapsed (wall clock) time (h:mm:ss or m:ss)"],
            "rss": int(tv["Maximum resident set size (kbytes)"]) * 1024,
            "spans": spans,
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--min-length", type=int, default=100)
    ap.add_argument("--keep", nargs="+", default=["none", "first"])
    ap.add_argument("--gristmill", default=shutil.which("gristmill") or "gristmill", help="the gristmill command to run")
    ap.add_argument("--label", default="this build")
    a = ap.parse_args()
    src = corpus_slice(a.mb)
    docs = load(src)
    n = sum(len(d) for d in docs)
    print(f"# {src.name}: {len(docs):,} documents, {n:,} bytes; {a.gristmill} ({a.label}); {os.cpu_count()} CPUs", flush=True)
    print("| build, --keep | bytes removed | kept duplicate windows / kept windows | CPU s (user+sys) | wall | peak RSS | RSS / input byte |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for keep in a.keep:
        r = run_cli(a.gristmill, src, keep, a.min_length)
        dups, windows = kept_duplicates(docs, r["spans"], a.min_length)  # type: ignore[arg-type]
        s = r["summary"]
        print(f"| {a.label}, {keep} | {s['bytes_removed']:,} ({100 * s['bytes_removed'] / n:.2f} %) | {dups:,} / {windows:,} | "  # type: ignore[index]
              f"{r['cpu']:.1f} | {r['wall']} | {r['rss'] / 2**20:,.0f} MiB | {r['rss'] / n:.2f} |", flush=True)


if __name__ == "__main__":
    main()
