"""Mixture inference (gristmill.mixture): the counting against a slow reference replay written
here, recovery of known mixtures in the paper's controlled protocol on real text in several
languages, thread-count determinism, and one clear error per kind of bad input."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gristmill
from gristmill.mixture import MixtureResult, experiment, infer, sample_bytes
from gristmill.cli import main

MAN = Path("/usr/share/man")
LANGS5 = ["en", "de", "fr", "ja", "ru"]
SCALE = 1e6


def man_texts(lang: str, limit_bytes: int = 12_000_000) -> List[str]:
    """Real man pages of one language (Debian manpages-* packages; .ci/run installs them)."""
    base = MAN if lang == "en" else MAN / lang
    out: List[str] = []
    used = 0
    for f in sorted(base.glob("man[1-9]/*.gz")):
        if f.is_symlink():
            continue
        try:
            text = gzip.decompress(f.read_bytes()).decode("utf-8")
        except (UnicodeDecodeError, OSError, EOFError):
            continue
        if text.startswith(".so ") and text.count("\n") <= 2:
            continue
        out.append(text)
        used += len(text.encode("utf-8"))
        if used >= limit_bytes:
            break
    if used < 3_000_000:
        pytest.fail(f"only {used:,} bytes of {lang} man pages under {base}: install the Debian manpages packages (.ci/run does)")
    return out


@pytest.fixture(scope="module")
def man5() -> Dict[str, List[str]]:
    return {lang: man_texts(lang) for lang in LANGS5}


# ---------------------------------------------------------------------------------------------
# counting against a slow reference


def reference_merge_counts(tok: gristmill.Tokenizer, texts: Sequence[str], T: int) -> np.ndarray:
    """Count of merge t's pair just before merge t, per million pairs of the sample, by replaying
    the merges on every pre-tokenized word from scratch (left to right, non-overlapping)."""
    words: Dict[bytes, int] = {}
    for t in texts:
        for piece in tok.pretokenize(t):
            b = piece.encode("utf-8")
            words[b] = words.get(b, 0) + 1
    byte_id = [tok._t.token_id(bytes([i])) for i in range(256)]
    seqs = [([byte_id[c] for c in w], n) for w, n in words.items()]
    total = sum(n * max(len(s) - 1, 0) for s, n in seqs)
    out = np.zeros(T)
    for t, (a, b, c) in enumerate(tok.merges()[:T].tolist()):
        count = 0
        new = []
        for s, n in seqs:
            count += n * sum(1 for x, y in zip(s, s[1:]) if x == a and y == b)
            r, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    r.append(c)
                    i += 2
                else:
                    r.append(s[i])
                    i += 1
            new.append((r, n))
        seqs = new
        out[t] = count * (SCALE / total) if total else 0.0
    return out


def native_merge_counts(tok: gristmill.Tokenizer, cats: Sequence[Sequence[str]], T: int) -> np.ndarray:
    from gristmill import _native
    from gristmill._arrow import as_string_array, string_buffers

    counter = _native._MixtureCounter(tok._t, len(cats), T, None)
    for i, texts in enumerate(cats):
        counter.count(i, string_buffers(as_string_array(list(texts))))
    return counter.build().merge_counts()


texts_st = st.lists(
    st.lists(st.sampled_from(list("aab  bcé\n1x'") + ["ab", "ba", "日本"]), min_size=1, max_size=40).map("".join),
    min_size=1, max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(a=texts_st, b=texts_st)
def test_counting_matches_a_slow_replay_byte_level(a, b):
    train = [" ".join(a + b) * 3, "abab baba aab ab ab 日本日本 éé"]
    tok = gristmill.train_bpe(train, vocab_size=300, pattern="o200k")
    T = len(tok.merges())
    got = native_merge_counts(tok, [a, b], T)
    for i, texts in enumerate([a, b]):
        if sum(len(t) for t in texts) == 0:
            continue
        np.testing.assert_array_equal(got[:, i], reference_merge_counts(tok, texts, T))


@settings(max_examples=15, deadline=None)
@given(a=texts_st)
def test_counting_matches_a_slow_replay_tiktoken(a):
    tok = gristmill.Tokenizer.from_tiktoken("cl100k_base")
    T = 400
    got = native_merge_counts(tok, [a, ["the quick brown fox"]], T)
    np.testing.assert_array_equal(got[:, 0], reference_merge_counts(tok, a, T))


def test_counting_on_real_text_matches_the_reference(man5):
    tok = gristmill.Tokenizer.from_tiktoken("o200k_base")
    cats = [man5["de"][:8], man5["ja"][:8]]
    got = native_merge_counts(tok, cats, 150)
    for i, texts in enumerate(cats):
        np.testing.assert_array_equal(got[:, i], reference_merge_counts(tok, texts, 150))


# ---------------------------------------------------------------------------------------------
# recovering known mixtures


def test_sanity_training_text_recovers_the_mixture(man5):
    # Counting on exactly each category's share of the tokenizer's training text.
    r = experiment(man5, trials=10, train_bytes=3_000_000, infer_on="train", vocab_size=4000, num_merges=3000, seed=1)
    s = r.summary()
    assert s["mixture_lp"]["mean"] <= -5.5, s
    assert s["mixture_lp"]["mean"] < s["token_frequency"]["mean"] - 2 < s["uniform"]["mean"], s


def test_held_out_text_recovers_the_mixture(man5):
    # The small-data protocol: 4 MB mixture, vocab 8000, 2 MB of other text per language.
    r = experiment(man5, trials=10, train_bytes=4_000_000, infer_bytes=2_000_000, vocab_size=8000,
                   num_merges=3000, seed=0)
    s = r.summary()
    assert s["mixture_lp"]["mean"] <= -3.5, s
    assert s["mixture_lp"]["mean"] < s["token_frequency"]["mean"] - 1, s
    assert all(abs(sum(e) - 1) < 1e-9 for e in r.estimates)


def test_result_api_and_thread_count_determinism(man5):
    rng = np.random.default_rng(5)
    en, de = ([docs[i] for i in rng.permutation(len(docs))] for docs in (man5["en"], man5["de"]))
    train = {"en": en[:400], "de": de[:40]}
    tok = gristmill.train_bpe(train["en"] + train["de"], vocab_size=1500, pattern="o200k")
    biggest = max(train, key=lambda k: sum(len(t.encode()) for t in train[k]))
    cats = {"en": en[400:], "de": de[40:], "fr": man5["fr"]}
    one = infer(tok, cats, bytes_per_category=400_000, num_threads=1)
    two = infer(tok, cats, bytes_per_category=400_000, num_threads=2)
    assert one.proportions == two.proportions and one.pair_proportions == two.pair_proportions
    assert isinstance(one, MixtureResult)
    assert abs(sum(one.proportions.values()) - 1) < 1e-9 and abs(sum(one.pair_proportions.values()) - 1) < 1e-9
    assert max(one.proportions, key=one.proportions.get) == biggest
    assert one.proportions["fr"] < 0.15, one.proportions
    d = one.diagnostics
    assert d["converged"] and d["rounds"] >= 1 and d["num_merges"] == 1500 - 256
    assert set(d["seconds"]) >= {"count", "replay", "solve", "load"}
    assert d["categories"]["de"]["bytes"] <= 400_000
    table = one.to_table()
    assert table.column("category").to_pylist()[0] == "en"
    assert json.loads(one.to_json())["proportions"] == dict(one.ranked())
    assert "en" in str(one)


def test_stopped_early_the_gap_brackets_the_optimum(man5, monkeypatch):
    """Rounds cut short: the reported lower and upper bounds bracket the full LP's optimum."""
    import gristmill.mixture as mx

    tok = gristmill.train_bpe(man5["en"][:200] + man5["ru"][:100], vocab_size=1200, pattern="o200k")
    cats = {"en": man5["en"][200:500], "ru": man5["ru"][100:], "fr": man5["fr"]}
    full = infer(tok, cats, bytes_per_category=300_000).diagnostics
    assert full["converged"] and full["optimality_gap"] == 0.0
    monkeypatch.setattr(mx, "_MAX_ROUNDS", 2)
    cut = infer(tok, cats, bytes_per_category=300_000).diagnostics
    assert not cut["converged"] and cut["rounds"] == 2
    lo, hi, best = cut["objective"], cut["objective_upper_bound"], full["objective"]
    assert lo <= best * (1 + 1e-6) and best <= hi * (1 + 1e-6), (lo, best, hi)
    assert 0 < cut["optimality_gap"] <= 1


def test_bootstrap_interval_contains_the_estimate(man5):
    tok = gristmill.train_bpe(man5["en"][:150] + man5["ja"][:150], vocab_size=1000, pattern="o200k")
    r = infer(tok, {"en": man5["en"][150:300], "ja": man5["ja"][150:300]}, bytes_per_category=300_000, bootstrap=5)
    assert r.intervals is not None
    for n, (lo, hi) in r.intervals.items():
        assert 0 <= lo <= hi <= 1
    assert r.to_table().num_columns == 6


def test_sampling_is_utf8_safe_and_seeded():
    import pyarrow as pa

    texts = pa.array(["日本語のテキスト" * 10, "ascii text " * 10, "ééé" * 30])
    a = sample_bytes(texts, 100, np.random.default_rng(3))
    b = sample_bytes(texts, 100, np.random.default_rng(3))
    assert a.to_pylist() == b.to_pylist()
    assert sum(len(t.encode()) for t in a.to_pylist()) <= 100
    for t in a.to_pylist():
        t.encode("utf-8")


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.fixture(scope="module")
def small_tok():
    return gristmill.train_bpe(["hello world the cat sat on the mat " * 50], vocab_size=300, pattern="gpt2")


CATS = {"a": ["hello world " * 200], "b": ["the cat sat " * 200]}


def test_duplicate_and_too_few_categories(small_tok):
    with pytest.raises(ValueError, match="given twice"):
        infer(small_tok, [("a", CATS["a"]), ("a", CATS["b"])])
    with pytest.raises(ValueError, match="at least two"):
        infer(small_tok, {"a": CATS["a"]})


def test_empty_and_small_categories(small_tok):
    with pytest.raises(ValueError, match="'b' has 0 bytes"):
        infer(small_tok, {"a": CATS["a"], "b": []})
    with pytest.raises(ValueError, match="'b' has 5 bytes.*at least 1,000"):
        infer(small_tok, {"a": CATS["a"], "b": ["short"]})


def test_too_many_merges(small_tok):
    with pytest.raises(gristmill.GristmillError, match="larger than the tokenizer's merge list"):
        infer(small_tok, CATS, num_merges=10**6)


def test_tokenizers_that_cannot_be_reproduced(small_tok, tmp_path):
    small_tok.save(tmp_path / "tokenizer.json")
    j = json.loads((tmp_path / "tokenizer.json").read_text())
    lower = dict(j, normalizer={"type": "Lowercase"})
    (tmp_path / "lower.json").write_text(json.dumps(lower))
    with pytest.raises(ValueError, match="normalizer Lowercase is not supported"):
        infer(tmp_path / "lower.json", CATS)
    bad = json.loads(json.dumps(j))
    bad["model"]["merges"][5] = ["zz", "qq"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(gristmill.GristmillError, match=r"bad\.json.*merge 5: left token \"zz\" is not in the vocabulary"):
        infer(tmp_path / "bad.json", CATS)
    (tmp_path / "mine.tiktoken").write_text("")
    with pytest.raises(ValueError, match="carries no pre-tokenizer pattern"):
        infer(tmp_path / "mine.tiktoken", CATS)
    with pytest.raises(ValueError, match="neither a bundled encoding"):
        infer("no_such_encoding", CATS)


def test_tiktoken_rank_file_named_after_an_encoding():
    path = Path(__file__).resolve().parents[2] / "shared" / "vocab" / "cl100k_base.tiktoken.gz"
    if not path.exists():
        pytest.skip("../shared/vocab not present")
    r = infer(path, {"en": ["Hello there, how are you today?"] * 60, "py": ["def f(x):\n    return x + 1\n"] * 60},
              num_merges=2000)
    assert r.diagnostics["tokenizer"].startswith("cl100k_base")


# ---------------------------------------------------------------------------------------------
# the command


def test_cli_infer_writes_json_and_prints_a_table(small_tok, tmp_path, capsys):
    small_tok.save(tmp_path / "tok.json")
    for name, texts in CATS.items():
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts * 3))
    out = tmp_path / "mix.json"
    rc = main(["-q", "mixture", "infer", str(tmp_path / "tok.json"), "--category", f"a={tmp_path / 'a.jsonl'}",
               "--category", f"b={tmp_path / 'b.jsonl'}", "-o", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "share" in text and "optimal" in text
    d = json.loads(out.read_text())
    assert set(d["proportions"]) == {"a", "b"} and abs(sum(d["proportions"].values()) - 1) < 1e-9
    # The output may not be an input.
    rc = main(["-q", "mixture", "infer", str(tmp_path / "tok.json"), "--category", f"a={tmp_path / 'a.jsonl'}",
               "--category", f"b={tmp_path / 'b.jsonl'}", "-o", str(tmp_path / "a.jsonl")])
    assert rc == 2 and "writing there would replace it" in capsys.readouterr().err
    assert (tmp_path / "a.jsonl").read_text().startswith('{"text"')


def test_cli_usage_errors_exit_2(capsys):
    for argv in (["mixture", "infer", "o200k_base", "--category", "a=x.jsonl"],
                 ["mixture", "infer", "o200k_base", "--category", "a=x", "--category", "a=y"],
                 ["mixture", "infer", "o200k_base", "--category", "nopath"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
