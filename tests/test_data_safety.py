"""Data safety of the `gristmill` command (issue 14): outputs never replace or land inside
inputs, index updates are atomic, reused output folders behave predictably, corrupted indexes
are reported as such."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gristmill.cli import main


def write_jsonl(path: Path, texts) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    return path


def snapshot(*roots: Path):
    """Every file under ``roots`` with its content hash (to prove inputs were not touched)."""
    out = {}
    for r in roots:
        files = [r] if r.is_file() else sorted(p for p in r.rglob("*") if p.is_file())
        for p in files:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


TEXTS = [f"document number {i} says something about topic {i % 7} at some length" for i in range(40)]


# ---------------------------------------------------------------------------------------------
# 1. an output that is, or is inside, an input is refused by every writing command


@pytest.fixture
def inputs(tmp_path):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", TEXTS)
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, t in enumerate(TEXTS[:10]):
        (folder / f"f{i}.txt").write_text(t)
    return corpus, folder


def refused(capsys, argv, *roots):
    before = snapshot(*roots)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gristmill: error: "), err
    assert "input" in lines[0]
    assert snapshot(*roots) == before, "an input was changed"
    return lines[0]


def test_index_build_over_its_input_is_refused(inputs, capsys):
    corpus, _ = inputs
    msg = refused(capsys, ["index", "build", str(corpus), "-o", str(corpus)], corpus)
    assert str(corpus) in msg and "replace" in msg


def test_every_writing_command_refuses_an_output_over_or_inside_an_input(inputs, tmp_path, capsys):
    corpus, folder = inputs
    c, d = str(corpus), str(folder)
    inside = str(folder / "out")
    cases = [
        ["index", "build", d, "-o", str(folder / "docs.gsi")],
        ["index", "build", c, d, "-o", str(folder / "f3.txt")],
        ["contamination", "--train", c, "--eval", d, "-o", inside, "--min-length", "20"],
        ["contamination", "--train", d, "--eval", c, "-o", c, "--min-length", "20"],
        ["train-bpe", c, "--vocab-size", "300", "-o", c],
        ["train-bpe", d, "--vocab-size", "300", "-o", str(folder / "tok.json")],
        ["tokenize", c, "-o", c, "--tokenizer", "cl100k_base"],
        ["tokenize", d, "-o", inside, "--tokenizer", "cl100k_base"],
        ["dedup", "minhash", c, "-o", c],
        ["dedup", "minhash", d, "-o", inside],
        ["dedup", "minhash", d, "-o", str(tmp_path / "o"), "--index", str(folder / "idx")],
        ["dedup", "minhash", c, "-o", str(tmp_path / "o"), "--index", c],
        ["dedup", "exact", c, "-o", c, "--min-length", "20"],
        ["dedup", "exact", d, "-o", d, "--min-length", "20"],
        ["demo", "--input", d, "-o", inside],
        ["demo", "--input", d, "-o", d],
    ]
    for argv in cases:
        refused(capsys, argv, corpus, folder)
    assert not (tmp_path / "o").exists()


def test_a_symlink_to_an_input_is_the_input(inputs, tmp_path, capsys):
    corpus, _ = inputs
    link = tmp_path / "link.gsi"
    link.symlink_to(corpus)
    refused(capsys, ["index", "build", str(corpus), "-o", str(link)], corpus)


def test_outputs_beside_the_inputs_are_still_allowed(inputs, tmp_path, capsys):
    corpus, folder = inputs
    assert main(["index", "build", str(corpus), str(folder), "-o", str(tmp_path / "corpus.gsi")]) == 0
    assert main(["train-bpe", str(corpus), "--vocab-size", "300", "-o", str(tmp_path / "tok.json")]) == 0


def test_python_api_refuses_too(inputs, tmp_path):
    from gristmill import Corpus, SuffixIndex, Tokenizer
    from gristmill.io import OutputOverInputError
    from gristmill.tokenizer import tokenize_corpus

    corpus, folder = inputs
    before = snapshot(corpus, folder)
    with pytest.raises(OutputOverInputError, match="replace"):
        SuffixIndex.build(Corpus([corpus]), corpus)
    with pytest.raises(OutputOverInputError, match="inside the input folder"):
        tokenize_corpus(Corpus([folder]), Tokenizer.from_tiktoken("cl100k_base"), folder / "tok")
    assert snapshot(corpus, folder) == before


# ---------------------------------------------------------------------------------------------
# 2. `dedup minhash --index`: the index learns a shard only after its outputs are written


def _shards(tmp_path):
    import random

    rng = random.Random(5)
    words = [f"w{i}" for i in range(400)]
    base = [" ".join(rng.choice(words) for _ in range(60)) for _ in range(30)]
    a = write_jsonl(tmp_path / "in" / "a.jsonl", base[:20])
    # shard b: 10 documents also in a (with a small edit), 10 new ones, 2 copies inside b
    b_texts = [t + " end" for t in base[:10]] + base[20:] + [base[25], base[26] + " x"]
    b = write_jsonl(tmp_path / "in" / "b.jsonl", b_texts)
    return a, b


def _dedup(shard, out, index, *extra):
    return main(["-q", "dedup", "minhash", str(shard), "-o", str(out), "--index", str(index), *extra])


def _kept(out: Path, name: str):
    return (out / name).read_text().splitlines()


def test_failed_output_write_does_not_commit_the_shard(tmp_path, monkeypatch, capsys):
    import shutil

    from gristmill.io import Corpus

    a, b = _shards(tmp_path)
    idx = tmp_path / "seen.idx"
    assert _dedup(a, tmp_path / "out-a", idx) == 0
    clean_idx = tmp_path / "clean.idx"
    shutil.copytree(idx, clean_idx)
    assert _dedup(b, tmp_path / "clean-b", clean_idx) == 0
    clean = _kept(tmp_path / "clean-b", "b.jsonl")
    assert 0 < len(clean) < 22  # the test is meaningful: b loses documents to a and to itself

    real_write = Corpus.write

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "out-b" / "b.jsonl"))

    monkeypatch.setattr(Corpus, "write", disk_full)
    assert _dedup(b, tmp_path / "out-b", idx) == 1
    assert "No space left on device" in capsys.readouterr().err
    monkeypatch.setattr(Corpus, "write", real_write)
    # the obvious retry gives exactly the clean run's output and index
    assert _dedup(b, tmp_path / "out-b", idx) == 0
    assert _kept(tmp_path / "out-b", "b.jsonl") == clean
    s = json.loads((tmp_path / "out-b" / "minhash_summary.json").read_text())
    assert s["index"]["items"] == json.loads((tmp_path / "clean-b" / "minhash_summary.json").read_text())["index"]["items"]


def test_failure_writing_the_report_does_not_commit_either(tmp_path, monkeypatch):
    import gristmill.io as gio

    a, b = _shards(tmp_path)
    idx = tmp_path / "seen.idx"
    assert _dedup(a, tmp_path / "out-a", idx) == 0
    n_before = json.loads((tmp_path / "out-a" / "minhash_summary.json").read_text())["index"]["items"]
    real = gio.write_json

    def fail(path, obj):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(gio, "write_json", fail)
    assert _dedup(b, tmp_path / "out-b", idx) == 1
    monkeypatch.setattr(gio, "write_json", real)
    # reopening with the CLI's parameters: the index still holds only shard a
    assert _dedup(a, tmp_path / "again-a", idx) == 0
    assert json.loads((tmp_path / "again-a" / "minhash_summary.json").read_text())["index"]["items"] == n_before


def test_rerunning_a_committed_shard_gives_the_same_output(tmp_path):
    """A run killed right after its commit looks failed; re-running it must not empty the shard."""
    a, b = _shards(tmp_path)
    idx = tmp_path / "seen.idx"
    assert _dedup(a, tmp_path / "out-a", idx) == 0
    assert _dedup(b, tmp_path / "out-b", idx) == 0
    first = _kept(tmp_path / "out-b", "b.jsonl")
    items = json.loads((tmp_path / "out-b" / "minhash_summary.json").read_text())["index"]["items"]
    assert _dedup(b, tmp_path / "out-b2", idx) == 0
    assert _kept(tmp_path / "out-b2", "b.jsonl") == first
    s = json.loads((tmp_path / "out-b2" / "minhash_summary.json").read_text())
    assert s["index"]["items"] == items and s["already_in_index"] == len(first)
    # and shard a, re-run after b was added, is not deduplicated against b
    assert _dedup(a, tmp_path / "out-a2", idx) == 0
    assert _kept(tmp_path / "out-a2", "a.jsonl") == _kept(tmp_path / "out-a", "a.jsonl")


def test_a_changed_shard_is_not_silently_mixed_into_the_index(tmp_path, capsys):
    a, b = _shards(tmp_path)
    idx = tmp_path / "seen.idx"
    assert _dedup(a, tmp_path / "out-a", idx) == 0
    with open(a, "a", encoding="utf-8") as f:
        f.write(json.dumps({"text": "a brand new document appended after the first run " * 3}) + "\n")
    capsys.readouterr()
    assert _dedup(a, tmp_path / "out-a2", idx) == 1
    err = capsys.readouterr().err
    assert "input changed" in err and str(idx) in err
    assert not (tmp_path / "out-a2" / "a.jsonl").exists()


def test_python_api_commit_after_writing(tmp_path):
    from gristmill.minhash import DEDUP_WEIGHTS, MinHasher, MinHashIndex, dedup_minhash

    texts = [f"doc {i} " + "shared words here and there " * 3 for i in range(3)] + ["something else entirely, long enough"]
    hasher = MinHasher(num_perm=64, ngram=2)
    index = MinHashIndex(tmp_path / "i", threshold=0.8, num_perm=64, weights=DEDUP_WEIGHTS, hasher=hasher)
    r = dedup_minhash(texts, 0.8, index=index, commit_index=False)
    pending = r.index_pending
    assert len(index) == 0 and pending == int(r.keep.sum()) > 0
    assert r.commit_index() == pending and len(index) == pending
    assert r.commit_index() == 0 and len(index) == int(r.keep.sum())
