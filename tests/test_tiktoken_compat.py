"""gristmill as a drop-in for tiktoken: ``gristmill.get_encoding`` and friends against the
installed ``tiktoken`` on the same inputs. Test names follow tiktoken's own tests
(``tests/test_encoding.py``, ``test_offsets.py``, ``test_pickle.py``, ``test_misc.py``).

tiktoken runs offline: its cache directory is filled with the rank files gristmill ships, under
the names tiktoken's loader looks for, so ``tiktoken.get_encoding`` builds every encoding with
its own patterns and special tokens (nothing here is copied from gristmill's tables).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

tiktoken = pytest.importorskip("tiktoken")

import gristmill  # noqa: E402
import gristmill.tokenizer as T  # noqa: E402

BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
ALL = ["gpt2", "r50k_base", "p50k_base", "p50k_edit", "cl100k_base", "o200k_base", "o200k_harmony"]


@pytest.fixture(scope="module", autouse=True)
def _tiktoken_offline(tmp_path_factory):
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for f in sorted((Path(T.__file__).parent / "data").glob("*.tiktoken.gz")):
        name = f.name.split(".")[0]
        key = hashlib.sha1(BLOB.format(name).encode()).hexdigest()
        (cache / key).write_bytes(gzip.decompress(f.read_bytes()))
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    yield
    if old is None:
        del os.environ["TIKTOKEN_CACHE_DIR"]
    else:
        os.environ["TIKTOKEN_CACHE_DIR"] = old


def ref(name: str):
    # tiktoken's gpt2 is built from encoder.json + vocab.bpe, which are not on this machine;
    # they hold exactly r50k_base's ranks (same pattern and special token).
    return tiktoken.get_encoding("r50k_base" if name == "gpt2" else name)


def ours(name: str) -> gristmill.Encoding:
    return gristmill.get_encoding(name)


SOME = ["r50k_base", "cl100k_base", "o200k_base"]


# ------------------------------------------------------------------ test_encoding.py
@pytest.mark.parametrize("name", ALL)
def test_simple(name):
    enc, r = ours(name), ref(name)
    for text in ["hello world", "hello <|endoftext|>", "  leading", "a\nb\r\nc", "日本語のテキスト", ""]:
        assert enc.encode(text, allowed_special="all") == r.encode(text, allowed_special="all"), text
        assert enc.encode_ordinary(text) == r.encode_ordinary(text), text
        assert enc.decode(enc.encode(text, allowed_special="all")) == text
    assert enc.encode("hello world") == r.encode("hello world")
    for token in range(min(10_000, enc.n_vocab)):
        assert enc.encode_single_token(enc.decode_single_token_bytes(token)) == token
    assert enc.name == name


def test_simple_repeated():
    enc, r = ours("gpt2"), ref("gpt2")
    for k in range(1, 20):
        assert enc.encode("0" * k) == r.encode("0" * k), k


def test_simple_regex():
    enc, r = ours("cl100k_base"), ref("cl100k_base")
    for text in ["rer", "'rer", "today\n ", "today\n \n", "today\n  \n", "I'LL", "x  \n\n  y"]:
        assert enc.encode(text) == r.encode(text), repr(text)


@pytest.mark.parametrize("name", ALL)
def test_basic_encode(name):
    enc, r = ours(name), ref(name)
    for text in ["hello world", " \x850", "print('hi')\n", "\U0001f44d\U0001f3fd ok"]:
        assert enc.encode(text) == r.encode(text), repr(text)


def test_encode_empty():
    for name in ALL:
        assert ours(name).encode("") == [] == ref(name).encode("")
        assert ours(name).encode_batch([]) == []


def test_encode_surrogate_pairs():
    enc, r = ours("cl100k_base"), ref("cl100k_base")
    for text in ["👍", "\ud83d\udc4d", "\ud83d", "a\udfffb"]:
        assert enc.encode(text) == r.encode(text), repr(text)
        assert enc.encode_ordinary(text) == r.encode_ordinary(text), repr(text)


@pytest.mark.parametrize("name", SOME)
def test_catastrophically_repetitive(name):
    enc, r = ours(name), ref(name)
    for c in ["^", "0", "a", "'s", " ", "\n"]:
        big = c * 10_000
        assert enc.encode(big) == r.encode(big), c
        assert enc.encode(" " + big) == r.encode(" " + big), c
        assert enc.encode(big + "\n") == r.encode(big + "\n"), c


@pytest.mark.parametrize("name", ALL)
def test_basic_roundtrip(name):
    enc = ours(name)
    for value in ["hello", "hello ", "hello  ", " hello", " hello ", " hello  ", "hello world", "请考试我的软件！12345"]:
        assert enc.decode(enc.encode(value)) == value
        assert enc.decode(enc.encode_ordinary(value)) == value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_hyp_roundtrip(text):
    for name in SOME:
        enc, r = ours(name), ref(name)
        ids = enc.encode(text, disallowed_special=())
        assert ids == r.encode(text, disallowed_special=())
        fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        assert enc.decode(ids) == fixed


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_single_token_roundtrip(name):
    enc, r = ours(name), ref(name)
    for token in list(range(0, 10_000)) + list(range(enc.n_vocab - 2_000, enc.n_vocab)):
        try:
            want = r.decode_single_token_bytes(token)
        except KeyError:
            with pytest.raises(KeyError):
                enc.decode_single_token_bytes(token)
            continue
        assert enc.decode_single_token_bytes(token) == want
        assert enc.encode_single_token(want) == token == r.encode_single_token(want)
    with pytest.raises(KeyError):
        enc.encode_single_token("not one token at all")


def test_special_token():
    enc, r = ours("cl100k_base"), ref("cl100k_base")
    eot = enc.encode_single_token("<|endoftext|>")
    assert eot == enc.eot_token == r.eot_token
    fip = enc.encode_single_token("<|fim_prefix|>")
    fim = enc.encode_single_token("<|fim_middle|>")
    assert (fip, fim) == (r.encode_single_token("<|fim_prefix|>"), r.encode_single_token("<|fim_middle|>"))

    text = "<|endoftext|> hello <|fim_prefix|>"
    assert eot not in enc.encode(text, disallowed_special=())
    with pytest.raises(ValueError):
        enc.encode(text)
    with pytest.raises(ValueError):
        enc.encode(text, allowed_special=frozenset())
    with pytest.raises(ValueError):
        enc.encode(text, allowed_special={"<|endoftext|>"})
    with pytest.raises(ValueError):
        enc.encode(text, allowed_special={"<|fim_prefix|>"})
    for allowed in ["all", {"<|endoftext|>", "<|fim_prefix|>"}]:
        assert enc.encode(text, allowed_special=allowed) == r.encode(text, allowed_special=allowed)
    assert enc.encode(text, allowed_special={"<|endoftext|>"}, disallowed_special=()) == r.encode(
        text, allowed_special={"<|endoftext|>"}, disallowed_special=()
    )

    text = "<|endoftext|> hello <|fim_middle|>"
    with pytest.raises(ValueError):
        enc.encode(text, disallowed_special={"<|fim_middle|>"})
    assert enc.encode(text, disallowed_special={"<|fim_prefix|>"}) == r.encode(text, disallowed_special={"<|fim_prefix|>"})
    assert eot not in enc.encode(text, disallowed_special=())
    assert fim in enc.encode(text, allowed_special={"<|fim_middle|>"}, disallowed_special=())
    assert enc.special_tokens_set == r.special_tokens_set
    assert all(enc.is_special_token(enc.encode_single_token(s)) for s in enc.special_tokens_set)
    assert not enc.is_special_token(enc.encode_single_token("hello"))


@settings(max_examples=100, deadline=None)
@given(st.text(), st.sampled_from(["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>"]))
def test_hyp_special_ordinary(text, special):
    for name in ["cl100k_base", "o200k_base"]:
        enc, r = ours(name), ref(name)
        doc = text + special + text
        assert enc.encode_ordinary(doc) == r.encode_ordinary(doc)
        if special in r.special_tokens_set:
            got = enc.encode(doc, allowed_special="all")
            assert got == r.encode(doc, allowed_special="all")
            assert enc.encode_single_token(special) in got


@pytest.mark.parametrize("name", SOME)
def test_batch_encode(name):
    enc, r = ours(name), ref(name)
    text1, text2 = "hello world", "goodbye world"
    assert enc.encode_batch([text1]) == [enc.encode(text1)]
    assert enc.encode_batch([text1, text2]) == [enc.encode(text1), enc.encode(text2)]
    batch = ["", "a <|endoftext|> b", "print(1)\n" * 50, "日本語", "x" * 3000]
    for threads in [1, 2]:
        assert enc.encode_ordinary_batch(batch, num_threads=threads) == r.encode_ordinary_batch(batch, num_threads=threads)
        got = enc.encode_batch(batch, num_threads=threads, allowed_special="all")
        assert got == r.encode_batch(batch, num_threads=threads, allowed_special="all")
    with pytest.raises(ValueError):
        enc.encode_batch(batch)  # disallowed special text, as tiktoken
    # a two-document batch is a list of two lists (never a (tokens, offsets) pair)
    out = enc.encode_batch(["a", "b"])
    assert isinstance(out, list) and all(isinstance(x, list) for x in out)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(), max_size=6))
def test_hyp_batch_roundtrip(batch):
    for name in SOME:
        enc, r = ours(name), ref(name)
        ids = enc.encode_batch(batch, disallowed_special=())
        assert ids == r.encode_batch(batch, disallowed_special=())
        fixed = [t.encode("utf-16", "surrogatepass").decode("utf-16", "replace") for t in batch]
        assert enc.decode_batch(ids) == fixed == r.decode_batch(ids)
        assert enc.decode_bytes_batch(ids) == r.decode_bytes_batch(ids)


# ------------------------------------------------------------------ test_offsets.py
def test_basic_offsets():
    enc, r = ours("cl100k_base"), ref("cl100k_base")
    for text in ["hello world", "我非常渴望与人工智能一起工作", "வணக்கம்", "", " \n\t x"]:
        ids = enc.encode(text)
        assert enc.decode_with_offsets(ids) == r.decode_with_offsets(ids), text
    # tokens that start inside a multi-byte character
    ids = enc.encode("我非常渴望与人工智能一起工作")
    assert enc.decode_with_offsets(ids)[1] == r.decode_with_offsets(ids)[1]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_hyp_offsets(text):
    for name in ["cl100k_base", "o200k_base"]:
        enc, r = ours(name), ref(name)
        ids = enc.encode(text, disallowed_special=())
        assert enc.decode_with_offsets(ids) == r.decode_with_offsets(ids)
        assert enc.decode_tokens_bytes(ids) == r.decode_tokens_bytes(ids)


# ------------------------------------------------------------------ test_pickle.py
def test_pickle(tmp_path):
    enc = ours("cl100k_base")
    back = pickle.loads(pickle.dumps(enc))
    assert isinstance(back, gristmill.Encoding) and back.name == "cl100k_base"
    assert back.encode("hello world") == enc.encode("hello world")
    assert back.encode("<|endoftext|>", allowed_special="all") == [100257]

    ranks = {bytes([b]): b for b in range(256)}
    custom = gristmill.Encoding("bytes", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={"<|x|>": 256})
    back = pickle.loads(pickle.dumps(custom))
    assert back.encode("ab <|x|>", allowed_special="all") == custom.encode("ab <|x|>", allowed_special="all")
    assert back.n_vocab == 257

    path = tmp_path / "r50k.tiktoken"
    path.write_bytes(gzip.decompress((Path(T.__file__).parent / "data" / "r50k_base.tiktoken.gz").read_bytes()))
    tok = gristmill.Tokenizer.from_tiktoken(path, pat_str=T.R50K_PATTERN, special_tokens={"<|endoftext|>": 50256})
    back = pickle.loads(pickle.dumps(tok))
    assert type(back) is gristmill.Tokenizer and back.encode("hello world") == ref("r50k_base").encode("hello world")

    trained = gristmill.train_bpe(["low lower lowest", "new newer newest"] * 20, vocab_size=262)
    back = pickle.loads(pickle.dumps(trained))
    assert type(back) is type(trained) and back.encode("newest lowest") == trained.encode("newest lowest")


# ------------------------------------------------------------------ test_misc.py / registry
def test_encoding_for_model():
    for model in list(tiktoken.model.MODEL_TO_ENCODING) + [
        "gpt-4-0613", "gpt-4o-2024-05-13", "gpt-3.5-turbo-0301", "ft:gpt-4o:org:x:1", "ft:gpt-3.5-turbo:a",
        "o1-preview", "gpt-35-turbo-16k", "chatgpt-4o-latest", "gpt-4.1-mini",
    ]:
        assert gristmill.encoding_name_for_model(model) == tiktoken.model.encoding_name_for_model(model), model
    assert gristmill.encoding_for_model("gpt2").name == "gpt2"
    assert gristmill.encoding_for_model("gpt-4").encode("hi") == ref("cl100k_base").encode("hi")
    with pytest.raises(KeyError, match="not-a-model"):
        gristmill.encoding_for_model("not-a-model")


def test_list_encoding_names():
    assert set(gristmill.list_encoding_names()) == set(tiktoken.list_encoding_names())
    assert gristmill.get_encoding("cl100k_base") is gristmill.get_encoding("cl100k_base")  # cached
    with pytest.raises(ValueError, match="unknown encoding"):
        gristmill.get_encoding("cl200k")


@pytest.mark.parametrize("name", ALL)
def test_encoding_properties(name):
    enc, r = ours(name), ref(name)
    assert enc.n_vocab == r.n_vocab
    assert enc.max_token_value == r.max_token_value
    assert enc.eot_token == r.eot_token
    assert enc.special_tokens_set == r.special_tokens_set
    assert enc._special_tokens == r._special_tokens
    assert enc._pat_str == r._pat_str


def test_o200k_harmony_shared_id():
    enc, r = ours("o200k_harmony"), ref("o200k_harmony")
    text = "<|start|>user<|message|>hi<|end|><|endofprompt|><|reserved_200018|>"
    assert enc.encode(text, allowed_special="all") == r.encode(text, allowed_special="all")
    assert enc.encode_single_token("<|reserved_200018|>") == enc.encode_single_token("<|endofprompt|>") == 200018


def test_results_are_python_lists():
    enc = ours("cl100k_base")
    ids = enc.encode("hello world")
    assert ids == [15339, 1917] and all(type(i) is int for i in ids)
    assert ids + [enc.eot_token] == [15339, 1917, 100257]
    assert json.dumps(enc.encode_ordinary("hello world")) == "[15339, 1917]"


def test_encode_to_numpy():
    enc, r = ours("cl100k_base"), ref("cl100k_base")
    text = "hello <|endoftext|> world"
    got = enc.encode_to_numpy(text, allowed_special="all")
    want = r.encode_to_numpy(text, allowed_special="all")
    assert got.dtype == np.uint32 and got.tolist() == want.tolist()
    with pytest.raises(ValueError):
        enc.encode_to_numpy(text)


def test_encoding_constructor_like_tiktoken():
    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"ab"] = 256
    ranks[b"abc"] = 257
    args = dict(pat_str=r"\w+|\s+|[^\w\s]+", mergeable_ranks=ranks, special_tokens={"<|end|>": 258})
    enc, r = gristmill.Encoding("toy", **args), tiktoken.Encoding("toy", **args)
    for text in ["abc ab a", "abcabc <|end|>", "xyz"]:
        assert enc.encode(text, allowed_special="all") == r.encode(text, allowed_special="all")
    assert (enc.n_vocab, enc.max_token_value, enc.name) == (r.n_vocab, r.max_token_value, r.name)
    assert enc.token_byte_values() == r.token_byte_values()
    gristmill.Encoding("toy", **args, explicit_n_vocab=259)
    with pytest.raises(ValueError, match="explicit_n_vocab"):
        gristmill.Encoding("toy", **args, explicit_n_vocab=300)


def test_id_lists_are_plain_ints_shared_per_id_and_equal_the_numpy_path():
    import json

    from gristmill import get_encoding

    enc = get_encoding("cl100k_base")
    text = "hello world, hello world <|endoftext|> ünïcödé " * 20
    ids = enc.encode_ordinary(text)
    assert type(ids) is list and all(type(i) is int for i in ids)
    assert ids == enc.encode_to_numpy(text, disallowed_special=()).tolist()
    assert enc.encode(text, allowed_special="all") == enc.encode_to_numpy(text, allowed_special="all").tolist()
    assert json.loads(json.dumps(ids)) == ids and (ids + [enc.eot_token])[-1] == enc.eot_token
    batch = enc.encode_ordinary_batch([text, "", "x"], num_threads=2)
    assert batch == [ids, [], enc.encode_ordinary("x")]
    with pytest.raises(ValueError, match="offsets"):
        enc._t.split_lists(np.array([1, 2], np.uint32), np.array([0, 3], np.int64))
