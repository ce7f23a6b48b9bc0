"""Benchmark: BPE training, gristmill vs HF tokenizers' BpeTrainer vs rustbpe.

Same texts (held in memory, loading not timed), same pre-tokenizer regex, same vocab size,
same thread count. Each trainer runs in its own subprocess so peak memory (ru_maxrss) is
measured per trainer; "extra" is peak RSS minus the RSS after loading the texts.

    python benches/bench_train.py --mb 100 --vocab-size 32768 --threads 2

Corpus: the first MB/2 of man-en.jsonl and the first MB/2 of linux.jsonl built by the lead's
benches/data.py (real English man pages + Linux kernel source).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

CACHE = Path(os.environ.get("GRISTMILL_BENCH_DATA", Path(__file__).resolve().parent / ".cache"))


def load_texts(mb: float) -> List[str]:
    per = int(mb * 1e6 / 2)
    out: List[str] = []
    for name in ("man-en.jsonl", "linux.jsonl"):
        total = 0
        with open(CACHE / name, encoding="utf-8") as f:
            for line in f:
                t = json.loads(line)["text"]
                out.append(t)
                total += len(t.encode("utf-8"))
                if total >= per:
                    break
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_one(which: str, mb: float, vocab: int, pattern_name: str) -> Dict[str, Any]:
    from gristmill.train import PATTERNS, hf_regex

    pattern = PATTERNS[pattern_name]
    texts = load_texts(mb)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    base = rss_mb()
    merges: List[List[str]] = []
    t0 = time.perf_counter()
    if which == "gristmill":
        import gristmill

        tok = gristmill.train_bpe(texts, vocab, pattern=pattern_name)
        secs = time.perf_counter() - t0
        merges = [list(m) for m in tok._merge_strings()]
    elif which == "hf":
        from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

        hf = Tokenizer(models.BPE())
        if pattern_name == "gpt2":
            # HF's stock byte-level setup: ByteLevel's built-in regex is the GPT-2 pattern.
            hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        else:
            hf.pre_tokenizer = pre_tokenizers.Sequence(
                [pre_tokenizers.Split(Regex(hf_regex(pattern)), behavior="isolated"),
                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
            )
        tr = trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                 show_progress=False)
        hf.train_from_iterator(texts, trainer=tr)
        secs = time.perf_counter() - t0
        merges = [m.split(" ") if isinstance(m, str) else list(m) for m in json.loads(hf.to_str())["model"]["merges"]]
    elif which == "rustbpe":
        import rustbpe

        rt = rustbpe.Tokenizer()
        rt.train_from_iterator(iter(texts), vocab, pattern=pattern)
        secs = time.perf_counter() - t0
    else:
        raise SystemExit(f"unknown trainer {which}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"which": which, "seconds": round(secs, 3), "bytes": nbytes, "docs": len(texts),
            "peak_rss_mb": round(peak, 1), "extra_rss_mb": round(peak - base, 1), "merges": merges}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--vocab-size", type=int, default=32768)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pattern", default="cl100k")
    ap.add_argument("--which", default="gristmill,hf,rustbpe")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--child", default=None)
    ap.add_argument("--json", default=None, help="write results here")
    a = ap.parse_args()
    if a.child:
        r = run_one(a.child, a.mb, a.vocab_size, a.pattern)
        print(json.dumps(r))
        return
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    results: Dict[str, Dict[str, Any]] = {}
    for rep in range(a.repeat):
        for which in a.which.split(","):
            cmd = [sys.executable, __file__, "--child", which, "--mb", str(a.mb), "--vocab-size", str(a.vocab_size),
                   "--pattern", a.pattern]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                raise SystemExit(f"{which} failed")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"[{rep}] {which:10s} {r['seconds']:8.2f} s  peak RSS {r['peak_rss_mb']:8.1f} MB "
                  f"(+{r['extra_rss_mb']:.1f} MB over the loaded texts)  {r['bytes'] / 1e6:.1f} MB, {r['docs']} docs",
                  flush=True)
            best = results.get(which)
            if best is None or r["seconds"] < best["seconds"]:
                results[which] = r
    g = results.get("gristmill")
    print(f"\nload: {os.getloadavg()}")
    if g:
        for other in ("hf", "rustbpe"):
            if other in results:
                o = results[other]
                print(f"gristmill vs {other}: {o['seconds'] / g['seconds']:.2f}x faster, "
                      f"peak RSS {g['peak_rss_mb']:.0f} vs {o['peak_rss_mb']:.0f} MB, "
                      f"extra {g['extra_rss_mb']:.0f} vs {o['extra_rss_mb']:.0f} MB")
        if "hf" in results:
            gm, hm = g["merges"], results["hf"]["merges"]
            first = next((i for i, (x, y) in enumerate(zip(gm, hm)) if x != y), None)
            print(f"merge lists: gristmill {len(gm)}, hf {len(hm)}; "
                  + ("identical" if first is None and len(gm) == len(hm) else f"first difference at {first}: {gm[first] if first is not None else ''} vs {hm[first] if first is not None else ''}"))
    if a.json:
        slim = {k: {kk: vv for kk, vv in v.items() if kk != "merges"} for k, v in results.items()}
        Path(a.json).write_text(json.dumps(slim, indent=2))


if __name__ == "__main__":
    main()
