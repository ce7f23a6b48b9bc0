"""Mixture inference benchmarks on real local text (Debian man pages in 12 languages, and code
and markup by file type from this machine's Python, Perl, C headers and Rust crates).

    python benches/bench_mixture.py speed       # 5 x 3 MB at T=3000; 28 x 2 MB at T=30000 (+ peak RSS)
    python benches/bench_mixture.py curve       # held-out log10 MSE against bytes per category and T
    python benches/bench_mixture.py offshelf    # cl100k_base and o200k_base with the local categories
    python benches/bench_mixture.py lp --num-merges 10000 --mb 3   # the LP alone: o200k_base, 5 languages

Every figure is one run in this process; RESULTS.md records them with the command.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402

import gristmill  # noqa: E402
from gristmill.mixture import experiment, infer  # noqa: E402

LANGS5 = ["en", "de", "fr", "ja", "ru"]
# File types with at least ~1 MB of text on these machines, and where to look for them.
CODE_ROOTS = ["/usr/lib/python3", "/usr/share/perl", "/usr/include", str(Path.home() / ".cargo/registry/src"),
              "/usr/lib/x86_64-linux-gnu/perl", "/usr/share", sys.prefix]
CODE_TYPES = ["py", "json", "h", "rs", "html", "txt", "md", "xml", "pm", "pyi", "rst", "yaml", "pl", "js", "c", "tcl"]


def code_texts(ext: str, limit: int = 6_000_000) -> List[str]:
    """Files ending in .ext under CODE_ROOTS, in sorted path order, until `limit` bytes."""
    out: List[str] = []
    seen = set()
    used = 0
    for root in CODE_ROOTS:
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                if not f.endswith("." + ext):
                    continue
                p = os.path.realpath(os.path.join(dirpath, f))
                if p in seen:
                    continue
                seen.add(p)
                try:
                    b = open(p, "rb").read()
                    text = b.decode("utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                if not text.strip() or len(b) > 2_000_000:
                    continue
                out.append(text)
                used += len(b)
                if used >= limit:
                    return out
    return out


def man(lang: str) -> List[str]:
    return data.load_texts(f"man-{lang}")


def all_categories() -> Dict[str, List[str]]:
    cats = {f"man-{lang}": man(lang) for lang in data.LANGS}
    for ext in CODE_TYPES:
        cats[f".{ext}"] = code_texts(ext)
    return cats


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speed() -> None:
    cats5 = {lang: man(lang) for lang in LANGS5}
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(5))
    mix = []
    held = {}
    for (lang, docs), wi in zip(cats5.items(), w):
        order = rng.permutation(len(docs))
        docs = [docs[i] for i in order]
        held[lang] = docs[: len(docs) // 2]
        mix += [d for d, _ in data._take([(d, "") for d in docs[len(docs) // 2:]], int(wi * 4_000_000))]
    tok = gristmill.train_bpe(mix, vocab_size=8000, pattern="o200k")
    t0 = time.perf_counter()
    r = infer(tok, held, num_merges=3000, bytes_per_category=3_000_000)
    d = r.diagnostics
    print(f"5 categories x 3 MB, T=3000: {time.perf_counter() - t0:.2f} s wall "
          f"(load {d['seconds']['load']:.2f}, count {d['seconds']['count']:.2f}, replay {d['seconds']['replay']:.2f}, "
          f"solve {d['seconds']['solve']:.2f}; {d['rounds']} rounds, converged {d['converged']})", flush=True)

    cats = all_categories()
    sizes = {k: sum(len(t.encode()) for t in v) for k, v in cats.items()}
    print(f"{len(cats)} categories: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items()), flush=True)
    # A tokenizer trained on a known mixture of the 28 categories (disjoint halves: train / infer).
    w = rng.dirichlet(np.ones(len(cats)))
    mix, held = [], {}
    for (name, docs), wi in zip(cats.items(), w):
        order = rng.permutation(len(docs))
        docs = [docs[i] for i in order]
        half = len(docs) // 2
        held[name] = docs[:half]
        budget, used = int(wi * 30_000_000), 0
        for d in docs[half:]:
            if used >= budget:
                break
            mix.append(d)
            used += len(d.encode())
    t0 = time.perf_counter()
    tok = gristmill.train_bpe(mix, vocab_size=30_256 + 1, pattern="o200k")
    print(f"trained a 30,257-token tokenizer on {sum(len(t.encode()) for t in mix) / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s",
          flush=True)
    t0 = time.perf_counter()
    r = infer(tok, held, num_merges=30_000, bytes_per_category=2_000_000)
    d = r.diagnostics
    print(f"{len(cats)} categories x <= 2 MB, T=30000: {time.perf_counter() - t0:.2f} s wall "
          f"(load {d['seconds']['load']:.2f}, count {d['seconds']['count']:.2f}, replay {d['seconds']['replay']:.2f}, "
          f"solve {d['seconds']['solve']:.2f}; {d['rounds']} rounds, converged {d['converged']}); "
          f"peak RSS {peak_rss_mb():.0f} MB", flush=True)


def curve(trials: int) -> None:
    cats5 = {lang: str(data.corpus(f"man-{lang}")) for lang in LANGS5}
    for ib in (1_000_000, 2_000_000, 3_000_000):
        r = experiment(cats5, trials=trials, infer_bytes=ib, num_merges=3000)
        s = r.summary()
        print(f"bytes/category {ib / 1e6:.0f} MB, T=3000: mixture {s['mixture_lp']['mean']:.3f} ± {s['mixture_lp']['std']:.3f}, "
              f"uniform {s['uniform']['mean']:.3f}, token_frequency {s['token_frequency']['mean']:.3f}", flush=True)
    for T in (1000, 6000):
        r = experiment(cats5, trials=trials, infer_bytes=2_000_000, num_merges=T)
        s = r.summary()
        print(f"bytes/category 2 MB, T={T}: mixture {s['mixture_lp']['mean']:.3f} ± {s['mixture_lp']['std']:.3f}", flush=True)


def offshelf(num_merges: int) -> None:
    cats = all_categories()
    for name in ("cl100k_base", "o200k_base"):
        t0 = time.perf_counter()
        r = infer(name, cats, num_merges=num_merges, bytes_per_category=2_000_000)
        d = r.diagnostics
        top = ", ".join(f"{k} {100 * v:.1f}%" for k, v in r.ranked()[:10])
        print(f"{name}, T={num_merges}, {len(cats)} categories x <= 2 MB: {top} "
              f"({time.perf_counter() - t0:.1f} s, {d['rounds']} rounds, converged {d['converged']}, "
              f"{d['merges_unseen']} merges unseen)", flush=True)


def lp(num_merges: int, mb: float) -> None:
    """o200k_base on 5 languages' man pages: rounds, HiGHS time and the answer of the LP."""
    t0 = time.perf_counter()
    r = infer("o200k_base", {lang: str(data.corpus(f"man-{lang}")) for lang in LANGS5},
              num_merges=num_merges, bytes_per_category=int(mb * 1e6))
    d = r.diagnostics
    top = ", ".join(f"{k} {100 * v:.2f}%" for k, v in r.ranked())
    print(f"o200k_base, T={num_merges}, 5 x {mb:g} MB: {time.perf_counter() - t0:.1f} s wall, {d['rounds']} rounds, "
          f"converged {d['converged']}, objective {d['objective']:,.2f} (gap {100 * d['optimality_gap']:.2f} %), "
          f"HiGHS {d['solve_seconds']:.1f} s, oracle {d['sweep_seconds']:.1f} s; {top}; peak RSS {peak_rss_mb():.0f} MB",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite", choices=["speed", "curve", "offshelf", "lp"])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--num-merges", type=int, default=3000)
    ap.add_argument("--mb", type=float, default=3.0, help="MB per language (lp)")
    a = ap.parse_args()
    if a.suite == "speed":
        speed()
    elif a.suite == "curve":
        curve(a.trials)
    elif a.suite == "lp":
        lp(a.num_merges, a.mb)
    else:
        offshelf(a.num_merges)


if __name__ == "__main__":
    main()
