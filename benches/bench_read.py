"""JSONL -> Arrow text: the native reader, `Corpus.batches` (which reads JSONL through it),
pyarrow.json.read_json and the Python per-line parser (the old `Corpus` path: `json.loads` per
line via `JsonlSource._parse`, then `pa.array`), same file, same run.

    python benches/bench_read.py FILE.jsonl [--threads N] [--repeat R]

Each reader runs ``--repeat`` times in turn (best CPU time kept): the first call in a process also
pays one-off costs (thread start, first touch, pyarrow's compute registry) that a long run does not.
"""

import argparse
import os
import time

import pyarrow as pa
import pyarrow.json as pj


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(a.threads)
    pa.set_cpu_count(a.threads)
    from gristmill import _native
    from gristmill.io import Corpus, _iter_lines

    size = os.path.getsize(a.path)
    res = {}

    def run(name, f):
        for _ in range(a.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            n = f()
            r = (time.perf_counter() - t0, time.process_time() - c0)
            if name not in res or r[1] < res[name][1]:
                res[name] = r
        print(f"{name:28s} docs={n} wall={res[name][0]:.3f}s cpu={res[name][1]:.3f}s "
              f"{size / res[name][1] / 1e9:.2f} GB/cpu-s")

    def native():
        bs = _native.read_jsonl_file(a.path, None, a.path, "text", None, "error", 65536)
        arrs = [pa.LargeStringArray.from_buffers(len(b["lines"]), pa.py_buffer(b["text_offsets"]),
                                                 pa.py_buffer(b["text"])) for b in bs]
        return sum(len(x) for x in arrs)

    def pyarrow_json():
        t = pj.read_json(a.path, read_options=pj.ReadOptions(block_size=16 << 20))
        return t.num_rows

    def corpus():
        return sum(len(b.texts) for b in Corpus(a.path).batches())

    def old():
        c = Corpus(a.path)
        src = c.sources[0]
        texts = [r[1] for ln, line in _iter_lines(src.path, src.compression, src.display)
                 if (r := src._parse(ln, line, c)) is not None]
        return len(pa.array(texts, pa.large_string()))

    run("native", native)
    run("Corpus.batches (native)", corpus)
    run("pyarrow.json.read_json", pyarrow_json)
    run("old Corpus (python reader)", old)
    print(f"size={size / 1e6:.1f} MB threads={a.threads}  native vs pyarrow: {res['pyarrow.json.read_json'][1] / res['native'][1]:.1f}x cpu, "
          f"vs old: {res['old Corpus (python reader)'][1] / res['native'][1]:.1f}x cpu; "
          f"Corpus.batches vs old: {res['old Corpus (python reader)'][1] / res['Corpus.batches (native)'][1]:.1f}x cpu")


if __name__ == "__main__":
    main()
