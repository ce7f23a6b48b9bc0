"""LSH recall against brute-force exact Jaccard on real text, compared with the S-curve.

    python benches/scurve_minhash.py [--files 1000] [--edited 400] [--threshold 0.8]

Sample: the first ``--files`` files of ``linux.jsonl`` (benches/data.py; Python stdlib as a
fallback) with at least 50 words, plus ``--edited`` near-duplicates made by editing randomly
chosen sample files (replace/delete/insert 1–40 % of their words). Every pair's exact Jaccard
of gristmill's word 5-gram shingle sets is computed by brute force (Python sets), then:

* pair recall per exact-Jaccard bucket: the fraction of pairs sharing at least one LSH band
  (a candidate pair), next to the S-curve prediction ``mean(1 − (1 − J^r)^b)`` over the
  bucket's pairs and its binomial standard error;
* cluster recall: the fraction of pairs with J ≥ threshold that end up in one cluster of
  ``dedup_minhash`` (transitivity helps), and with ``verify=True`` its precision: the fraction
  of joining pairs whose exact J ≥ threshold (must be 1.0).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_minhash import CACHE, load_texts  # noqa: E402

from gristmill import _native  # noqa: E402
from gristmill.minhash import MinHasher, collision_probability, dedup_minhash, lsh_params  # noqa: E402


def edit(text: str, rate: float, rng: random.Random) -> str:
    out = []
    for w in text.split():
        r = rng.random()
        if r < rate / 3:
            continue
        if r < 2 * rate / 3:
            out.append(f"e{rng.randrange(10**6)}")
            continue
        out.append(w)
        if r < rate:
            out.append(f"i{rng.randrange(10**6)}")
    return " ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--edited", type=int, default=400)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    texts, desc = load_texts(200)
    texts = [t for t in texts if len(t.split()) >= 50][: args.files]
    docs = list(texts)
    for _ in range(args.edited):
        docs.append(edit(rng.choice(texts), rng.uniform(0.01, 0.4), rng))
    n = len(docs)
    mh = MinHasher(num_perm=args.num_perm)
    sets = [frozenset(mh.shingles(d)) for d in docs]
    lens = np.array([len(s) for s in sets])
    print(f"sample: {args.files} files of {desc.split(' (')[0]} + {args.edited} edited copies = {n} docs")

    # brute force over all pairs (size filter: J <= min/max, skip pairs that cannot reach 0.5)
    pairs, jac = [], []
    for i in range(n):
        si = sets[i]
        for j in range(i + 1, n):
            lo, hi = sorted((lens[i], lens[j]))
            if hi == 0 or lo / hi < 0.5:
                continue
            inter = len(si & sets[j])
            J = inter / (lens[i] + lens[j] - inter)
            if J >= 0.5:
                pairs.append((i, j))
                jac.append(J)
    pairs_a = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    jac_a = np.array(jac)
    print(f"{len(pairs):,} pairs with exact J >= 0.5 (of {n * (n - 1) // 2:,})")

    res = dedup_minhash(docs, args.threshold, num_perm=args.num_perm, verify=False, return_signatures=True)
    b, r = res.summary["bands"], res.summary["rows"]
    keys = _native.lsh_band_keys(res.signatures, b, r)
    cand = np.any(keys[pairs_a[:, 0]] == keys[pairs_a[:, 1]], axis=1) if len(pairs_a) else np.zeros(0, bool)
    print(f"\nbands x rows = {b} x {r} (num_perm {args.num_perm}, threshold {args.threshold})\n")
    print("| exact J | pairs | candidate rate | S-curve mean | ± 2 s.e. |")
    print("|---|---:|---:|---:|---:|")
    for lo in np.arange(0.5, 1.0, 0.1):
        hi = lo + 0.1 + (1e-9 if lo >= 0.9 else 0)
        m = (jac_a >= lo) & (jac_a < hi)
        k = int(m.sum())
        if k == 0:
            print(f"| {lo:.1f}–{lo + 0.1:.1f} | 0 | – | – | – |")
            continue
        pred = collision_probability(jac_a[m], b, r)
        se = np.sqrt(np.sum(pred * (1 - pred))) / k
        print(f"| {lo:.1f}–{lo + 0.1:.1f} | {k} | {cand[m].mean():.3f} | {pred.mean():.3f} | {2 * se:.3f} |")
    above = jac_a >= args.threshold
    comp = res.component
    cl_recall = float(np.mean(comp[pairs_a[above, 0]] == comp[pairs_a[above, 1]])) if above.any() else float("nan")
    print(f"\npair recall at J >= {args.threshold}: {cand[above].mean():.3f} (candidates), "
          f"cluster recall: {cl_recall:.3f} over {int(above.sum())} pairs")
    rv = dedup_minhash(docs, args.threshold, num_perm=args.num_perm, verify=True)
    pv = rv.pairs.to_pydict()
    ok = 0
    for a, bb in zip(pv["a"], pv["b"]):
        inter = len(sets[a] & sets[bb])
        ok += inter / (lens[a] + lens[bb] - inter) >= args.threshold
    compv = rv.component
    v_recall = float(np.mean(compv[pairs_a[above, 0]] == compv[pairs_a[above, 1]])) if above.any() else float("nan")
    print(f"verify: {len(pv['a'])} joining pairs, precision {ok / max(len(pv['a']), 1):.3f}, "
          f"cluster recall {v_recall:.3f}; removed {rv.summary['removed']} vs {res.summary['removed']} without verify")


if __name__ == "__main__":
    main()
