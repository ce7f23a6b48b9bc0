"""Byte-level BPE tokenization, bit-identical to tiktoken and Hugging Face ``tokenizers``.

A drop-in for tiktoken: the same functions, method names and return types.

>>> import gristmill
>>> enc = gristmill.get_encoding("cl100k_base")
>>> enc.encode("hello world")
[15339, 1917]
>>> enc.decode([15339, 1917])
'hello world'
>>> enc.encode_batch(["a b", "c"])
[[64, 293], [66]]
>>> gristmill.encoding_for_model("gpt-4o").name
'o200k_base'

Every OpenAI encoding (``gpt2``, ``r50k_base``, ``p50k_base``, ``p50k_edit``,
``cl100k_base``, ``o200k_base``, ``o200k_harmony``) is built from rank files shipped inside
the package and works offline. Where a method has a tiktoken name it has tiktoken's
behaviour (lists of ``int``; ``encode_to_numpy`` for a ``uint32`` array). The bulk paths have
their own names: :meth:`Tokenizer.encode_batch_flat` returns one flat ``uint32`` id array
plus ``n + 1`` offsets, :meth:`Tokenizer.encode_arrow` a ``pyarrow.LargeListArray`` on the
same buffers, and :meth:`Tokenizer.decode_batch_flat` decodes such a pair.

>>> tokens, offsets = enc.encode_batch_flat(["a b", "c"])
>>> offsets.tolist()
[0, 2, 3]
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import AbstractSet, Any, Collection, Dict, List, Literal, Optional, Sequence, Set, Tuple, Union

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from gristmill import _native
from gristmill._arrow import TextLike, as_string_array, string_buffers
from gristmill._threads import num_threads as _num_threads

__all__ = [
    "Tokenizer",
    "Encoding",
    "get_encoding",
    "encoding_for_model",
    "encoding_name_for_model",
    "list_encoding_names",
    "ENCODINGS",
    "R50K_PATTERN",
    "CL100K_PATTERN",
    "O200K_PATTERN",
    "GPT2_PATTERN",
]

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"

# Patterns exactly as in tiktoken's tiktoken_ext/openai_public.py.
R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
# The original GPT-2 pattern, used by Hugging Face's ByteLevel(use_regex=True).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# name -> (pattern, special tokens, SHA-256 of the official uncompressed rank file)
ENCODINGS: Dict[str, Tuple[str, Dict[str, int], str]] = {
    "r50k_base": (
        R50K_PATTERN,
        {ENDOFTEXT: 50256},
        "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    ),
    "p50k_base": (
        R50K_PATTERN,
        {ENDOFTEXT: 50256},
        "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    ),
    "cl100k_base": (
        CL100K_PATTERN,
        {ENDOFTEXT: 100257, FIM_PREFIX: 100258, FIM_MIDDLE: 100259, FIM_SUFFIX: 100260, ENDOFPROMPT: 100276},
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        O200K_PATTERN,
        {ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}

_DATA = Path(__file__).resolve().parent / "data"

# Encodings built from one of the rank files above with other special tokens:
# name -> (rank file, pattern, special tokens, explicit n_vocab or None)
_DERIVED: Dict[str, Tuple[str, str, Dict[str, int], Optional[int]]] = {
    # GPT-2's encoder.json/vocab.bpe hold exactly r50k_base's ranks.
    "gpt2": ("r50k_base", R50K_PATTERN, {ENDOFTEXT: 50256}, 50257),
    "p50k_edit": (
        "p50k_base",
        R50K_PATTERN,
        {ENDOFTEXT: 50256, FIM_PREFIX: 50281, FIM_MIDDLE: 50282, FIM_SUFFIX: 50283},
        None,
    ),
    "o200k_harmony": (
        "o200k_base",
        O200K_PATTERN,
        {
            ENDOFTEXT: 199999,
            ENDOFPROMPT: 200018,
            "<|startoftext|>": 199998,
            "<|reserved_200000|>": 200000,
            "<|reserved_200001|>": 200001,
            "<|return|>": 200002,
            "<|constrain|>": 200003,
            "<|reserved_200004|>": 200004,
            "<|channel|>": 200005,
            "<|start|>": 200006,
            "<|end|>": 200007,
            "<|message|>": 200008,
            "<|reserved_200009|>": 200009,
            "<|reserved_200010|>": 200010,
            "<|reserved_200011|>": 200011,
            "<|call|>": 200012,
            # 200018 is also <|endofprompt|>: both names encode to it, it decodes as <|endofprompt|>
            **{f"<|reserved_{i}|>": i for i in range(200013, 201088)},
        },
        None,
    ),
}

# tiktoken's model -> encoding tables (exact names, then name prefixes for dated snapshots).
_MODEL_TO_ENCODING: Dict[str, str] = {
    **dict.fromkeys(["o1", "o3", "o4-mini", "gpt-5", "gpt-4.1", "gpt-4o"], "o200k_base"),
    **dict.fromkeys(["gpt-oss-20b", "gpt-oss-120b"], "o200k_harmony"),
    **dict.fromkeys(["gpt-4", "gpt-3.5-turbo", "gpt-3.5", "gpt-35-turbo"], "cl100k_base"),
    **dict.fromkeys(["davinci-002", "babbage-002"], "cl100k_base"),
    **dict.fromkeys(["text-embedding-ada-002", "text-embedding-3-small", "text-embedding-3-large"], "cl100k_base"),
    **dict.fromkeys(["text-davinci-003", "text-davinci-002"], "p50k_base"),
    **dict.fromkeys(
        ["text-davinci-001", "text-curie-001", "text-babbage-001", "text-ada-001", "davinci", "curie", "babbage", "ada"],
        "r50k_base",
    ),
    **dict.fromkeys(
        ["code-davinci-002", "code-davinci-001", "code-cushman-002", "code-cushman-001", "davinci-codex", "cushman-codex"],
        "p50k_base",
    ),
    **dict.fromkeys(["text-davinci-edit-001", "code-davinci-edit-001"], "p50k_edit"),
    **dict.fromkeys(
        [
            "text-similarity-davinci-001", "text-similarity-curie-001", "text-similarity-babbage-001",
            "text-similarity-ada-001", "text-search-davinci-doc-001", "text-search-curie-doc-001",
            "text-search-babbage-doc-001", "text-search-ada-doc-001", "code-search-babbage-code-001",
            "code-search-ada-code-001",
        ],
        "r50k_base",
    ),
    **dict.fromkeys(["gpt2", "gpt-2"], "gpt2"),
}
_MODEL_PREFIX_TO_ENCODING: Dict[str, str] = {
    **dict.fromkeys(
        ["o1-", "o3-", "o4-mini-", "gpt-5-", "gpt-4.5-", "gpt-4.1-", "chatgpt-4o-", "gpt-4o-", "ft:gpt-4o"],
        "o200k_base",
    ),
    "gpt-oss-": "o200k_harmony",
    **dict.fromkeys(
        ["gpt-4-", "gpt-3.5-turbo-", "gpt-35-turbo-", "ft:gpt-4", "ft:gpt-3.5-turbo", "ft:davinci-002", "ft:babbage-002"],
        "cl100k_base",
    ),
}

SpecialArg = Union[Literal["all"], AbstractSet[str], Collection[str]]
Ids = Union[npt.ArrayLike, Sequence[int]]


def _read_maybe_gz(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=f) as g:
                return g.read()
        return f.read()


def _fix_surrogates(text: str) -> str:
    # tiktoken's behaviour: lone surrogates become U+FFFD, valid pairs are joined.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _special_arg(x: SpecialArg, what: str) -> Union[str, List[str]]:
    if isinstance(x, str):
        if x != "all":
            raise TypeError(f"{what} must be 'all' or a collection of strings, got {x!r}")
        return "all"
    items = list(x)
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise TypeError(f"{what} must contain strings; item {i} is {type(s).__name__}")
    return items


def _ids_array(tokens: Ids) -> np.ndarray:
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise ValueError(f"token ids must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"token ids must be integers, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"token id {int(arr.max())} is not in the vocabulary")
    return np.ascontiguousarray(arr, dtype=np.int64)


class Tokenizer:
    """A byte-level BPE tokenizer (tiktoken or Hugging Face vocabularies).

    Build one with :meth:`from_tiktoken` or :meth:`from_huggingface`. Instances are
    immutable and safe to share between threads; all work runs without the GIL.
    """

    def __init__(self, native: Any, name: str) -> None:
        self._t = native
        self.name = name
        self._special: Dict[str, int] = dict(native.special_tokens)
        # Hugging Face post-processor for one sequence: ids before and after the text.
        self._template: Tuple[Tuple[int, ...], Tuple[int, ...]] = ((), ())
        self._template_error: Optional[str] = None
        # How to rebuild this tokenizer in another process (see __reduce__).
        self._recipe: Optional[Tuple[Any, ...]] = None

    @classmethod
    def _wrap(cls, native: Any, name: str, recipe: Optional[Tuple[Any, ...]] = None) -> Any:
        self = cls.__new__(cls)
        Tokenizer.__init__(self, native, name)
        self._recipe = recipe
        return self

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickle by recipe (encoding name, file path or ranks), as tiktoken does, so
        tokenizers can be sent to ``multiprocessing`` workers."""
        recipe = self._recipe
        if recipe is None:
            if self.normalizer is not None:
                raise TypeError(f"cannot pickle tokenizer {self.name!r}: it was not loaded from a file or name")
            ranks = {}
            special = set(self._special.values())
            for i in range(self.n_vocab):
                if i in special:
                    continue
                b = self._t.token_bytes(i)
                if b is not None:
                    ranks[b] = i
            recipe = ("ranks", ranks, self.pat_str, dict(self._special))
        return (_unpickle, (type(self), self.name, recipe, self._template, self._template_error))

    def __repr__(self) -> str:
        return f"<gristmill.Tokenizer {self.name!r} n_vocab={self.n_vocab}>"

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_tiktoken(
        cls,
        name_or_path: Union[str, "os.PathLike[str]"],
        pat_str: Optional[str] = None,
        special_tokens: Optional[Dict[str, int]] = None,
    ) -> "Tokenizer":
        """Load a named OpenAI encoding or a ``.tiktoken`` / ``.tiktoken.gz`` rank file.

        Named encodings (every name of :func:`list_encoding_names`) are built from rank files
        shipped in the package, checked against tiktoken's published SHA-256, and take their
        official ``pat_str`` and special tokens unless overridden. A path needs ``pat_str``.
        Each call builds a new tokenizer (with empty caches); :func:`get_encoding` returns one
        built once per process.

        >>> Tokenizer.from_tiktoken("o200k_base").encode("tiktoken")
        [83, 8251, 2488]
        """
        name = os.fspath(name_or_path)
        if name in ENCODINGS or name in _DERIVED:
            file, pat, specials, _ = _encoding_spec(name)
            data = _shipped_ranks(file)
            source = f"{file}.tiktoken"
            recipe: Tuple[Any, ...] = ("named", name)
            if pat_str is not None or special_tokens is not None:
                recipe = ("tiktoken", name, pat_str or pat, dict(specials if special_tokens is None else special_tokens))
            if pat_str is None:
                pat_str = pat
            if special_tokens is None:
                special_tokens = specials
        else:
            path = Path(name)
            if not path.exists():
                raise ValueError(
                    f"{name!r} is neither a known encoding ({', '.join(ENCODINGS)}) nor an existing file"
                )
            if pat_str is None:
                raise ValueError(f"pat_str is required when loading a rank file ({name})")
            data = _read_maybe_gz(path)
            source = str(path)
            name = path.name.split(".")[0]
            recipe = ("tiktoken", str(path.resolve()), pat_str, dict(special_tokens or {}))
        specials = dict(special_tokens or {})
        native = _native._Tokenizer.from_tiktoken_bytes(data, source, pat_str, list(specials.items()))
        return cls._wrap(native, name, recipe)

    @classmethod
    def from_ranks(
        cls, mergeable_ranks: Dict[bytes, int], pat_str: str, special_tokens: Optional[Dict[str, int]] = None, name: str = "custom"
    ) -> "Tokenizer":
        """Build from a tiktoken-style ``{token bytes: rank}`` dict."""
        native = _native._Tokenizer.from_ranks(
            list(mergeable_ranks.items()), pat_str, list((special_tokens or {}).items())
        )
        return cls._wrap(native, name, ("ranks", dict(mergeable_ranks), pat_str, dict(special_tokens or {})))

    @classmethod
    def from_huggingface(
        cls, path: Union[str, "os.PathLike[str]"], merges_path: Union[str, "os.PathLike[str]", None] = None
    ) -> "Tokenizer":
        """Load a byte-level BPE ``tokenizer.json`` (GPT-2, Llama 3, Qwen style), or a
        ``vocab.json`` + ``merges.txt`` pair (pass the directory, or both paths).

        Supported: ``ByteLevel`` pre-tokenizer (``add_prefix_space=False``), optionally after a
        ``Split`` regex with ``behavior="Isolated"``; merges as ``"a b"`` strings or pairs;
        ``ignore_merges``; added tokens (recognised with ``allowed_special``); the ``NFC``
        normalizer (Qwen2 style: ordinary text is normalized to NFC before pre-tokenization,
        so byte offsets refer to the normalized text). Other normalizers, dropout, byte
        fallback and word prefixes/suffixes are rejected with a clear error.
        The post-processor (``TemplateProcessing`` as in Llama 3, ``RobertaProcessing``,
        ``BertProcessing``, ``ByteLevel``, or a ``Sequence`` of them) is applied for one
        sequence when ``encode(..., add_special_tokens=True)`` asks for it, as HF does by default.
        """
        p = Path(path)
        if p.is_dir():
            if (p / "tokenizer.json").exists() and merges_path is None:
                p = p / "tokenizer.json"
            else:
                tok = cls._from_vocab_merges(p / "vocab.json", Path(merges_path) if merges_path else p / "merges.txt")
                tok._recipe = ("huggingface", str(Path(path).resolve()), merges_path and str(Path(merges_path).resolve()))
                return tok
        if merges_path is not None or p.name.endswith("vocab.json") and not p.name.endswith("tokenizer.json"):
            tok = cls._from_vocab_merges(p, Path(merges_path) if merges_path else p.with_name("merges.txt"))
            tok._recipe = ("huggingface", str(Path(path).resolve()), merges_path and str(Path(merges_path).resolve()))
            return tok
        with open(p, "rb") as f:
            try:
                spec = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}: not valid JSON: {e}") from None
        model = spec.get("model") or {}
        mtype = model.get("type", "BPE")
        if mtype != "BPE":
            raise ValueError(f"{p}: model type {mtype!r} is not supported (only byte-level BPE)")
        for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
            if model.get(key):
                raise ValueError(f"{p}: model.{key}={model[key]!r} is not supported")
        if model.get("byte_fallback"):
            raise ValueError(f"{p}: model.byte_fallback is not supported (not a byte-level BPE)")
        nfc = _hf_normalizer(spec.get("normalizer"), str(p))
        pattern = _hf_pattern(spec.get("pre_tokenizer"), str(p))
        merges = [_hf_merge(m, i, str(p)) for i, m in enumerate(model.get("merges", []))]
        vocab = model.get("vocab")
        if not isinstance(vocab, dict):
            raise ValueError(f"{p}: model.vocab must be an object")
        added = [(t["content"], int(t["id"])) for t in spec.get("added_tokens") or []]
        native = _native._Tokenizer.from_byte_level(
            list(vocab.items()), merges, pattern, added, bool(model.get("ignore_merges", False)), nfc
        )
        tok = cls._wrap(native, p.stem, ("huggingface", str(p.resolve()), None))
        try:
            tok._template = _hf_template(spec.get("post_processor"), str(p))
        except ValueError as e:
            # Loading still works; only add_special_tokens=True needs the template.
            tok._template_error = str(e)
        return tok

    @classmethod
    def _from_vocab_merges(cls, vocab_path: Path, merges_path: Path) -> "Tokenizer":
        with open(vocab_path, "rb") as f:
            vocab = json.load(f)
        merges = []
        with open(merges_path, encoding="utf-8") as f:
            for ln, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line or (ln == 1 and line.startswith("#version")):
                    continue
                parts = line.split(" ")
                if len(parts) != 2:
                    raise ValueError(f"{merges_path} line {ln}: expected two tokens separated by one space")
                merges.append((parts[0], parts[1]))
        native = _native._Tokenizer.from_byte_level(list(vocab.items()), merges, GPT2_PATTERN, [], False)
        return cls._wrap(native, vocab_path.parent.name or "bpe")

    # ---------------------------------------------------------------- properties
    @property
    def normalizer(self) -> Optional[str]:
        """``"NFC"`` when ordinary text is normalized before encoding (Qwen2-style
        ``tokenizer.json``), else ``None``."""
        return self._t.normalizer  # type: ignore[no-any-return]

    @property
    def n_vocab(self) -> int:
        """One more than the largest token id (ordinary or special), as in tiktoken."""
        return int(self._t.n_vocab)

    @property
    def max_token_value(self) -> int:
        """The largest token id (ordinary or special)."""
        return self.n_vocab - 1

    @property
    def pat_str(self) -> str:
        return str(self._t.pattern)

    @property
    def _pat_str(self) -> str:  # tiktoken's attribute name
        return self.pat_str

    @property
    def special_tokens(self) -> Dict[str, int]:
        return dict(self._special)

    @property
    def _special_tokens(self) -> Dict[str, int]:  # tiktoken's attribute name
        return dict(self._special)

    @property
    def special_tokens_set(self) -> Set[str]:
        """Names of the special tokens."""
        return set(self._special)

    @property
    def eot_token(self) -> int:
        """Id of ``<|endoftext|>``; ``KeyError`` when the vocabulary has none (as tiktoken)."""
        return self._special[ENDOFTEXT]

    def is_special_token(self, token: int) -> bool:
        """Whether ``token`` is the id of a special token."""
        return int(token) in self._special.values()

    # ---------------------------------------------------------------- encoding
    @staticmethod
    def _on_text(fn: Any, text: str, *args: Any) -> Any:
        """``fn(text, *args)`` for a native encoder: ``text`` must be a str; one with lone
        surrogates (not UTF-8) is encoded with them replaced, as tiktoken does."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        try:
            return fn(text, *args)
        except UnicodeEncodeError:
            return fn(_fix_surrogates(text), *args)

    def _ordinary_np(self, text: str) -> npt.NDArray[np.uint32]:
        return self._on_text(self._t.encode_ordinary, text)  # type: ignore[no-any-return]

    def encode_ordinary(self, text: str) -> List[int]:
        """Token ids of ``text`` (a list of ``int``); special-token text is encoded as ordinary text.

        >>> Tokenizer.from_tiktoken("cl100k_base").encode_ordinary("<|endoftext|>")[:3]
        [27, 91, 8862]
        """
        return self._on_text(self._t.encode_ordinary_list, text)  # type: ignore[no-any-return]

    def encode_to_numpy(
        self,
        text: str,
        *,
        allowed_special: SpecialArg = frozenset(),
        disallowed_special: SpecialArg = "all",
        add_special_tokens: bool = False,
    ) -> npt.NDArray[np.uint32]:
        """:meth:`encode` as a ``uint32`` numpy array (no list of Python ints is built).

        >>> Tokenizer.from_tiktoken("cl100k_base").encode_to_numpy("hello world")
        array([15339,  1917], dtype=uint32)
        """
        a = _special_arg(allowed_special, "allowed_special")
        d = _special_arg(disallowed_special, "disallowed_special")
        ids = self._on_text(self._t.encode, text, a, d)
        if add_special_tokens:
            pre, post = self.special_template
            if pre or post:
                ids = np.concatenate([np.array(pre, np.uint32), ids, np.array(post, np.uint32)])
        return ids  # type: ignore[no-any-return]

    def encode(
        self,
        text: str,
        *,
        allowed_special: SpecialArg = frozenset(),
        disallowed_special: SpecialArg = "all",
        add_special_tokens: bool = False,
    ) -> List[int]:
        """Token ids of ``text`` (a list of ``int``) with tiktoken's special-token rules: text of
        an allowed special token becomes its id; text of a disallowed one raises ``ValueError``
        naming it.

        ``add_special_tokens=True`` wraps the ids in the Hugging Face post-processor's tokens
        (see :attr:`special_template`; tiktoken encodings have none). HF's
        ``tokenizer.encode(text).ids`` equals ``encode(text, allowed_special="all",
        add_special_tokens=True)``.

        >>> enc = Tokenizer.from_tiktoken("cl100k_base")
        >>> enc.encode("<|endoftext|>", allowed_special="all")
        [100257]
        """
        if add_special_tokens:
            return self.encode_to_numpy(  # type: ignore[no-any-return]
                text,
                allowed_special=allowed_special,
                disallowed_special=disallowed_special,
                add_special_tokens=add_special_tokens,
            ).tolist()
        a = _special_arg(allowed_special, "allowed_special")
        d = _special_arg(disallowed_special, "disallowed_special")
        return self._on_text(self._t.encode_list, text, a, d)  # type: ignore[no-any-return]

    def encode_single_token(self, text_or_bytes: Union[str, bytes]) -> int:
        """The id of a single token given as its text or bytes (ordinary or special);
        ``KeyError`` when it is not one token.

        >>> Tokenizer.from_tiktoken("cl100k_base").encode_single_token("hello")
        15339
        """
        b = text_or_bytes.encode("utf-8") if isinstance(text_or_bytes, str) else bytes(text_or_bytes)
        i = self._t.token_id(b)
        if i is not None and not self.is_special_token(i):
            return int(i)
        try:
            return self._special[b.decode("utf-8")]
        except (UnicodeDecodeError, KeyError):
            raise KeyError(text_or_bytes) from None

    @property
    def special_template(self) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        """``(ids before, ids after)`` one sequence, from a Hugging Face ``tokenizer.json``
        post-processor (e.g. Llama 3's ``<|begin_of_text|>``); ``((), ())`` when there is none.
        Raises ``ValueError`` if the file's post-processor is of a kind gristmill cannot apply.

        >>> Tokenizer.from_tiktoken("cl100k_base").special_template
        ((), ())
        """
        if self._template_error is not None:
            raise ValueError(self._template_error)
        return self._template

    def encode_with_offsets(self, text: str, **kwargs: Any) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint64]]:
        """``(ids, starts)`` as arrays: ``starts[i]`` is the UTF-8 byte offset where token ``i`` begins."""
        if kwargs.get("add_special_tokens"):
            raise ValueError("encode_with_offsets does not take add_special_tokens: offsets refer to the "
                             "text, and template tokens are not part of it; add them after")
        ids = self.encode_to_numpy(text, **kwargs)
        return ids, self.token_byte_offsets(ids)

    def count(self, text: str) -> int:
        """Number of tokens of ``encode_ordinary(text)``, without building the id array."""
        return int(self._on_text(self._t.count, text))

    def _batch_buffers(self, texts: TextLike) -> Tuple[np.ndarray, np.ndarray]:
        try:
            return string_buffers(texts)
        except ValueError:
            if isinstance(texts, (pa.Array, pa.ChunkedArray)):
                raise
            items = list(texts)  # type: ignore[arg-type]
            for i, x in enumerate(items):
                if not isinstance(x, str):
                    raise TypeError(f"texts[{i}] is {type(x).__name__}, expected str") from None
            return string_buffers([_fix_surrogates(x) for x in items])

    def encode_batch_flat(
        self,
        texts: TextLike,
        *,
        num_threads: Optional[int] = None,
        allowed_special: SpecialArg = frozenset(),
        disallowed_special: SpecialArg = "all",
        ordinary: bool = False,
        add_special_tokens: bool = False,
    ) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]:
        """Encode many documents in parallel (rayon; ``num_threads=None`` uses all cores) into
        one flat array: returns ``(tokens, offsets)``, document ``i`` is
        ``tokens[offsets[i]:offsets[i+1]]`` (``uint32`` ids, ``int64`` offsets).

        ``texts`` is a pyarrow string array (read in place) or a sequence of ``str``.
        ``ordinary=True`` encodes special-token text as ordinary text (as
        :meth:`encode_ordinary`); ``add_special_tokens`` is as in :meth:`encode`, per document.
        Results never depend on ``num_threads``.
        """
        num_threads = _num_threads(num_threads, where="encode_batch")
        docs = self._batch_buffers(texts)
        a = _special_arg(allowed_special, "allowed_special")
        d = _special_arg(disallowed_special, "disallowed_special")
        tokens, offsets = self._t.encode_batch(docs, a, d, ordinary, num_threads)
        if add_special_tokens:
            tokens, offsets = _wrap_documents(tokens, offsets, *self.special_template)
        return tokens, offsets

    def encode_arrow(
        self,
        texts: TextLike,
        *,
        num_threads: Optional[int] = None,
        allowed_special: SpecialArg = frozenset(),
        disallowed_special: SpecialArg = "all",
        ordinary: bool = False,
        add_special_tokens: bool = False,
    ) -> pa.LargeListArray:
        """:meth:`encode_batch_flat` as a ``pyarrow.LargeListArray`` of ``uint32`` over the same buffers."""
        tokens, offsets = self.encode_batch_flat(
            texts,
            num_threads=num_threads,
            allowed_special=allowed_special,
            disallowed_special=disallowed_special,
            ordinary=ordinary,
            add_special_tokens=add_special_tokens,
        )
        return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(tokens))

    def encode_batch(
        self,
        text: TextLike,
        *,
        num_threads: Optional[int] = None,
        allowed_special: SpecialArg = frozenset(),
        disallowed_special: SpecialArg = "all",
    ) -> List[List[int]]:
        """:meth:`encode` of every document, in parallel: a list of id lists, as tiktoken.
        ``num_threads=None`` uses all cores; results never depend on it. For bulk work
        :meth:`encode_batch_flat` avoids building Python ints.

        >>> Tokenizer.from_tiktoken("cl100k_base").encode_batch(["hello world", "hello"])
        [[15339, 1917], [15339]]
        """
        tokens, offsets = self.encode_batch_flat(
            text, num_threads=num_threads, allowed_special=allowed_special, disallowed_special=disallowed_special
        )
        return self._t.split_lists(tokens, offsets)  # type: ignore[no-any-return]

    def encode_ordinary_batch(self, text: TextLike, *, num_threads: Optional[int] = None) -> List[List[int]]:
        """:meth:`encode_ordinary` of every document, in parallel: a list of id lists."""
        tokens, offsets = self.encode_batch_flat(text, num_threads=num_threads, ordinary=True)
        return self._t.split_lists(tokens, offsets)  # type: ignore[no-any-return]

    # ---------------------------------------------------------------- decoding
    def decode_bytes(self, tokens: Ids) -> bytes:
        """Concatenated bytes of ``tokens``; an unknown id raises ``ValueError`` naming it."""
        return self._t.decode_bytes(_ids_array(tokens))  # type: ignore[no-any-return]

    def decode(self, tokens: Ids, errors: str = "replace") -> str:
        """Decode to text; ``errors`` is passed to ``bytes.decode`` (``"replace"``, ``"strict"``...)."""
        return self.decode_bytes(tokens).decode("utf-8", errors=errors)

    def decode_single_token_bytes(self, token: int) -> bytes:
        """Bytes of one token id (ordinary or special); ``KeyError`` for an unknown id."""
        return self.token_bytes(token)

    def decode_tokens_bytes(self, tokens: Ids) -> List[bytes]:
        """The bytes of each token, as a list."""
        return [self.token_bytes(t) for t in _ids_array(tokens).tolist()]

    def decode_with_offsets(self, tokens: Ids) -> Tuple[str, List[int]]:
        """``(text, offsets)``: ``offsets[i]`` is the index in ``text`` of the character where
        token ``i`` starts (a token starting inside a character gets that character's index).
        The bytes must be valid UTF-8 (``UnicodeDecodeError`` otherwise), as in tiktoken."""
        ids = _ids_array(tokens)
        data = self.decode_bytes(ids)
        text = data.decode("utf-8", errors="strict")
        if not len(ids):
            return text, []
        starts = self.token_byte_offsets(ids).astype(np.int64)
        raw = np.frombuffer(data, dtype=np.uint8)
        lead = np.concatenate([[0], np.cumsum((raw & 0xC0) != 0x80)])  # characters begun before each byte
        inside = np.zeros(len(starts), dtype=np.int64)
        in_range = starts < len(raw)
        inside[in_range] = (raw[starts[in_range]] & 0xC0) == 0x80
        return text, np.maximum(lead[starts] - inside, 0).tolist()

    def _decode_flat_bytes(self, flat: np.ndarray, offsets: np.ndarray) -> List[bytes]:
        return self._t.decode_batch_bytes(  # type: ignore[no-any-return]
            np.ascontiguousarray(flat, dtype=np.int64), np.ascontiguousarray(offsets, dtype=np.int64)
        )

    def _batch_to_flat(self, batch: Union[Sequence[Ids], pa.Array, pa.ChunkedArray]) -> Tuple[np.ndarray, np.ndarray]:
        if isinstance(batch, pa.ChunkedArray):
            batch = batch.combine_chunks()
        if isinstance(batch, (pa.ListArray, pa.LargeListArray)):
            offsets = np.asarray(batch.offsets, dtype=np.int64)
            offsets = offsets - offsets[0]  # flatten() starts at the first offset of a slice
            return np.asarray(batch.flatten(), dtype=np.int64), offsets
        seqs = [_ids_array(x) for x in batch]
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in seqs], out=offsets[1:])
        flat = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
        return flat, offsets

    def decode_bytes_batch(
        self, batch: Union[Sequence[Ids], pa.Array, pa.ChunkedArray], *, num_threads: Optional[int] = None
    ) -> List[bytes]:
        """:meth:`decode_bytes` of every id sequence (or Arrow list array element).
        ``num_threads`` is accepted for tiktoken compatibility; decoding is one fast pass."""
        return self._decode_flat_bytes(*self._batch_to_flat(batch))

    def decode_batch(
        self,
        batch: Union[Sequence[Ids], pa.Array, pa.ChunkedArray],
        *,
        errors: str = "replace",
        num_threads: Optional[int] = None,
    ) -> List[str]:
        """:meth:`decode` of every id sequence (or Arrow list array element), as tiktoken.
        ``num_threads`` is accepted for tiktoken compatibility; decoding is one fast pass.
        For a flat ``(tokens, offsets)`` pair use :meth:`decode_batch_flat`."""
        return [b.decode("utf-8", errors=errors) for b in self.decode_bytes_batch(batch)]

    def decode_batch_flat(self, tokens: Ids, offsets: Ids, *, errors: str = "replace") -> List[str]:
        """Decode the documents of a flat batch (as returned by :meth:`encode_batch_flat`)."""
        raw = self._decode_flat_bytes(_ids_array(tokens), np.asarray(offsets, dtype=np.int64))
        return [b.decode("utf-8", errors=errors) for b in raw]

    def token_byte_values(self) -> List[bytes]:
        """The bytes of every ordinary token, sorted (tiktoken's ``token_byte_values``)."""
        special = set(self._special.values())
        out = []
        for i in range(self.n_vocab):
            if i not in special:
                b = self._t.token_bytes(i)
                if b is not None:
                    out.append(b)
        return sorted(out)

    def token_byte_offsets(self, tokens: Ids) -> npt.NDArray[np.uint64]:
        """UTF-8 byte offset at which each token starts in ``decode_bytes(tokens)``."""
        return self._t.token_offsets(_ids_array(tokens))  # type: ignore[no-any-return]

    def token_bytes(self, token: int) -> bytes:
        """Bytes of one token id (ordinary or special)."""
        b = self._t.token_bytes(int(token))
        if b is None:
            raise KeyError(f"token id {token} is not in the vocabulary")
        return b  # type: ignore[no-any-return]

    def pretokenize(self, text: str) -> List[str]:
        """The pre-tokenized pieces of ``text`` (for inspection)."""
        spans = self._t.pretokenize(text)
        b = text.encode("utf-8")
        return [b[s:e].decode("utf-8") for s, e in spans.tolist()]

    def merges(self) -> npt.NDArray[np.uint32]:
        """Ordered merge list, an ``(m, 3)`` array of ``(left, right, merged)`` token ids."""
        return self._t.merges()  # type: ignore[no-any-return]


def _encoding_spec(name: str) -> Tuple[str, str, Dict[str, int], Optional[int]]:
    """``(rank file, pattern, special tokens, explicit n_vocab)`` of a named encoding."""
    if name in ENCODINGS:
        pat, specials, _ = ENCODINGS[name]
        return name, pat, specials, None
    if name in _DERIVED:
        return _DERIVED[name]
    raise ValueError(f"unknown encoding {name!r}; known: {', '.join(list_encoding_names())}")


def _shipped_ranks(file: str) -> bytes:
    data = _read_maybe_gz(_DATA / f"{file}.tiktoken.gz")
    sha = ENCODINGS[file][2]
    got = hashlib.sha256(data).hexdigest()
    if got != sha:
        raise ValueError(f"shipped rank file {_DATA / file}.tiktoken.gz is corrupt (sha256 {got}, expected {sha}); "
                         "reinstall gristmill")
    return data


_lock = threading.Lock()
_natives: Dict[str, Any] = {}
_encodings: Dict[str, "Encoding"] = {}


def _named_native(name: str) -> Any:
    """The native tokenizer of a named encoding, built once per process (it is immutable)."""
    with _lock:
        native = _natives.get(name)
        if native is None:
            file, pat, specials, n_vocab = _encoding_spec(name)
            native = _native._Tokenizer.from_tiktoken_bytes(
                _shipped_ranks(file), f"{file}.tiktoken", pat, list(specials.items())
            )
            if n_vocab is not None and native.n_vocab != n_vocab:
                raise ValueError(f"encoding {name}: expected {n_vocab} tokens, built {native.n_vocab}")
            _natives[name] = native
        return native


def _unpickle(
    cls: type, name: str, recipe: Tuple[Any, ...], template: Tuple[Tuple[int, ...], Tuple[int, ...]],
    template_error: Optional[str],
) -> Tokenizer:
    kind = recipe[0]
    if kind == "named":
        tok: Tokenizer = cls._wrap(_named_native(recipe[1]), name, recipe)  # type: ignore[attr-defined]
    elif kind == "tiktoken":
        tok = Tokenizer.from_tiktoken(recipe[1], pat_str=recipe[2], special_tokens=recipe[3])
        tok = cls._wrap(tok._t, name, recipe)  # type: ignore[attr-defined]
    elif kind == "ranks":
        native = _native._Tokenizer.from_ranks(list(recipe[1].items()), recipe[2], list(recipe[3].items()))
        tok = cls._wrap(native, name, recipe)  # type: ignore[attr-defined]
    elif kind == "huggingface":
        loaded = Tokenizer.from_huggingface(recipe[1], recipe[2])
        tok = cls._wrap(loaded._t, name, recipe)  # type: ignore[attr-defined]
    else:
        raise ValueError(f"cannot unpickle tokenizer {name!r}: unknown recipe {kind!r}")
    tok._template, tok._template_error = template, template_error
    return tok


class Encoding(Tokenizer):
    """tiktoken's ``Encoding``: the same constructor, methods and results.

    ``Encoding(name, pat_str=..., mergeable_ranks=..., special_tokens=...)`` builds one from a
    ``{token bytes: rank}`` dict; :func:`get_encoding` returns the named OpenAI encodings.

    >>> import gristmill
    >>> ranks = {bytes([b]): b for b in range(256)}
    >>> enc = gristmill.Encoding("bytes", pat_str=r"\\S+|\\s+", mergeable_ranks=ranks, special_tokens={"<|eot|>": 256})
    >>> enc.encode("hi <|eot|>", allowed_special="all")
    [104, 105, 32, 256]
    """

    def __init__(
        self,
        name: str,
        *,
        pat_str: str,
        mergeable_ranks: Dict[bytes, int],
        special_tokens: Dict[str, int],
        explicit_n_vocab: Optional[int] = None,
    ) -> None:
        if explicit_n_vocab is not None:
            ids = list(mergeable_ranks.values()) + list(special_tokens.values())
            if len(mergeable_ranks) + len(special_tokens) != explicit_n_vocab or max(ids, default=-1) != explicit_n_vocab - 1:
                raise ValueError(
                    f"encoding {name}: explicit_n_vocab={explicit_n_vocab} does not match the "
                    f"{len(mergeable_ranks)} ranks + {len(special_tokens)} special tokens (largest id {max(ids, default=-1)})"
                )
        native = _native._Tokenizer.from_ranks(list(mergeable_ranks.items()), pat_str, list(special_tokens.items()))
        Tokenizer.__init__(self, native, name)
        self._recipe = ("ranks", dict(mergeable_ranks), pat_str, dict(special_tokens))

    def __repr__(self) -> str:
        return f"<gristmill.Encoding {self.name!r}>"


def list_encoding_names() -> List[str]:
    """Names :func:`get_encoding` accepts (every OpenAI encoding tiktoken knows).

    >>> list_encoding_names()[:3]
    ['gpt2', 'r50k_base', 'p50k_base']
    """
    return ["gpt2", "r50k_base", "p50k_base", "p50k_edit", "cl100k_base", "o200k_base", "o200k_harmony"]


def get_encoding(encoding_name: str) -> Encoding:
    """The named encoding, built once per process from the rank files shipped in gristmill
    (no network). Same names and results as ``tiktoken.get_encoding``.

    >>> get_encoding("o200k_base").encode("tiktoken")
    [83, 8251, 2488]
    """
    if encoding_name not in ENCODINGS and encoding_name not in _DERIVED:
        raise ValueError(f"unknown encoding {encoding_name!r}; known: {', '.join(list_encoding_names())}")
    enc = _encodings.get(encoding_name)
    if enc is None:
        native = _named_native(encoding_name)
        with _lock:
            enc = _encodings.setdefault(encoding_name, Encoding._wrap(native, encoding_name, ("named", encoding_name)))
    return enc


def encoding_name_for_model(model_name: str) -> str:
    """tiktoken's encoding name for an OpenAI model name (exact names, then dated-snapshot
    and fine-tune prefixes); ``KeyError`` for an unknown model.

    >>> encoding_name_for_model("gpt-4-0613")
    'cl100k_base'
    """
    if model_name in _MODEL_TO_ENCODING:
        return _MODEL_TO_ENCODING[model_name]
    for prefix, name in _MODEL_PREFIX_TO_ENCODING.items():
        if model_name.startswith(prefix):
            return name
    raise KeyError(
        f"Could not automatically map {model_name!r} to an encoding; "
        f"use gristmill.get_encoding with one of {', '.join(list_encoding_names())}"
    )


def encoding_for_model(model_name: str) -> Encoding:
    """The encoding an OpenAI model uses (``tiktoken.encoding_for_model``)."""
    return get_encoding(encoding_name_for_model(model_name))


def _hf_merge(m: Any, i: int, src: str) -> Tuple[str, str]:
    if isinstance(m, str):
        parts = m.split(" ")
        if len(parts) != 2:
            raise ValueError(f"{src}: merge {i} {m!r} is not two tokens separated by one space")
        return parts[0], parts[1]
    if isinstance(m, (list, tuple)) and len(m) == 2 and all(isinstance(x, str) for x in m):
        return m[0], m[1]
    raise ValueError(f"{src}: merge {i} must be 'a b' or [a, b], got {m!r}")


def _wrap_documents(
    tokens: npt.NDArray[np.uint32], offsets: npt.NDArray[np.int64], pre: Sequence[int], post: Sequence[int]
) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]:
    """Insert ``pre`` before and ``post`` after every document of a flat batch (vectorised)."""
    k1, k2 = len(pre), len(post)
    if not k1 and not k2:
        return tokens, offsets
    n = len(offsets) - 1
    counts = np.diff(offsets)
    new_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts + (k1 + k2), out=new_offsets[1:])
    out = np.empty(int(new_offsets[-1]), np.uint32)
    doc = np.repeat(np.arange(n, dtype=np.int64), counts)
    out[np.arange(len(tokens), dtype=np.int64) + (doc + 1) * k1 + doc * k2] = tokens
    for i, t in enumerate(pre):
        out[new_offsets[:-1] + i] = t
    for i, t in enumerate(post):
        out[new_offsets[1:] - k2 + i] = t
    return out, new_offsets


def _hf_template(pp: Any, where: str) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """``(ids before, ids after)`` one sequence for a tokenizer.json post-processor."""
    if not pp:
        return (), ()
    kind = pp.get("type")
    if kind == "ByteLevel":  # only adjusts offsets
        return (), ()
    if kind == "Sequence":
        pre: Tuple[int, ...] = ()
        post: Tuple[int, ...] = ()
        for step in pp.get("processors") or []:
            a, b = _hf_template(step, where)
            pre, post = a + pre, post + b  # each step wraps the result of the ones before

        return pre, post
    if kind in ("RobertaProcessing", "BertProcessing"):
        try:
            return (int(pp["cls"][1]),), (int(pp["sep"][1]),)
        except (KeyError, IndexError, TypeError, ValueError):
            raise ValueError(f"{where}: post_processor {kind} needs cls and sep as [token, id]") from None
    if kind == "TemplateProcessing":
        specials = pp.get("special_tokens") or {}
        before: List[int] = []
        after: List[int] = []
        seen_a = False
        for piece in pp.get("single") or []:
            if "Sequence" in piece:
                if piece["Sequence"].get("id") != "A" or seen_a:
                    raise ValueError(f"{where}: post_processor template for one sequence must contain $A once")
                seen_a = True
            elif "SpecialToken" in piece:
                name = piece["SpecialToken"].get("id")
                if name not in specials:
                    raise ValueError(f"{where}: post_processor template uses {name!r}, "
                                     "which is not in its special_tokens")
                (after if seen_a else before).extend(int(i) for i in specials[name]["ids"])
            else:
                raise ValueError(f"{where}: post_processor template item {piece!r} is not understood")
        if not seen_a:
            raise ValueError(f"{where}: post_processor template for one sequence has no $A")
        return tuple(before), tuple(after)
    raise ValueError(f"{where}: post_processor {kind!r} is not supported "
                     "(TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence are)")


def _hf_normalizer(spec: Any, where: str) -> bool:
    """True for an NFC normalizer (alone or as the only step of a Sequence), False for none."""
    if not spec:
        return False
    steps = spec.get("normalizers") if spec.get("type") == "Sequence" else [spec]
    kinds = [s.get("type") if isinstance(s, dict) else None for s in steps or []]
    if kinds == ["NFC"]:
        return True
    if not kinds:
        return False
    raise ValueError(f"{where}: normalizer {'+'.join(str(k) for k in kinds)} is not supported "
                     "(only NFC, as in Qwen2; byte-level BPE models normally have none)")


def _hf_pattern(pre: Any, src: str) -> str:
    """The single split regex equivalent to a supported byte-level pre-tokenizer."""
    if pre is None:
        raise ValueError(f"{src}: no pre_tokenizer; only byte-level BPE (ByteLevel pre-tokenizer) is supported")
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    pattern: Optional[str] = None
    saw_byte_level = False
    for st in steps:
        t = st.get("type")
        if t == "Split":
            if saw_byte_level or pattern is not None:
                raise ValueError(f"{src}: only one Split before ByteLevel is supported")
            pat = st.get("pattern", {})
            if "Regex" not in pat:
                raise ValueError(f"{src}: Split pattern {pat!r} is not supported (only Regex)")
            if st.get("behavior", "Isolated") != "Isolated" or st.get("invert"):
                raise ValueError(f"{src}: Split behavior {st.get('behavior')!r}/invert is not supported")
            pattern = pat["Regex"]
        elif t == "ByteLevel":
            if st.get("add_prefix_space"):
                raise ValueError(f"{src}: ByteLevel(add_prefix_space=True) is not supported")
            if st.get("use_regex", True):
                if pattern is not None:
                    raise ValueError(f"{src}: Split followed by ByteLevel(use_regex=True) is not supported")
                pattern = GPT2_PATTERN
            saw_byte_level = True
        else:
            raise ValueError(f"{src}: pre-tokenizer {t!r} is not supported")
    if not saw_byte_level:
        raise ValueError(f"{src}: no ByteLevel pre-tokenizer; only byte-level BPE is supported")
    if pattern is None:
        raise ValueError(f"{src}: ByteLevel(use_regex=False) without a Split regex is not supported")
    return pattern


# ------------------------------------------------------------------------------------------------
# corpus -> packed token shards


def _special_or_id(tok: "Tokenizer", value: Union[None, int, str], what: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        i = int(value)
        if not 0 <= i < tok.n_vocab:
            raise ValueError(f"{what} id {i} is outside the vocabulary (n_vocab={tok.n_vocab})")
        return i
    if value in tok.special_tokens:
        return tok.special_tokens[value]
    raise ValueError(f"{what} {value!r} is not a special token of {tok.name} (known: {', '.join(tok.special_tokens)})")


def tokenize_corpus(
    corpus: Any,
    tokenizer: "Tokenizer",
    out_dir: Union[str, "os.PathLike[str]"],
    *,
    eos: Union[None, int, str] = None,
    bos: Union[None, int, str] = None,
    shard_tokens: int = 1 << 28,
    num_threads: Optional[int] = None,
    progress: Any = None,
    buckets: Optional[Tuple[int, int]] = None,
) -> Dict[str, Any]:
    """Tokenize a :class:`gristmill.io.Corpus` into packed shards under ``out_dir``.

    Writes ``tokens-NNNNN.bin`` (raw little-endian ``uint16`` when the vocabulary fits, else
    ``uint32``; documents are never split across shards), ``tokens-NNNNN.idx.npy`` (``int64``
    token offsets, ``n_docs + 1`` per shard) and ``manifest.json`` (written last). Every file is
    written under a temporary name and renamed into place. Special-token text in documents is
    encoded as ordinary text. Returns the manifest.

    Read back with ``np.memmap(out / shard["tokens"], dtype=manifest["dtype"], mode="r")``.

    ``buckets=(lo, hi)`` writes length buckets instead (Dataset Decomposition, Pouransari et
    al. 2024): every document (with its bos/eos) of n tokens has n − 1 next-token targets;
    they are cut, from the start, into chunks of 2^hi targets while at least that many
    remain, then one chunk per set bit of the rest, largest first, down to 2^lo; the last
    fewer-than-2^lo targets are dropped. A chunk of 2^k targets holds 2^k + 1 tokens (inputs
    and shifted targets; consecutive chunks share one token), so every kept target is
    predicted exactly once. Bucket k goes to ``tokens-bKK-NNNNN.bin`` / ``.idx.npy`` (chunk
    offsets); the manifest lists, per bucket, its chunks, tokens and shards, and the tokens
    dropped. Example: 200 tokens → 199 targets = 128 + 64 + 7 → chunks of 129 and 65 tokens
    with ``buckets=(6, 13)``, 7 targets dropped.
    """
    from gristmill.io import Corpus, check_not_over_inputs, staged_outputs, write_json

    out = Path(out_dir)
    if isinstance(corpus, Corpus):
        check_not_over_inputs(corpus, out, writes=[out / "manifest.json"])
    out.mkdir(parents=True, exist_ok=True)
    if shard_tokens < 1:
        raise ValueError("shard_tokens must be positive")
    dtype = token_dtype(tokenizer)
    eos_id = _special_or_id(tokenizer, eos, "eos")
    bos_id = _special_or_id(tokenizer, bos, "bos")
    if buckets is not None:
        lo, hi = _check_buckets(buckets)
        with staged_outputs():
            writers = {k: _ShardWriter(out, dtype, shard_tokens, lambda i, first, k=k: f"tokens-b{k:02d}-{i:05d}.bin",
                                       empty_shard=False) for k in range(lo, hi + 1)}
            docs = dropped = 0
            try:
                for batch in corpus.batches():
                    toks, offs = tokenizer.encode_batch_flat(batch.texts, num_threads=num_threads, ordinary=True)
                    toks, offs = _with_specials(toks, offs, bos_id, eos_id)
                    starts, dropped_b = bucket_chunks(offs, lo, hi)
                    dropped += dropped_b
                    docs += len(offs) - 1
                    for k, st in starts.items():
                        if len(st):
                            idx = st[:, None] + np.arange((1 << k) + 1)[None, :]
                            writers[k].add(toks[idx.ravel()], np.arange(len(st) + 1, dtype=np.int64) * ((1 << k) + 1))
                    if progress is not None:
                        progress.update(len(offs) - 1)
            except BaseException:
                for w in writers.values():
                    w.__exit__(*sys.exc_info())
                raise
            for w in writers.values():
                w.__exit__(None, None, None)
            manifest = tokens_manifest(tokenizer, dtype, eos_id, bos_id, [])
            manifest.pop("shards")
            manifest.update({
                "format": "gristmill-token-buckets-v1", "total_docs": docs,
                "total_tokens": int(sum(sh["n_tokens"] for w in writers.values() for sh in w.shards)),
                "dropped_targets": int(dropped),
                "buckets": [{"log2": k, "seq_len": 1 << k, "chunk_tokens": (1 << k) + 1,
                             "n_chunks": int(sum(sh["n_docs"] for sh in w.shards)),
                             "n_tokens": int(sum(sh["n_tokens"] for sh in w.shards)),
                             "shards": [{"tokens": sh["tokens"], "index": sh["index"], "first_chunk": sh["first_doc"],
                                         "n_chunks": sh["n_docs"], "n_tokens": sh["n_tokens"]} for sh in w.shards]}
                            for k, w in writers.items()],
            })
            write_json(out / "manifest.json", manifest)
        return manifest
    # every shard and the manifest appear together, or none of them (see staged_outputs)
    with staged_outputs():
        writer = _ShardWriter(out, dtype, shard_tokens, lambda k, first: f"tokens-{k:05d}.bin")
        with writer:
            for batch in corpus.batches():
                toks, offs = tokenizer.encode_batch_flat(batch.texts, num_threads=num_threads, ordinary=True)
                writer.add(*_with_specials(toks, offs, bos_id, eos_id))
                if progress is not None:
                    progress.update(len(offs) - 1)
        manifest = tokens_manifest(tokenizer, dtype, eos_id, bos_id, writer.shards)
        write_json(out / "manifest.json", manifest)
    return manifest


def _check_buckets(buckets: Any) -> Tuple[int, int]:
    try:
        lo, hi = (int(b) for b in buckets)
    except (TypeError, ValueError):
        raise ValueError(f"buckets must be (min_log2, max_log2), got {buckets!r}") from None
    if not 0 <= lo <= hi <= 30:
        raise ValueError(f"buckets must satisfy 0 <= min_log2 <= max_log2 <= 30, got {lo}..{hi}")
    return lo, hi


def bucket_chunks(offsets: np.ndarray, lo: int, hi: int) -> Tuple[Dict[int, np.ndarray], int]:
    """Dataset-decomposition chunks of documents given by flat token ``offsets``: for each
    k in ``lo..hi`` the start positions (into the flat tokens) of the chunks of 2^k targets
    (2^k + 1 tokens), in document order; and the number of targets dropped (see
    :func:`tokenize_corpus`, ``buckets``)."""
    offs = np.asarray(offsets, dtype=np.int64)
    base = offs[:-1]
    m = np.maximum(np.diff(offs) - 1, 0)  # next-token targets per document
    big = 1 << hi
    q, r = m // big, m % big
    out: Dict[int, np.ndarray] = {}
    # 2^hi chunks: q per document, back to back from its start
    rep = np.repeat(np.arange(len(q)), q)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(q) - q, q)
    out[hi] = base[rep] + within * big
    after = base + q * big
    for k in range(hi - 1, lo - 1, -1):
        has = (r >> k) & 1 == 1
        # the larger set bits of the rest come first
        out[k] = after[has] + ((r[has] >> (k + 1)) << (k + 1))
    dropped = int((r & ((1 << lo) - 1)).sum())
    return dict(sorted(out.items())), dropped


def token_dtype(tokenizer: "Tokenizer") -> np.dtype:
    """The dtype of packed token shards: ``uint16`` when the vocabulary fits, else ``uint32``."""
    return np.dtype("<u2") if tokenizer.n_vocab <= 1 << 16 else np.dtype("<u4")


def tokens_manifest(tokenizer: "Tokenizer", dtype: np.dtype, eos_id: Optional[int], bos_id: Optional[int],
                    shards: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The ``manifest.json`` of packed token shards (see :func:`tokenize_corpus`)."""
    return {
        "format": "gristmill-tokens-v1",
        "tokenizer": tokenizer.name,
        "n_vocab": tokenizer.n_vocab,
        "dtype": dtype.name,
        "byteorder": "little",
        "eos": eos_id,
        "bos": bos_id,
        "total_docs": int(sum(s["n_docs"] for s in shards)),
        "total_tokens": int(sum(s["n_tokens"] for s in shards)),
        "shards": shards,
    }


def _with_specials(toks: np.ndarray, offs: np.ndarray, bos_id: Optional[int],
                   eos_id: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Flat tokens + offsets with ``bos_id`` prepended / ``eos_id`` appended to every document."""
    k = int(eos_id is not None) + int(bos_id is not None)
    if not k:
        return toks, offs
    n = len(offs) - 1
    lens = np.diff(offs)
    new_off = offs + np.arange(n + 1, dtype=np.int64) * k
    packed = np.empty(int(new_off[-1]), dtype=np.uint32)
    shift = np.repeat(np.arange(n, dtype=np.int64) * k + (1 if bos_id is not None else 0), lens)
    packed[np.arange(len(toks), dtype=np.int64) + shift] = toks
    if bos_id is not None:
        packed[new_off[:-1]] = bos_id
    if eos_id is not None:
        packed[new_off[1:] - 1] = eos_id
    return packed, new_off


class _ShardWriter:
    """Append documents' tokens to packed shards in ``folder``: ``NAME.bin`` + ``NAME.idx.npy``
    per shard, each written atomically, a new shard once one would pass ``shard_tokens`` (a
    document is never split; one longer than that gets a shard of its own). ``name(k, first_doc)``
    names the k-th shard. ``shards`` lists what was written, for the manifest. As a context
    manager it closes the last shard on success (writing an empty one if nothing was added)
    and removes the open one on error."""

    def __init__(self, folder: Path, dtype: np.dtype, shard_tokens: int, name: Any, first_doc: int = 0,
                 empty_shard: bool = True) -> None:
        if shard_tokens < 1:
            raise ValueError("shard_tokens must be positive")
        self.folder, self.dtype, self.shard_tokens, self.name = folder, dtype, shard_tokens, name
        self.empty_shard = empty_shard
        self.shards: List[Dict[str, Any]] = []
        self.docs = first_doc
        self._ctx: Any = None

    def _open(self) -> None:
        from gristmill.io import atomic_write

        self._bin = self.name(len(self.shards), self.docs)
        self._ctx = atomic_write(self.folder / self._bin)
        self._f = self._ctx.__enter__()
        self._offsets = [np.zeros(1, dtype=np.int64)]
        self._n = 0
        self._first = self.docs

    def _close(self) -> None:
        from gristmill.io import atomic_write

        self._ctx.__exit__(None, None, None)
        self._ctx = None
        idx_name = self._bin[: -len(".bin")] + ".idx.npy"
        with atomic_write(self.folder / idx_name) as f:
            buf = pa.BufferOutputStream()
            np.save(_PyArrowWriter(buf), np.concatenate(self._offsets))
            f.write(buf.getvalue())
        self.shards.append({"tokens": self._bin, "index": idx_name, "first_doc": self._first,
                            "n_docs": self.docs - self._first, "n_tokens": self._n})

    def add(self, toks: np.ndarray, offs: np.ndarray) -> None:
        n = len(offs) - 1
        i = 0
        while i < n:
            if self._ctx is None:
                self._open()
            room = self.shard_tokens - self._n
            j = int(np.searchsorted(offs, offs[i] + room, side="right")) - 1
            j = min(max(j, i + 1 if self._n == 0 else i), n)
            if j == i:
                self._close()
                continue
            self._f.write(toks[offs[i] : offs[j]].astype(self.dtype, copy=False).tobytes())
            self._offsets.append(offs[i + 1 : j + 1] - offs[i] + self._n)
            self._n += int(offs[j] - offs[i])
            self.docs += j - i
            i = j

    def __enter__(self) -> "_ShardWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            if self._ctx is not None:
                self._ctx.__exit__(exc_type, exc, tb)
            return
        if self._ctx is None and not self.shards and self.empty_shard:
            self._open()
        if self._ctx is not None:
            self._close()


class _PyArrowWriter:
    """File-like adapter so ``np.save`` can write into a pyarrow buffer."""

    def __init__(self, stream: Any) -> None:
        self.s = stream

    def write(self, b: Any) -> int:
        self.s.write(bytes(b))
        return len(b)
