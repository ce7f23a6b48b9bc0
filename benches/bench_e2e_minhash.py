"""`gristmill dedup minhash --verify` end to end (process start to output written) against
rensa's compute-only CPU time on the same documents, same run (issue 15).

    python benches/bench_e2e_minhash.py FILE.jsonl [--repeat 2] [--threads N]

gristmill: the CLI in a fresh process (``python -m gristmill dedup minhash FILE -o TMP --verify
--json``), CPU = user + sys of the child (all threads), wall from spawn to exit; the stage
seconds come from its ``minhash_summary.json``. "start-up" is a fresh process that only
imports ``gristmill.cli`` (paid by every command).

rensa: the texts are loaded first (not timed), then one timed loop does only compute: Python
shingles (``\\w+`` of the lower-cased text, word 5-grams joined by spaces, as in
``bench_minhash.py``), ``RMinHash(128).update``, ``RMinHashLSH`` query + insert (first seen
kept), no I/O and no output.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_child(cmd, env):
    c0, w0 = child_cpu(), time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    return child_cpu() - c0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="RAYON_NUM_THREADS for gristmill (0: all cores)")
    ap.add_argument("--no-rensa", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ)
    if a.threads:
        env["RAYON_NUM_THREADS"] = str(a.threads)
    size = os.path.getsize(a.path)
    print(f"{a.path}: {size / 1e6:.1f} MB")

    su = min(run_child([sys.executable, "-c", "import gristmill.cli"], env) for _ in range(a.repeat))
    print(f"start-up (import gristmill.cli): cpu {su[0]:.2f} s, wall {su[1]:.2f} s")
    best = None
    with tempfile.TemporaryDirectory() as d:
        for _ in range(a.repeat):
            out = Path(d) / "out"
            cpu, wall = run_child([sys.executable, "-m", "gristmill", "-q", "dedup", "minhash", a.path, "-o", str(out),
                                   "--verify", "--json", "--overwrite"], env)
            summary = json.loads((out / "minhash_summary.json").read_text())
            print(f"gristmill dedup minhash --verify: cpu {cpu:.2f} s, wall {wall:.2f} s, "
                  f"{summary['docs_in']:,} docs, removed {summary['removed']:,}; stages (wall s): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in summary["seconds"].items()))
            if best is None or cpu < best[0]:
                best = (cpu, wall, summary)
    assert best is not None
    if a.no_rensa:
        return
    import rensa
    from bench_minhash import py_shingles

    with open(a.path, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    r_best = float("inf")
    for _ in range(a.repeat):
        c0 = time.process_time()
        lsh = rensa.RMinHashLSH(threshold=0.8, num_perm=128, num_bands=best[2]["bands"])
        removed = 0
        for i, t in enumerate(texts):
            m = rensa.RMinHash(num_perm=128, seed=1)
            m.update(py_shingles(t))
            if lsh.query(m):
                removed += 1
            else:
                lsh.insert(i, m)
        r = time.process_time() - c0
        print(f"rensa compute only (shingles + RMinHash + RMinHashLSH): cpu {r:.2f} s, removed {removed:,}")
        r_best = min(r_best, r)
    print(f"gristmill end to end / rensa compute-only CPU: {best[0] / r_best:.3f} (target <= 0.25)")


if __name__ == "__main__":
    main()
