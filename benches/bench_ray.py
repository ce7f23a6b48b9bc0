"""Ray Data engine against the local engine: MinHash dedup of the same real corpus, same run.

    python benches/bench_ray.py [--data benches/.cache/man-en.jsonl] [--mb 25] [--scales 1,2,4]

For each scale k the first ``k × --mb`` MB of ``--data`` (real documents, no copies made) are
deduplicated twice: by :func:`gristmill.minhash.dedup_minhash` on a :class:`gristmill.Corpus`
(the local engine, all cores) and by :func:`gristmill.ray.dedup_minhash` on
``gristmill.ray.corpus_dataset`` of the same corpus (a local Ray runtime with 2 CPUs).
Reported: wall seconds, CPU seconds (the driver plus every Ray process it started: raylet,
workers, also those Ray stopped meanwhile; read from /proc), the Ray path's seconds per stage, and whether both kept the same
documents (they must). Verification on, threshold 0.8, word 5-grams, 128 permutations.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict

import numpy as np

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu() -> Dict[int, float]:
    """CPU seconds of this process and every descendant alive now (including their reaped
    children), by pid."""
    parent: Dict[int, int] = {}
    cpu: Dict[int, float] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        f = raw[raw.rindex(")") + 2:].split()
        parent[int(d)] = int(f[1])
        # own time + time of children that ended and were reaped (Ray kills idle workers)
        cpu[int(d)] = (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / TICK
    me = os.getpid()
    keep = {}
    for pid in cpu:
        p, seen = pid, 0
        while p and p != me and seen < 64:
            p, seen = parent.get(p, 0), seen + 1
        if p == me:
            keep[pid] = cpu[pid]
    return keep


def cpu_since(before: Dict[int, float]) -> float:
    after = tree_cpu()
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def prefix(src: Path, mb: float, dst: Path) -> int:
    limit, used, n = int(mb * 1e6), 0, 0
    with open(src, "rb") as f, open(dst, "wb") as g:
        for line in f:
            if used >= limit:
                break
            g.write(line)
            used += len(line)
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(HERE / ".cache" / "man-en.jsonl"))
    ap.add_argument("--mb", type=float, default=25.0, help="MB at scale 1")
    ap.add_argument("--scales", default="1,2,4")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--shuffle", default=None, help="Ray Data shuffle strategy (default: Ray's)")
    args = ap.parse_args()
    import ray

    import gristmill.ray as gr
    from gristmill import Corpus
    from gristmill.minhash import dedup_minhash

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if args.shuffle:
        from ray.data.context import ShuffleStrategy

        ctx.shuffle_strategy = ShuffleStrategy(args.shuffle)
    tmp = Path(tempfile.mkdtemp(prefix="gm-bench-ray-"))
    print(f"data: {args.data}; Ray {ray.__version__} local runtime, {args.cpus} CPUs", flush=True)
    for k in [int(x) for x in args.scales.split(",")]:
        path = tmp / f"x{k}.jsonl"
        n = prefix(Path(args.data), k * args.mb, path)
        size = path.stat().st_size / 1e6
        c0, t0 = tree_cpu(), time.perf_counter()
        loc = dedup_minhash(Corpus(path), 0.8, verify=True)
        local_wall, local_cpu = time.perf_counter() - t0, cpu_since(c0)
        c0, t0 = tree_cpu(), time.perf_counter()
        r = gr.dedup_minhash(gr.corpus_dataset(Corpus(path)), id_column="id", verify=True)
        mask = r.keep_mask()
        ray_wall, ray_cpu = time.perf_counter() - t0, cpu_since(c0)
        same = bool(np.array_equal(mask, loc.keep))
        stages = ", ".join(f"{s} {v:.1f}" for s, v in r.summary["seconds"].items() if s != "total")
        print(json.dumps({"scale": k, "mb": round(size, 1), "docs": n, "removed": int((~loc.keep).sum()),
                          "local_wall_s": round(local_wall, 1), "local_cpu_s": round(local_cpu, 1),
                          "ray_wall_s": round(ray_wall, 1), "ray_cpu_s": round(ray_cpu, 1),
                          "cpu_ratio": round(ray_cpu / max(local_cpu, 1e-9), 2), "same_kept": same}), flush=True)
        print(f"  ray stages (s): {stages}; partitions {r.summary['partitions']}, rounds {r.summary['rounds']}",
              flush=True)
        path.unlink()
    print(f"driver peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", file=sys.stderr)
    ray.shutdown()


if __name__ == "__main__":
    main()
