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

Each step runs under ``/usr/bin/time`` (wall, user+sys CPU, max RSS). Results are compared per
document: the bytes the reference removes in ranges that lie inside one document (ranges
that cross a separator are counted apart) against the bytes gristmill removes (its spans are
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
from typing import Dict, List, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def timed(cmd: List[str], cwd: Path, out_path: Path = None) -> Dict[str, float]:
    tf = Path(tempfile.mktemp(suffix=".time"))
    stdout = open(out_path, "wb") if out_path else subprocess.DEVNULL
    try:
        p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(tf), *cmd], cwd=cwd, stdout=stdout,
                           stderr=subprocess.PIPE)
    finally:
        if out_path:
            stdout.close()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr.decode(errors='replace')[-3000:]}")
    e, u, s, m = tf.read_text().split()[-4:]
    tf.unlink()
    return {"wall": float(e), "cpu": float(u) + float(s), "maxrss": int(m) * 1024}


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
    crossing = 0
    for a, b in rows:
        i = int(np.searchsorted(st, a, side="right")) - 1
        if i >= 0 and a >= st[i] and b <= en[i]:
            per_doc[i] += b - a
        else:
            crossing += b - a
    return steps, per_doc, crossing


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
        steps, r_doc, crossing = run_reference(a.reference.resolve(), texts, a.min_length, a.threads, tmp)
        run = {k: v for k, v in steps.items() if not k.startswith("build")}
        for k, v in steps.items():
            print(f"| reference: {k} | {v['wall']:.1f} | {v['cpu']:.1f} | {v['maxrss'] / 2**20:,.0f} MiB | {v['maxrss'] / n:.2f} | |")
        wall, cpu, rss = sum(v["wall"] for v in run.values()), sum(v["cpu"] for v in run.values()), max(v["maxrss"] for v in run.values())
        print(f"| reference, total | {wall:.1f} | {cpu:.1f} | {rss / 2**20:,.0f} MiB | {rss / n:.2f} | "
              f"{int(r_doc.sum()) + crossing:,} ({crossing:,} in ranges crossing a separator) |")
        same = int((r_doc == g_doc).sum())
        print(f"\nCPU: reference / gristmill = {cpu / gt['cpu']:.1f}x; documents with equal bytes removed "
              f"(document-bounded ranges): {same:,} of {len(texts):,}; bytes {int(r_doc.sum()):,} vs {int(g_doc.sum()):,}")


if __name__ == "__main__":
    main()
