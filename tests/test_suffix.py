"""Exact-substring dedup: brute-force differential tests, peer SA equality, the index, bad input."""

from __future__ import annotations

import functools
import json

import os
import subprocess
import sys
import sysconfig
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import gristmill
from gristmill import GristmillError, SuffixIndex, contamination, dedup_exact, find_repeats
from gristmill._native import suffix_find_repeats
from gristmill._arrow import string_buffers
from gristmill.suffix import suffix_array

# ----------------------------------------------------------------------------------------------
# brute-force reference (bytes), straight from the documented definitions


def _runs(cov: List[List[int]]) -> List[Tuple[int, int, int, int]]:
    out = []
    for d, c in enumerate(cov):
        cur = None
        for i in range(len(c) + 1):
            removed = i < len(c) and c[i] > 0
            if removed:
                cur = [i, i + 1, c[i]] if cur is None else [cur[0], i + 1, max(cur[2], c[i])]
            elif cur is not None:
                out.append((d, cur[0], cur[1], cur[2]))
                cur = None
    return out


def _snap(texts: List[bytes], spans):
    out = []
    for d, s, e, o in spans:
        b = texts[d]
        while s < len(b) and (b[s] & 0xC0) == 0x80:
            s += 1
        while 0 < e < len(b) and (b[e] & 0xC0) == 0x80:
            e -= 1
        if s < e:
            out.append((d, s, e, o))
    return out


def reference_repeats(texts: List[str], L: int, keep: str):
    bs = [t.encode() for t in texts]
    classes: Dict[bytes, List[Tuple[int, int]]] = defaultdict(list)
    for d, b in enumerate(bs):
        for p in range(len(b) - L + 1):
            classes[b[p : p + L]].append((d, p))
    return _snap(bs, _removal_runs(classes, [len(b) for b in bs], L, keep))


def _removal_runs(classes: Dict, lens: List[int], L: int, keep: str):
    """Runs of symbols covered by a removal window: any occurrence of a repeated window
    (keep none), or an occurrence whose content also occurs earlier (keep first)."""
    cov = [[0] * n for n in lens]
    for occ in classes.values():
        if len(occ) < 2:
            continue
        first = min(occ)
        for d, p in occ:
            if keep == "first" and (d, p) == first:
                continue
            for i in range(p, p + L):
                cov[d][i] = max(cov[d][i], len(occ))
    return _runs(cov)


def shared_window_runs(train: list, ev: list, L: int):
    """Brute force: runs of eval symbols (bytes or token ids) covered by an L-window that
    also occurs in a training sequence, with the largest training count."""
    def window(seq, p):
        return tuple(seq[p : p + L]) if isinstance(seq, list) else seq[p : p + L]

    counts: Dict[object, int] = defaultdict(int)
    for t in train:
        for p in range(len(t) - L + 1):
            counts[window(t, p)] += 1
    cov = [[0] * len(b) for b in ev]
    for d, b in enumerate(ev):
        for p in range(len(b) - L + 1):
            c = counts.get(window(b, p), 0)
            if c:
                for i in range(p, p + L):
                    cov[d][i] = max(cov[d][i], c)
    return _runs(cov)


def reference_contamination(train: List[str], ev: List[str], L: int):
    bs = [t.encode() for t in ev]
    return _snap(bs, shared_window_runs([t.encode() for t in train], bs, L))


def as_tuples(table: pa.Table):
    cols = [table.column(i).to_pylist() for i in range(4)]
    return list(zip(*cols))


def apply_removal(texts: List[str], spans) -> List[str]:
    out = []
    for d, t in enumerate(texts):
        b = t.encode()
        keep = bytearray()
        pos = 0
        for dd, s, e, _ in spans:
            if dd == d:
                keep += b[pos:s]
                pos = e
        keep += b[pos:]
        out.append(keep.decode("utf-8"))
    return out


# multi-byte characters of every UTF-8 length, a tiny alphabet so repeats are common
ALPHABET = st.sampled_from(["a", "b", "é", "ß", "中", "文", "🎉", " "])
doc = st.lists(ALPHABET, max_size=30).map("".join)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(doc, min_size=1, max_size=10), L=st.integers(1, 12), keep=st.sampled_from(["none", "first"]))
def test_find_repeats_matches_brute_force(texts, L, keep):
    if L > max(len(t.encode()) for t in texts):
        with pytest.raises(GristmillError, match="larger than every document"):
            find_repeats(texts, L, keep)
        return
    got = as_tuples(find_repeats(texts, L, keep))
    assert got == reference_repeats(texts, L, keep)
    # removal leaves valid UTF-8 and equals dedup_exact's output
    r = dedup_exact(texts, L, keep)
    assert r.texts.to_pylist() == apply_removal(texts, got)
    assert r.summary["bytes_removed"] == sum(e - s for _, s, e, _ in got)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.lists(st.sampled_from(["x", "é", "🎉"]), max_size=3).map("".join), min_size=50, max_size=300),
       L=st.integers(1, 4))
def test_many_tiny_documents(texts, L):
    if L > max(len(t.encode()) for t in texts):
        return
    for keep in ("none", "first"):
        assert as_tuples(find_repeats(texts, L, keep)) == reference_repeats(texts, L, keep)


@settings(max_examples=15, deadline=None)
@given(unit=st.lists(ALPHABET, min_size=1, max_size=40).map("".join), reps=st.integers(2, 60),
       noise=st.lists(ALPHABET, max_size=400).map("".join), L=st.integers(2, 30))
def test_one_huge_document(unit, reps, noise, L):
    big = noise[: len(noise) // 2] + unit * reps + noise[len(noise) // 2 :] + unit
    texts = [big]
    if L > len(big.encode()):
        return
    for keep in ("none", "first"):
        assert as_tuples(find_repeats(texts, L, keep)) == reference_repeats(texts, L, keep)


@settings(max_examples=150, deadline=None)
@given(train=st.lists(doc, min_size=1, max_size=6), ev=st.lists(doc, min_size=1, max_size=6), L=st.integers(1, 8))
def test_contamination_matches_brute_force(train, ev, L):
    if L > max(len(t.encode()) for t in ev) or L > max(len(t.encode()) for t in train):
        with pytest.raises(GristmillError):
            contamination(train, ev, L)
        return
    r = contamination(train, ev, L)
    got = as_tuples(r.spans)
    assert got == reference_contamination(train, ev, L)
    contaminated = sorted({d for d, *_ in got})
    assert r.documents.column("eval_doc").to_pylist() == contaminated
    assert r.summary["contaminated_bytes"] == sum(e - s for _, s, e, _ in got)


# ----------------------------------------------------------------------------------------------
# real text


def stdlib_texts(limit_bytes: int, pattern: str = "*.py") -> List[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out, total = [], 0
    for p in sorted(root.rglob(pattern)):
        if "site-packages" in p.parts:
            continue
        try:
            t = p.read_text("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out.append(t)
        total += len(t)
        if total >= limit_bytes:
            break
    return out


def test_suffix_array_equals_pydivsufsort_on_real_text():
    pydivsufsort = pytest.importorskip("pydivsufsort")
    text = "\n".join(stdlib_texts(3_000_000)).encode()
    data = np.frombuffer(text, dtype=np.uint8).copy()  # pydivsufsort needs a writable array
    ours = suffix_array(data)
    peer = pydivsufsort.divsufsort(data)
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours, peer.astype(np.int32))
    np.testing.assert_array_equal(suffix_array(data, num_threads=1), ours)
    np.testing.assert_array_equal(gristmill._native.suffix_array_bytes(data, 2, True), peer.astype(np.int64))


def test_real_text_matches_reference_and_is_thread_independent():
    texts = stdlib_texts(150_000)
    for keep in ("none", "first"):
        base = find_repeats(texts, 60, keep, num_threads=1)
        assert as_tuples(base) == reference_repeats(texts, 60, keep)
        assert base.num_rows > 0
        for threads in (2, 3):
            assert find_repeats(texts, 60, keep, num_threads=threads).equals(base)
        # 64-bit indices give the same answer
        d, s, e, o, _ = suffix_find_repeats(string_buffers(texts), 60, keep, 2, True)
        assert list(zip(d.tolist(), s.tolist(), e.tolist(), o.tolist())) == as_tuples(base)


def test_keep_first_keeps_the_first_copy_whole():
    passage = "Ce passage répété contient des caractères accentués — et un emoji 🎉 — au milieu."
    texts = ["début:" + passage + ":fin", "autre;" + passage + ";fin", passage, "rien à voir"]
    r = dedup_exact(texts, 30, "first")
    assert r.texts.to_pylist() == [texts[0], "autre;;fin", "", "rien à voir"]
    assert r.summary["documents_touched"] == 2 and r.summary["documents_emptied"] == 1
    r = dedup_exact(texts, 30, "none")
    assert r.texts.to_pylist() == ["début::fin", "autre;;fin", "", "rien à voir"]
    assert set(r.timings) >= {"read", "suffix_array", "lcp", "find_repeats", "collect_spans", "trim"}


def test_spans_never_cut_characters():
    # The shared bytes end inside a 4-byte character: the span is shrunk, the character kept.
    a, b = "xx🎉 shared text 😀", "yy🎉 shared text 😁"  # 😀/😁 share their first 3 bytes
    spans = as_tuples(find_repeats([a, b], 5))
    for d, s, e, _ in spans:
        [a, b][d].encode()[s:e].decode("utf-8")  # must not raise
    # raw shared bytes are [2, 22) (three bytes into the emoji); the span stops before it
    assert spans == [(0, 2, 19, 2), (1, 2, 19, 2)]


def test_corpus_input_and_ids(tmp_path):
    import json

    p = tmp_path / "c.jsonl"
    lines = [{"text": "unique start " + "the repeated paragraph of text" * 2}, {"text": "the repeated paragraph of text" * 2}]
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = dedup_exact(gristmill.Corpus([p]), 40, "first")
    assert r.spans.column("id").to_pylist() == [f"{p}:2"]
    assert r.texts.to_pylist()[1] == ""


# ----------------------------------------------------------------------------------------------
# on-disk index


def _find_all(b: bytes, pat: bytes):
    i = b.find(pat)
    while i >= 0:
        yield i
        i = b.find(pat, i + 1)


def test_index_counts_match_naive_on_real_text(tmp_path):
    texts = stdlib_texts(400_000)
    path = tmp_path / "std.gsi"
    idx = SuffixIndex.build(texts, path)
    encoded = [t.encode() for t in texts]
    assert idx.num_docs == len(texts)
    for pat in ["def ", "self.assertEqual(", "import os\n", "é", "\n\n\n", "zzzqqq", "class "]:
        naive = [(d, i) for d, b in enumerate(encoded) for i in _find_all(b, pat.encode())]
        assert idx.count(pat) == len(naive)
        loc = idx.locate(pat, limit=len(naive) + 5)
        assert list(zip(loc.column("doc").to_pylist(), loc.column("offset").to_pylist())) == sorted(naive)
        assert idx.locate(pat, limit=3).num_rows == min(3, len(naive))
    assert idx.document(3) == texts[3]
    idx.check_corpus(texts)
    with pytest.raises(GristmillError, match="does not match"):
        idx.check_corpus(texts[:-1] + [texts[-1] + "!"])
    reopened = SuffixIndex.open(path, verify=True)
    assert reopened.count("def ") == idx.count("def ")


def test_damaged_index_never_looks_valid(tmp_path):
    path = tmp_path / "a.gsi"
    SuffixIndex.build(["alpha beta", "beta gamma"], path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) - 3])
    with pytest.raises(GristmillError, match="truncated"):
        SuffixIndex.open(path)
    path.write_bytes(b"\0" * len(good))
    with pytest.raises(GristmillError, match="not a gristmill suffix index"):
        SuffixIndex.open(path)
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    path.write_bytes(bytes(bad))
    with pytest.raises(GristmillError, match="checksum"):
        SuffixIndex.open(path, verify=True)
    with pytest.raises(OSError):
        SuffixIndex.open(tmp_path / "missing.gsi")


def test_disk_full_while_writing_index_leaves_nothing(tmp_path):
    # RLIMIT_FSIZE makes writes fail with EFBIG (SIGXFSZ ignored) — the same path as ENOSPC.
    code = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        from gristmill import SuffixIndex
        try:
            SuffixIndex.build(["some text " * 1000, "more text " * 1000], {str(tmp_path / 'full.gsi')!r})
        except OSError as e:
            print("OSError", e)
            sys.exit(0)
        sys.exit(3)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OSError" in r.stdout
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# bad input


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 1"):
        find_repeats(["abc"], 0)
    with pytest.raises(GristmillError, match="larger than every document"):
        find_repeats(["abc", "de"], 4)
    with pytest.raises(ValueError, match="keep"):
        find_repeats(["abc"], 1, keep="last")
    with pytest.raises(TypeError):
        find_repeats(["abc"], 1.5)
    with pytest.raises(ValueError, match="threads"):
        find_repeats(["abc"], 1, num_threads=0)
    with pytest.raises(GristmillError, match="evaluation corpus"):
        contamination(["a long training document"], ["short"], 10)
    assert find_repeats([], 5).num_rows == 0  # no documents: nothing to compare, no error


def test_empty_documents_only():
    with pytest.raises(GristmillError, match="larger than every document"):
        find_repeats(["", ""], 1)


# ----------------------------------------------------------------------------------------------
# command line


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_dedup_exact_rewrites_every_input_format(tmp_path):
    import json

    import pyarrow.parquet as pq

    texts = stdlib_texts(60_000)
    texts = texts + [texts[0][:500] + " and a new ending é中"]  # a partial copy
    jl = tmp_path / "c.jsonl"
    jl.write_text("".join(json.dumps({"text": t, "meta": i}) + "\n" for i, t in enumerate(texts)))
    pqf = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": texts, "n": list(range(len(texts)))}), pqf)
    expect = dedup_exact(texts, 50, "first")
    kept = [t for t, orig in zip(expect.texts.to_pylist(), texts) if t or not orig]
    for src in (jl, pqf):
        out = tmp_path / f"out-{src.suffix[1:]}"
        r = _cli("dedup", "exact", str(src), "-o", str(out), "--min-length", "50", "--keep", "first", "--json")
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        assert summary["bytes_removed"] == expect.summary["bytes_removed"] > 0
        assert set(summary["timings"]) >= {"suffix_array", "lcp", "find_repeats", "write"}
        if src.suffix == ".jsonl":
            rows = [json.loads(x) for x in (out / "c.jsonl").read_text().splitlines()]
            assert [x["text"] for x in rows] == kept
            assert all("meta" in x for x in rows)  # other fields preserved
        else:
            assert pq.read_table(out / "c.parquet").column("text").to_pylist() == kept
        spans = pq.read_table(out / "dedup-exact.spans.parquet")
        assert spans.column_names == ["doc", "id", "start", "end", "occurrences"]
        assert spans.drop(["id"]).equals(expect.spans)
        assert json.loads((out / "dedup-exact.summary.json").read_text())["spans"] == expect.summary["spans"]


def test_cli_contamination_and_index(tmp_path):
    import json

    train = tmp_path / "train.jsonl"
    ev = tmp_path / "eval.jsonl"
    shared = "The quick brown fox jumps over the lazy dog near the riverbank."
    train.write_text(json.dumps({"text": "alpha " + shared + " omega"}) + "\n" + json.dumps({"text": "unrelated words"}) + "\n")
    ev.write_text(json.dumps({"text": "question: " + shared}) + "\n" + json.dumps({"text": "clean eval item"}) + "\n")
    r = _cli("contamination", "--train", str(train), "--eval", str(ev), "--min-length", "20", "-o", str(tmp_path / "c"), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["contaminated_documents"] == 1 and s["contaminated_bytes"] == len(shared) + 1  # + the space before
    idx = tmp_path / "t.gsi"
    r = _cli("index", "build", str(train), "-o", str(idx))
    assert r.returncode == 0, r.stderr
    r = _cli("index", "count", str(idx), "fox", "zebra", "--json")
    assert json.loads(r.stdout) == {"fox": 1, "zebra": 0}
    r = _cli("index", "locate", str(idx), "the", "--json")
    assert json.loads(r.stdout)["hits"] == [{"doc": 0, "offset": 37, "id": f"{train}:1"},
                                            {"doc": 0, "offset": 55, "id": f"{train}:1"}]
    assert _cli("index", "verify", str(idx), "--corpus", str(train)).returncode == 0
    r = _cli("index", "count", str(idx), "fox", "--corpus", str(ev))
    assert r.returncode == 1 and "does not match the corpus" in r.stderr
    idx.write_bytes(idx.read_bytes()[:-1])
    r = _cli("index", "count", str(idx), "fox")
    assert r.returncode == 1 and "truncated" in r.stderr and "Traceback" not in r.stderr


def test_cli_bad_arguments(tmp_path):
    src = tmp_path / "a.jsonl"
    src.write_text('{"text": "short"}\n')
    r = _cli("dedup", "exact", str(src), "-o", str(tmp_path / "o"), "--min-length", "0")
    assert r.returncode == 2 and "at least 1" in r.stderr
    r = _cli("dedup", "exact", str(src), "-o", str(tmp_path / "o"), "--min-length", "100")
    assert r.returncode == 1 and "larger than every document" in r.stderr and "5 bytes" in r.stderr
    r = _cli("dedup", "exact", str(src), "-o", str(tmp_path / "o"), "--keep", "last")
    assert r.returncode == 2


def test_cli_dedup_exact_token_unit(tmp_path):
    from gristmill import Tokenizer

    shared = " ".join(f"word{i} ünïcödé" for i in range(40))
    src = tmp_path / "a.jsonl"
    src.write_text("\n".join(json.dumps({"text": t}) for t in ["head " + shared, "other " + shared + " tail", "alone"]) + "\n")
    r = _cli("dedup", "exact", str(src), "-o", str(tmp_path / "o"), "--unit", "tokens", "--keep", "first",
             "--tokenizer", "cl100k_base", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["unit"] == "tokens" and s["tokenizer"] == "cl100k_base" and s["min_length"] == 50
    out = [json.loads(x)["text"] for x in (tmp_path / "o" / "a.jsonl").read_text().splitlines()]
    assert out == ["head " + shared, "other tail", "alone"]
    n = len(Tokenizer.from_tiktoken("cl100k_base").encode_ordinary(" " + shared))
    assert s["bytes_removed"] == len((" " + shared).encode()) and n >= 50
    r = _cli("dedup", "exact", str(src), "-o", str(tmp_path / "o2"), "--unit", "tokens", "--min-length", "50",
             "--tokenizer", "cl100k_base", "--memory-limit", "1M", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["bytes_removed"] == s["bytes_removed"]
    assert [json.loads(x)["text"] for x in (tmp_path / "o2" / "a.jsonl").read_text().splitlines()] == out
    ev = tmp_path / "ev.jsonl"
    ev.write_text(json.dumps({"text": "q: " + shared[:200] + " ?"}) + "\n" + json.dumps({"text": "clean"}) + "\n")
    r = _cli("contamination", "--train", str(src), "--eval", str(ev), "--unit", "tokens", "--min-length", "20",
             "--tokenizer", "cl100k_base")
    assert r.returncode == 0, r.stderr
    assert "windows of 20 tokens of cl100k_base" in r.stdout and "contaminated documents          1" in r.stdout


# ----------------------------------------------------------------------------------------------
# token mode


def reference_token_repeats(docs: List[List[int]], L: int, keep: str):
    classes: Dict[tuple, List[Tuple[int, int]]] = defaultdict(list)
    for d, t in enumerate(docs):
        for p in range(len(t) - L + 1):
            classes[tuple(t[p : p + L])].append((d, p))
    return _removal_runs(classes, [len(t) for t in docs], L, keep)


def _cl100k():
    import base64
    import gzip

    tiktoken = pytest.importorskip("tiktoken")
    vocab = Path(__file__).resolve().parents[1] / ".." / "shared" / "vocab" / "cl100k_base.tiktoken.gz"
    if not vocab.exists():
        pytest.skip("cl100k_base vocabulary not available")
    ranks = {}
    for line in gzip.open(vocab, "rt"):
        tok, rank = line.split()
        ranks[base64.b64decode(tok)] = int(rank)
    pat = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
    return tiktoken.Encoding("cl100k_base", pat_str=pat, mergeable_ranks=ranks, special_tokens={})


def test_token_mode_on_real_text_with_tiktoken():
    from gristmill.suffix import find_token_repeats

    enc = _cl100k()
    texts = stdlib_texts(60_000)
    toks = [enc.encode_ordinary(t) for t in texts]
    for keep in ("none", "first"):
        got = as_tuples(find_token_repeats(toks, 20, keep))
        assert got == reference_token_repeats(toks, 20, keep)
        assert got
    lengths = [[len(enc.decode_single_token_bytes(x)) for x in t] for t in toks]
    byte_spans = as_tuples(find_token_repeats(toks, 20, "first", token_lengths=lengths))
    for (d, ts, te, o), (bd, bs, be, bo) in zip(as_tuples(find_token_repeats(toks, 20, "first")), byte_spans):
        assert (d, o) == (bd, bo)
        assert texts[d].encode()[bs:be] == b"".join(enc.decode_single_token_bytes(x) for x in toks[d][ts:te])
    # the flat (ids, offsets) form gives the same answer
    ids = np.concatenate([np.array(t, dtype=np.uint32) for t in toks])
    offs = np.concatenate([[0], np.cumsum([len(t) for t in toks])])
    assert as_tuples(find_token_repeats((ids, offs), 20, "first")) == as_tuples(find_token_repeats(toks, 20, "first"))


def _token_spans_to_bytes(enc, texts: List[str], toks: List[List[int]], spans):
    """Token spans -> byte spans via tiktoken's token bytes, snapped to characters."""
    out = []
    for d, s, e, o in spans:
        starts = [0]
        for x in toks[d]:
            starts.append(starts[-1] + len(enc.decode_single_token_bytes(x)))
        out.append((d, starts[s], starts[e], o))
    return _snap([t.encode() for t in texts], out)


def _token_reference_byte_spans(enc, texts: List[str], L: int, keep: str):
    """Brute force over tiktoken's ids, mapped to bytes with tiktoken's token bytes, snapped."""
    toks = [enc.encode_ordinary(t) for t in texts]
    return _token_spans_to_bytes(enc, texts, toks, reference_token_repeats(toks, L, keep))


def test_dedup_exact_token_unit_matches_tiktoken_brute_force():
    """unit="tokens": gristmill's own tokenizer + suffix array == tiktoken ids + brute force,
    on real multilingual text (man pages when installed, else stdlib) with multi-byte UTF-8."""
    from gristmill import Tokenizer
    from gristmill.suffix import dedup_exact

    enc = _cl100k()
    tok = Tokenizer.from_tiktoken("cl100k_base")
    texts = stdlib_texts(40_000)
    uni = ["Größe → ñandú ☃ 漢字かな交じり文 " * 3 + t[:300] for t in texts[:6]]  # shared multi-byte runs
    docs = texts + uni + [""]
    for keep in ("none", "first"):
        r = dedup_exact(docs, 12, keep, unit="tokens", tokenizer=tok)
        assert as_tuples(r.spans) == _token_reference_byte_spans(enc, docs, 12, keep)
        assert r.texts.to_pylist() == apply_removal(docs, as_tuples(r.spans))
        assert r.summary["unit"] == "tokens" and r.summary["tokenizer"] == "cl100k_base"
    assert any(d >= len(texts) for d, *_ in as_tuples(r.spans))
    # thread count never changes the result
    one = dedup_exact(docs, 12, "first", unit="tokens", tokenizer=tok, num_threads=1)
    two = dedup_exact(docs, 12, "first", unit="tokens", tokenizer=tok, num_threads=2)
    assert as_tuples(one.spans) == as_tuples(two.spans)


@functools.lru_cache(maxsize=1)
def _cl100k_pair():
    from gristmill import Tokenizer

    return _cl100k(), Tokenizer.from_tiktoken("cl100k_base")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(doc, min_size=1, max_size=8), L=st.integers(1, 6), keep=st.sampled_from(["none", "first"]))
def test_dedup_exact_token_unit_property(texts, L, keep):
    from gristmill.suffix import dedup_exact

    enc, tok = _cl100k_pair()
    if L > max(len(enc.encode_ordinary(t)) for t in texts):
        with pytest.raises(GristmillError, match="tokens"):
            dedup_exact(texts, L, keep, unit="tokens", tokenizer=tok)
        return
    r = dedup_exact(texts, L, keep, unit="tokens", tokenizer=tok)
    assert as_tuples(r.spans) == _token_reference_byte_spans(enc, texts, L, keep)
    assert r.texts.to_pylist() == apply_removal(texts, as_tuples(r.spans))


def _token_reference_contamination(enc, train: List[str], ev: List[str], L: int):
    toks = [enc.encode_ordinary(t) for t in ev]
    return _token_spans_to_bytes(enc, ev, toks, shared_window_runs([enc.encode_ordinary(t) for t in train], toks, L))


def test_contamination_token_unit_matches_tiktoken_brute_force():
    from gristmill.suffix import contamination

    enc, tok = _cl100k_pair()
    train = stdlib_texts(30_000)
    ev = [t[len(t) // 3 : len(t) // 3 + 400] + " fresh words → ünïcode" for t in train[:5]] + ["nothing shared here at all"]
    ev += ["Größe ☃ 漢字 " * 5 + train[0][:200]]
    train = train + ["Größe ☃ 漢字 " * 5]
    r = contamination(train, ev, 8, unit="tokens", tokenizer=tok)
    assert as_tuples(r.spans) == _token_reference_contamination(enc, train, ev, 8)
    assert r.summary["contaminated_documents"] == 6 and r.summary["unit"] == "tokens"
    one = contamination(train, ev, 8, unit="tokens", tokenizer=tok, num_threads=1)
    assert as_tuples(one.spans) == as_tuples(r.spans)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(train=st.lists(doc, min_size=1, max_size=5), ev=st.lists(doc, min_size=1, max_size=5), L=st.integers(1, 5))
def test_contamination_token_unit_property(train, ev, L):
    from gristmill.suffix import contamination

    enc, tok = _cl100k_pair()
    longest = lambda docs: max(len(enc.encode_ordinary(t)) for t in docs)  # noqa: E731
    if L > longest(train) or L > longest(ev):
        with pytest.raises(GristmillError, match="tokens"):
            contamination(train, ev, L, unit="tokens", tokenizer=tok)
        return
    r = contamination(train, ev, L, unit="tokens", tokenizer=tok)
    assert as_tuples(r.spans) == _token_reference_contamination(enc, train, ev, L)


def test_dedup_exact_token_unit_errors():
    from gristmill.suffix import dedup_exact

    with pytest.raises(ValueError, match="unit"):
        dedup_exact(["a"], 1, unit="words")
    with pytest.raises(GristmillError, match="tokens"):
        dedup_exact(["short text"], 50, unit="tokens")
    with pytest.raises(GristmillError, match="memory_limit"):
        dedup_exact(["a b c"], 1, unit="tokens", memory_limit=100)
    with pytest.raises(TypeError, match="tokenizer"):
        dedup_exact(["a b c"], 1, unit="tokens", tokenizer=3)


@settings(max_examples=60, deadline=None)
@given(docs=st.lists(st.lists(st.integers(0, 4), max_size=25), min_size=1, max_size=6), L=st.integers(1, 5),
       keep=st.sampled_from(["none", "first"]), spread=st.booleans())
def test_token_mode_matches_brute_force_any_vocabulary(docs, L, keep, spread):
    from gristmill.suffix import find_token_repeats

    if spread:  # > 65536 distinct ids: libsais' integer-alphabet path
        docs = [[x * 1_000_003 + 11 for x in d] for d in docs] + [list(range(4_000_000_000, 4_000_070_000))]
    if L > max(len(d) for d in docs):
        with pytest.raises(GristmillError, match="tokens"):
            find_token_repeats(docs, L, keep)
        return
    assert as_tuples(find_token_repeats(docs, L, keep)) == reference_token_repeats(docs, L, keep)


# ----------------------------------------------------------------------------------------------
# limited memory


def test_memory_limited_path_is_identical_on_real_text(tmp_path):
    import json

    texts = stdlib_texts(200_000)
    n = sum(len(t.encode()) for t in texts)
    for keep in ("none", "first"):
        base = find_repeats(texts, 50, keep)
        limited = find_repeats(texts, 50, keep, memory_limit=n // 3)  # a third of the corpus
        assert limited.equals(base)
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    r_mem = dedup_exact(gristmill.Corpus([p]), 50, "first")
    r_lim = dedup_exact(gristmill.Corpus([p]), 50, "first", memory_limit=n // 3)
    assert r_lim.texts.equals(r_mem.texts) and r_lim.spans.equals(r_mem.spans)
    assert r_lim.summary["memory_parts"] > 1
    with pytest.raises(GristmillError, match="memory_limit"):
        find_repeats(texts, 50, memory_limit=1000)
    with pytest.raises(ValueError, match="memory_limit"):
        find_repeats(texts, 50, memory_limit=0)
