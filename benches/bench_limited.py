"""Memory-limited vs in-memory exact-substring dedup on real text, back to back (issue 19).

    GRISTMILL_BENCH_DATA=<cache dir> python benches/bench_limited.py --mb 400 --limit 100M

Two measurements per round, in fresh child processes, in-memory and limited alternating:

1. The repeat finder as ``find_repeats(Corpus([jsonl]), L, keep, memory_limit=None | LIMIT)``
   runs it: the corpus is read (and, when limited, spilled to a file and memory-mapped), then
   the native repeat finder runs. The child samples its own ``/proc/self/status`` every 10 ms
   during the native stage, so its peak anonymous memory (``RssAnon``, what ``--memory-limit``
   bounds; also given above the value at the stage's start, i.e. without the interpreter,
   pyarrow and the document offsets) and peak file-backed memory (``RssFile``: shared
   libraries and the spilled text, mapped read-only — page cache the kernel can drop and
   re-read) are reported apart, with ``VmHWM`` (the process's peak of their sum, the read
   included). The spans' SHA-256 must be equal.
2. ``gristmill --quiet dedup exact JSONL -o OUT --keep K --json [--memory-limit LIMIT]`` under
   ``/usr/bin/time``: wall, user+sys CPU, max RSS, the output file's SHA-256, stage times.

Prints Markdown tables for benches/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD = r"""
import hashlib, json, sys, tempfile, threading, time
from gristmill import Corpus
from gristmill.suffix import _gather, _repeats
path, L, keep, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
mem = None if limit == "none" else int(limit)
KEYS = ("RssAnon", "RssFile", "VmHWM")
peak = dict.fromkeys(KEYS, 0)
done = threading.Event()
def status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in KEYS:
                out[k] = int(v.split()[0]) * 1024
    return out
def sample():
    while not done.is_set():
        for k, v in status().items():
            peak[k] = max(peak[k], v)
        time.sleep(0.01)
base = status()
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    arr, _ = _gather(Corpus([path]), "texts", tmp if mem else None)  # as find_repeats does
    t_read = time.perf_counter() - t0
    start = status()
    t = threading.Thread(target=sample, daemon=True); t.start()
    t0 = time.perf_counter()
    out, _ = _repeats(arr, L, keep, 0, mem, tmp if mem else None, None)
    wall = time.perf_counter() - t0
    done.set(); t.join()
for k, v in status().items():
    peak[k] = max(peak[k], v)
digest = hashlib.sha256(b"".join(c.astype("int64").tobytes() for c in out[:4])).hexdigest()
print(json.dumps({"wall": wall, "read": t_read, "rows": len(out[0]), "sha256": digest, "base_anon": base["RssAnon"],
                  "start_anon": start["RssAnon"], **peak}))
"""


def parse_size(t: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = t.strip().upper()
    return int(float(t[:-1]) * units[t[-1]]) if t[-1] in units else int(t)


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def run_finder(path: Path, L: int, keep: str, limit: str) -> Dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(L), keep, limit],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run_cli(path: Path, L: int, keep: str, limit: str, tmp: Path) -> Dict[str, Any]:
    out = tmp / f"out-{keep}-{limit}"
    gm = str(Path(sys.executable).with_name("gristmill"))
    args = [gm, "--quiet", "dedup", "exact", str(path), "-o", str(out), "--keep", keep,
            "--min-length", str(L), "--json", "--overwrite"]
    if limit != "none":
        args += ["--memory-limit", limit]
    tf = tmp / "time.txt"
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", str(tf), *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    u, s, m = tf.read_text().split()[-3:]
    summary = json.loads(p.stdout)
    return {"wall": wall, "cpu": float(u) + float(s), "maxrss": int(m) * 1024, "summary": summary,
            "sha256": sha(out / path.name)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="linux")
    ap.add_argument("--mb", type=float, default=400, help="first MB of the corpus")
    ap.add_argument("--limit", default=None, help="memory limit (default: a quarter of the corpus)")
    ap.add_argument("--min-length", type=int, default=100)
    ap.add_argument("--keep", nargs="+", default=["first", "none"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--skip-finder", action="store_true")
    a = ap.parse_args()
    import data

    texts = data.load_texts(a.corpus, int(a.mb * 1e6))
    n = sum(len(t.encode()) for t in texts)
    limit = str(parse_size(a.limit) if a.limit else n // 4)
    print(f"{a.corpus}: {len(texts):,} documents, {n:,} bytes; memory limit {int(limit):,} bytes "
          f"(corpus / {n / int(limit):.2f})", flush=True)
    with tempfile.TemporaryDirectory(dir=os.environ.get("GRISTMILL_BENCH_TMP")) as td:
        tmp = Path(td)
        path = tmp / f"{a.corpus}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": str(i), "text": t}) + "\n")
        del texts
        finder: Dict[str, List[Dict[str, Any]]] = {}
        cli: Dict[str, List[Dict[str, Any]]] = {}
        for r in range(a.rounds):
            for keep in a.keep:
                for lim in ("none", limit):
                    key = f"{keep} {'in-memory' if lim == 'none' else 'limited'}"
                    if not a.skip_finder:
                        res = run_finder(path, a.min_length, keep, lim)
                        finder.setdefault(key, []).append(res)
                        print("finder", r, key, res, flush=True)
                    if not a.skip_cli:
                        res = run_cli(path, a.min_length, keep, lim, tmp)
                        cli.setdefault(key, []).append(res)
                        print("cli", r, key, {k: v for k, v in res.items() if k != "summary"},
                              res["summary"]["timings"], flush=True)
    rng = lambda xs: f"{min(xs):.1f}–{max(xs):.1f}" if len(xs) > 1 else f"{xs[0]:.1f}"  # noqa: E731
    mb = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    if finder:
        print(f"\n| repeat finder, L={a.min_length}, {n / 1e6:.0f} MB, limit {int(limit) / 2**20:.0f} MiB | read s | "
              "repeats s | peak RssAnon (above stage start) | peak RssFile | VmHWM | spans | sha256 |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for key, rs in finder.items():
            print(f"| {key} | {rng([x['read'] for x in rs])} | {rng([x['wall'] for x in rs])} | "
                  f"{mb(max(x['RssAnon'] for x in rs))} ({mb(max(x['RssAnon'] - x['start_anon'] for x in rs))}) | "
                  f"{mb(max(x['RssFile'] for x in rs))} | {mb(max(x['VmHWM'] for x in rs))} | {rs[0]['rows']:,} | "
                  f"{rs[0]['sha256'][:12]} |")
        for keep in a.keep:
            s = {x["sha256"] for k, rs in finder.items() if k.startswith(keep + " ") for x in rs}
            print(f"keep {keep}: identical spans in every run: {len(s) == 1}")
    if cli:
        print(f"\n| `dedup exact`, L={a.min_length}, {n / 1e6:.0f} MB | wall s | CPU s | max RSS | bytes removed | "
              "stages (last round) | output sha256 |")
        print("|---|---:|---:|---:|---:|---|---|")
        for key, rs in cli.items():
            st = ", ".join(f"{k} {v:.1f}" for k, v in rs[-1]["summary"]["timings"].items())
            print(f"| {key} | {rng([x['wall'] for x in rs])} | {rng([x['cpu'] for x in rs])} | "
                  f"{mb(max(x['maxrss'] for x in rs))} | {rs[0]['summary']['bytes_removed']:,} | {st} | "
                  f"{rs[0]['sha256'][:12]} |")
        for keep in a.keep:
            s = {x["sha256"] for k, rs in cli.items() if k.startswith(keep + " ") for x in rs}
            print(f"keep {keep}: identical output in every run: {len(s) == 1}")


if __name__ == "__main__":
    main()
