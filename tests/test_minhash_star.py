"""Issue 14 item 5 and item 8 for MinHash: verification on by default in the Python API,
``cluster="star"`` (every removed document within the threshold of the document kept for
it), and stage lines with totals on stderr."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import List, Set

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.cli import main
from gristmill.minhash import dedup_minhash, jaccard_estimate


def word5(text: str) -> Set[str]:
    """Word 5-gram shingles computed here, independently of the library: the test texts use
    lower-case ASCII words separated by single spaces, so normalisation is the identity."""
    w = re.findall(r"[a-z0-9]+", text.lower())
    if not w:
        return set()
    if len(w) < 5:
        return {" ".join(w)}
    return {" ".join(w[i:i + 5]) for i in range(len(w) - 4)}


def jaccard(a: str, b: str) -> float:
    sa, sb = word5(a), word5(b)
    return len(sa & sb) / len(sa | sb) if sa or sb else 0.0


def chain(k: int = 5, m: int = 50, docs: int = 4) -> List[str]:
    """Windows of ``m + 4`` words of one word sequence, each shifted by ``k`` words from the
    last: each has ``m`` word 5-grams and documents ``d`` apart share ``m − d·k`` of them,
    J = (m − d·k) / (m + d·k): 9/11 ≈ 0.82 for neighbours (k = 5, m = 50), 8/12 two apart,
    7/13 ≈ 0.54 from the first to the last."""
    words = [f"w{i}" for i in range(m + 4 + k * (docs - 1))]
    return [" ".join(words[i * k:i * k + m + 4]) for i in range(docs)]


CHAIN = chain()
LAYOUT = dict(bands=32, rows=4)  # candidates for every pair above ~0.5, almost surely


def test_chain_example_components_vs_star() -> None:
    assert jaccard(CHAIN[0], CHAIN[1]) == pytest.approx(9 / 11)
    assert jaccard(CHAIN[0], CHAIN[2]) == pytest.approx(8 / 12)
    assert jaccard(CHAIN[0], CHAIN[3]) == pytest.approx(7 / 13)
    comp = dedup_minhash(CHAIN, 0.8, **LAYOUT)
    # components: one cluster through the chain; doc 3 goes although J(3, kept 0) = 0.54
    assert comp.summary["verify"] is True and comp.summary["cluster"] == "components"
    assert comp.keep.tolist() == [True, False, False, False]
    cl = comp.clusters.to_pydict()
    assert min(cl["exact_jaccard"]) == pytest.approx(7 / 13)
    # star: 0 keeps 1 (0.82); 2 is only 0.67 from 0, so it is kept and takes 3 (0.82)
    star = dedup_minhash(CHAIN, 0.8, cluster="star", **LAYOUT)
    assert star.summary["cluster"] == "star"
    assert star.keep.tolist() == [True, False, True, False]
    cl = star.clusters.to_pydict()
    assert cl["doc"] == [0, 1, 2, 3] and cl["kept_doc"] == [0, 0, 2, 2] and cl["cluster"] == [0, 0, 2, 2]
    for d, k, ex in zip(cl["doc"], cl["kept_doc"], cl["exact_jaccard"]):
        assert ex == pytest.approx(jaccard(CHAIN[d], CHAIN[k]) if d != k else 1.0)
    assert star.pairs.to_pydict()["a"] == [0, 2] and star.pairs.to_pydict()["b"] == [1, 3]
    # the keep policy decides the centres: keeping the longest (here: scores) starts from doc 1
    s1 = dedup_minhash(CHAIN, 0.8, cluster="star", keep="column:q", keep_scores=[0, 5, 0, 0], **LAYOUT)
    assert s1.keep.tolist() == [False, True, False, True]
    # without verification, star confirms pairs by the MinHash estimate
    ns = dedup_minhash(CHAIN, 0.8, cluster="star", verify=False, return_signatures=True, **LAYOUT)
    ncl = ns.clusters.to_pydict()
    for d, k in zip(ncl["doc"], ncl["kept_doc"]):
        assert jaccard_estimate(ns.signatures[d], ns.signatures[k]) >= 0.8
    with pytest.raises(ValueError, match="cluster must be"):
        dedup_minhash(CHAIN, 0.8, cluster="chains")


def test_python_api_verifies_by_default() -> None:
    # two documents at J = 0.45 that LSH with 16 bands of 1 row almost surely pairs
    shared = [f"s{i}" for i in range(40)]
    a = " ".join(shared + [f"a{i}" for i in range(22)])
    b = " ".join(shared + [f"b{i}" for i in range(22)])
    assert jaccard(a, b) == pytest.approx(36 / 80)
    r = dedup_minhash([a, b], 0.8, num_perm=16, bands=16, rows=1)
    assert r.summary["verify"] is True and r.keep.tolist() == [True, True] and r.summary["rejected_pairs"] >= 1
    assert dedup_minhash([a, b], 0.8, num_perm=16, bands=16, rows=1, verify=False).keep.tolist() == [True, False]


VOCAB = [f"v{i}" for i in range(12)]


@st.composite
def families(draw: st.DrawFn) -> List[str]:
    """Near-duplicate families: a few base texts, each copied with small edits."""
    bases = draw(st.lists(st.lists(st.sampled_from(VOCAB), min_size=3, max_size=30), min_size=1, max_size=4))
    out = []
    for _ in range(draw(st.integers(2, 14))):
        w = list(draw(st.sampled_from(bases)))
        for _ in range(draw(st.integers(0, 4))):
            op = draw(st.sampled_from(["replace", "insert", "delete"]))
            pos = draw(st.integers(0, max(len(w) - 1, 0)))
            if op == "replace" and w:
                w[pos] = draw(st.sampled_from(VOCAB))
            elif op == "insert":
                w.insert(pos, draw(st.sampled_from(VOCAB)))
            elif w:
                del w[pos]
        out.append(" ".join(w))
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(families(), st.floats(0.4, 0.9), st.sampled_from(["first", "longest"]))
def test_star_removed_documents_are_within_threshold_of_their_kept_one(docs: List[str], t: float, keep: str) -> None:
    r = dedup_minhash(docs, t, num_perm=128, bands=128, rows=1, cluster="star", keep=keep)
    kept = r.keep
    cl = r.clusters.to_pydict()
    kept_of = dict(zip(cl["doc"], cl["kept_doc"]))
    for d in np.flatnonzero(~kept):
        k = kept_of[int(d)]
        assert kept[k]
        assert jaccard(docs[d], docs[k]) >= t, (d, k)
        if keep == "longest":
            assert len(docs[k].encode()) >= len(docs[d].encode())
    # every document left out of a star was a candidate of each earlier centre and rejected:
    # with 128 bands of 1 row every pair above 0.4 is a candidate, so no two kept documents
    # are within the threshold of each other
    ks = np.flatnonzero(kept)
    for i in ks:
        for j in ks[ks > i]:
            if word5(docs[i]) and word5(docs[j]):
                assert jaccard(docs[i], docs[j]) < t, (i, j)
    # components remove at least as many documents (stars split components)
    assert dedup_minhash(docs, t, num_perm=128, bands=128, rows=1, keep=keep).summary["removed"] >= r.summary["removed"]


def _sample(n: int = 60) -> List[str]:
    rng = np.random.default_rng(5)
    base = [[f"t{rng.integers(0, 40)}" for _ in range(40)] for _ in range(6)]
    out = []
    for i in range(n):
        w = list(base[i % 6])
        for _ in range(int(rng.integers(0, 8))):
            w[int(rng.integers(0, len(w)))] = f"t{rng.integers(0, 40)}"
        out.append(" ".join(w))
    return out


@pytest.mark.parametrize("verify", [True, False])
def test_star_same_result_at_any_thread_count(verify: bool) -> None:
    docs = _sample()
    runs = [dedup_minhash(docs, 0.6, cluster="star", verify=verify, num_threads=t, batch_size=bs, keep="longest")
            for t, bs in [(1, 10000), (2, 7), (3, 64)]]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.keep, runs[0].keep)
        np.testing.assert_array_equal(r.component, runs[0].component)
        assert r.clusters.equals(runs[0].clusters) and r.pairs.equals(runs[0].pairs)
    assert runs[0].summary["removed"] > 0


def _jsonl(path: Path, texts: List[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def test_cli_cluster_star(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _jsonl(tmp_path / "chain.jsonl", CHAIN)
    layout = ["--bands", "32", "--rows", "4"]
    assert main(["-q", "dedup", "minhash", str(src), "-o", str(tmp_path / "c"), *layout, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["cluster"] == "components" and s["removed"] == 3
    assert main(["-q", "dedup", "minhash", str(src), "-o", str(tmp_path / "s"), "--cluster", "star", *layout, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["cluster"] == "star" and s["removed"] == 2 and s["verify"] is True
    kept = [json.loads(x)["text"] for x in (tmp_path / "s" / "chain.jsonl").read_text().splitlines()]
    assert kept == [CHAIN[0], CHAIN[2]]
    rep = pq.read_table(tmp_path / "s" / "minhash_clusters.parquet").to_pydict()
    assert min(rep["exact_jaccard"]) >= 0.8
    with pytest.raises(SystemExit) as e:
        main(["-q", "dedup", "minhash", str(src), "-o", str(tmp_path / "x"), "--cluster", "nope"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_cli_help_explains_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dedup", "minhash", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--cluster {components,star}" in out
    assert "chains of confirmed pairs" in out and "within --threshold of the document kept for it" in out


def test_cli_minhash_stage_lines_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _jsonl(tmp_path / "chain.jsonl", CHAIN)
    nbytes = sum(len(t.encode()) for t in CHAIN)
    assert main(["dedup", "minhash", str(src), "-o", str(tmp_path / "o"), "--bands", "32", "--rows", "4",
                 "--cluster", "star"]) == 0
    cap = capsys.readouterr()
    lines = cap.err.splitlines()
    starts = [
        "dedup minhash: signatures: 128 permutations of word 5-grams ...",
        f"dedup minhash: LSH: 4 documents, {nbytes} bytes, 32 bands x 4 rows ...",
        "dedup minhash: read candidates: 4 of 4 documents ...",
        "dedup minhash: verify + star: ",
    ]
    for st_ in starts:
        assert any(ln.startswith(st_) and ln.endswith("...") for ln in lines), (st_, cap.err)
    assert any(re.fullmatch(r"dedup minhash: verify \+ star: \d+ candidate pairs in \d+ groups, "
                            r"exact Jaccard >= 0\.8 \.\.\.", ln) for ln in lines), cap.err
    for name in ["signatures", "LSH", "read candidates", "verify + star"]:
        assert any(re.fullmatch(rf"dedup minhash: {re.escape(name)}: done in \d+\.\d s", ln) for ln in lines), (name, cap.err)
    assert "clusters: 2, removing 2 of 4 documents" in cap.err
    assert "dedup minhash:" not in cap.out and "removed" in cap.out  # results on stdout only
    assert main(["-q", "dedup", "minhash", str(src), "-o", str(tmp_path / "q")]) == 0
    cap = capsys.readouterr()
    assert cap.err == "" and "removed" in cap.out


def test_library_calls_print_no_stage_lines(capsys: pytest.CaptureFixture[str]) -> None:
    dedup_minhash(CHAIN, 0.8)
    assert capsys.readouterr().err == ""


def test_progress_bar_ticks_reach_the_total(monkeypatch: pytest.MonkeyPatch) -> None:
    from gristmill import _progress

    seen: List[tuple] = []

    class FakeBar:
        def __init__(self, desc: str, *, total=None, **kw) -> None:
            self.desc, self.total, self.n = desc, total, 0

        def __enter__(self) -> "FakeBar":
            return self

        def __exit__(self, *a) -> None:
            seen.append((self.desc, self.total, self.n))

        def update(self, k: int) -> None:
            self.n += k

    monkeypatch.setattr(_progress, "bar", FakeBar)
    monkeypatch.setitem(_progress._state, "enabled", True)
    r = dedup_minhash(CHAIN, 0.8, cluster="star", **LAYOUT)
    assert ("star clusters", 4, 4) in seen
    r = dedup_minhash(CHAIN, 0.8, **LAYOUT)
    groups = r.summary["candidate_groups"]
    assert ("components clusters", groups, groups) in seen
