"""gristmill `dedup exact --keep none` side by side with Lee et al.'s tool
(google-research/deduplicate-text-datasets), on the same real text.

    GRISTMILL_BENCH_DATA=<cache dir> python benches/bench_reference.py --mb 100
    GRISTMILL_BENCH_DATA=<cache dir> python benches/bench_reference.py --mb 100 --reference ~/src/deduplicate-text-datasets

Without ``--reference`` only gristmill runs. With it, the reference is built from that local
checkout (``cargo build`` there, its own dev profile; it is never vendored or modified) and
run through its own scripts, as its README's single-file recipe does:
``scripts/make_suffix_array.py DATA``, ``dedup_dataset self-similar --length-threshold L``,
``dedup_dataset collect``. Its input is the corpus as ``scripts/load_dataset.py`` writes it
(each document preceded by ``\\xff\\xff`` and a 4-byte little-endian document number).

Each step runs as a child subreaper that waits for every process it starts (the
reference's script leaves its background jobs unwaited), giving wall, user+sys CPU of all of
them and the largest max RSS of any one process (``make_suffix_array.py`` runs several
``make-part`` jobs at once, so the reference's simultaneous peak can be a few times that). Results are compared per
document: the bytes of the reference's ranges inside each document (a range that crosses a
separator is clipped to the documents it overlaps; such ranges are also counted apart)
against the bytes gristmill removes (its spans are
shrunk to UTF-8 character boundaries, so a range that cuts a character differs by those
bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


# Runs a command as a child subreaper: the reference's scripts start background jobs with
# os.popen and never wait for them, so /usr/bin/time would miss their CPU time and memory;
# orphans are reparented to this process and waited for, so RUSAGE_CHILDREN counts them all.
REAPER = r"""
import ctypes, json, os, resource, subprocess, sys, time
ctypes.CDLL("libc.so.6").prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
out = open(sys.argv[1], "wb") if sys.argv[1] else subprocess.DEVNULL
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[2:], stdout=out).returncode
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "wall": time.perf_counter() - t0, "cpu": r.ru_utime + r.ru_stime, "maxrss": r.ru_maxrss * 1024}),
      file=sys.stderr)
"""


def timed(cmd: List[str], cwd: Path, out_path: Optional[Path] = None) -> Dict[str, float]:
    """Wall, user+sys CPU and the largest max RSS of ``cmd`` and every process it starts."""
    p = subprocess.run([sys.executable, "-c", REAPER, str(out_path or ""), *cmd], cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.decode(errors="replace")
    res = json.loads(err.strip().splitlines()[-1]) if err.strip().endswith("}") else {"rc": p.returncode or 1}
    if p.returncode != 0 or res["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return res


def run_gristmill(path: Path, L: int, tmp: Path, n_docs: int) -> Tuple[Dict[str, float], np.ndarray]:
    import pyarrow.parquet as pq

    gm = str(Path(sys.executable).with_name("gristmill"))
    out = tmp / "gm-out"
    t = timed([gm, "--quiet", "dedup", "exact", str(path), "-o", str(out), "--keep", "none", "--min-length", str(L),
               "--json", "--overwrite"], tmp)
    spans = pq.read_table(out / "dedup-exact.spans.parquet")
    d = spans.column("doc").to_numpy()
    w = (spans.column("end").to_numpy() - spans.column("start").to_numpy()).astype(np.float64)
    return t, np.bincount(d, weights=w, minlength=n_docs).astype(np.int64)


def run_reference(ref: Path, texts: List[bytes], L: int, threads: int, tmp: Path) -> Tuple[Dict[str, Dict[str, float]], np.ndarray, int]:
    data = tmp / "ref.data"
    starts, ends = [], []
    with open(data, "wb") as f:
        pos = 0
        for i, t in enumerate(texts):
            sep = b"\xff\xff" + struct.pack("<I", i + 1)  # as scripts/load_dataset.py writes it
            f.write(sep)
            f.write(t)
            starts.append(pos + len(sep))
            pos += len(sep) + len(t)
            ends.append(pos)
    steps: Dict[str, Dict[str, float]] = {}
    steps["build (cargo build, not timed in totals)"] = timed(["cargo", "build", "-q"], ref)
    exe = str(ref / "target" / "debug" / "dedup_dataset")
    (ref / "tmp").mkdir(exist_ok=True)  # its scripts merge into ./tmp of the checkout
    steps["make_suffix_array.py"] = timed([sys.executable, "scripts/make_suffix_array.py", str(data)], ref)
    cache = tmp / "ref-cache"
    cache.mkdir()
    steps["self-similar"] = timed([exe, "self-similar", "--data-file", str(data), "--length-threshold", str(L),
                                   "--cache-dir", str(cache), "--num-threads", str(threads)], ref)
    ranges_file = tmp / "ref.ranges"
    steps["collect"] = timed([exe, "collect", "--data-file", str(data), "--cache-dir", str(cache),
                              "--length-threshold", str(L)], ref, ranges_file)
    lines = ranges_file.read_text().split("\n")
    rows = [tuple(map(int, x.split())) for x in lines[lines.index("out") + 1:] if x.strip()] if "out" in lines else []
    st, en = np.array(starts), np.array(ends)
    per_doc = np.zeros(len(texts), np.int64)
    crossed = np.zeros(len(texts), bool)
    crossing = 0
    for a, b in rows:
        i = max(int(np.searchsorted(st, a, side="right")) - 1, 0)
        if a >= st[i] and b <= en[i]:
            per_doc[i] += b - a
            continue
        # a range over a separator: its bytes inside each document it overlaps count there
        crossing += b - a
        j = i
        while j < len(texts) and st[j] < b:
            lo, hi = max(a, st[j]), min(b, en[j])
            if hi > lo:
                per_doc[j] += hi - lo
                crossed[j] = True
            j += 1
    return steps, per_doc, crossing, crossed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="linux")
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--min-length", type=int, default=100)
    ap.add_argument("--reference", type=Path, default=None, help="local checkout of google-research/deduplicate-text-datasets")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="--num-threads of the reference")
    a = ap.parse_args()
    import data

    texts = [t.encode("utf-8") for t in data.load_texts(a.corpus, int(a.mb * 1e6))]
    n = sum(map(len, texts))
    print(f"{a.corpus}: {len(texts):,} documents, {n:,} bytes, L = {a.min_length}", flush=True)
    with tempfile.TemporaryDirectory(dir=os.environ.get("GRISTMILL_BENCH_TMP")) as td:
        tmp = Path(td)
        path = tmp / "corpus.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": str(i), "text": t.decode("utf-8")}) + "\n")
        gt, g_doc = run_gristmill(path, a.min_length, tmp, len(texts))
        print(f"\n| tool, {n / 1e6:.0f} MB, L = {a.min_length} | wall s | CPU s | max RSS | RSS / input byte | bytes removed |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| gristmill dedup exact --keep none | {gt['wall']:.1f} | {gt['cpu']:.1f} | {gt['maxrss'] / 2**20:,.0f} MiB | "
              f"{gt['maxrss'] / n:.2f} | {int(g_doc.sum()):,} |")
        if a.reference is None:
            return
        steps, r_doc, crossing, crossed = run_reference(a.reference.resolve(), texts, a.min_length, a.threads, tmp)
        run = {k: v for k, v in steps.items() if not k.startswith("build")}
        for k, v in steps.items():
            print(f"| reference: {k} | {v['wall']:.1f} | {v['cpu']:.1f} | {v['maxrss'] / 2**20:,.0f} MiB | {v['maxrss'] / n:.2f} | |")
        wall, cpu, rss = sum(v["wall"] for v in run.values()), sum(v["cpu"] for v in run.values()), max(v["maxrss"] for v in run.values())
        print(f"| reference, total | {wall:.1f} | {cpu:.1f} | {rss / 2**20:,.0f} MiB | {rss / n:.2f} | "
              f"{int(r_doc.sum()):,} inside documents ({crossing:,} bytes of ranges cross a separator) |")
        same = int((r_doc == g_doc).sum())
        same_x = int((r_doc[crossed] == g_doc[crossed]).sum())
        print(f"\nCPU: reference / gristmill = {cpu / gt['cpu']:.1f}x. Bytes removed per document (the reference's "
              f"ranges clipped to each document): equal in {same:,} of {len(texts):,} documents "
              f"({same_x:,} of the {int(crossed.sum()):,} that a range crossing a separator touches); "
              f"{int(r_doc.sum()):,} bytes by the reference, {int(g_doc.sum()):,} by gristmill (gristmill shrinks "
              f"spans to UTF-8 character boundaries)")


if __name__ == "__main__":
    main()
