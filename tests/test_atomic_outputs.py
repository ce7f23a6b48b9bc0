"""Issue 14 item 9 and usage errors: a failed or killed run never leaves output that looks
complete; stale temporaries of dead runs are removed; a full disk names the file being written;
bad option values exit 2."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from gristmill.cli import main


def write_jsonl(path: Path, texts) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    return path


TEXTS = [f"document number {i} says something about topic {i % 7} at some length" for i in range(60)]


def everything(root: Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


class _FullDisk:
    """A pyarrow output stream that fails with ENOSPC on its first write."""

    def __init__(self, real):
        self.real = real

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self):
        self.real.close()


def fill_disk_on(monkeypatch, *, nth: int, match=lambda path: True):
    """From the ``nth`` matching output file on, writes fail as on a full disk."""
    real = pa.output_stream
    seen = [0]

    def output_stream(path, *a, **k):
        stream = real(path, *a, **k)
        if match(str(path)):
            seen[0] += 1
            if seen[0] >= nth:
                return _FullDisk(stream)
        return stream

    monkeypatch.setattr(pa, "output_stream", output_stream)


def test_tokenize_failure_leaves_no_shards_and_names_the_file(tmp_path, monkeypatch, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    out = tmp_path / "tok"
    # the manifest (written last) hits the full disk after every shard was written
    fill_disk_on(monkeypatch, nth=1, match=lambda p: "manifest.json" in p)
    rc = main(["-q", "tokenize", str(src), "-o", str(out), "--tokenizer", "cl100k_base", "--shard-tokens", "50"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "manifest.json: cannot write: No space left on device" in err
    assert everything(out) == []  # no complete-looking shard, no temporary left
    monkeypatch.undo()
    assert main(["-q", "tokenize", str(src), "-o", str(out), "--tokenizer", "cl100k_base", "--shard-tokens", "50"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert len(m["shards"]) > 1 and m["total_docs"] == len(TEXTS)


def test_tokenize_api_is_all_or_nothing(tmp_path, monkeypatch):
    from gristmill.io import Corpus, CorpusError
    from gristmill.tokenizer import Tokenizer, tokenize_corpus

    src = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    out = tmp_path / "tok"
    fill_disk_on(monkeypatch, nth=3, match=lambda p: ".bin" in p)  # the third shard fails
    with pytest.raises(CorpusError, match=r"tokens-00002\.bin: cannot write: No space left"):
        tokenize_corpus(Corpus([src]), Tokenizer.from_tiktoken("cl100k_base"), out, shard_tokens=50)
    assert everything(out) == []


def test_demo_full_disk_leaves_no_complete_looking_files(tmp_path, monkeypatch, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"m{i}.py").write_text(f"def f{i}():\n    return {i} * {i}  # module {i}\n" * 3)
    out = tmp_path / "demo"
    fill_disk_on(monkeypatch, nth=5, match=lambda p: p.endswith(".py.tmp-" + str(os.getpid())))
    rc = main(["-q", "demo", "--input", str(src), "-o", str(out), "--min-length", "50"])
    err = capsys.readouterr().err
    assert rc == 1
    assert ".py: cannot write: No space left on device" in err
    assert everything(out) == []  # before: the first four .py files stood there, looking complete


def test_dedup_minhash_failed_report_hides_the_corpus_output(tmp_path, monkeypatch, capsys):
    src = write_jsonl(tmp_path / "a.jsonl", TEXTS)
    out = tmp_path / "o"
    fill_disk_on(monkeypatch, nth=1, match=lambda p: "minhash_summary.json" in p)
    assert main(["-q", "dedup", "minhash", str(src), "-o", str(out)]) == 1
    assert "minhash_summary.json: cannot write" in capsys.readouterr().err
    assert everything(out) == []
    monkeypatch.undo()
    assert main(["-q", "dedup", "minhash", str(src), "-o", str(out)]) == 0
    assert {"a.jsonl", "minhash_clusters.parquet", "minhash_summary.json"} <= set(everything(out))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_dead_runs_are_removed(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", TEXTS)
    out = tmp_path / "o"
    (out / "sub").mkdir(parents=True)
    dead = _dead_pid()
    stale_file = out / f".a.jsonl.tmp-{dead}"
    stale_nested = out / "sub" / f".x.txt.tmp-{dead}"
    stale_dir = out / f".idx.gsi.tmp-{dead}"
    for f in (stale_file, stale_nested):
        f.write_text("half written")
    stale_dir.mkdir()
    (stale_dir / "part").write_text("x")
    live = out / f".b.jsonl.tmp-{os.getppid()}"  # a live process's temporary: never touched
    live.write_text("in progress")
    assert main(["-q", "dedup", "minhash", str(src), "-o", str(out)]) == 0
    assert not stale_file.exists() and not stale_nested.exists() and not stale_dir.exists()
    assert live.exists()
    assert (out / "a.jsonl").exists()


def test_atomic_write_removes_stale_temps_next_to_its_file(tmp_path):
    from gristmill.io import write_json

    dead = _dead_pid()
    stale = tmp_path / f".r.json.tmp-{dead}"
    stale.write_text("{")
    write_json(tmp_path / "r.json", {"ok": 1})
    assert not stale.exists()
    assert json.loads((tmp_path / "r.json").read_text()) == {"ok": 1}


# ---------------------------------------------------------------------------------------------
# usage errors exit 2 (argparse convention, as documented)


@pytest.mark.parametrize("argv", [
    ["--threads", "0", "stats", "{src}"],
    ["dedup", "minhash", "{src}", "-o", "{out}", "--threshold", "lots"],
    ["dedup", "minhash", "{src}", "-o", "{out}", "--keep", "nonsense"],
    ["dedup", "minhash", "{src}", "-o", "{out}", "--threshold", "1.5"],
    ["dedup", "minhash", "{src}", "-o", "{out}", "--num-perm", "0"],
    ["dedup", "exact", "{src}", "-o", "{out}", "--min-length", "-3"],
    ["tokenize", "{src}", "-o", "{out}", "--tokenizer", "cl100k_base", "--shard-tokens", "0"],
])
def test_bad_option_values_exit_2(tmp_path, argv, capsys):
    src = write_jsonl(tmp_path / "a.jsonl", TEXTS)
    out = tmp_path / "o"
    argv = [a.format(src=src, out=out) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "error" in err
    assert everything(out) == []


# ---------------------------------------------------------------------------------------------
# item 8: long stages announce themselves on stderr (with totals) and say when they end; -q hides it


SHARED = "this sentence is long enough to be repeated across several documents here"


@pytest.mark.parametrize("cmd,stages", [
    (["dedup", "exact", "{a}", "-o", "{out}", "--min-length", "20"],
     ["dedup exact: read", "dedup exact: suffix array + repeats: 3 documents, {nbytes} bytes, windows of 20 bytes",
      "dedup exact: trim"]),
    (["contamination", "--train", "{a}", "--eval", "{a}", "--min-length", "20"],
     ["contamination: read", "contamination: suffix array + shared windows: train 3 documents, {nbytes} bytes"]),
    (["index", "build", "{a}", "-o", "{out}.gsi"],
     ["index build: read", "index build: suffix array + write: 3 documents, {nbytes} bytes"]),
])
def test_stage_progress_lines_on_stderr(tmp_path, capsys, cmd, stages):
    texts = [SHARED, "x " + SHARED, SHARED + " y"]
    a = write_jsonl(tmp_path / "a.jsonl", texts)
    nbytes = sum(len(t.encode()) for t in texts)
    argv = [c.format(a=a, out=tmp_path / "o") for c in cmd]
    assert main(argv) == 0
    cap = capsys.readouterr()
    lines = cap.err.splitlines()
    for st in stages:
        st = st.format(nbytes=nbytes)
        name = st.split(":")[0] + ":" + st.split(":")[1]
        assert any(ln.startswith(st) and ln.endswith("...") for ln in lines), (st, cap.err)
        assert any(ln.startswith(name + ": done in ") and ln.endswith(" s") for ln in lines), (name, cap.err)
    assert ": done in " not in cap.out  # progress never mixes into the results on stdout
    argv = [c.format(a=a, out=tmp_path / "q") for c in cmd]
    assert main(["-q", *argv]) == 0
    assert ": done in " not in capsys.readouterr().err
