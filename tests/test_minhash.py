"""MinHash + LSH: differential tests against datasketch and brute-force exact Jaccard on
real text (the running interpreter's standard library), properties, determinism, bad input."""

from __future__ import annotations

import math
import random
import sysconfig
from pathlib import Path
from typing import List

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

import gristmill
from gristmill.minhash import (
    MinHasher,
    collision_probability,
    dedup_minhash,
    jaccard_estimate,
    lsh_params,
    shingles,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _stdlib_texts(limit: int, *, min_bytes: int = 2000, max_bytes: int = 60000) -> List[str]:
    out = []
    for p in sorted(STDLIB.glob("*.py")):
        try:
            t = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if min_bytes <= len(t) <= max_bytes:
            out.append(t)
        if len(out) >= limit:
            break
    assert len(out) >= min(limit, 20), "the standard library should provide enough files"
    return out


def _edit(text: str, rate: float, rng: random.Random) -> str:
    """A near-duplicate: replace/delete/insert about `rate` of the words."""
    words = text.split()
    out = []
    for w in words:
        r = rng.random()
        if r < rate / 3:
            continue
        if r < 2 * rate / 3:
            out.append(f"edit{rng.randrange(10**6)}")
            continue
        out.append(w)
        if r < rate:
            out.append(f"ins{rng.randrange(10**6)}")
    return " ".join(out)


def _exact_jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


# ---------------------------------------------------------------------------------------------
# datasketch compatibility


@pytest.mark.parametrize("scheme", ["affine32", "affine64", "legacy"])
@pytest.mark.parametrize("unit,ngram", [("word", 5), ("char", 7)])
def test_bit_identical_to_datasketch_on_stdlib(scheme: str, unit: str, ngram: int) -> None:
    datasketch = pytest.importorskip("datasketch")
    texts = _stdlib_texts(12 if unit == "char" else 25, max_bytes=20000)
    texts += ["", "short doc", "Ünïcödé — ΣΟΦΙΑ straße 東京都 ﬁle ½"]
    mh = MinHasher(num_perm=96, seed=42, ngram=ngram, unit=unit, compat="datasketch", scheme=scheme)
    sig = mh.signatures(texts)
    for i, t in enumerate(texts):
        ref = datasketch.MinHash(num_perm=96, seed=42, scheme=scheme)
        sh = mh.shingles(t)
        if sh:
            ref.update_batch([s.encode("utf-8") for s in sh])
        assert sig.dtype == ref.hashvalues.dtype
        np.testing.assert_array_equal(sig[i], ref.hashvalues, err_msg=f"document {i}, scheme {scheme}")


@pytest.mark.parametrize("num_perm", [1, 13, 128, 200, 256, 300])
def test_affine32_fused_path_bit_identical(num_perm: int) -> None:
    """The affine32 text path hashes short shingles four at a time with their
    permutations fused into the SHA-1 rounds (vectors padded to 2/4/8/16/32, plain path
    above 256 permutations); long shingles (> 55 bytes) and a document's last 1-3
    shingles take the plain path. Every mix of those must equal datasketch."""
    datasketch = pytest.importorskip("datasketch")
    texts = _stdlib_texts(6, max_bytes=8000)
    long_words = " ".join(f"{'x' * (8 + i % 17)}{i}" for i in range(40))  # 5-grams of 45-110 bytes
    texts += [
        "spam eggs ham " * 300,  # three distinct 5-grams, repeated hundreds of times
        long_words,
        long_words + " " + texts[0][:3000],
        "one two three four five six seven",  # 3 shingles: only the leftover path
        "a b c d e f g h",  # 4 shingles: one full batch, permuted in finish
        "a b c d e f g h i",  # 5
    ]
    mh = MinHasher(num_perm=num_perm, seed=3, ngram=5, compat="datasketch")
    sig = mh.signatures(texts)
    for i, t in enumerate(texts):
        ref = datasketch.MinHash(num_perm=num_perm, seed=3)
        ref.update_batch([s.encode("utf-8") for s in mh.shingles(t)])
        np.testing.assert_array_equal(sig[i], ref.hashvalues, err_msg=f"document {i}, num_perm {num_perm}")


def test_pre_made_shingles_match_datasketch_and_text_path() -> None:
    datasketch = pytest.importorskip("datasketch")
    texts = _stdlib_texts(8)
    # token-like shingles that gristmill's normaliser would never produce
    sets = [[f"{a}\x00{b}" for a, b in zip(t.split(), t.split()[1:])] for t in texts] + [[], ["only"]]
    for scheme in ("affine32", "legacy"):
        mh = MinHasher(num_perm=64, seed=5, compat="datasketch", scheme=scheme)
        sig = mh.signatures_of_shingles(sets)
        for i, sh in enumerate(sets):
            ref = datasketch.MinHash(num_perm=64, seed=5, scheme=scheme)
            if sh:
                ref.update_batch([s.encode() for s in sh])
            np.testing.assert_array_equal(sig[i], ref.hashvalues)
    mh = MinHasher(num_perm=64)
    np.testing.assert_array_equal(mh.signatures_of_shingles([mh.shingles(t) for t in texts]), mh.signatures(texts))
    arr = pa.array(sets, pa.list_(pa.string()))
    np.testing.assert_array_equal(mh.signatures_of_shingles(arr.slice(2, 5)), mh.signatures_of_shingles(sets[2:7]))
    with pytest.raises(TypeError):
        mh.signatures_of_shingles(pa.array([1, 2]))
    with pytest.raises(TypeError, match="shingles"):
        mh.signatures_of_shingles([["a", 3]])


def test_list_input_reads_every_kind_of_str_like_arrow() -> None:
    """Python-list shingles are read inline when they are exact compact-ASCII strs and
    through CPython's UTF-8 otherwise; either way the bytes (so the signatures) must equal
    the Arrow path's, which never looks at str objects."""

    class Sub(str):
        pass

    class SubList(list):  # type: ignore[type-arg]
        pass

    import sys

    texts = _stdlib_texts(4)
    base = [MinHasher(ngram=3).shingles(t) for t in texts]
    sets = [
        base[0],
        [s.upper() + " é" for s in base[1]],  # non-ASCII (UTF-8 made on demand)
        [Sub(s) for s in base[2]],  # str subclass: not an exact str
        [sys.intern(s) for s in base[3]],  # interned
        ["", "x", "ß", "東京都 ﬁle", "\U0001F600 emoji", "a" * 300, "ascii"],  # short, long, wide
        [],
        base[0][:5] + [Sub("mixed")] + ["ünï"] + base[1][:5],
        SubList(base[2][:50]),  # list subclass: same item array
    ]
    for compat in (None, "datasketch"):
        mh = MinHasher(num_perm=64, seed=11, compat=compat)
        from_lists = mh.signatures_of_shingles(sets)
        from_arrow = mh.signatures_of_shingles(pa.array([[str(s) for s in sh] for sh in sets], pa.list_(pa.string())))
        np.testing.assert_array_equal(from_lists, from_arrow)
        np.testing.assert_array_equal(from_lists, mh.signatures_of_shingles([tuple(sh) for sh in sets]))


def test_datasketch_default_seed_and_scheme() -> None:
    datasketch = pytest.importorskip("datasketch")
    text = _stdlib_texts(1)[0]
    mh = MinHasher(compat="datasketch")  # num_perm=128, seed=1, affine32: datasketch defaults
    ref = datasketch.MinHash()
    ref.update_batch([s.encode() for s in mh.shingles(text)])
    np.testing.assert_array_equal(mh.signatures([text])[0], ref.hashvalues)
    assert ref.jaccard(ref) == jaccard_estimate(mh.signatures([text])[0], ref.hashvalues)


def test_lsh_params_match_datasketch() -> None:
    lsh = pytest.importorskip("datasketch.lsh")
    for t, n, w in [(0.5, 128, (0.5, 0.5)), (0.8, 128, (0.5, 0.5)), (0.9, 64, (0.5, 0.5)),
                    (0.7, 256, (0.5, 0.5)), (0.8, 128, (0.2, 0.8)), (0.3, 100, (0.9, 0.1))]:
        assert lsh_params(t, n, w) == lsh._optimal_param(t, n, *w), (t, n, w)


# ---------------------------------------------------------------------------------------------
# shingles and short documents


def test_shingle_normalisation() -> None:
    assert shingles("Hello,  World!\n\tFOO-bar", ngram=2) == ["hello world", "world foo", "foo bar"]
    assert shingles("Größe ÄRGER", ngram=1) == ["größe", "ärger"]
    assert shingles("v1.2 and 2024", ngram=1, fold_digits=True) == ["v0", "0", "and", "0000"]
    assert shingles("ﬁne Ｆｕｌｌ", ngram=1, nfkc=True) == ["fine", "full"]
    assert shingles("A.b", ngram=1, strip_punct=False, lowercase=False) == ["A.b"]
    assert shingles("abcd", ngram=3, unit="char") == ["abc", "bcd"]


def test_short_and_empty_documents() -> None:
    assert shingles("two words", ngram=5) == ["two words"]
    assert shingles("", ngram=5) == []
    assert shingles("  ...  ;;; ", ngram=5) == []
    mh = MinHasher(num_perm=32, ngram=5)
    sig = mh.signatures(["", "   ", "two words", "two words!"])
    assert np.all(sig[0] == mh.empty_value) and np.all(sig[1] == mh.empty_value)
    np.testing.assert_array_equal(sig[2], sig[3])
    assert np.any(sig[2] != mh.empty_value)
    # empty documents are never clustered, not even with each other
    r = dedup_minhash(["", "", "   ", "two words", "two words"], 0.5, num_perm=32)
    assert r.keep.tolist() == [True, True, True, True, False]
    assert r.summary["empty_shingle_sets"] == 3
    assert r.summary["clusters"] == 1


def test_empty_batch() -> None:
    r = dedup_minhash([], 0.8)
    assert r.keep.shape == (0,) and r.summary["docs_in"] == 0 and r.clusters.num_rows == 0
    assert MinHasher(num_perm=8).signatures([]).shape == (0, 8)


def test_accepts_arrow_arrays_and_slices() -> None:
    texts = _stdlib_texts(6)
    mh = MinHasher(num_perm=64)
    full = mh.signatures(texts)
    arr = pa.array(texts, pa.string())
    np.testing.assert_array_equal(mh.signatures(arr), full)
    np.testing.assert_array_equal(mh.signatures(pa.array(texts, pa.large_string()).slice(2, 3)), full[2:5])
    np.testing.assert_array_equal(mh.signatures(pa.chunked_array([arr[:2], arr[2:]])), full)


# ---------------------------------------------------------------------------------------------
# estimates vs exact Jaccard, recall/precision vs brute force


def _near_duplicate_sample(n_base: int, seed: int = 0):
    rng = random.Random(seed)
    base = _stdlib_texts(n_base)
    docs = list(base)
    for t in base:
        for rate in (0.02, 0.05, 0.1, 0.2, 0.4):
            if rng.random() < 0.6:
                docs.append(_edit(t, rate, rng))
    rng.shuffle(docs)
    return docs


def test_estimates_within_minhash_error() -> None:
    docs = _near_duplicate_sample(25, seed=1)
    num_perm = 256
    for compat in (None, "datasketch"):
        mh = MinHasher(num_perm=num_perm, compat=compat)
        sig = mh.signatures(docs)
        sets = [set(mh.shingles(d)) for d in docs]
        errs = []
        for i in range(len(docs)):
            for j in range(i + 1, len(docs)):
                J = _exact_jaccard(sets[i], sets[j])
                if J < 0.05:
                    continue
                est = jaccard_estimate(sig[i], sig[j])
                sd = math.sqrt(max(J * (1 - J), 1e-4) / num_perm)
                errs.append((est - J) / sd)
        errs = np.asarray(errs)
        assert len(errs) > 30
        # standardised errors: unbiased, unit spread, no outliers beyond 5 sigma
        assert abs(errs.mean()) < 0.5, (compat, errs.mean())
        assert 0.5 < errs.std() < 1.5, (compat, errs.std())
        assert np.abs(errs).max() < 5.0, (compat, np.abs(errs).max())


def test_recall_and_precision_vs_brute_force() -> None:
    docs = _near_duplicate_sample(45, seed=2)
    threshold = 0.8
    mh = MinHasher(num_perm=128)
    sets = [set(mh.shingles(d)) for d in docs]
    n = len(docs)
    true_pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if _exact_jaccard(sets[i], sets[j]) >= threshold]
    assert len(true_pairs) >= 20, "the sample should contain near-duplicate pairs"
    r = dedup_minhash(docs, threshold, verify=False)
    assert (r.summary["bands"], r.summary["rows"]) == lsh_params(threshold, 128, (0.05, 0.95)) == (16, 8)
    comp = r.component
    recall = np.mean([comp[i] == comp[j] for i, j in true_pairs])
    assert recall >= 0.9, recall
    rv = dedup_minhash(docs, threshold, verify=True)
    recall_v = np.mean([rv.component[i] == rv.component[j] for i, j in true_pairs])
    assert recall_v >= 0.9, recall_v
    # precision with verify: every joining pair truly has J >= threshold (checked in Python)
    pairs = rv.pairs.to_pydict()
    assert len(pairs["a"]) > 0
    for a, b, ex in zip(pairs["a"], pairs["b"], pairs["exact_jaccard"]):
        J = _exact_jaccard(sets[a], sets[b])
        assert J >= threshold and ex == pytest.approx(J), (a, b, J, ex)
    # the report's exact Jaccard to the kept document is the true one
    cl = rv.clusters.to_pydict()
    for d, k, ex in zip(cl["doc"], cl["kept_doc"], cl["exact_jaccard"]):
        assert ex == pytest.approx(_exact_jaccard(sets[d], sets[k]) if d != k else 1.0)
    # removed documents are exactly the non-kept members of clusters
    assert r.summary["removed"] == int((~r.keep).sum()) == sum(1 for k in r.clusters["is_kept"].to_pylist() if not k)


def test_s_curve() -> None:
    # collision probability of the chosen layout vs observed candidate rate at J buckets
    b, r = lsh_params(0.8, 128, (0.05, 0.95))
    assert collision_probability(0.8, b, r) > 0.9
    assert collision_probability(0.3, b, r) < 0.01
    assert collision_probability(0.95, b, r) > 0.99


# ---------------------------------------------------------------------------------------------
# keep policies and the report


def test_keep_policies() -> None:
    base = _stdlib_texts(3)
    longer = base[0] + " extra tail words here"
    docs = [base[0], base[1], longer, base[2], base[0]]
    r = dedup_minhash(docs, 0.8)
    assert r.keep.tolist() == [True, True, False, True, False]
    r = dedup_minhash(docs, 0.8, keep="longest")
    assert r.keep.tolist() == [False, True, True, True, False]
    r = dedup_minhash(docs, 0.8, keep="column:score", keep_scores=[1.0, 0, 2.0, 0, 5.0])
    assert r.keep.tolist() == [False, True, False, True, True]
    assert set(r.clusters.column_names) >= {"cluster", "doc", "kept_doc", "is_kept", "est_jaccard"}
    assert r.clusters["cluster"].to_pylist() == [0, 0, 0]
    assert r.clusters["kept_doc"].to_pylist() == [4, 4, 4]
    assert r.summary["clusters"] == 1 and r.summary["removed"] == 2


# ---------------------------------------------------------------------------------------------
# determinism


def test_same_result_any_threads_and_batch_size() -> None:
    docs = _near_duplicate_sample(40, seed=3)
    results = [
        dedup_minhash(docs, 0.7, num_threads=t, batch_size=bs, verify=v, return_signatures=True)
        for t, bs, v in [(1, 10000, False), (2, 7, False), (2, 64, False)]
    ]
    ref = results[0]
    for r in results[1:]:
        np.testing.assert_array_equal(r.signatures, ref.signatures)
        np.testing.assert_array_equal(r.component, ref.component)
        np.testing.assert_array_equal(r.keep, ref.keep)
        assert r.clusters.equals(ref.clusters)
    v1 = dedup_minhash(docs, 0.7, num_threads=1, verify=True)
    v2 = dedup_minhash(docs, 0.7, num_threads=2, batch_size=5, verify=True)
    np.testing.assert_array_equal(v1.component, v2.component)
    assert v1.clusters.equals(v2.clusters) and v1.pairs.equals(v2.pairs)


# ---------------------------------------------------------------------------------------------
# properties

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=60, deadline=None)
@given(st.lists(_text, min_size=1, max_size=8), st.sampled_from([None, "datasketch"]))
def test_row_depends_only_on_its_document(texts: List[str], compat) -> None:
    mh = MinHasher(num_perm=16, ngram=2, compat=compat)
    together = mh.signatures(texts)
    for i, t in enumerate(texts):
        np.testing.assert_array_equal(mh.signatures([t])[0], together[i])


@settings(max_examples=60, deadline=None)
@given(_text)
def test_normalisation_idempotent(text: str) -> None:
    words = shingles(text, ngram=1)
    assert shingles(" ".join(words), ngram=1) == words
    for w in words:
        assert w == w.lower() or w.lower() != w.lower().lower()  # lowercasing is applied
        assert " " not in w


@settings(max_examples=25, deadline=None)
@given(_text)
def test_hypothesis_compat_with_datasketch(text: str) -> None:
    datasketch = pytest.importorskip("datasketch")
    mh = MinHasher(num_perm=8, ngram=2, compat="datasketch", seed=7)
    ref = datasketch.MinHash(num_perm=8, seed=7)
    sh = mh.shingles(text)
    if sh:
        ref.update_batch([s.encode() for s in sh])
    np.testing.assert_array_equal(mh.signatures([text])[0], ref.hashvalues)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["alpha beta gamma delta", "alpha beta gamma delta eps", "zeta eta theta", ""]),
                min_size=0, max_size=12))
def test_clusters_are_consistent(texts: List[str]) -> None:
    r = dedup_minhash(texts, 0.5, num_perm=32, ngram=2)
    n = len(texts)
    # identical non-empty documents always share a cluster; one survivor per cluster
    for i in range(n):
        for j in range(n):
            if texts[i] and texts[i] == texts[j]:
                assert r.component[i] == r.component[j]
    for c in set(r.component.tolist()):
        members = [i for i in range(n) if r.component[i] == c]
        assert min(members) == c
        assert sum(r.keep[m] for m in members) == 1


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="threshold"):
        dedup_minhash(["a"], 0.0)
    with pytest.raises(ValueError, match="threshold"):
        dedup_minhash(["a"], 1.0)
    with pytest.raises(ValueError, match="threshold"):
        dedup_minhash(["a"], float("nan"))
    with pytest.raises(ValueError, match="threshold"):
        lsh_params(1.5, 128)
    with pytest.raises(ValueError, match="exceeds num_perm"):
        dedup_minhash(["a"], 0.8, num_perm=128, bands=20, rows=7)
    with pytest.raises(gristmill.GristmillError, match="exceeds num_perm"):
        gristmill._native.lsh_check_bands(64, 9, 8)
    with pytest.raises(ValueError, match="num_perm"):
        MinHasher(num_perm=0)
    with pytest.raises(ValueError, match="ngram"):
        MinHasher(ngram=0)
    with pytest.raises(ValueError, match="unit"):
        MinHasher(unit="token")
    with pytest.raises(ValueError, match="compat"):
        MinHasher(compat="rensa")
    with pytest.raises(ValueError, match="scheme"):
        MinHasher(compat="datasketch", scheme="affine16")
    with pytest.raises(ValueError, match="keep"):
        dedup_minhash(["a"], 0.8, keep="shortest")
    with pytest.raises(ValueError, match="keep_scores"):
        dedup_minhash(["a", "b"], 0.8, keep="column:quality")
    with pytest.raises(ValueError, match="keep_scores has 1 values for 2"):
        dedup_minhash(["a", "b"], 0.8, keep="column:quality", keep_scores=[1.0])
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        MinHasher().signatures(["ok", 3])
    with pytest.raises(TypeError):
        MinHasher().shingles(b"bytes")
    with pytest.raises(ValueError, match="different lengths"):
        jaccard_estimate(np.zeros(4), np.zeros(5))


def test_signature_matrix_checks() -> None:
    sig = np.zeros((4, 16), np.uint32)
    with pytest.raises(TypeError, match="uint32 or uint64"):
        gristmill._native.lsh_cluster(sig.astype(np.int32), 4, 4, np.ones(4, bool))
    with pytest.raises(TypeError, match="C-contiguous"):
        gristmill._native.lsh_cluster(np.asfortranarray(sig), 4, 4, np.ones(4, bool))
    with pytest.raises(ValueError, match="eligible"):
        gristmill._native.lsh_cluster(sig, 4, 4, np.ones(3, bool))


# ---------------------------------------------------------------------------------------------
# CLI on small real corpora


def _cli(*args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "gristmill", "-q", *args], capture_output=True, text=True)


def _write_corpus(tmp_path: Path):
    import json

    rng = random.Random(5)
    base = _stdlib_texts(12)
    recs = []
    for i, t in enumerate(base):
        recs.append({"text": t, "q": float(i)})
        if i % 2 == 0:
            recs.append({"text": _edit(t, 0.01, rng), "q": 100.0 + i})
    p = tmp_path / "in.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return p, recs


def test_cli_jsonl_and_parquet(tmp_path: Path) -> None:
    import json

    import pyarrow.parquet as pq

    src, recs = _write_corpus(tmp_path)
    out = tmp_path / "out"
    r = _cli("dedup", "minhash", str(src), "-o", str(out), "--verify", "--keep", "column:q", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary == json.loads((out / "minhash_summary.json").read_text())
    expected = dedup_minhash([x["text"] for x in recs], 0.8, verify=True, keep="column:q",
                             keep_scores=[x["q"] for x in recs])
    assert summary["removed"] == expected.summary["removed"] >= 5
    kept = [json.loads(line) for line in (out / "in.jsonl").read_text().splitlines()]
    assert kept == [x for x, k in zip(recs, expected.keep) if k]

    report = pq.read_table(out / "minhash_clusters.parquet")
    assert report.num_rows == expected.clusters.num_rows
    assert set(report.column_names) >= {"cluster", "id", "kept_id", "est_jaccard", "exact_jaccard"}
    assert set(summary["seconds"]) >= {"signatures", "write"}
    # the same corpus as Parquet gives the same decisions
    pq.write_table(pa.table({"text": [x["text"] for x in recs]}), tmp_path / "in.parquet")
    r = _cli("dedup", "minhash", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "outp"), "--verify", "--json")
    assert r.returncode == 0, r.stderr
    kept_p = pq.read_table(tmp_path / "outp" / "in.parquet")["text"].to_pylist()
    first = dedup_minhash([x["text"] for x in recs], 0.8, verify=True)
    assert kept_p == [x["text"] for x, k in zip(recs, first.keep) if k]


def test_cli_bad_input(tmp_path: Path) -> None:
    src, _ = _write_corpus(tmp_path)
    r = _cli("dedup", "minhash", str(src), "-o", str(tmp_path / "o"), "--threshold", "1.2")
    assert r.returncode == 2 and "must be strictly between 0 and 1" in r.stderr
    r = _cli("dedup", "minhash", str(src), "-o", str(tmp_path / "o"), "--bands", "40", "--rows", "4")
    assert r.returncode == 1 and "exceeds num_perm" in r.stderr
    r = _cli("dedup", "minhash", str(src), "-o", str(tmp_path / "o"), "--keep", "shortest")
    assert r.returncode == 2
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("hello there")
    r = _cli("dedup", "minhash", str(tmp_path / "docs"), "-o", str(tmp_path / "o2"), "--keep", "column:q")
    assert r.returncode == 1 and "needs JSONL or Parquet" in r.stderr
    r = _cli("dedup", "minhash", str(tmp_path / "docs"), "-o", str(tmp_path / "o3"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o3" / "docs" / "a.txt").exists() or any((tmp_path / "o3").rglob("a.txt"))


# ---------------------------------------------------------------------------------------------
# persistent index


def test_index_matches_datasketch_lsh(tmp_path: Path) -> None:
    datasketch = pytest.importorskip("datasketch")
    from gristmill.minhash import MinHashIndex

    docs = _near_duplicate_sample(30, seed=4)
    mh = MinHasher(num_perm=128, compat="datasketch")
    sig = mh.signatures(docs)
    ref = datasketch.MinHashLSH(threshold=0.7, num_perm=128)
    idx = MinHashIndex(tmp_path / "idx", threshold=0.7, num_perm=128, hasher=mh)
    assert (idx.b, idx.r) == (ref.b, ref.r)
    half = len(docs) // 2
    for i in range(half):
        ref.insert(f"d{i}", datasketch.MinHash(num_perm=128, hashvalues=sig[i], scheme="affine32"))
    idx.insert([f"d{i}" for i in range(half)], sig[:half])
    idx.insert([f"d{i}" for i in range(half, half + 3)], sig[half:half + 3])  # a second run
    for i in range(half, half + 3):
        ref.insert(f"d{i}", datasketch.MinHash(num_perm=128, hashvalues=sig[i], scheme="affine32"))
    assert idx.num_runs == 2
    for i in range(len(docs)):
        m = datasketch.MinHash(num_perm=128, hashvalues=sig[i], scheme="affine32")
        assert sorted(idx.query(sig[i])) == sorted(ref.query(m)), i
    assert "d0" in idx and "zzz" not in idx and 5 not in idx
    assert len(idx) == half + 3
    # query_batch marks exactly the rows with a candidate
    first = idx.query_batch(sig)
    for i in range(len(docs)):
        q = idx.query(sig[i])
        assert (first[i] >= 0) == bool(q)
        if q:
            assert idx.key(first[i]) == min(q, key=lambda k: int(k[1:]))


def test_index_reopen_compact_and_mismatch(tmp_path: Path) -> None:
    import json

    from gristmill.minhash import MinHashIndex

    docs = _stdlib_texts(20)
    mh = MinHasher(num_perm=64)
    sig = mh.signatures(docs)
    path = tmp_path / "idx"
    idx = MinHashIndex(path, threshold=0.8, num_perm=64, hasher=mh)
    for i in range(0, 20, 5):
        idx.insert([f"k{j}" for j in range(i, i + 5)], sig[i:i + 5])
    before = [idx.query(sig[i]) for i in range(20)]
    assert all(f"k{i}" in before[i] for i in range(20))
    del idx
    idx = MinHashIndex(path, threshold=0.8, num_perm=64, hasher=mh)
    assert len(idx) == 20 and idx.num_runs == 4
    idx.compact()
    assert idx.num_runs == 1
    assert [idx.query(sig[i]) for i in range(20)] == before
    with pytest.raises(ValueError, match="already in the index"):
        idx.insert(["k3"], sig[3])
    with pytest.raises(ValueError, match="already in the index"):
        idx.insert(["new", "new"], sig[:2])
    with pytest.raises(TypeError, match="uint32"):
        idx.insert(["x"], sig[0].astype(np.uint64))
    with pytest.raises(ValueError, match="num_perm=64"):
        idx.query(sig[0][:32])
    del idx
    with pytest.raises(gristmill.GristmillError, match="bands: index has .*requested"):
        MinHashIndex(path, threshold=0.5, num_perm=64, hasher=mh)
    with pytest.raises(gristmill.GristmillError, match="hashing parameters.*ngram"):
        MinHashIndex(path, threshold=0.8, num_perm=64, hasher=MinHasher(num_perm=64, ngram=3))
    # an index written with the previous fast scheme (header metadata without its version)
    old = tmp_path / "old"
    gristmill._native.MinHashIndexCore(str(old), 64, 16, 4, 4, json.dumps(mh.describe(), sort_keys=True))
    with pytest.raises(gristmill.GristmillError, match="hashing parameters.*fast_scheme_version"):
        MinHashIndex(old, threshold=0.8, num_perm=64, hasher=mh, params=(16, 4))
    with pytest.raises(gristmill.GristmillError, match="signature bytes: index has 4, requested 8"):
        MinHashIndex(path, threshold=0.8, num_perm=64, hasher=MinHasher(num_perm=64, compat="datasketch", scheme="legacy"))
    with pytest.raises(gristmill.GristmillError, match="num_perm"):
        MinHashIndex(path, threshold=0.8, num_perm=32)
    with pytest.raises(ValueError, match="exceeds num_perm"):
        MinHashIndex(tmp_path / "other", num_perm=64, params=(10, 10))
    # another format version is refused
    hdr = path / "header.bin"
    raw = bytearray(hdr.read_bytes())
    raw[8] = 99
    hdr.write_bytes(bytes(raw))
    with pytest.raises(gristmill.GristmillError, match="format version 99"):
        MinHashIndex(path, threshold=0.8, num_perm=64, hasher=mh)
    hdr.write_bytes(b"garbage!")
    with pytest.raises(gristmill.GristmillError, match="not a gristmill MinHash index"):
        MinHashIndex(path, threshold=0.8, num_perm=64, hasher=mh)


def test_index_dedups_new_shard_like_batch_dedup(tmp_path: Path) -> None:
    from gristmill.minhash import MinHashIndex

    docs = _near_duplicate_sample(30, seed=6)
    mh = MinHasher(num_perm=128)
    b, r = lsh_params(0.8, 128, (0.05, 0.95))
    idx = MinHashIndex(tmp_path / "i", num_perm=128, params=(b, r), hasher=mh)
    half = len(docs) // 2
    idx.insert([str(i) for i in range(half)], mh.signatures(docs[:half]))
    seen = idx.query_batch(mh.signatures(docs[half:]))
    # a later document is flagged exactly when the batch pipeline puts it in a cluster with
    # an earlier-shard document through a direct band match
    full = dedup_minhash(docs, 0.8, bands=b, rows=r, return_signatures=True)
    sig = full.signatures
    for j, hit in enumerate(seen):
        i = half + j
        direct = any(np.any(np.all((sig[i] == sig[k]).reshape(b, r), axis=1)) for k in range(half)
                     if not np.all(sig[k] == mh.empty_value))
        assert (hit >= 0) == direct, i


def test_demo_reports_near_duplicates(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    src = tmp_path / "src"
    src.mkdir()
    texts = _stdlib_texts(4)
    for i, t in enumerate(texts):
        (src / f"m{i}.py").write_text(t)
    (src / "copy.py").write_text(texts[1] + "\n# a trailing comment\n")
    out = tmp_path / "demo"
    r = _cli("demo", "--input", str(src), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "1 clusters, 1 files removed" in r.stdout
    cl = pq.read_table(out / "near_duplicates.parquet").to_pydict()
    assert sorted(Path(p).name for p in cl["id"]) == ["copy.py", "m1.py"]
    # keep="longest": the copy with the extra comment stays, the shorter original goes
    assert sorted(p.name for p in (out / "corpus" / "src").iterdir()) == ["copy.py", "m0.py", "m2.py", "m3.py"]


def test_dedup_shards_against_index(tmp_path: Path) -> None:
    from gristmill.minhash import MinHashIndex

    docs = _near_duplicate_sample(30, seed=8)
    half = len(docs) // 2
    mh = MinHasher(num_perm=128)
    b, r = lsh_params(0.8, 128, (0.05, 0.95))
    idx = MinHashIndex(tmp_path / "idx", num_perm=128, params=(b, r), hasher=mh)
    r1 = dedup_minhash(docs[:half], 0.8, index=idx, bands=b, rows=r)
    assert r1.summary["removed_by_index"] == 0 and len(idx) == int(r1.keep.sum())
    r2 = dedup_minhash(docs[half:], 0.8, index=idx, bands=b, rows=r, index_keys=[f"s2-{i}" for i in range(len(docs) - half)])
    # what survives both shards never collides with anything kept before
    kept_1 = np.flatnonzero(r1.keep)
    kept_2 = half + np.flatnonzero(r2.keep)
    full = dedup_minhash(docs, 0.8, bands=b, rows=r, return_signatures=True)
    sig = full.signatures
    for j in kept_2:
        for i in kept_1:
            assert not np.any(np.all((sig[i] == sig[j]).reshape(b, r), axis=1))
    assert r2.summary["removed_by_index"] == int((r2.index_match >= 0).sum())
    assert len(idx) == len(kept_1) + len(kept_2)
    # the same shard again: everything is already in the index
    r3 = dedup_minhash(docs[half:], 0.8, index=idx, bands=b, rows=r)
    assert not r3.keep[np.flatnonzero(r2.keep)].any()
    with pytest.raises(ValueError, match="differs from the index"):
        dedup_minhash(docs[:3], 0.8, index=idx, hasher=MinHasher(num_perm=128, ngram=3))


def test_cli_index_across_shards(tmp_path: Path) -> None:
    import json

    src, recs = _write_corpus(tmp_path)
    idx = tmp_path / "seen.idx"
    r = _cli("dedup", "minhash", str(src), "-o", str(tmp_path / "o1"), "--index", str(idx), "--json")
    assert r.returncode == 0, r.stderr
    s1 = json.loads(r.stdout)
    assert s1["removed_by_index"] == 0 and s1["index"]["items"] == s1["docs_kept"]
    # the same shard again (another file name): every document is already indexed
    again = tmp_path / "again.jsonl"
    again.write_text(src.read_text())
    r = _cli("dedup", "minhash", str(again), "-o", str(tmp_path / "o2"), "--index", str(idx), "--json")
    assert r.returncode == 0, r.stderr
    s2 = json.loads(r.stdout)
    assert s2["docs_kept"] == 0 and s2["removed_by_index"] == s1["docs_kept"]
    assert (tmp_path / "o2" / "again.jsonl").read_text() == ""
    r = _cli("dedup", "minhash", str(again), "-o", str(tmp_path / "o3"), "--index", str(idx), "--threshold", "0.5")
    assert r.returncode == 1 and "bands: index has" in r.stderr


# ---- token shingles --------------------------------------------------------------------------


def _token_ngrams(ids: List[int], n: int) -> List[bytes]:
    """Slow reference: token n-grams as the little-endian uint32 bytes gristmill hashes."""
    if not ids:
        return []
    if len(ids) < n:
        return [np.asarray(ids, "<u4").tobytes()]
    return [np.asarray(ids[i : i + n], "<u4").tobytes() for i in range(len(ids) - n + 1)]


@pytest.mark.parametrize("raw", [False, True])
def test_token_shingles_match_tiktoken_and_datasketch(raw: bool) -> None:
    """Token n-grams through gristmill's tokenizer == tiktoken ids of the normalised text
    cut into n-grams; compat signatures == datasketch updated with those n-grams."""
    pytest.importorskip("tiktoken")
    datasketch = pytest.importorskip("datasketch")
    from tokenizer_ref import reference  # tiktoken built offline from the shipped rank files

    enc = reference("cl100k_base")
    texts = _stdlib_texts(12, max_bytes=20000) + ["", "  ... ", "Ünïcödé ΣΟΦΙΑ naïve café", "one two"]
    opts = {"lowercase": False, "strip_punct": False} if raw else {}
    mh = MinHasher(num_perm=64, seed=3, ngram=4, unit="token", tokenizer="cl100k_base", compat="datasketch", **opts)
    sig = mh.signatures(texts)
    word = MinHasher(num_perm=1, ngram=1, **opts)
    for i, t in enumerate(texts):
        norm = " ".join(word.shingles(t))  # gristmill's documented normalisation
        ids = enc.encode_ordinary(norm)
        want = [tuple(ids[k : k + 4]) for k in range(max(len(ids) - 3, 1))] if ids else []
        assert mh.token_shingles(t) == want
        ref = datasketch.MinHash(num_perm=64, seed=3)
        grams = _token_ngrams(ids, 4)
        if grams:
            ref.update_batch(grams)
        np.testing.assert_array_equal(sig[i], ref.hashvalues.astype(np.uint32), err_msg=f"doc {i}")


def test_token_shingles_fast_estimates_and_determinism() -> None:
    pytest.importorskip("tiktoken")
    from tokenizer_ref import reference

    enc = reference("o200k_base")
    rng = random.Random(11)
    base = _stdlib_texts(10, max_bytes=15000)
    texts = base + [_edit(t, 0.1, rng) for t in base]
    mh = MinHasher(num_perm=256, ngram=3, unit="token", tokenizer=gristmill.Tokenizer.from_tiktoken("o200k_base"))
    sig1 = mh.signatures(texts, num_threads=1)
    np.testing.assert_array_equal(sig1, mh.signatures(texts, num_threads=2))
    np.testing.assert_array_equal(sig1, mh.signatures(pa.array(texts[::-1]), num_threads=2)[::-1])
    word = MinHasher(num_perm=1, ngram=1)
    sets = [set(_token_ngrams(enc.encode_ordinary(" ".join(word.shingles(t))), 3)) for t in texts]
    for i in range(len(base)):
        j = len(base) + i
        exact = len(sets[i] & sets[j]) / len(sets[i] | sets[j])
        est = float(jaccard_estimate(sig1[i], sig1[j]))
        # 256 permutations: standard error <= 0.032; allow 4 s.e.
        assert abs(est - exact) <= 4 * math.sqrt(exact * (1 - exact) / 256) + 0.01, (i, est, exact)


def test_token_unit_bad_arguments() -> None:
    with pytest.raises(ValueError, match="needs tokenizer"):
        MinHasher(unit="token")
    with pytest.raises(ValueError, match="only with unit='token'"):
        MinHasher(tokenizer="cl100k_base")
    with pytest.raises(ValueError, match="unknown encoding"):
        MinHasher(unit="token", tokenizer="nope_base")
    with pytest.raises(TypeError):
        MinHasher(unit="token", tokenizer=3)
    mh = MinHasher(unit="token", tokenizer="cl100k_base")
    with pytest.raises(ValueError, match="token_shingles"):
        mh.shingles("some text")
    with pytest.raises(ValueError, match="unit='token'"):
        MinHasher().token_shingles("x")
    assert mh.describe()["tokenizer"] == "cl100k_base"
    assert "tokenizer" not in MinHasher().describe()


def test_cli_token_shingles(tmp_path: Path) -> None:
    import json

    src, recs = _write_corpus(tmp_path)
    r = _cli("dedup", "minhash", str(src), "-o", str(tmp_path / "out"), "--shingle", "token",
             "--tokenizer", "cl100k_base", "--ngram", "8", "--verify", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    expected = dedup_minhash([x["text"] for x in recs], 0.8, ngram=8, unit="token", tokenizer="cl100k_base", verify=True)
    assert summary["removed"] == expected.summary["removed"] >= 5
    assert summary["minhash"]["tokenizer"] == "cl100k_base"
    r = _cli("dedup", "minhash", str(src), "-o", str(tmp_path / "o2"), "--tokenizer", "cl100k_base")
    assert r.returncode == 1 and "--shingle token" in r.stderr
    r = _cli("dedup", "minhash", "--help")
    assert "--shingle token --tokenizer o200k_base" in r.stdout


# ---- pre-made shingles as Python lists ---------------------------------------------------------


@pytest.mark.parametrize("compat", [None, "datasketch"])
def test_python_list_shingles_equal_arrow_and_text(compat: object) -> None:
    texts = _stdlib_texts(8) + ["", "x"]
    mh = MinHasher(num_perm=32, ngram=3, compat=compat)  # type: ignore[arg-type]
    sets = [mh.shingles(t) for t in texts]
    from_text = mh.signatures(texts)
    np.testing.assert_array_equal(mh.signatures_of_shingles(sets), from_text)
    np.testing.assert_array_equal(mh.signatures_of_shingles(tuple(tuple(s) for s in sets)), from_text)
    np.testing.assert_array_equal(mh.signatures_of_shingles(iter([iter(s) for s in sets])), from_text)
    np.testing.assert_array_equal(mh.signatures_of_shingles(pa.array(sets, pa.list_(pa.string()))), from_text)
    # non-ASCII shingles are borrowed as UTF-8 too
    uni = [["ünï cödé", "σοφία"], ["ünï cödé"]]
    np.testing.assert_array_equal(mh.signatures_of_shingles(uni), mh.signatures_of_shingles(pa.array(uni)))
    with pytest.raises(TypeError, match="set 1 item 2 is a int"):
        mh.signatures_of_shingles([["a"], ["b", "c", 3]])
    with pytest.raises(TypeError, match="set 0"):
        mh.signatures_of_shingles(["abc"])
    with pytest.raises(TypeError):
        mh.signatures_of_shingles("abc")
    with pytest.raises(UnicodeEncodeError):
        mh.signatures_of_shingles([["bad \ud800 surrogate"]])


def test_signatures_of_python_lists_equal_arrow() -> None:
    texts = _stdlib_texts(10) + ["", "Ünïcödé ΣΟΦΙΑ wörds and more wörds here", "x"]
    for compat in (None, "datasketch"):
        mh = MinHasher(num_perm=32, ngram=3, compat=compat)
        want = mh.signatures(pa.array(texts))
        np.testing.assert_array_equal(mh.signatures(texts), want)
        np.testing.assert_array_equal(mh.signatures(tuple(texts)), want)
        np.testing.assert_array_equal(mh.signatures(texts, num_threads=2), want)
    with pytest.raises(ValueError, match=r"texts\[1\] is not valid Unicode"):
        MinHasher().signatures(["ok", "bad \ud800"])
    assert MinHasher().signatures([]).shape == (0, 128)


def test_num_threads_is_the_one_name_threads_still_works_with_a_warning():
    import warnings

    texts = ["a b c d e f g", "h i j k l m n"]
    mh = MinHasher(num_perm=16, ngram=2)
    want = mh.signatures(texts, num_threads=1)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = mh.signatures(texts, threads=2)
        old = MinHasher(num_perm=16, ngram=2, threads=1)
    assert [x.category for x in w] == [DeprecationWarning, DeprecationWarning]
    assert "num_threads" in str(w[0].message)
    np.testing.assert_array_equal(got, want)
    assert old.num_threads == 1 == old.threads
    with pytest.raises(TypeError, match="num_threads only"):
        mh.signatures(texts, num_threads=1, threads=1)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="num_threads must be a positive integer"):
            dedup_minhash(texts, 0.8, num_threads=bad)
