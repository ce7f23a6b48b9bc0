"""BPE trainer: merges equal HF tokenizers' BpeTrainer on real text, saved files load and
encode identically in HF tokenizers and tiktoken, determinism, bad input."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import List, Sequence, Tuple

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gristmill
from gristmill import GristmillError
from gristmill.train import PATTERNS, TrainedTokenizer, hf_regex, train_bpe

tokenizers = pytest.importorskip("tokenizers")
tiktoken = pytest.importorskip("tiktoken")

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def stdlib_texts(max_bytes: int, start: int = 0) -> List[str]:
    out: List[str] = []
    total = 0
    files = sorted(STDLIB.glob("*.py"))[start:]
    for f in files:
        try:
            t = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out.append(t)
        total += len(t)
        if total >= max_bytes:
            break
    assert out, "no stdlib sources found"
    return out


def man_texts(lang: str, max_docs: int) -> List[str]:
    """Real man pages in several languages (gz roff) when installed; else []."""
    import gzip

    root = Path("/usr/share/man") / lang
    out: List[str] = []
    for f in sorted(root.glob("man*/*.gz"))[:max_docs]:
        try:
            out.append(gzip.decompress(f.read_bytes()).decode("utf-8"))
        except (UnicodeDecodeError, OSError, EOFError):
            continue
    return out


def hf_train(texts: Sequence[str], vocab_size: int, pattern: str, specials: Sequence[str] = (), min_frequency: int = 0):
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(hf_regex(pattern)), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def hf_merges(tok) -> List[Tuple[str, str]]:
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in json.loads(tok.to_str())["model"]["merges"]]


def our_merges(tok: TrainedTokenizer) -> List[Tuple[str, str]]:
    return tok._merge_strings()


# ------------------------------------------------------------------------ equals HF


@pytest.mark.parametrize("pattern", ["o200k", "cl100k", "gpt2"])
def test_merges_equal_hf_on_stdlib(pattern: str) -> None:
    texts = stdlib_texts(1_500_000)
    ours = train_bpe(texts, 2000, pattern=pattern)
    hf = hf_train(texts, 2000, PATTERNS[pattern])
    assert our_merges(ours) == hf_merges(hf)
    assert ours.n_vocab == hf.get_vocab_size() == 2000


def test_merges_equal_hf_multilingual_man_pages() -> None:
    texts = []
    for lang in ("de", "fr", "ru", "ja", "pl"):
        texts += man_texts(lang, 60)
    if len(texts) < 50:
        pytest.skip("localized man pages not installed")
    specials = ["<|endoftext|>", "<pad>"]
    ours = train_bpe(texts, 3000, pattern="o200k", special_tokens=specials, min_frequency=2)
    hf = hf_train(texts, 3000, PATTERNS["o200k"], specials, min_frequency=2)
    assert our_merges(ours) == hf_merges(hf)
    # same token strings; HF numbers special tokens first, we append them
    hv = hf.get_vocab()
    ov = ours._vocab_strings()
    assert set(hv) == set(ov) | set(specials)
    assert ours.special_tokens == {"<|endoftext|>": 2998, "<pad>": 2999}


def test_min_frequency_matches_hf() -> None:
    texts = stdlib_texts(300_000)
    ours = train_bpe(texts, 50_000, pattern="cl100k", min_frequency=40)
    hf = hf_train(texts, 50_000, PATTERNS["cl100k"], min_frequency=40)
    assert our_merges(ours) == hf_merges(hf)
    assert ours.n_vocab < 50_000  # stopped by min_frequency


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="ab cé\n1.", min_size=0, max_size=40), min_size=1, max_size=40), st.integers(0, 60))
def test_merges_equal_hf_random_text(texts: List[str], extra: int) -> None:
    if not any(texts):
        return
    ours = train_bpe(texts, 256 + extra, pattern="gpt2")
    hf = hf_train(texts, 256 + extra, PATTERNS["gpt2"])
    assert our_merges(ours) == hf_merges(hf)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=20))
def test_roundtrip_any_text(texts: List[str]) -> None:
    texts = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]
    if not any(texts):
        return
    tok = train_bpe(texts, 300, pattern="o200k")
    for t in texts:
        assert tok.decode(tok.encode_ordinary(t)) == t


# ------------------------------------------------------------------------ saved files


@pytest.fixture(scope="module")
def trained() -> Tuple[TrainedTokenizer, List[str]]:
    texts = stdlib_texts(1_000_000)
    tok = train_bpe(texts, 3000, pattern="o200k", special_tokens=["<|endoftext|>"])
    held_out = stdlib_texts(300_000, start=110)
    return tok, held_out


def test_tokenizer_json_loads_in_hf_and_encodes_identically(trained, tmp_path: Path) -> None:
    tok, held = trained
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    hf = tokenizers.Tokenizer.from_file(str(path))
    assert hf.get_vocab_size() == tok.n_vocab
    for t in held:
        assert hf.encode(t, add_special_tokens=False).ids == tok.encode_ordinary(t)
    assert hf.encode("a<|endoftext|>b").ids == tok.encode("a<|endoftext|>b", allowed_special="all")
    # and gristmill reads it back to the same tokenizer
    back = gristmill.Tokenizer.from_huggingface(path)
    assert (back.merges() == tok.merges()).all()


def test_tiktoken_file_loads_in_tiktoken_and_encodes_identically(trained, tmp_path: Path) -> None:
    tok, held = trained
    path = tmp_path / "trained.tiktoken"
    tok.save(path)
    ranks = {}
    for line in path.read_bytes().splitlines():
        b, r = line.split()
        ranks[base64.b64decode(b)] = int(r)
    enc = tiktoken.Encoding("trained", pat_str=tok.pat_str, mergeable_ranks=ranks, special_tokens=tok.special_tokens)
    ours = gristmill.Tokenizer.from_tiktoken(path, pat_str=tok.pat_str, special_tokens=tok.special_tokens)
    for t in held:
        want = enc.encode_ordinary(t)
        assert ours.encode_ordinary(t) == want
        # the trained (merge-list) tokenizer agrees with tiktoken's rank rule on real text
        assert tok.encode_ordinary(t) == want


def test_vocab_merges_files(tmp_path: Path) -> None:
    texts = stdlib_texts(400_000)
    tok = train_bpe(texts, 1000, pattern="gpt2")
    tok.save(tmp_path)
    assert (tmp_path / "merges.txt").read_text().startswith("#version: 0.2\n")
    hf = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt")))
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    back = gristmill.Tokenizer.from_huggingface(tmp_path)
    for t in stdlib_texts(100_000, start=160):
        ids = tok.encode_ordinary(t)
        assert hf.encode(t).ids == ids
        assert back.encode_ordinary(t) == ids


# ------------------------------------------------------------------------ inputs, determinism


def test_thread_count_does_not_change_result() -> None:
    texts = stdlib_texts(800_000)
    a = train_bpe(texts, 1500, num_threads=1)
    b = train_bpe(texts, 1500, num_threads=2)
    c = train_bpe(texts, 1500, num_threads=3)
    assert (a.merges() == b.merges()).all() and (a.merges() == c.merges()).all()


def test_input_forms_agree(tmp_path: Path) -> None:
    texts = stdlib_texts(300_000)
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, t in enumerate(texts):
        (folder / f"{i:04d}.txt").write_text(t, encoding="utf-8")
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    ref = train_bpe(texts, 800).merges()
    for corpus in (
        iter(texts),
        pa.array(texts),
        pa.chunked_array([pa.array(texts[:5]), pa.array(texts[5:])]),
        folder,
        str(jsonl),
        gristmill.Corpus([jsonl]),
    ):
        assert (train_bpe(corpus, 800).merges() == ref).all(), type(corpus)


def test_max_word_count_limits_table() -> None:
    texts = stdlib_texts(300_000)
    full = train_bpe(texts, 600)
    capped = train_bpe(texts, 600, max_word_count=50)
    # with 50 word types there are fewer possible merges, and results differ
    assert capped.n_vocab <= full.n_vocab
    assert not (len(capped.merges()) == len(full.merges()) and (capped.merges() == full.merges()).all())


# ------------------------------------------------------------------------ bad input


def test_vocab_too_small() -> None:
    with pytest.raises(GristmillError, match="vocab_size 255 is too small.*at least 256"):
        train_bpe(["abc"], 255)
    with pytest.raises(GristmillError, match="2 special tokens.*at least 258"):
        train_bpe(["abc"], 257, special_tokens=["<a>", "<b>"])


def test_empty_corpus() -> None:
    with pytest.raises(GristmillError, match="empty"):
        train_bpe([], 1000)
    with pytest.raises(GristmillError, match="empty"):
        train_bpe(["", ""], 1000)


def test_invalid_regex_quotes_pattern_and_position() -> None:
    with pytest.raises(GristmillError) as e:
        train_bpe(["abc"], 300, pattern=r"\p{L}+|(foo")
    msg = str(e.value)
    assert r"\p{L}+|(foo" in msg and "position" in msg


def test_bad_items() -> None:
    with pytest.raises(TypeError, match=r"corpus\[1\]"):
        train_bpe(["ok", 3], 300)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        train_bpe(["x"], 300, special_tokens="<s>")
    with pytest.raises(GristmillError, match="twice"):
        train_bpe(["abc abc"], 300, special_tokens=["<s>", "<s>"])


# ------------------------------------------------------------------------ CLI


def test_cli_train_bpe(tmp_path: Path) -> None:
    texts = stdlib_texts(200_000)
    src = tmp_path / "src"
    src.mkdir()
    for i, t in enumerate(texts):
        (src / f"m{i}.py").write_text(t, encoding="utf-8")
    out = tmp_path / "out" / "tokenizer.json"
    r = subprocess.run(
        [sys.executable, "-m", "gristmill", "train-bpe", str(src), "--vocab-size", "700", "-o", str(out),
         "--special-token", "<|endoftext|>", "--pattern", "cl100k"],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    hf = tokenizers.Tokenizer.from_file(str(out))
    assert hf.get_vocab_size() == 700
    ref = train_bpe(texts, 700, pattern="cl100k", special_tokens=["<|endoftext|>"])
    assert hf_merges(hf) == our_merges(ref)
    r = subprocess.run([sys.executable, "-m", "gristmill", "train-bpe", str(src), "--vocab-size", "10", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "too small" in r.stderr


def test_progress_bars(capsys) -> None:
    texts = stdlib_texts(200_000)
    quiet = train_bpe(texts, 1200)
    loud = train_bpe(texts, 1200, progress=True)
    assert (quiet.merges() == loud.merges()).all()
    err = capsys.readouterr().err
    assert "counting words" in err and "merges" in err


def test_native_progress_callback_error_stops_training() -> None:
    from gristmill import _native
    from gristmill._arrow import string_buffers

    tr = _native._BpeTrainer(PATTERNS["o200k"])
    tr.count(string_buffers(stdlib_texts(200_000)))
    seen = []

    def cb(done: int, wanted: int) -> None:
        seen.append((done, wanted))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tr.train(3000, 0, [], None, cb)
    assert seen == [(256, 3000 - 256)]  # stopped at the first report


@pytest.mark.parametrize("pattern", ["cl100k", "gpt2", r"\w+|[^\w\s]+|\s+"])
def test_saved_json_other_patterns(pattern: str, tmp_path: Path) -> None:
    texts = stdlib_texts(300_000) + ["12345678901234 0x1f2e3d4c 3.14159265358979 ١٢٣٤٥"] * 20
    tok = train_bpe(texts, 1200, pattern=pattern)
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    hf = tokenizers.Tokenizer.from_file(str(path))
    for t in stdlib_texts(100_000, start=150) + ["phone 0123456789012, pi 3.1415926535 ١٢٣٤٥٦"]:
        assert hf.encode(t).ids == tok.encode_ordinary(t)
