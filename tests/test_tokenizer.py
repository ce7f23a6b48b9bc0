"""Tokenizer tests: bit-identical to tiktoken on real text and hypothesis text, tiktoken's
special-token rules, batches at any thread count, decoding, worst-case inputs, bad input."""

from __future__ import annotations

import gzip
import random
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The differential tests need the peers: `pip install tiktoken tokenizers`.
pytest.importorskip("tiktoken")

import gristmill  # noqa: E402
from gristmill import Tokenizer  # noqa: E402
from gristmill.tokenizer import ENCODINGS  # noqa: E402
from tokenizer_ref import man_texts, ranks, reference, stdlib_texts  # noqa: E402

NAMES = ["r50k_base", "p50k_base", "cl100k_base", "o200k_base"]


@pytest.fixture(scope="module", params=NAMES)
def pair(request):
    return Tokenizer.from_tiktoken(request.param), reference(request.param)


def _tok(name: str) -> Tokenizer:
    if name not in _cache:
        _cache[name] = Tokenizer.from_tiktoken(name)
    return _cache[name]


_cache: dict = {}


# ------------------------------------------------------------------ real corpora
def test_stdlib_identical_to_tiktoken(pair):
    ours, ref = pair
    texts = stdlib_texts(3)
    assert len(texts) > 100
    tokens, offsets = ours.encode_batch_flat(texts, ordinary=True)
    for i, t in enumerate(texts):
        assert tokens[offsets[i] : offsets[i + 1]].tolist() == ref.encode_ordinary(t), f"stdlib document {i}"


def test_man_pages_every_language_identical_to_tiktoken():
    langs = man_texts(25)
    if len(langs) < 2:
        pytest.skip("man pages not installed")
    for name in ["r50k_base", "cl100k_base", "o200k_base"]:
        ours, ref = _tok(name), reference(name)
        for lang, docs in langs.items():
            tokens, offsets = ours.encode_batch_flat(docs, ordinary=True)
            for i, d in enumerate(docs):
                got = tokens[offsets[i] : offsets[i + 1]].tolist()
                assert got == ref.encode_ordinary(d), f"{name} man page {i} ({lang})"


def test_linux_source_sample_identical_to_tiktoken():
    import os

    root = os.environ.get("GRISTMILL_BENCH_DATA", Path(__file__).resolve().parent.parent / "benches" / ".cache")
    cache = Path(root) / "linux.jsonl"
    if not cache.exists():
        pytest.skip("benches/.cache/linux.jsonl not built (python benches/data.py)")
    import json

    docs = []
    with open(cache, encoding="utf-8") as f:
        for k, line in enumerate(f):
            if k % 97 == 0:
                docs.append(json.loads(line)["text"])
            if len(docs) >= 150:
                break
    for name in ["cl100k_base", "o200k_base"]:
        ours, ref = _tok(name), reference(name)
        tokens, offsets = ours.encode_batch_flat(docs, ordinary=True)
        for i, d in enumerate(docs):
            assert tokens[offsets[i] : offsets[i + 1]].tolist() == ref.encode_ordinary(d), f"{name} linux doc {i}"


def test_hand_written_pretokenizer_matches_regex_on_real_text():
    # Wrapping the pattern in a group makes it textually different, so the regex engine runs.
    texts = stdlib_texts(25) + [d for docs in man_texts(5).values() for d in docs]
    for name in ["r50k_base", "cl100k_base", "o200k_base"]:
        fast = _tok(name)
        slow = Tokenizer.from_ranks(ranks(name), "(?:" + ENCODINGS[name][0] + ")")
        for i, t in enumerate(texts):
            assert fast.pretokenize(t) == slow.pretokenize(t), f"{name} text {i}"


# ------------------------------------------------------------------ hypothesis
ADVERSARIAL = st.sampled_from(
    list("aAzZsStTlLvVeErRdDmM'' \t\n\r\x0b\x0c 0123456789.,;:/!?-_()[]{}\"#@")
    + ["'s", "'S", "'ll", "'LL", "'ve", "'re", "'d", "'m", "'t", "ſ", "\u00a0", "\u2028", "\u3000", "\u200b"]
    + ["\u0301", "\u0308", "e\u0301", "\u0915\u093f", "\u0e01\u0e34", "ǅ", "ʰ", "ß", "İ", "Ⅻ", "½", "٣", "߀"]
    + ["😀", "👍🏽", "👨\u200d👩\u200d👧", "🇩🇪", "日本", "語", "한국어", "中文字", "ｶﾞ", "\ufeff", "\x00", "\x7f"]
    + ["\ud800", "\udfff", "\ud83d"]  # lone surrogates (tiktoken replaces them)
)
TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(ADVERSARIAL, max_size=40).map("".join),
    st.lists(st.sampled_from([" ", "  ", "\n", "\r\n", "\t", "1", "22", "333", "x", "X."]), max_size=50).map("".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
def test_hypothesis_identical_to_tiktoken(text):
    for name in ["r50k_base", "cl100k_base", "o200k_base"]:
        ours, ref = _tok(name), reference(name)
        assert ours.encode_ordinary(text) == ref.encode_ordinary(text), name
        assert ours.encode(text, disallowed_special=()) == ref.encode(text, disallowed_special=()), name
        assert ours.count(text) == len(ref.encode_ordinary(text))


# Long runs of 3- and 4-byte characters: the tokenizer merges such pieces character by
# character and checks each junction, so the runs mix frequent kana and kanji (many
# multi-character tokens) with rare code points, emoji and a little ASCII.
WIDE = st.lists(
    st.one_of(
        st.sampled_from(list("のにはをたがでてとしれさあいうかくこすせそないるよりわん日本語中文字学生時間人大年出東京一二三")),
        st.sampled_from(list("アイウエオカキクケコサシスセソタチツテトナニヌネノ、。「」（）：・ー")),
        st.characters(min_codepoint=0x3000, max_codepoint=0x9FFF),
        st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),
        st.sampled_from(["😀", "👍🏽", "𠮷", "𩸽", "a", "1", " ", "\n"]),
    ),
    min_size=1,
    max_size=120,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(WIDE, min_size=1, max_size=4))
def test_hypothesis_wide_text_identical_to_tiktoken(texts):
    for name in ["cl100k_base", "o200k_base"]:
        ours, ref = _tok(name), reference(name)
        for text in texts:  # one thread's memos carry over from text to text
            assert ours.encode_ordinary(text) == ref.encode_ordinary(text), name


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_decode_roundtrip(text):
    for name in ["cl100k_base", "o200k_base"]:
        enc = _tok(name)
        ids = enc.encode_ordinary(text)
        fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        assert enc.decode(ids) == fixed
        assert enc.decode_bytes(ids) == fixed.encode("utf-8")
        offs = enc.token_byte_offsets(ids)
        b = fixed.encode("utf-8")
        assert len(offs) == len(ids)
        for k, (o, t) in enumerate(zip(offs.tolist(), ids)):
            assert b[o : o + len(enc.token_bytes(t))] == enc.token_bytes(t), k


def test_lone_surrogates_like_tiktoken():
    ref = reference("cl100k_base")
    enc = _tok("cl100k_base")
    for s in ["\ud800", "a\udfffb", "\ud83d\ude00", "x\ud83d"]:
        assert enc.encode(s) == ref.encode(s)
        assert enc.encode_ordinary(s) == ref.encode_ordinary(s)
    toks, offs = enc.encode_batch_flat(["ok", "a\ud800b"])
    assert toks[offs[1] : offs[2]].tolist() == ref.encode("a\ud800b")


# ------------------------------------------------------------------ special tokens
def test_special_tokens_tiktoken_semantics():
    for name in ["cl100k_base", "o200k_base", "r50k_base"]:
        enc, ref = _tok(name), reference(name)
        text = "hi <|endoftext|> there <|endofprompt|> <|fim_prefix|>x"
        assert enc.encode(text, allowed_special="all") == ref.encode(text, allowed_special="all")
        assert enc.encode(text, disallowed_special=()) == ref.encode(text, disallowed_special=())
        allowed = {"<|endoftext|>"}
        got = enc.encode(text, allowed_special=allowed, disallowed_special=())
        assert got == ref.encode(text, allowed_special=allowed, disallowed_special=())
        assert enc.encode_ordinary(text) == ref.encode_ordinary(text)
        assert enc.special_tokens == ref._special_tokens
        assert enc.n_vocab == ref.n_vocab


def test_disallowed_special_error_names_token():
    enc = _tok("cl100k_base")
    with pytest.raises(ValueError, match=r"disallowed special token '<\|endofprompt\|>'"):
        enc.encode("abc <|endofprompt|>", allowed_special={"<|endoftext|>"})
    with pytest.raises(ValueError, match="<\\|fim_middle\\|>"):
        enc.encode("x<|fim_middle|>", disallowed_special={"<|fim_middle|>"})
    # allowed overrides "all" disallowed
    assert enc.encode("<|endofprompt|>", allowed_special={"<|endofprompt|>"}) == [100276]
    with pytest.raises(ValueError, match=r"document 1.*'<\|endoftext\|>'"):
        enc.encode_batch(["fine", "bad <|endoftext|>"])
    with pytest.raises(TypeError):
        enc.encode("x", allowed_special="some")  # type: ignore[arg-type]


# ------------------------------------------------------------------ batches
def test_batch_matches_single_and_thread_count_invariant():
    enc = _tok("o200k_base")
    texts = stdlib_texts(7)[:300] + ["", "<|endoftext|>", "x" * 5000]
    t1, o1 = enc.encode_batch_flat(texts, num_threads=1, disallowed_special=())
    t2, o2 = enc.encode_batch_flat(texts, num_threads=2, disallowed_special=())
    t0, o0 = enc.encode_batch_flat(texts, disallowed_special=())
    assert t1.dtype == np.uint32 and o1.dtype == np.int64
    assert np.array_equal(t1, t2) and np.array_equal(o1, o2)
    assert np.array_equal(t1, t0) and np.array_equal(o1, o0)
    assert len(o1) == len(texts) + 1
    for i in range(0, len(texts), 17):
        assert t1[o1[i] : o1[i + 1]].tolist() == enc.encode(texts[i], disallowed_special=())
    # pyarrow input (read in place, including a sliced large_string array) and Arrow output
    arr = pa.array(texts, type=pa.large_string()).slice(5, 50)
    lst = enc.encode_arrow(arr, disallowed_special=())
    assert isinstance(lst, pa.LargeListArray) and len(lst) == 50
    assert lst[3].values.to_pylist() == enc.encode(texts[8], disallowed_special=())
    assert enc.decode_batch(lst) == texts[5:55]
    assert enc.decode_batch_flat(t1, o1) == texts
    assert enc.decode_batch([enc.encode_ordinary("ab"), [15339]]) == ["ab", enc.decode([15339])]
    spec = enc.encode_batch(["<|endoftext|>"], allowed_special="all")
    assert spec[0] == [199999]


def test_batch_rejects_non_strings_naming_index():
    enc = _tok("cl100k_base")
    with pytest.raises(TypeError, match=r"texts\[2\]"):
        enc.encode_batch(["a", "b", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        enc.encode_batch(pa.array(["a", None]))
    with pytest.raises(ValueError):
        enc.encode_batch(["a"], num_threads=0)


# ------------------------------------------------------------------ decoding
def test_decode_errors():
    enc = _tok("cl100k_base")
    with pytest.raises(ValueError, match="token id 999999 .*position 1"):
        enc.decode([15339, 999999])
    with pytest.raises(ValueError, match="token id -1"):
        enc.decode_bytes([-1])
    with pytest.raises(KeyError, match="123456789"):
        enc.token_bytes(123456789)
    with pytest.raises(ValueError, match="document 1"):
        enc.decode_batch([[1], [999999]])
    # a token that is half of a UTF-8 character
    ids = enc.encode("é" * 3 + "日")
    partial = [t for t in ids if not enc.token_bytes(t).decode("utf-8", "ignore")]
    if partial:
        assert "\ufffd" in enc.decode(partial[:1])
        with pytest.raises(UnicodeDecodeError):
            enc.decode(partial[:1], errors="strict")
    assert enc.decode([]) == ""
    assert enc.decode(np.array([15339, 1917], dtype=np.uint64)) == "hello world"
    assert enc.decode([100257]) == "<|endoftext|>"


# ------------------------------------------------------------------ worst case
@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base", "r50k_base"])
def test_linear_worst_cases_complete(name):
    enc = _tok(name)
    rng = random.Random(0)
    cps = [c for c in (rng.randrange(0x20, 0x30000) for _ in range(300_000)) if not 0xD800 <= c < 0xE000]
    cases = ["a" * 1_000_000, " " * 1_000_000, "\u4e00" * 350_000, "".join(map(chr, cps)), "1" * 1_000_000]
    for s in cases:
        ids = enc.encode_ordinary(s)
        assert enc.decode_bytes(ids) == s.encode("utf-8")
        assert enc.count(s) == len(ids)


def test_long_piece_matches_tiktoken():
    ref = reference("cl100k_base")
    enc = _tok("cl100k_base")
    rng = random.Random(1)
    for n in [129, 200, 1000, 3000]:  # above the flat-scan limit: the heap path
        s = "".join(rng.choice("abcdeéxyzqt") for _ in range(n))
        assert enc.encode_ordinary(s) == ref.encode_ordinary(s)
        s = "".join(rng.choice(" \t") for _ in range(n)) + "x"
        assert enc.encode_ordinary(s) == ref.encode_ordinary(s)


# ------------------------------------------------------------------ files and bad input
def test_load_rank_files_from_paths(tmp_path):
    raw = gzip.decompress(Path(gristmill.tokenizer.__file__).with_name("data").joinpath("r50k_base.tiktoken.gz").read_bytes())
    plain = tmp_path / "mine.tiktoken"
    plain.write_bytes(raw)
    gz = tmp_path / "mine.tiktoken.gz"
    gz.write_bytes(gzip.compress(raw))
    pat = ENCODINGS["r50k_base"][0]
    a = Tokenizer.from_tiktoken(plain, pat_str=pat, special_tokens={"<|endoftext|>": 50256})
    b = Tokenizer.from_tiktoken(str(gz), pat_str=pat)
    ref = reference("r50k_base")
    text = "Don't stop me now, I'm having such a good time 1234567!"
    assert a.encode(text) == b.encode(text) == ref.encode(text)
    with pytest.raises(ValueError, match="pat_str"):
        Tokenizer.from_tiktoken(plain)
    with pytest.raises(ValueError, match="neither a known encoding"):
        Tokenizer.from_tiktoken("no_such_encoding")


def test_bad_vocab_file_names_line(tmp_path):
    p = tmp_path / "bad.tiktoken"
    lines = [f"{__import__('base64').b64encode(bytes([b])).decode()} {b}" for b in range(256)]
    lines.insert(10, "!!notbase64 10")
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bad.tiktoken line 11"):
        Tokenizer.from_tiktoken(p, pat_str=r"\S+|\s+")
    p.write_text("\n".join(lines[:5]) + "\n")
    with pytest.raises(ValueError, match="single byte"):
        Tokenizer.from_tiktoken(p, pat_str=r"\S+|\s+")
    with pytest.raises(ValueError, match="pattern"):
        Tokenizer.from_ranks({bytes([b]): b for b in range(256)}, "(unclosed")


def test_custom_pattern_and_merges():
    r = ranks("r50k_base")
    enc = Tokenizer.from_ranks(r, r"\w+|\s+|[^\w\s]+", {"<eos>": 60000})
    ref = __import__("tiktoken").Encoding("x", pat_str=r"\w+|\s+|[^\w\s]+", mergeable_ranks=r, special_tokens={"<eos>": 60000})
    for t in stdlib_texts(40)[:20]:
        assert enc.encode(t, allowed_special="all") == ref.encode(t, allowed_special="all")
    m = _tok("r50k_base").merges()
    assert m.shape[1] == 3 and len(m) > 49_000
    tb = _tok("r50k_base").token_bytes
    assert all(tb(a) + tb(b) == tb(c) for a, b, c in m[:: 1000].tolist())


# ------------------------------------------------------------------ Hugging Face byte-level BPE
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _train_hf(tmp_path, split_regex):
    """Train (once per configuration) a small byte-level BPE on real text with HF tokenizers;
    copy its tokenizer.json into ``tmp_path``."""
    import shutil

    hf, src = _train_hf_cached(split_regex)
    path = tmp_path / "tokenizer.json"
    shutil.copy(src, path)
    return hf, path


_HF_CACHE: dict = {}


def _train_hf_cached(split_regex):
    if split_regex in _HF_CACHE:
        return _HF_CACHE[split_regex]
    import tempfile

    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    hf = tokenizers.Tokenizer(models.BPE())
    if split_regex:
        hf.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(tokenizers.Regex(LLAMA3_PATTERN), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=3000,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>", "<|pad|>"],
        show_progress=False,
    )
    train = stdlib_texts(9)[:250] + [d for docs in man_texts(4).values() for d in docs]
    hf.train_from_iterator(train, trainer)
    path = Path(tempfile.mkdtemp(prefix="gristmill-hf-")) / "tokenizer.json"
    hf.save(str(path))
    _HF_CACHE[split_regex] = (hf, path)
    return hf, path


def _hf_eval_texts():
    texts = stdlib_texts(11)[::3][:80] + [d for docs in man_texts(6).values() for d in docs[3:6]]
    return texts + ["Hello <|endoftext|> world<|pad|>", "日本語 テキスト 123456 don't WE'LL", "   \n\n\t x  "]


@pytest.mark.parametrize("split_regex", [False, True], ids=["gpt2-bytelevel", "llama3-split"])
def test_huggingface_identical_to_tokenizers(tmp_path, split_regex):
    import json

    hf, path = _train_hf(tmp_path, split_regex)
    ours = Tokenizer.from_huggingface(path)
    texts = _hf_eval_texts()
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    for i, t in enumerate(texts):
        assert ours.encode(t, allowed_special="all") == want[i], f"text {i}"
        assert ours.decode(want[i]) == t
    toks, offs = ours.encode_batch_flat(texts, allowed_special="all", num_threads=2)
    assert toks.tolist() == [x for w in want for x in w]
    # merges written as "a b" strings instead of pairs, and ignore_merges, both re-checked with HF
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    spec["model"]["ignore_merges"] = True
    p2 = tmp_path / "ignore.json"
    p2.write_text(json.dumps(spec), encoding="utf-8")
    import tokenizers

    hf2 = tokenizers.Tokenizer.from_file(str(p2))
    ours2 = Tokenizer.from_huggingface(p2)
    for t in texts[:40]:
        assert ours2.encode(t, allowed_special="all") == hf2.encode(t, add_special_tokens=False).ids
    # the merge list comes back in order
    m = ours.merges()
    first = spec["model"]["merges"][0].split(" ")
    assert ours.token_bytes(int(m[0, 0])) + ours.token_bytes(int(m[0, 1])) == ours.token_bytes(int(m[0, 2]))
    assert len(m) == len(spec["model"]["merges"]) and first


def test_huggingface_nfc_normalizer_like_qwen2(tmp_path):
    """A Qwen2-style tokenizer.json (NFC normalizer + Split + ByteLevel) encodes exactly like
    HF tokenizers, including text in decomposed form (NFD) that NFC changes."""
    import json
    import unicodedata

    import tokenizers

    _, path = _train_hf(tmp_path, True)
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec["normalizer"] = {"type": "NFC"}
    p = tmp_path / "qwen-like.json"
    p.write_text(json.dumps(spec), encoding="utf-8")
    hf = tokenizers.Tokenizer.from_file(str(p))
    ours = Tokenizer.from_huggingface(p)
    assert ours.normalizer == "NFC" and Tokenizer.from_huggingface(path).normalizer is None
    texts = _hf_eval_texts()
    texts = texts + [unicodedata.normalize("NFD", t) for t in texts if not t.isascii()]
    texts += ["Cafe\u0301 crème bru\u0302le\u0301e <|endoftext|>\u0301 Å Ω ﬁ", "\u0301 leading combining mark"]
    assert any(unicodedata.normalize("NFC", t) != t for t in texts)
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    for i, t in enumerate(texts):
        assert ours.encode(t, allowed_special="all") == want[i], f"text {i}"
    toks, _ = ours.encode_batch_flat(texts, allowed_special="all", num_threads=2)
    assert toks.tolist() == [x for w in want for x in w]
    assert ours.count(texts[-2]) == len(ours.encode_ordinary(texts[-2]))


@pytest.mark.parametrize("kind", ["llama3-template", "roberta", "bert"])
def test_huggingface_post_processor_like_tokenizers(tmp_path, kind):
    """add_special_tokens=True gives HF's default encode() ids: BOS/EOS from the post-processor."""
    import tokenizers
    from tokenizers import processors

    _, path = _train_hf(tmp_path, True)
    hf = tokenizers.Tokenizer.from_file(str(path))
    eot, pad = hf.token_to_id("<|endoftext|>"), hf.token_to_id("<|pad|>")
    if kind == "llama3-template":
        hf.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|endoftext|> $A <|pad|> <|pad|>", special_tokens=[("<|endoftext|>", eot), ("<|pad|>", pad)]
            ),
        ])
    elif kind == "roberta":
        hf.post_processor = processors.RobertaProcessing(("<|pad|>", pad), ("<|endoftext|>", eot))
    else:
        hf.post_processor = processors.BertProcessing(("<|pad|>", pad), ("<|endoftext|>", eot))
    p = tmp_path / f"{kind}.json"
    hf.save(str(p))
    ours = Tokenizer.from_huggingface(p)
    texts = _hf_eval_texts()[:40] + [""]
    want = [e.ids for e in hf.encode_batch(texts)]
    assert want[0][0] == eot and want[0][-1] == pad
    for i, t in enumerate(texts):
        assert ours.encode(t, allowed_special="all", add_special_tokens=True) == want[i], f"text {i}"
    toks, offs = ours.encode_batch_flat(texts, allowed_special="all", add_special_tokens=True, num_threads=2)
    assert [toks[offs[i]:offs[i + 1]].tolist() for i in range(len(texts))] == want
    arr = ours.encode_arrow(texts, allowed_special="all", add_special_tokens=True)
    assert arr.to_pylist() == want
    # without the flag nothing is added, as with HF add_special_tokens=False
    assert ours.encode(texts[0], allowed_special="all") == hf.encode(texts[0], add_special_tokens=False).ids
    with pytest.raises(ValueError, match="add_special_tokens"):
        ours.encode_with_offsets(texts[0], add_special_tokens=True)


def test_huggingface_unsupported_post_processor_fails_only_when_used(tmp_path):
    import json

    _, path = _train_hf(tmp_path, False)
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec["post_processor"] = {"type": "SomethingNew"}
    p = tmp_path / "pp.json"
    p.write_text(json.dumps(spec), encoding="utf-8")
    ours = Tokenizer.from_huggingface(p)
    assert ours.encode("hello")
    with pytest.raises(ValueError, match="SomethingNew"):
        ours.encode("hello", add_special_tokens=True)
    with pytest.raises(ValueError, match="SomethingNew"):
        ours.encode_batch_flat(["hello"], add_special_tokens=True)
    spec["post_processor"] = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}],
                              "pair": [], "special_tokens": {}}
    p.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(ValueError, match="<s>"):
        Tokenizer.from_huggingface(p).special_template


def test_huggingface_vocab_and_merges_files(tmp_path):
    hf, _ = _train_hf(tmp_path, False)
    d = tmp_path / "model"
    d.mkdir()
    hf.model.save(str(d))
    ours = Tokenizer.from_huggingface(d)
    ours2 = Tokenizer.from_huggingface(d / "vocab.json", d / "merges.txt")
    for t in _hf_eval_texts()[:30]:
        want = hf.encode(t.replace("<|endoftext|>", "").replace("<|pad|>", ""), add_special_tokens=False).ids
        t2 = t.replace("<|endoftext|>", "").replace("<|pad|>", "")
        assert ours.encode_ordinary(t2) == want
        assert ours2.encode_ordinary(t2) == want


def test_huggingface_unsupported_configs_are_rejected(tmp_path):
    import json

    _, path = _train_hf(tmp_path, False)
    spec = json.loads(path.read_text(encoding="utf-8"))
    bad = dict(spec, normalizer={"type": "NFKD"})
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="normalizer NFKD is not supported"):
        Tokenizer.from_huggingface(p)
    bad = dict(spec, normalizer={"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]})
    p.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="NFC\\+Lowercase"):
        Tokenizer.from_huggingface(p)
    bad = json.loads(json.dumps(spec))
    bad["model"]["merges"][5] = "onlyone"
    p.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="merge 5"):
        Tokenizer.from_huggingface(p)
    bad = json.loads(json.dumps(spec))
    bad["pre_tokenizer"] = {"type": "Whitespace"}
    p.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="Whitespace"):
        Tokenizer.from_huggingface(p)


# ------------------------------------------------------------------ gristmill tokenize
def _read_shards(out):
    import json

    m = json.loads((out / "manifest.json").read_text())
    docs = []
    for s in m["shards"]:
        toks = np.memmap(out / s["tokens"], dtype=m["dtype"], mode="r")
        idx = np.load(out / s["index"])
        assert len(idx) == s["n_docs"] + 1 and idx[-1] == len(toks) == s["n_tokens"]
        docs += [toks[idx[i] : idx[i + 1]].tolist() for i in range(s["n_docs"])]
    return m, docs


@pytest.mark.parametrize("name,dtype", [("r50k_base", "uint16"), ("o200k_base", "uint32")])
def test_cli_tokenize_writes_shards(tmp_path, name, dtype):
    import json

    from gristmill.cli import main

    texts = stdlib_texts(13)[:60] + ["", "contains <|endoftext|> as text"]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    out = tmp_path / "out"
    eot = ENCODINGS[name][1]["<|endoftext|>"]
    rc = main(["-q", "tokenize", str(src), "--tokenizer", name, "--eos", "<|endoftext|>", "--bos", str(eot),
               "--shard-tokens", "20000", "-o", str(out)])
    assert rc == 0
    m, docs = _read_shards(out)
    assert m["dtype"] == dtype and m["total_docs"] == len(texts) and len(m["shards"]) > 1
    assert m["eos"] == eot and m["bos"] == eot
    ref = reference(name)
    for i, t in enumerate(texts):
        assert docs[i] == [eot] + ref.encode_ordinary(t) + [eot], f"document {i}"
    assert sum(s["n_tokens"] for s in m["shards"]) == m["total_tokens"]
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]  # no temporary files left
    # without eos/bos, from a folder of text files
    folder = tmp_path / "txt"
    folder.mkdir()
    for i, t in enumerate(texts[:5]):
        (folder / f"{i}.txt").write_text(t, encoding="utf-8")
    out2 = tmp_path / "out2"
    assert main(["-q", "tokenize", str(folder), "--tokenizer", name, "-o", str(out2)]) == 0
    m2, docs2 = _read_shards(out2)
    assert sorted(map(tuple, docs2)) == sorted(tuple(ref.encode_ordinary(t)) for t in texts[:5])


def test_cli_tokenize_errors(tmp_path, capsys):
    from gristmill.cli import main

    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "hello"}\n', encoding="utf-8")
    assert main(["tokenize", str(src), "--tokenizer", "cl100k_base", "--eos", "<|nope|>", "-o", str(tmp_path / "o")]) == 1
    assert "<|nope|>" in capsys.readouterr().err
    assert main(["tokenize", str(src), "--tokenizer", "nonexistent.tiktoken", "-o", str(tmp_path / "o")]) == 1
    assert "--pat-str" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# length buckets (Dataset Decomposition, issue 18 §5), against a slow statement of the rule


def _dd_reference(tokens, lo, hi):
    """The promise, one document at a time: n tokens are n - 1 targets; chunks of 2^hi targets
    from the start while that many remain, then the set bits of the rest, largest first, down
    to 2^lo; a chunk of 2^k targets is 2^k + 1 consecutive tokens starting where the last
    chunk's targets ended."""
    out, pos, left = [], 0, max(len(tokens) - 1, 0)
    while left >= 1 << hi:
        out.append((hi, tokens[pos : pos + (1 << hi) + 1]))
        pos, left = pos + (1 << hi), left - (1 << hi)
    for k in range(hi - 1, lo - 1, -1):
        if left >= 1 << k:
            out.append((k, tokens[pos : pos + (1 << k) + 1]))
            pos, left = pos + (1 << k), left - (1 << k)
    return out, left


@pytest.mark.parametrize("lo,hi,shard_tokens", [(2, 5, 1 << 28), (0, 3, 50), (4, 4, 1 << 28)])
def test_length_buckets_match_the_reference_rule(tmp_path, lo, hi, shard_tokens):
    import json
    import random

    from gristmill import Corpus
    from gristmill.tokenizer import get_encoding, tokenize_corpus

    rng = random.Random(lo * 10 + hi)
    words = ["alpha", "beta", "γάμμα", "delta", "日本", "x", "1234", "\n"]
    texts = ["", "a"] + [" ".join(rng.choice(words) for _ in range(rng.randrange(0, 90))) for _ in range(40)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    tok = get_encoding("cl100k_base")
    m = tokenize_corpus(Corpus(src), tok, tmp_path / "out", eos="<|endoftext|>", buckets=(lo, hi),
                        shard_tokens=shard_tokens)
    want = {k: [] for k in range(lo, hi + 1)}
    dropped = 0
    for t in texts:
        chunks, left = _dd_reference(tok.encode_ordinary(t) + [tok.eot_token], lo, hi)
        dropped += left
        for k, c in chunks:
            want[k].append(c)
    assert m["dropped_targets"] == dropped and m["total_docs"] == len(texts)
    assert [b["log2"] for b in m["buckets"]] == list(range(lo, hi + 1))
    for b in m["buckets"]:
        got = []
        for sh in b["shards"]:
            t = np.fromfile(tmp_path / "out" / sh["tokens"], dtype=m["dtype"])
            idx = np.load(tmp_path / "out" / sh["index"])
            got += [t[idx[i] : idx[i + 1]].tolist() for i in range(len(idx) - 1)]
        assert got == want[b["log2"]], b["log2"]
        assert b["n_chunks"] == len(got) and all(len(c) == b["chunk_tokens"] for c in got)
    assert sum(b["n_chunks"] for b in m["buckets"]) > 10


def test_length_buckets_cli_and_bad_values(tmp_path):
    import json

    from gristmill.cli import main

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": "word " * n}) + "\n" for n in (3, 40, 300, 1000)))
    assert main(["-q", "tokenize", str(src), "-o", str(tmp_path / "b"), "--eos", "<|endoftext|>", "--buckets", "3..6"]) == 0
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["format"] == "gristmill-token-buckets-v1" and m["total_docs"] == 4
    for bad in ("7..3", "x", "3-5"):
        assert main(["-q", "tokenize", str(src), "-o", str(tmp_path / f"bad{bad}"), "--buckets", bad]) == 1
