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
