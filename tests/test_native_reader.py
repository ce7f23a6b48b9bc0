"""Differential tests: the native JSONL reader (``_native.read_jsonl_file``, and ``Corpus``, which
reads JSONL through it) against the Python per-line parser of ``gristmill.io``
(``JsonlSource._parse`` on ``_iter_lines``, still used to rewrite records on write), the
reference for texts, ids and errors."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill import _native
from gristmill.io import Corpus, CorpusError, GristmillError, _iter_lines

zstd = pytest.importorskip("zstandard")


def python_records(path, **kw):
    c = Corpus(str(path), **kw)
    out = []
    try:
        for src in c.sources:
            for lineno, line in _iter_lines(src.path, src.compression, src.display):
                rec = src._parse(lineno, line, c)
                if rec is not None:
                    out.append(rec[:2])
        return "ok", out
    except CorpusError as e:
        return "err", str(e)


def corpus_records(path, **kw):
    """What ``Corpus`` yields (native reader): (id, text) of documents, ids of skipped ones."""
    import warnings

    c = Corpus(str(path), batch_bytes=kw.pop("batch_bytes", 32 << 20), **kw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            docs = [(i, t) for b in c.batches(batch_docs=3) for i, t in zip(b.ids.to_pylist(), b.texts.to_pylist())]
        return "ok", docs, c.skipped
    except CorpusError as e:
        return "err", str(e)


def native_records(path, text_field="text", id_field=None, on_invalid_utf8="error"):
    comp = {".gz": "gzip", ".zst": "zstd"}.get(Path(path).suffix)
    try:
        batches = _native.read_jsonl_file(str(path), comp, str(path), text_field, id_field, on_invalid_utf8, 7)
    except GristmillError as e:
        return "err", str(e)
    out = []
    for b in batches:
        t, to, io_ = b["text"].tobytes(), b["text_offsets"], b["id_offsets"]
        for i in range(len(b["lines"])):
            if id_field is None:
                did = f"{path}:{b['lines'][i]}"
            else:
                raw = b["ids"][io_[i]:io_[i + 1]].decode()
                did = json.dumps(json.loads(raw)) if b["id_is_json"][i] else raw
            text = t[to[i]:to[i + 1]].decode() if b["valid"][i] else None
            out.append((did, text))
    return "ok", out


def same(path, **kw):
    py, nat = python_records(path, **kw), native_records(path, **kw)
    if py[0] == "ok" and nat[0] == "err" and "invalid JSON" in nat[1]:
        # documented difference: strict JSON (a key with a lone surrogate; json accepts it)
        cor = corpus_records(path, **kw)
        assert cor[0] == "err" and "valid only for Python's lenient json" in cor[1], cor
        return
    if py[0] == "err" and nat[0] == "err":
        # same place and same kind of problem; serde_json and json word syntax errors differently
        assert nat[1].split(": ")[:2] == py[1].split(": ")[:2], (py, nat)
        if "invalid JSON" not in py[1]:
            assert nat[1] == py[1]
    else:
        assert nat == py
    cor = corpus_records(path, **kw)
    if py[0] == "err":
        # Corpus words serde_json's "EOF while parsing" as "the line ends inside"
        assert cor[0] == "err" and cor[1] == nat[1].replace(": EOF while parsing ", ": the line ends inside "), (py, cor)
    else:
        assert cor[1] == [r for r in py[1] if r[1] is not None]
        assert cor[2] == [r[0] for r in py[1] if r[1] is None]


def write(tmp_path, data: bytes, suffix=".jsonl"):
    p = tmp_path / ("in.jsonl" if suffix == ".jsonl" else f"in.jsonl{suffix}")
    if suffix == ".gz":
        data = gzip.compress(data)
    elif suffix == ".zst":
        data = zstd.ZstdCompressor().compress(data)
    p.write_bytes(data)
    return p


CASES = [
    b'{"text": "a"}\n{"text": "b\\u00e9\\ud83d\\ude00"}\n',
    b'{"text": "x"}\r\n\r\n   \n{"text": "y", "n": {"deep": [1, {"text": 2}]}}',
    b'{"text": "lone \\ud800 here"}\n',
    b'{"text": "lone low \\udc00"}\n',
    b'{"text": 3}\n',
    b'{"other": 3, "b": 1}\n',
    b'{}\n',
    b'[1, 2]\n',
    b'"str"\n',
    b'{"text": "a"\n',
    b'{"text": "bad \xff\xfe utf8"}\n',
    b'{"text": "dup", "text": "last"}\n',
    b'{"text": "' + b"z" * 3_000_000 + b'"}\n{"text": "after"}\n',
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("suffix", [".jsonl", ".gz", ".zst"])
@pytest.mark.parametrize("policy", ["error", "replace", "skip"])
def test_cases(tmp_path, case, suffix, policy):
    same(write(tmp_path, CASES[case], suffix), on_invalid_utf8=policy)


@pytest.mark.parametrize("idv", [b'"d1"', b"7", b"[1, 2]", b"null", b'{"a": 1}'])
def test_ids(tmp_path, idv):
    same(write(tmp_path, b'{"id": ' + idv + b', "text": "t"}\n'), id_field="id")
    same(write(tmp_path, b'{"text": "t"}\n'), id_field="id")


def test_truncated_streams(tmp_path):
    data = b"".join(b'{"text": "line %d %s"}\n' % (i, b"q" * (i % 50)) for i in range(400_000))
    for suffix in (".gz", ".zst"):
        p = write(tmp_path, data, suffix)
        full = p.read_bytes()
        p.write_bytes(full[: len(full) * 2 // 3])
        py, nat = python_records(p), native_records(p)
        assert py[0] == nat[0] == "err"
        assert "after line" in nat[1]
        assert nat[1].split(":", 1)[1].split(" after line ")[1].split(":")[0] == \
            py[1].split(":", 1)[1].split(" after line ")[1].split(":")[0], (py, nat)


json_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | json_text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(json_text, c, max_size=3),
    max_leaves=8,
)


@st.composite
def jsonl(draw):
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["doc", "doc", "doc", "blank", "crlf"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", "  ", "\t", "\r"])))
            continue
        obj = draw(st.dictionaries(json_text.filter(lambda k: k != "text"), values, max_size=3))
        obj["text"] = draw(json_text)
        s = json.dumps(obj, ensure_ascii=draw(st.booleans()))
        lines.append(s + ("\r" if kind == "crlf" else ""))
    return "\n".join(lines).encode("utf-8", "surrogatepass") + draw(st.sampled_from([b"", b"\n"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=jsonl(), policy=st.sampled_from(["error", "replace", "skip"]))
def test_hypothesis(tmp_path, data, policy):
    same(write(tmp_path, data), on_invalid_utf8=policy)


# ------------------------------------------------------------------------------------------
# Corpus reads JSONL through the native reader: strict JSON, batching, streaming


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_corpus_rejects_nan_literals_naming_the_line(tmp_path, literal):
    # Python's json accepts these (the old Corpus did); strict JSON does not: an error naming
    # file:line with the fix, documented in Corpus
    p = write(tmp_path, b'{"text": "a", "score": 1}\n{"text": "b", "score": ' + literal + b'}\n')
    assert python_records(p)[0] == "ok"
    with pytest.raises(CorpusError, match=r"in\.jsonl:2: invalid JSON.*NaN or Infinity.*write null"):
        list(Corpus(str(p)).batches())


def test_corpus_rejects_lone_surrogate_key(tmp_path):
    p = write(tmp_path, b'{"\\ud800": 1, "text": "a"}\n')
    assert python_records(p)[0] == "ok"
    hint = r"in\.jsonl:1: invalid JSON.*valid only for Python.s lenient json.*lone surrogate"
    with pytest.raises(CorpusError, match=hint):
        list(Corpus(str(p)).batches())


def test_corpus_plain_invalid_json_has_no_hint(tmp_path):
    p = write(tmp_path, b'{"text": "a"\n')
    with pytest.raises(CorpusError) as e:
        list(Corpus(str(p)).batches())
    assert "in.jsonl:1: invalid JSON" in str(e.value) and "NaN" not in str(e.value)


@pytest.mark.parametrize("batch_bytes", [1, 5, 17, 1 << 20])
@pytest.mark.parametrize("batch_docs", [1, 2, 7, 65536])
def test_corpus_batches_cut_by_docs_and_bytes(tmp_path, batch_bytes, batch_docs):
    lines = [{"text": "é" * (i % 6), "id": i} for i in range(40)]
    data = "\n".join(json.dumps(o, ensure_ascii=False) for o in lines).encode()
    p = write(tmp_path, data.replace(b'"id": 13}', b'"id": 13}\n'), ".gz")
    c = Corpus(str(p), batch_bytes=batch_bytes)
    batches = list(c.batches(batch_docs=batch_docs))
    texts = [t for b in batches for t in b.texts.to_pylist()]
    assert texts == [o["text"] for o in lines]
    assert [b.start for b in batches] == list(np.cumsum([0] + [len(b) for b in batches[:-1]]))
    for b in batches[:-1]:  # every batch but the last is full by documents or by bytes
        nbytes = len("".join(b.texts.to_pylist()).encode())
        assert len(b) == batch_docs or (nbytes >= batch_bytes and len(b) <= batch_docs)
        assert len(b) <= batch_docs
        # and not more than needed: without its last document it would be under the limits
        assert len(b) == 1 or nbytes - len(b.texts[-1].as_py().encode()) < batch_bytes or len(b) == batch_docs
    ids = [i for b in batches for i in b.ids.to_pylist()]
    assert ids == [f"{p}:{n}" for n in list(range(1, 15)) + list(range(16, 42))]
    assert np.concatenate([b.local for b in batches]).tolist() == list(range(40))


def test_corpus_streams_large_file_in_chunks(tmp_path):
    # > 2 read chunks of 8 MiB: several native batches, merged into Corpus batches in order
    doc = "w" * 1000
    n = 20_000
    p = tmp_path / "big.jsonl"
    p.write_text("".join(json.dumps({"text": f"{i} {doc}"}) + "\n" for i in range(n)))
    reader = _native._JsonlReader(str(p), None, str(p), "text", None, "error", 1)
    first = next(reader)
    assert 0 < len(first["lines"]) < n
    reader.close()  # stops early; the worker ends
    assert list(reader) == []
    c = Corpus(str(p), batch_bytes=3 << 20)
    got = [t.split(" ", 1)[0] for b in c.batches() for t in b.texts.to_pylist()]
    assert got == [str(i) for i in range(n)]
    assert len(c) == n


def test_corpus_skip_accounting_and_write(tmp_path):
    p = write(tmp_path, b'{"text": "a"}\n{"text": "b\xff"}\n\n{"text": "c\\ud800"}\n{"text": "d", "k": 1}\n')
    c = Corpus(str(p), on_invalid_utf8="skip")
    with pytest.warns(UserWarning, match="skipped 2 document"):
        assert [t for b in c.batches() for t in b.texts.to_pylist()] == ["a", "d"]
    assert c.skipped == [f"{p}:2", f"{p}:4"]
    out = tmp_path / "out"
    c.write(out, keep=np.array([False, True]))
    assert (out / "in.jsonl").read_bytes() == b'{"text": "d", "k": 1}\n'


# ------------------------------------------------------------------------------------------
# number fields come from the same pass as the texts (issue 15: every command reads once)


def _expected_numbers(recs, name):
    out = []
    for r in recs:
        v = r.get(name)
        out.append(float("nan") if v is None else float(v))
    return out


def test_corpus_numbers_from_the_same_pass(tmp_path):
    recs = [{"text": "a", "q": 1}, {"text": "b", "q": 2.5}, {"text": "c"}, {"text": "d", "q": None},
            {"text": "e", "q": True}, {"text": "f", "q": -0}, {"text": "g\\u00e9" * 40, "q": 1e300},
            {"text": "h", "q": 12345678901234567890}]
    p = tmp_path / "q.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    for batch_docs in (3, 100):
        got = np.concatenate([b.numbers["q"] for b in Corpus(str(p)).batches(batch_docs=batch_docs, numbers=["q"])])
        np.testing.assert_array_equal(got, _expected_numbers(recs, "q"))
    # skipped documents (invalid UTF-8) are left out of the numbers too
    p.write_bytes(b'{"text": "\xff", "q": "not a number"}\n{"text": "ok", "q": 4}\n')
    with pytest.warns(UserWarning, match="skipped 1"):
        bs = list(Corpus(str(p), on_invalid_utf8="skip").batches(numbers=["q"]))
    assert [b.numbers["q"].tolist() for b in bs] == [[4.0]]
    # Parquet columns too, and text ids/lines are unchanged by asking for numbers
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["x", "y"], "q": [3, None]}), tmp_path / "q.parquet")
    (b,) = Corpus(str(tmp_path / "q.parquet")).batches(numbers=["q"])
    np.testing.assert_array_equal(b.numbers["q"], [3.0, float("nan")])


@pytest.mark.parametrize("value, tname", [('"3"', "str"), ("[1]", "list"), ('{"a": 1}', "dict")])
def test_corpus_numbers_reject_non_numbers_naming_the_line(tmp_path, value, tname):
    from gristmill.io import CorpusFieldError

    p = tmp_path / "q.jsonl"
    p.write_text('{"text": "a", "q": 1}\n\n{"text": "b", "q": %s}\n' % value)
    with pytest.raises(CorpusFieldError, match=rf"q.jsonl:3: field 'q' is {tname}, expected a number"):
        list(Corpus(str(p)).batches(numbers=["q"]))
    p.write_text('{"text": "a", "quality": 1}\n')
    with pytest.raises(CorpusFieldError, match=r"no document has the field 'q' \(fields: text, quality\)"):
        list(Corpus(str(p)).batches(numbers=["q"]))


def test_keep_column_reads_the_corpus_once(tmp_path, monkeypatch):
    """dedup_minhash(Corpus, keep="column:q") takes the scores from the signature pass: one
    native read, no Python re-read (before, the CLI read the field in a second pass)."""
    from gristmill import io
    from gristmill.minhash import dedup_minhash

    texts = ["alpha beta gamma delta epsilon zeta eta theta"] * 3 + ["something else entirely here now"]
    recs = [{"text": t, "q": q} for t, q in zip(texts, [1, 5, 2, 0])]
    p = tmp_path / "q.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    reads = []
    real = _native._JsonlReader
    monkeypatch.setattr(_native, "_JsonlReader", lambda *a: reads.append(a) or real(*a))
    monkeypatch.setattr(io, "_iter_lines", lambda *a: pytest.fail("second reader"))
    r = dedup_minhash(Corpus(str(p)), 0.5, ngram=2, keep="column:q", verify=False)
    assert len(reads) == 1
    expected = dedup_minhash(texts, 0.5, ngram=2, keep="column:q", keep_scores=[1, 5, 2, 0], verify=False)
    assert r.keep.tolist() == expected.keep.tolist() == [False, True, False, True]
