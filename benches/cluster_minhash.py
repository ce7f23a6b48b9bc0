"""Components vs star clusters: how many documents each removes, and how similar every removed
document is to the document kept for it.

    python benches/data.py --only man
    python benches/cluster_minhash.py benches/.cache/man-de.jsonl --thresholds 0.8,0.7,0.5

For each threshold, with and without verification, ``dedup_minhash`` runs with
``cluster="components"`` and ``cluster="star"``; the exact Jaccard of every removed document
to its kept one is recomputed here from gristmill's word 5-gram shingle sets (Python sets),
and the table shows the smallest one and how many fall below the threshold.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Dict, Set

from gristmill.minhash import MinHasher, dedup_minhash


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", help="a JSONL file with a 'text' field")
    ap.add_argument("--thresholds", default="0.8,0.7,0.5")
    args = ap.parse_args()
    with open(args.corpus, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    mh = MinHasher(num_perm=128)
    sets: Dict[int, Set[str]] = {}

    def jac(a: int, b: int) -> float:
        for i in (a, b):
            if i not in sets:
                sets[i] = set(mh.shingles(texts[i]))
        union = len(sets[a] | sets[b])
        return len(sets[a] & sets[b]) / union if union else 0.0

    print(f"{args.corpus}: {len(texts):,} documents\n")
    print("| threshold | verify | cluster | removed | clusters | min J(removed, kept) | removed below threshold | s |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for t in [float(x) for x in args.thresholds.split(",")]:
        for verify in (True, False):
            for cluster in ("components", "star"):
                t0 = time.perf_counter()
                r = dedup_minhash(texts, t, verify=verify, cluster=cluster)
                dt = time.perf_counter() - t0
                cl = r.clusters.to_pydict()
                js = [jac(d, k) for d, k, is_kept in zip(cl["doc"], cl["kept_doc"], cl["is_kept"]) if not is_kept]
                low = min(js) if js else float("nan")
                print(f"| {t} | {verify} | {cluster} | {r.summary['removed']:,} | {r.summary['clusters']:,} | "
                      f"{low:.3f} | {sum(j < t for j in js):,} | {dt:.1f} |", flush=True)


if __name__ == "__main__":
    main()
