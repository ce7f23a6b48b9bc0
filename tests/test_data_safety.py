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


# ---------------------------------------------------------------------------------------------
# 3. reusing an output folder: refused unless it is a re-run; --overwrite never deletes
#    outputs of other inputs nor files gristmill did not write, and leaves no stale report


def _files(root: Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_a_second_shard_into_the_same_folder_is_refused_and_never_deletes_the_first(tmp_path, capsys):
    a = write_jsonl(tmp_path / "a.jsonl", TEXTS[:20])
    b = write_jsonl(tmp_path / "b.jsonl", TEXTS[20:])
    out = tmp_path / "O"
    assert main(["-q", "dedup", "minhash", str(a), "-o", str(out)]) == 0
    first = (out / "a.jsonl").read_bytes()
    capsys.readouterr()
    assert main(["-q", "dedup", "minhash", str(b), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--overwrite" in err and str(a.resolve()) in err and len(err.splitlines()) == 1
    assert _files(out) == ["a.jsonl", "minhash_clusters.parquet", "minhash_summary.json"]
    # with --overwrite the folder collects both shards; a's output is never deleted
    assert main(["-q", "dedup", "minhash", str(b), "-o", str(out), "--overwrite"]) == 0
    assert (out / "a.jsonl").read_bytes() == first and (out / "b.jsonl").exists()
    assert json.loads((out / "minhash_summary.json").read_text())["inputs"] == [str(b)]
    # re-running the first shard now is a run over other inputs' outputs: refused again
    assert main(["-q", "dedup", "minhash", str(a), "-o", str(out)]) == 2


def test_overwriting_with_another_command_leaves_no_stale_report(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", TEXTS)
    out = tmp_path / "O"
    assert main(["-q", "dedup", "minhash", str(a), "-o", str(out)]) == 0
    assert main(["-q", "dedup", "exact", str(a), "-o", str(out), "--min-length", "20"]) == 2
    assert (out / "minhash_summary.json").exists()
    assert main(["-q", "dedup", "exact", str(a), "-o", str(out), "--min-length", "20", "--overwrite"]) == 0
    assert _files(out) == ["a.jsonl", "dedup-exact.spans.parquet", "dedup-exact.summary.json"]


def test_a_rerun_replaces_its_own_outputs_only(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, t in enumerate(TEXTS[:6]):
        (docs / f"f{i}.txt").write_text(t)
    out = tmp_path / "O"
    assert main(["-q", "dedup", "minhash", str(docs), "-o", str(out)]) == 0
    assert len(_files(out / "docs")) == 6
    (docs / "f5.txt").write_text(TEXTS[0])  # now a duplicate of f0: dropped by the re-run
    assert main(["-q", "dedup", "minhash", str(docs), "-o", str(out), "--threshold", "0.5"]) == 0
    assert _files(out / "docs") == [f"f{i}.txt" for i in range(5)]


def test_files_gristmill_did_not_write_are_refused_then_kept(tmp_path, capsys):
    a = write_jsonl(tmp_path / "a.jsonl", TEXTS)
    out = tmp_path / "O"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["-q", "dedup", "exact", str(a), "-o", str(out), "--min-length", "20"]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert main(["-q", "dedup", "exact", str(a), "-o", str(out), "--min-length", "20", "--overwrite"]) == 0
    assert main(["-q", "dedup", "exact", str(a), "-o", str(out), "--min-length", "30", "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    # an empty folder, or one holding only hidden files, is fine
    (tmp_path / "E" / ".cache").mkdir(parents=True)
    assert main(["-q", "dedup", "exact", str(a), "-o", str(tmp_path / "E"), "--min-length", "20"]) == 0


def test_tokenize_rerun_with_fewer_shards_leaves_no_stale_shard(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", TEXTS)
    out = tmp_path / "tok"
    assert main(["-q", "tokenize", str(a), "-o", str(out), "--tokenizer", "cl100k_base", "--shard-tokens", "100"]) == 0
    assert len([f for f in _files(out) if f.endswith(".bin")]) > 2
    assert main(["-q", "tokenize", str(a), "-o", str(out), "--tokenizer", "cl100k_base"]) == 0
    assert _files(out) == ["manifest.json", "tokens-00000.bin", "tokens-00000.idx.npy"]


def test_contamination_reports_follow_the_rule_too(tmp_path):
    t = write_jsonl(tmp_path / "t.jsonl", TEXTS)
    e = write_jsonl(tmp_path / "e.jsonl", TEXTS[:3])
    e2 = write_jsonl(tmp_path / "e2.jsonl", TEXTS[3:6])
    out = tmp_path / "C"
    args = ["-q", "contamination", "--train", str(t), "--min-length", "20", "-o", str(out), "--eval"]
    assert main(args + [str(e)]) == 0
    assert main(args + [str(e)]) == 0  # same inputs: a re-run
    assert main(args + [str(e2)]) == 2


def test_library_write_of_another_input_keeps_the_first(tmp_path):
    from gristmill import Corpus

    a = write_jsonl(tmp_path / "a.jsonl", TEXTS[:5])
    b = write_jsonl(tmp_path / "b.jsonl", TEXTS[5:10])
    out = tmp_path / "O"
    Corpus([a]).write(out)
    Corpus([b]).write(out)
    assert _files(out) == ["a.jsonl", "b.jsonl"]


def test_help_of_every_folder_writing_command_explains_overwrite():
    from gristmill.cli import build_parser
    from test_cli import subcommands

    helps = dict((n, p.format_help()) for n, p in subcommands(build_parser()))
    for name in ("demo", "dedup minhash", "dedup exact", "contamination", "tokenize"):
        assert "--overwrite" in helps[name] and "files of other inputs are kept" in " ".join(helps[name].split()), name


# ---------------------------------------------------------------------------------------------
# 4. a corrupted suffix index is reported as corrupted, naming the file; never a wrong
#    number it could detect, never a bare UnicodeDecodeError


def _index(tmp_path):
    from gristmill import SuffixIndex

    texts = [f"def f{i}(x):\n    return x + {i}  # Copyright (C) someone\n" for i in range(300)]
    src = write_jsonl(tmp_path / "code.jsonl", texts)
    path = tmp_path / "code.gsi"
    assert main(["-q", "index", "build", str(src), "-o", str(path)]) == 0
    return path, texts, SuffixIndex.open(path).info


def _corrupt_error(capsys, argv, path):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith(f"gristmill: error: {path}: corrupted suffix index"), err
    assert "codec" not in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err


def test_one_edited_text_byte_is_caught_by_verify(tmp_path, capsys):
    path, texts, info = _index(tmp_path)
    data = bytearray(path.read_bytes())
    at = data.index(b"Copyright", 256 + 1000)
    data[at] = ord("c")  # one occurrence of "Copyright" less in the stored text
    path.write_bytes(bytes(data))
    _corrupt_error(capsys, ["index", "count", str(path), "Copyright", "--verify"], path)
    _corrupt_error(capsys, ["index", "verify", str(path)], path)
    # locate checks each hit it prints against the text
    _corrupt_error(capsys, ["index", "locate", str(path), "Copyright", "--limit", "1000"], path)


def test_flipped_bytes_never_surface_as_a_decode_error(tmp_path, capsys):
    path, texts, info = _index(tmp_path)
    data = bytearray(path.read_bytes())
    # damage the text around the first hits of the pattern, not the pattern itself
    for k in range(0, 40):
        at = 256 + k * len(texts[0].encode()) + 3
        data[at] = 0xC3
    path.write_bytes(bytes(data))
    _corrupt_error(capsys, ["index", "locate", str(path), "return x", "--limit", "5"], path)


def test_damaged_offsets_are_caught_at_open(tmp_path, capsys):
    path, texts, info = _index(tmp_path)
    data = bytearray(path.read_bytes())
    docs_off = (256 + info["text_bytes"] + 7) // 8 * 8  # the section after the text (see src/suffix/index.rs)
    data[docs_off + 8 * 5] ^= 0x10
    path.write_bytes(bytes(data))
    _corrupt_error(capsys, ["index", "count", str(path), "def"], path)


def test_index_of_a_corpus_stores_ids_and_locate_names_them(tmp_path):
    from gristmill import SuffixIndex

    path, texts, info = _index(tmp_path)
    idx = SuffixIndex.open(path, verify=True)
    assert info["has_ids"] and info["version"] == 2
    hits = idx.locate("def f7(", limit=5).to_pylist()
    assert hits == [{"doc": 7, "offset": 0, "id": f"{tmp_path / 'code.jsonl'}:8"}]
    assert idx.doc_id(7) == f"{tmp_path / 'code.jsonl'}:8"
    plain = SuffixIndex.build(["abc", "bcd"], tmp_path / "p.gsi")
    assert plain.locate("bc").column_names == ["doc", "offset"] and plain.doc_id(0) is None


# ---------------------------------------------------------------------------------------------
# 5. dedup minhash verifies by default; meaningless LSH layouts are warned about


def _pair_at_jaccard(tmp_path):
    """Two documents whose word-5-gram sets have Jaccard 36 / 80 = 0.45 (well below 0.8)."""
    shared = [f"s{i}" for i in range(40)]
    a = " ".join(shared + [f"a{i}" for i in range(22)])
    b = " ".join(shared + [f"b{i}" for i in range(22)])
    return write_jsonl(tmp_path / "pair.jsonl", [a, b])


def test_dedup_minhash_verifies_by_default(tmp_path, capsys):
    src = _pair_at_jaccard(tmp_path)
    # 16 bands of 1 row: almost any two documents sharing words become candidates
    layout = ["--num-perm", "16", "--bands", "16", "--rows", "1", "--json"]
    assert main(["-q", "dedup", "minhash", str(src), "-o", str(tmp_path / "d"), *layout]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["verify"] is True and s["removed"] == 0 and s["rejected_pairs"] >= 1
    assert len(_kept(tmp_path / "d", "pair.jsonl")) == 2
    assert main(["-q", "dedup", "minhash", str(src), "-o", str(tmp_path / "n"), "--no-verify", *layout]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["verify"] is False and s["removed"] == 1


def test_meaningless_lsh_layouts_are_warned_about(tmp_path, capsys):
    src = write_jsonl(tmp_path / "a.jsonl", TEXTS)
    assert main(["dedup", "minhash", str(src), "-o", str(tmp_path / "one"), "--num-perm", "1"]) == 0
    err = capsys.readouterr().err
    assert "gristmill: warning: num_perm=1 is too few" in err and "probability" in err
    assert main(["dedup", "minhash", str(src), "-o", str(tmp_path / "unused"), "--bands", "4", "--rows", "4"]) == 0
    err = capsys.readouterr().err
    assert "uses 16 of the 128 permutations" in err
    assert main(["dedup", "minhash", str(src), "-o", str(tmp_path / "fine")]) == 0
    assert "warning" not in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the smaller ones


def test_unterminated_string_message_reads_well(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": "no end\n')
    assert main(["stats", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    # the native reader's (serde_json) wording, made readable; the column is where the line ends
    assert err == f"gristmill: error: {bad}:2: invalid JSON: the line ends inside a string at column 16"


def test_index_locate_prints_document_ids(tmp_path, capsys):
    path, texts, info = _index(tmp_path)
    capsys.readouterr()
    assert main(["index", "locate", str(path), "def f7(", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1 occurrence")
    assert lines[1].startswith(f"{tmp_path / 'code.jsonl'}:8\toffset 0\t")


def test_global_options_are_accepted_after_the_command(tmp_path, capsys, monkeypatch):
    from gristmill.cli import build_parser

    src = write_jsonl(tmp_path / "a.jsonl", ["a b"])
    parser = build_parser()
    for argv in (["-q", "--debug", "--threads", "3", "stats", str(src)],
                 ["stats", str(src), "-q", "--debug", "--threads", "3"],
                 ["-q", "stats", str(src), "--debug", "--threads", "3"]):
        a = parser.parse_args(argv)
        assert (a.quiet, a.debug, a.threads) == (True, True, 3), argv
    a = parser.parse_args(["stats", str(src)])
    assert (a.quiet, a.debug, a.threads) == (False, False, None)
    a = parser.parse_args(["dedup", "minhash", str(src), "-o", str(tmp_path / "o"), "--quiet"])
    assert a.quiet
    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    assert main(["stats", str(src), "--json", "--threads", "1"]) == 0
    import os

    assert os.environ["RAYON_NUM_THREADS"] == "1"
    bad = write_jsonl(tmp_path / "b.jsonl", [1])
    with pytest.raises(Exception):
        main(["stats", str(bad), "--debug"])  # --debug after the command: the traceback is raised


def test_quiet_keeps_the_result_line_on_stdout(tmp_path, capsys):
    src = write_jsonl(tmp_path / "a.jsonl", TEXTS)
    assert main(["-q", "tokenize", str(src), "-o", str(tmp_path / "t"), "--tokenizer", "cl100k_base"]) == 0
    cap = capsys.readouterr()
    assert "40 documents ->" in cap.out and cap.err == ""
    assert main(["-q", "train-bpe", str(src), "--vocab-size", "300", "-o", str(tmp_path / "b.json")]) == 0
    cap = capsys.readouterr()
    assert "trained 44 merges" in cap.out and cap.err == ""


def test_a_glob_matching_nothing_or_an_empty_input_warns(tmp_path, capsys):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.txt").write_text("text")
    assert main(["stats", str(folder), "--glob", "*.py"]) == 0
    err = capsys.readouterr().err
    assert err.strip() == f"gristmill: warning: {folder}: no files match '*.py'; the corpus is empty"
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    assert main(["dedup", "minhash", str(empty), "-o", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: no documents in") == 1, err
    assert main(["stats", str(folder)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_keep_column_that_no_document_has_is_an_error(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "q.jsonl"
    src.write_text("".join(json.dumps({"text": t, "quality": i}) + "\n" for i, t in enumerate(TEXTS[:5])))
    assert main(["-q", "dedup", "minhash", str(src), "-o", str(tmp_path / "o"), "--keep", "column:qualty"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"gristmill: error: {src}: no document has the field 'qualty' (fields: text, quality); "
                   "check --keep column:qualty")
    assert not (tmp_path / "o").exists()
    pq.write_table(pa.table({"text": TEXTS[:3], "quality": [1, 2, 3]}), tmp_path / "q.parquet")
    assert main(["-q", "dedup", "minhash", str(tmp_path / "q.parquet"), "-o", str(tmp_path / "p"),
                 "--keep", "column:qualty"]) == 1
    assert "no column 'qualty'" in capsys.readouterr().err
    # a field present in some documents only is fine (missing values are never preferred)
    with open(src, "a") as f:
        f.write(json.dumps({"text": "one without the field"}) + "\n")
    assert main(["-q", "dedup", "minhash", str(src), "-o", str(tmp_path / "o2"), "--keep", "column:quality"]) == 0
