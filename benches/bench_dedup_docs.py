"""Exact document / paragraph dedup throughput in MB of text per CPU-second.

    python benches/data.py --only man          # builds benches/.cache/man-en.jsonl
    python benches/bench_dedup_docs.py benches/.cache/man-en.jsonl [--threads 1] [--normalize none]

Two measurements per unit: the kernel (hashing + first-wins decision + rebuilding changed
texts, on Arrow batches already in memory) and the whole library call on a Corpus (reading
the JSONL included; writing the output is not).
"""

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--normalize", default="none", choices=("none", "whitespace", "lower"))
    ap.add_argument("--min-length", type=int, default=0)
    a = ap.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(a.threads)
    from gristmill import _native
    from gristmill._arrow import string_buffers
    from gristmill.docdedup import dedup_docs, dedup_paragraphs
    from gristmill.io import Corpus

    batches = [b.texts for b in Corpus([a.path]).batches()]
    text_bytes = sum(int(b.nbytes) for b in batches)
    mb = sum(int(string_buffers(b)[1][-1] - string_buffers(b)[1][0]) for b in batches) / 1e6
    print(f"{a.path}: {sum(len(b) for b in batches):,} documents, {mb:.1f} MB of text "
          f"(arrow {text_bytes / 1e6:.1f} MB), threads={a.threads}, normalize={a.normalize}, "
          f"min_length={a.min_length}")

    def timed(name, f):
        t0, c0 = time.perf_counter(), time.process_time()
        info = f()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"{name:24s} wall={wall:.3f}s cpu={cpu:.3f}s {mb / cpu:8.1f} MB/cpu-s  {info}")

    def kernel(unit):
        def run():
            d = _native._ExactDedup(a.normalize, a.min_length, a.threads)
            removed = 0
            for b in batches:
                r = d.docs(string_buffers(b)) if unit == "docs" else d.paragraphs(string_buffers(b))
                removed += r[1] if unit == "docs" else r[4]
            return f"removed={removed:,}"
        return run

    timed("kernel docs", kernel("docs"))
    timed("kernel paragraphs", kernel("paragraphs"))
    timed("library docs", lambda: f"removed={dedup_docs(Corpus([a.path]), normalize=a.normalize, min_length=a.min_length, num_threads=a.threads).summary['documents_removed']:,}")
    timed("library paragraphs", lambda: f"removed={dedup_paragraphs(Corpus([a.path]), normalize=a.normalize, min_length=a.min_length, num_threads=a.threads).summary['paragraphs_removed']:,}")


if __name__ == "__main__":
    main()
