"""Differential tests: the native JSONL reader (``_native.read_jsonl_file``) against the Python
reader of ``gristmill.io`` (``JsonlSource.records``), the reference for texts, ids and errors."""

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill import _native
from gristmill.io import Corpus, CorpusError, GristmillError

zstd = pytest.importorskip("zstandard")


def python_records(path, **kw):
    c = Corpus(str(path), **kw)
    try:
        return "ok", [r for src in c.sources for r in src.records(c)]
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
    if py[0] == "err" and nat[0] == "err":
        # same place and same kind of problem; serde_json and json word syntax errors differently
        assert nat[1].split(": ")[:2] == py[1].split(": ")[:2], (py, nat)
        if "invalid JSON" not in py[1]:
            assert nat[1] == py[1]
    else:
        assert nat == py


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
