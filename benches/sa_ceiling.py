"""How fast can *any* libsais-based suffix-array builder be on this machine?

Compiles libsais' own C sources (from the `libsais-sys` crate in the cargo registry) with
``gcc -O3 -march=native -fopenmp`` into a tiny timing harness (benches/c/libsais_time.c),
and times it against pydivsufsort on the same bytes of real text, in the same run:

    GRISTMILL_BENCH_DATA=<cache dir> python benches/sa_ceiling.py --mb 100

This is the upper bound for gristmill's suffix-array stage (which calls the same C code),
and the evidence for what the 2-core machine allows against the issue's 3x target.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

HERE = Path(__file__).resolve().parent


def libsais_source() -> Path:
    home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    hits = sorted(glob.glob(str(home / "registry" / "src" / "*" / "libsais-sys-*" / "libsais")))
    if not hits:
        sys.exit("libsais-sys sources not found in the cargo registry: run `cargo fetch` in the repository first")
    return Path(hits[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="linux")
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    import data  # benches/data.py

    src = libsais_source()
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "libsais_time"
        subprocess.run(["gcc", "-O3", "-march=native", "-fopenmp", "-DLIBSAIS_OPENMP", f"-I{src / 'include'}",
                        str(HERE / "c" / "libsais_time.c"), str(src / "src" / "libsais.c"), "-o", str(exe)], check=True)
        limit = int(args.mb * 1e6)
        text = b"".join(t.encode() for t in data.load_texts(args.corpus, limit))[:limit]
        f = Path(tmp) / "text.bin"
        f.write_bytes(text)
        print(f"{len(text) / 1e6:.1f} MB of {args.corpus}; load average {os.getloadavg()[0]:.2f}")
        rows = []
        for threads, label in ((0, "libsais C, 1 thread"), (2, "libsais C, 2 threads (OpenMP)")):
            best = min(float(subprocess.run([str(exe), str(f), str(threads)], check=True, capture_output=True,
                                            text=True).stdout.split()[0]) for _ in range(args.repeat))
            rows.append((label, best))
        import pydivsufsort

        arr = np.frombuffer(bytearray(text), dtype=np.uint8)
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            pydivsufsort.divsufsort(arr)
            best = min(best, time.perf_counter() - t0)
        rows.append(("pydivsufsort (1 core)", best))
        print("| builder | seconds | MB/s | vs pydivsufsort |\n|---|---:|---:|---:|")
        for label, s in rows:
            print(f"| {label} | {s:.2f} | {len(text) / 1e6 / s:.1f} | {best / s:.2f}x |")


if __name__ == "__main__":
    main()
