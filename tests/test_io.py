"""Corpus I/O: formats, ids, write-back, and every kind of bad input."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from gristmill import Corpus, CorpusError, GristmillError, corpus_stats
from gristmill._arrow import string_buffers
from gristmill.io import atomic_write, check_output_path


def write_jsonl(path: Path, records, compression=None) -> Path:
    data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
    if compression is None:
        path.write_bytes(data)
    else:
        with pa.output_stream(str(path), compression=compression) as f:
            f.write(data)
    return path


def read_all(corpus: Corpus):
    ids, texts = [], []
    for b in corpus.batches():
        ids += b.ids.to_pylist()
        texts += b.texts.to_pylist()
    return ids, texts


RECORDS = [{"text": "héllo wörld", "meta": {"k": 1}}, {"text": ""}, {"text": "日本語 🎉", "n": 3}]


@pytest.mark.parametrize("suffix,comp", [(".jsonl", None), (".jsonl.gz", "gzip"), (".jsonl.zst", "zstd")])
def test_jsonl_formats_and_ids(tmp_path, suffix, comp):
    p = write_jsonl(tmp_path / f"a{suffix}", RECORDS, comp)
    ids, texts = read_all(Corpus([p]))
    assert texts == [r["text"] for r in RECORDS]
    assert ids == [f"{p}:1", f"{p}:2", f"{p}:3"]


def test_blank_lines_are_not_records_but_line_numbers_stay_true(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"text": "a"}\n\n   \n{"text": "b"}')  # no trailing newline either
    ids, texts = read_all(Corpus([p]))
    assert texts == ["a", "b"]
    assert ids == [f"{p}:1", f"{p}:4"]


def test_id_field(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "id": "doc-7"}, {"text": "y", "id": 8}])
    ids, _ = read_all(Corpus([p], id_field="id"))
    assert ids == ["doc-7", "8"]
    p2 = write_jsonl(tmp_path / "b.jsonl", [{"text": "x"}])
    with pytest.raises(CorpusError, match=r"b.jsonl:1: missing id field 'id'"):
        read_all(Corpus([p2], id_field="id"))


def test_parquet_and_text_folder(tmp_path):
    pq.write_table(pa.table({"content": ["p1", "p2", ""], "n": [1, 2, 3]}), tmp_path / "c.parquet")
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("bee")
    (folder / "sub" / "a.txt").write_text("ay")
    (folder / ".hidden").write_text("no")
    (folder / "skip.md").write_text("md")
    ids, texts = read_all(Corpus([tmp_path / "c.parquet"], text_field="content"))
    assert texts == ["p1", "p2", ""]
    assert ids == [f"{tmp_path / 'c.parquet'}#{i}" for i in range(3)]
    ids, texts = read_all(Corpus([folder], glob="*.txt"))
    assert texts == ["bee", "ay"]
    assert ids == [f"{folder}/b.txt", f"{folder}/sub/a.txt"]


def test_corpus_order_and_batching(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": f"a{i}"} for i in range(10)])
    b = write_jsonl(tmp_path / "b.jsonl", [{"text": f"b{i}"} for i in range(5)])
    c = Corpus([a, b], batch_bytes=6)
    batches = list(c.batches())
    assert [x.start for x in batches] == sorted(x.start for x in batches)
    assert all(len(set([x.source.display])) == 1 for x in batches)
    _, texts = read_all(c)
    assert texts == [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(5)]
    assert len(c) == 15
    assert batches[-1].stop == 15


# ------------------------------------------------------------------------------------------
# bad input


def test_malformed_json_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\n{"text": "oops"\n')
    with pytest.raises(CorpusError, match=r"bad.jsonl:2: invalid JSON"):
        read_all(Corpus([p]))


def test_not_an_object(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('["text"]\n')
    with pytest.raises(CorpusError, match=r"bad.jsonl:1: expected a JSON object per line, got an array"):
        read_all(Corpus([p]))


def test_missing_and_non_string_field(tmp_path):
    p = write_jsonl(tmp_path / "m.jsonl", [{"text": "ok"}, {"body": "x"}])
    with pytest.raises(CorpusError, match=r"m.jsonl:2: missing field 'text' \(fields present: body\); choose the text field with --text-field"):
        read_all(Corpus([p]))
    p = write_jsonl(tmp_path / "n.jsonl", [{"text": None}])
    with pytest.raises(CorpusError, match=r"n.jsonl:1: field 'text' is null, expected a string"):
        read_all(Corpus([p]))
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "p.parquet")
    with pytest.raises(CorpusError, match=r"p.parquet: no column 'text' \(columns: body\)"):
        read_all(Corpus([tmp_path / "p.parquet"]))
    pq.write_table(pa.table({"text": ["x", None]}), tmp_path / "q.parquet")
    with pytest.raises(CorpusError, match=r"q.parquet#1: 'text' is null"):
        read_all(Corpus([tmp_path / "q.parquet"]))


def test_invalid_utf8_policies(tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_bytes(b'{"text": "fine"}\n{"text": "bad \xff byte"}\n{"text": "also fine"}\n')
    with pytest.raises(CorpusError, match=r"u.jsonl:2: invalid UTF-8 at byte 14"):
        read_all(Corpus([p]))
    _, texts = read_all(Corpus([p], on_invalid_utf8="replace"))
    assert texts == ["fine", "bad \ufffd byte", "also fine"]
    c = Corpus([p], on_invalid_utf8="skip")
    with pytest.warns(UserWarning, match="skipped 1 document"):
        ids, texts = read_all(c)
    assert texts == ["fine", "also fine"] and ids == [f"{p}:1", f"{p}:3"]
    assert c.skipped == [f"{p}:2"]
    # lone surrogate escapes decode to str that cannot be UTF-8
    s = tmp_path / "s.jsonl"
    s.write_text('{"text": "x\\ud800y"}\n')
    with pytest.raises(CorpusError, match=r"s.jsonl:1: text has a lone surrogate at character 1"):
        read_all(Corpus([s]))
    assert read_all(Corpus([s], on_invalid_utf8="replace"))[1] == ["x\ufffdy"]
    # text folders and binary parquet columns use the same policy
    f = tmp_path / "folder"
    f.mkdir()
    (f / "a.txt").write_bytes(b"\xc3\x28")
    with pytest.raises(CorpusError, match=r"folder/a.txt: invalid UTF-8 at byte 0"):
        read_all(Corpus([f]))
    pq.write_table(pa.table({"text": pa.array([b"ok", b"\xff"], pa.binary())}), tmp_path / "b.parquet")
    with pytest.raises(CorpusError, match=r"b.parquet#1: invalid UTF-8"):
        read_all(Corpus([tmp_path / "b.parquet"]))


@pytest.mark.parametrize("suffix,comp", [(".jsonl.gz", "gzip"), (".jsonl.zst", "zstd")])
def test_truncated_compressed_file(tmp_path, suffix, comp):
    p = write_jsonl(tmp_path / f"t{suffix}", [{"text": f"document number {i} " * 20} for i in range(3000)], comp)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match=r"t\.jsonl\.(gz|zst): the compressed stream is corrupt or truncated"):
        read_all(Corpus([p]))


def test_corrupt_gzip_header(tmp_path):
    p = tmp_path / "c.jsonl.gz"
    p.write_bytes(b"this is not gzip at all\n")
    with pytest.raises(CorpusError, match=r"c.jsonl.gz"):
        read_all(Corpus([p]))


def test_empty_file_and_empty_documents(tmp_path):
    e = tmp_path / "empty.jsonl"
    e.write_bytes(b"")
    eg = tmp_path / "empty.jsonl.gz"
    eg.write_bytes(gzip.compress(b""))
    c = Corpus([e, eg])
    assert read_all(c) == ([], [])
    assert len(c) == 0
    assert corpus_stats(c)["docs"] == 0
    p = write_jsonl(tmp_path / "d.jsonl", [{"text": ""}, {"text": ""}])
    assert read_all(Corpus([p]))[1] == ["", ""]
    assert corpus_stats(Corpus([p])) == {
        "docs": 2, "empty_docs": 2, "bytes": 0, "chars": 0, "lines": 0, "words": 0, "max_doc_bytes": 0
    }


def test_huge_single_document(tmp_path):
    big = ("0123456789abcdé\n" * (200_000_000 // 17))  # ~200 MB of text in one JSON line
    p = tmp_path / "big.jsonl"
    with open(p, "w", encoding="utf-8") as f:
        f.write('{"text": "')
        f.write(big.replace("\n", "\\n"))
        f.write('"}\n{"text": "small"}\n')
    batches = list(Corpus([p]).batches())
    assert [len(b) for b in batches] == [1, 1]
    assert len(batches[0].texts[0].as_py()) == len(big)
    stats = corpus_stats(batches[0].texts)
    assert stats["bytes"] == len(big.encode()) and stats["lines"] == big.count("\n")


def test_unreadable_and_unknown_paths(tmp_path):
    with pytest.raises(CorpusError, match="nope.jsonl: no such file or folder"):
        Corpus([tmp_path / "nope.jsonl"])
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(CorpusError, match=r"x.csv: unknown input format"):
        Corpus([tmp_path / "x.csv"])
    with pytest.raises(CorpusError, match="no input paths"):
        Corpus([])
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(CorpusError, match="bad.parquet: not a readable Parquet file"):
        read_all(Corpus([tmp_path / "bad.parquet"]))


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without permission bits")
def test_permission_denied(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    p.chmod(0)
    with pytest.raises(CorpusError, match="permission denied"):
        Corpus([p])


def test_errors_are_value_errors():
    assert issubclass(CorpusError, GristmillError) and issubclass(GristmillError, ValueError)


# ------------------------------------------------------------------------------------------
# writing


@pytest.mark.parametrize("suffix,comp", [(".jsonl", None), (".jsonl.gz", "gzip"), (".jsonl.zst", "zstd")])
def test_write_filtered_jsonl_preserves_records(tmp_path, suffix, comp):
    p = write_jsonl(tmp_path / f"in{suffix}", RECORDS, comp)
    before = p.read_bytes()
    c = Corpus([p])
    out = tmp_path / "out"
    files = c.write(out, keep=np.array([True, False, True]), replace={2: "new text"})
    assert files == [out / f"in{suffix}"]
    assert p.read_bytes() == before  # the input is never modified
    lines = [json.loads(x) for x in pa.input_stream(str(files[0]), compression=comp).read().splitlines()]
    assert lines == [RECORDS[0], {"text": "new text", "n": 3}]
    assert not [x for x in out.iterdir() if ".tmp-" in x.name]


def test_write_skipped_documents_are_left_out(tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_bytes(b'{"text": "a"}\n{"text": "\xff"}\n{"text": "c"}\n')
    c = Corpus([p], on_invalid_utf8="skip")
    with pytest.warns(UserWarning):
        assert len(c) == 2
    c.write(tmp_path / "out", keep=np.array([False, True]))
    assert (tmp_path / "out" / "u.jsonl").read_text() == '{"text": "c"}\n'


def test_write_parquet_and_folder(tmp_path):
    pq.write_table(pa.table({"text": ["a", "b", "c"], "n": [1, 2, 3]}), tmp_path / "t.parquet")
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in "xyz":
        (folder / f"{name}.txt").write_text(name * 3)
    c = Corpus([tmp_path / "t.parquet", folder])
    out = tmp_path / "out"
    c.write(out, keep=np.array([True, False, True, False, True, True]), replace={0: "A", 4: "YY"})
    assert pq.read_table(out / "t.parquet").to_pylist() == [{"text": "A", "n": 1}, {"text": "c", "n": 3}]
    assert sorted(x.name for x in (out / "docs").iterdir()) == ["y.txt", "z.txt"]
    assert (out / "docs" / "y.txt").read_text() == "YY"


def test_rewriting_an_output_folder_drops_files_of_the_earlier_run_only(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        (folder / name).write_text(name)
    c = Corpus([folder])
    out = tmp_path / "out"
    c.write(out)
    (out / "mine.txt").write_text("the user's own file")
    c.write(out, keep=np.array([True, False, False]))
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        ".gristmill-outputs.json", "docs/a.txt", "mine.txt"]
    assert not (out / "docs" / "sub").exists()  # emptied folder removed
    # a manifest naming paths outside the folder is ignored
    (out / ".gristmill-outputs.json").write_text('{"files": ["../docs/a.txt", "mine.txt/../../docs/b.txt"]}')
    c.write(out, keep=np.array([False, True, False]))
    assert (folder / "a.txt").exists() and (folder / "b.txt").exists()
    assert (out / "docs" / "a.txt").exists()  # not in the (tampered) manifest: left alone


def test_write_rejects_bad_keep(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", RECORDS)
    with pytest.raises(ValueError, match="keep has 2 entries; the corpus has 3 documents"):
        Corpus([p]).write(tmp_path / "o", keep=np.array([True, True]))


def test_output_inside_input_or_over_input(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    with pytest.raises(CorpusError, match="inside the input folder"):
        Corpus([folder]).write(folder / "out")
    p = write_jsonl(tmp_path / "a.jsonl", RECORDS)
    with pytest.raises(CorpusError, match="is the input .*would replace it"):
        Corpus([p]).write(tmp_path)
    (tmp_path / "sub").mkdir()
    q = write_jsonl(tmp_path / "sub" / "a.jsonl", RECORDS)
    with pytest.raises(CorpusError, match="two inputs would be written to the same output file"):
        check_output_path(Corpus([p, q]), tmp_path / "o")
    (tmp_path / "afile").write_text("")
    with pytest.raises(CorpusError, match="output must be a folder"):
        Corpus([p]).write(tmp_path / "afile")


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "r.jsonl"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_killed_mid_write_leaves_no_complete_looking_output(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": "x" * 1000} for _ in range(20000)])
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import time, gristmill.io as io
        c = io.Corpus([{str(src)!r}])
        n = len(c)
        import numpy as np
        orig = io.JsonlSource.write
        def slow_decide_write(self, out, corpus, decide):
            def slow(i):
                if i == 100:
                    print("writing", flush=True)
                    time.sleep(60)
                return decide(i)
            return orig(self, out, corpus, slow)
        io.JsonlSource.write = slow_decide_write
        c.write({str(out)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "in.jsonl").exists()
    assert all(x.name.startswith(".in.jsonl.tmp-") for x in out.iterdir())


# ------------------------------------------------------------------------------------------
# Arrow hand-off


def test_string_buffers_zero_copy_and_slices():
    arr = pa.array(["ab", "", "cde", "f"])
    data, offsets = string_buffers(arr.slice(1, 2))
    assert offsets.dtype == np.int32 and len(offsets) == 3
    assert bytes(data[offsets[0]:offsets[-1]]) == b"cde"
    assert corpus_stats(arr.slice(1, 2))["bytes"] == 3
    big = pa.array(["x", "yy"], type=pa.large_string())
    assert string_buffers(big)[1].dtype == np.int64
    with pytest.raises(TypeError, match=r"texts\[1\] is null"):
        string_buffers(pa.array(["a", None]))
    with pytest.raises(TypeError, match=r"texts\[2\] is int, expected str"):
        string_buffers(["a", "b", 3])
    with pytest.raises(TypeError, match="string array"):
        string_buffers(pa.array([1, 2]))
    with pytest.raises(ValueError, match=r"texts\[0\] is not valid Unicode"):
        string_buffers(["\ud800"])
    chunked = pa.chunked_array([["a"], ["bc"]])
    assert corpus_stats(chunked)["bytes"] == 3


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(), max_size=20))
def test_roundtrip_any_text(tmp_path_factory, texts):
    texts = [t.encode("utf-16", "surrogatepass").decode("utf-16", "replace") for t in texts]
    d = tmp_path_factory.mktemp("rt")
    p = write_jsonl(d / "a.jsonl.zst", [{"text": t} for t in texts], "zstd")
    assert read_all(Corpus([p]))[1] == texts
    Corpus([p]).write(d / "out")
    assert read_all(Corpus([d / "out" / "a.jsonl.zst"]))[1] == texts
    stats = corpus_stats(texts)
    assert stats["docs"] == len(texts)
    assert stats["bytes"] == sum(len(t.encode()) for t in texts)
    assert stats["chars"] == sum(len(t) for t in texts)


def test_file_vanishing_between_listing_and_reading(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "b.txt").write_text("b")
    c = Corpus([folder])
    files = c.sources[0].files()  # listed now
    files[1].unlink()
    with pytest.raises(CorpusError, match=r"docs/b.txt: cannot read: No such file"):
        read_all(c)
