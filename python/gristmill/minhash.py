"""Near-duplicate detection with MinHash + LSH.

All the work (shingling, hashing, band keys, candidate grouping, connected components,
verification) runs in the Rust core, in parallel over documents; Python only checks
arguments and moves buffers.

Pre-made shingles (token n-grams from any tokenizer, for example) go through
:meth:`MinHasher.signatures_of_shingles`.

Shingles (see :func:`shingles`): the text is normalised — optional NFKC, lower-casing,
punctuation/symbols turned into word separators (Unicode-aware), optional digit folding
(every numeric character becomes ``0``), whitespace runs folded to one space — then cut
into word ``ngram``-grams (default 5), character ``ngram``-grams, or token ``ngram``-grams
of the normalised text through a :class:`gristmill.Tokenizer` (``unit="token"``).
A document with fewer than ``ngram`` words yields one shingle, its whole normalised text;
a document that normalises to nothing (empty, whitespace, punctuation only) has an empty
shingle set, gets the all-maximum signature and is never clustered with anything.

Hashing schemes (``compat``):

* ``None`` (default, fastest): xxh3-64 of the shingle, split into 32-bit halves
  ``lo, hi``; hash function ``i`` is ``lo + a_i·hi + b_i mod 2^32`` with ``a_i``, ``b_i``
  arithmetic progressions drawn from the seed (pairwise-independent functions, evaluated
  with one add and one min each); ``uint32`` signatures.
* ``"datasketch"``: bit-identical to ``datasketch.MinHash(num_perm, seed, scheme=...)``
  updated with the UTF-8 encoded shingles; ``scheme`` is ``"affine32"`` (datasketch ≥ 2.0
  default, ``uint32``), ``"affine64"`` (``uint64``) or ``"legacy"`` (datasketch < 2.0,
  ``uint64`` values below 2^32).

>>> from gristmill.minhash import MinHasher, jaccard_estimate
>>> mh = MinHasher(num_perm=64, ngram=2)
>>> sig = mh.signatures(["the cat sat on the mat", "The cat sat on the mat!", "something else"])
>>> sig.shape, sig.dtype.name
((3, 64), 'uint32')
>>> float(jaccard_estimate(sig[0], sig[1]))
1.0
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa

from gristmill import _native, _progress
from gristmill._arrow import TextLike, as_string_array, string_buffers
from gristmill._threads import num_threads as _num_threads

__all__ = [
    "MinHasher",
    "MinHashIndex",
    "MinHashDedupResult",
    "dedup_minhash",
    "jaccard_estimate",
    "lsh_params",
    "shingles",
    "collision_probability",
]

_SCHEMES = ("affine32", "affine64", "legacy")
#: default LSH weights of :func:`dedup_minhash` (recall-oriented, see there)
DEDUP_WEIGHTS = (0.05, 0.95)
_MAX_PERM = 1 << 16


def _check_int(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    v = int(v)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {v}")
    return v


def _check_threshold(threshold: Any) -> float:
    t = float(threshold)
    if not 0.0 < t < 1.0:
        raise ValueError(f"threshold must be strictly between 0 and 1, got {threshold}")
    return t


def datasketch_permutations(num_perm: int, seed: int, scheme: str = "affine32") -> Tuple[np.ndarray, np.ndarray]:
    """Permutation parameters ``(a, b)`` drawn exactly as ``datasketch.MinHash`` draws them
    (numpy ``RandomState(seed)``), as ``uint64`` arrays. Parameter generation only; the
    hashing itself happens in Rust."""
    gen = np.random.RandomState(seed)
    if scheme == "legacy":
        p = np.uint64((1 << 61) - 1)
        ab = np.array(
            [(gen.randint(1, p, dtype=np.uint64), gen.randint(0, p, dtype=np.uint64)) for _ in range(num_perm)],
            dtype=np.uint64,
        ).reshape(num_perm, 2)
        return np.ascontiguousarray(ab[:, 0]), np.ascontiguousarray(ab[:, 1])
    width = 32 if scheme == "affine32" else 64
    dtype = np.uint32 if width == 32 else np.uint64
    a = gen.randint(0, 1 << (width - 1), num_perm, dtype=dtype) * dtype(2) + dtype(1)
    b = gen.randint(0, 1 << width, num_perm, dtype=dtype)
    return a.astype(np.uint64), b.astype(np.uint64)


class MinHasher:
    """Computes MinHash signatures of many documents at once.

    Args:
        num_perm: number of permutations (signature length), 1 … 65536.
        seed: permutation seed (with ``compat="datasketch"``, the same seed as datasketch).
        ngram: shingle size in words (``unit="word"``), characters (``unit="char"``) or
            tokens (``unit="token"``).
        unit: ``"word"``, ``"char"`` or ``"token"``: n-grams of the token ids of the
            normalised text encoded by ``tokenizer`` (``encode_ordinary``); each token
            shingle is hashed as its ids' little-endian ``uint32`` bytes, so with
            ``compat="datasketch"`` the signature equals datasketch updated with
            ``np.asarray(ids[i:i+ngram], "<u4").tobytes()``. For raw-text tokens pass
            ``lowercase=False, strip_punct=False`` (whitespace runs still fold to one space).
        tokenizer: with ``unit="token"``: a :class:`gristmill.Tokenizer` or the name of a
            bundled encoding (``"cl100k_base"``, ``"o200k_base"``, ...).
        compat: ``None`` (fast scheme) or ``"datasketch"``.
        scheme: with ``compat="datasketch"``, datasketch's ``scheme``: ``"affine32"``
            (default, as datasketch ≥ 2.0), ``"affine64"`` or ``"legacy"``.
        lowercase: lower-case the text (Unicode-aware).
        strip_punct: treat every character that is neither alphanumeric nor whitespace as a
            word separator.
        fold_digits: replace every numeric character by ``0``.
        nfkc: apply Unicode NFKC normalisation first.
        num_threads: worker threads (``None``: all cores; ``threads`` is its deprecated name).

    >>> mh = MinHasher(num_perm=16, compat="datasketch", ngram=1)
    >>> mh.shingles("Hello, World")
    ['hello', 'world']
    """

    def __init__(
        self,
        num_perm: int = 128,
        seed: int = 1,
        ngram: int = 5,
        unit: str = "word",
        compat: Optional[str] = None,
        *,
        scheme: Optional[str] = None,
        lowercase: bool = True,
        strip_punct: bool = True,
        fold_digits: bool = False,
        nfkc: bool = False,
        tokenizer: Any = None,
        num_threads: Optional[int] = None,
        threads: Optional[int] = None,
    ):
        self.num_perm = _check_int("num_perm", num_perm, 1, _MAX_PERM)
        self.seed = _check_int("seed", seed, 0, (1 << 32) - 1 if compat == "datasketch" else (1 << 64) - 1)
        self.ngram = _check_int("ngram", ngram, 1, 1 << 20)
        if unit not in ("word", "char", "token"):
            raise ValueError(f"unit must be 'word', 'char' or 'token', got {unit!r}")
        self.unit = unit
        self.tokenizer = _resolve_tokenizer(unit, tokenizer)
        if compat not in (None, "datasketch"):
            raise ValueError(f"compat must be None or 'datasketch', got {compat!r}")
        self.compat = compat
        if compat is None:
            if scheme not in (None, "fast"):
                raise ValueError("scheme applies only with compat='datasketch'")
            self.scheme = "fast"
            self._a, self._b = _native.minhash_fast_params(self.num_perm, self.seed)
        else:
            scheme = scheme or "affine32"
            if scheme not in _SCHEMES:
                raise ValueError(f"scheme must be one of {_SCHEMES}, got {scheme!r}")
            self.scheme = scheme
            self._a, self._b = datasketch_permutations(self.num_perm, self.seed, scheme)
        self.lowercase = bool(lowercase)
        self.strip_punct = bool(strip_punct)
        self.fold_digits = bool(fold_digits)
        self.nfkc = bool(nfkc)
        self.num_threads = _num_threads(num_threads, threads, where="MinHasher")

    @property
    def threads(self) -> Optional[int]:
        """Deprecated name of :attr:`num_threads`."""
        return self.num_threads

    @property
    def dtype(self) -> np.dtype:
        """``uint32`` or ``uint64``, the dtype of the signatures."""
        return np.dtype(np.uint64 if self.scheme in ("affine64", "legacy") else np.uint32)

    @property
    def empty_value(self) -> int:
        """The value of every entry of an empty document's signature."""
        return (1 << 32) - 1 if self.scheme in ("fast", "affine32", "legacy") else (1 << 64) - 1

    def _shingle_spec(self) -> Tuple[str, int, bool, bool, bool, bool, Any]:
        tok = self.tokenizer._t if self.tokenizer is not None else None
        return (self.unit, self.ngram, self.lowercase, self.strip_punct, self.fold_digits, self.nfkc, tok)

    def describe(self) -> Dict[str, Any]:
        """Parameters that determine the signatures (stored in index headers and reports)."""
        return {
            "num_perm": self.num_perm, "seed": self.seed, "scheme": self.scheme, "ngram": self.ngram,
            "unit": self.unit, "lowercase": self.lowercase, "strip_punct": self.strip_punct,
            "fold_digits": self.fold_digits, "nfkc": self.nfkc,
            **({"tokenizer": self.tokenizer.name} if self.tokenizer is not None else {}),
        }

    def signatures(self, texts: TextLike, *, num_threads: Optional[int] = None,
                   threads: Optional[int] = None) -> np.ndarray:
        """Signatures of ``texts`` (a pyarrow string array or a sequence of ``str``) as a
        ``[len(texts), num_perm]`` array of :attr:`dtype`."""
        nt = _num_threads(num_threads, threads, where="MinHasher.signatures")
        nt = nt if nt is not None else self.num_threads
        if isinstance(texts, (list, tuple)):
            # each str's UTF-8 is borrowed in place: no Arrow copy of the batch
            return _native.minhash_signatures_of_strs(texts, self._shingle_spec(), self.scheme, self._a, self._b, nt)
        docs = string_buffers(texts)
        return _native.minhash_signatures(docs, self._shingle_spec(), self.scheme, self._a, self._b, nt)

    def signatures_of_shingles(self, shingle_sets: Any, *, num_threads: Optional[int] = None,
                               threads: Optional[int] = None) -> np.ndarray:
        """Signatures of pre-made shingle sets (e.g. token n-grams from your own tokenizer):
        a sequence of sequences of ``str``, or a pyarrow ``list<string>`` array. Each shingle
        is hashed as given (UTF-8), without normalisation; with ``compat="datasketch"`` the
        result equals datasketch updated with the encoded shingles.

        >>> mh = MinHasher(num_perm=8, ngram=2)
        >>> bool((mh.signatures_of_shingles([["the cat", "cat sat"]]) == mh.signatures(["The cat sat"])).all())
        True
        """
        nt = _num_threads(num_threads, threads, where="MinHasher.signatures_of_shingles")
        nt = nt if nt is not None else self.num_threads
        if isinstance(shingle_sets, pa.ChunkedArray):
            shingle_sets = shingle_sets.combine_chunks()
        if isinstance(shingle_sets, pa.Array):
            if not (pa.types.is_list(shingle_sets.type) or pa.types.is_large_list(shingle_sets.type)):
                raise TypeError(f"shingle_sets must be a list<string> array, got {shingle_sets.type}")
            if shingle_sets.null_count:
                raise TypeError("shingle_sets contains a null set")
            offsets = np.asarray(shingle_sets.offsets, dtype=np.int64)
            items = shingle_sets.values
            offsets = offsets - offsets[0] if len(offsets) else np.zeros(1, np.int64)
            items = items.slice(int(np.asarray(shingle_sets.offsets)[0]) if len(shingle_sets) else 0)
        else:
            if isinstance(shingle_sets, (str, bytes)):
                raise TypeError("shingle_sets must be a sequence of sequences of str")
            # Python lists: the native side borrows each str's UTF-8 and hashes it in place
            return _native.minhash_signatures_of_lists(shingle_sets, self.scheme, self._a, self._b, nt)
        return _native.minhash_signatures_of_sets(
            string_buffers(items, what="shingles"), np.ascontiguousarray(offsets), self.scheme, self._a, self._b, nt)

    def shingles(self, text: str) -> List[str]:
        """The shingles of one document, in document order (repeats included). With
        ``unit="token"`` use :meth:`token_shingles`."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if self.unit == "token":
            raise ValueError("token shingles are token ids: use token_shingles()")
        return _native.minhash_shingles(text, self._shingle_spec())

    def token_shingles(self, text: str) -> List[Tuple[int, ...]]:
        """With ``unit="token"``: the token-id n-grams of one document, in document order.

        >>> mh = MinHasher(num_perm=8, ngram=2, unit="token", tokenizer="cl100k_base")
        >>> mh.token_shingles("Hello, world")
        [(15339, 1917)]
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if self.unit != "token":
            raise ValueError("token_shingles needs unit='token'")
        return [tuple(s) for s in _native.minhash_token_shingles(text, self._shingle_spec())]

    def shingle_counts(self, texts: TextLike) -> np.ndarray:
        """Number of distinct shingles of each document (``uint32``); 0 = empty set."""
        return _native.minhash_shingle_counts(string_buffers(texts), self._shingle_spec(), self.num_threads)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"MinHasher({args})"


def _resolve_tokenizer(unit: str, tokenizer: Any) -> Any:
    """The :class:`gristmill.Tokenizer` for ``unit="token"`` (a name loads a bundled encoding)."""
    from gristmill.tokenizer import ENCODINGS, Tokenizer

    if unit != "token":
        if tokenizer is not None:
            raise ValueError("tokenizer applies only with unit='token'")
        return None
    if tokenizer is None:
        raise ValueError("unit='token' needs tokenizer= (a gristmill.Tokenizer or an encoding name)")
    if isinstance(tokenizer, str):
        if tokenizer not in ENCODINGS:
            raise ValueError(f"unknown encoding {tokenizer!r}; pass a gristmill.Tokenizer or one of {sorted(ENCODINGS)}")
        return Tokenizer.from_tiktoken(tokenizer)
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be a gristmill.Tokenizer or an encoding name, got {type(tokenizer).__name__}")
    return tokenizer


#: Version of the fast scheme's hash functions, stored in index headers: version 1
#: (``a_i·fold(h) + b_i``, before 2026-11) indexes are refused with a message naming it.
FAST_SCHEME_VERSION = 2


def _index_meta(hasher: "MinHasher") -> Dict[str, Any]:
    meta = hasher.describe()
    if hasher.scheme == "fast":
        meta["fast_scheme_version"] = FAST_SCHEME_VERSION
    return meta


def shingles(
    text: str,
    ngram: int = 5,
    unit: str = "word",
    *,
    lowercase: bool = True,
    strip_punct: bool = True,
    fold_digits: bool = False,
    nfkc: bool = False,
) -> List[str]:
    """The shingles gristmill hashes for ``text`` (see the module documentation).

    >>> shingles("The quick, brown fox!", ngram=2)
    ['the quick', 'quick brown', 'brown fox']
    >>> shingles("Ab c", ngram=3, unit="char")
    ['ab ', 'b c']
    >>> shingles("too short", ngram=5)
    ['too short']
    >>> shingles(" ... ")
    []
    """
    return MinHasher(num_perm=1, ngram=ngram, unit=unit, lowercase=lowercase, strip_punct=strip_punct,
                     fold_digits=fold_digits, nfkc=nfkc).shingles(text)


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> Union[float, np.ndarray]:
    """Fraction of equal entries: the MinHash estimate of Jaccard similarity. Rows of 2-D
    inputs are compared pairwise (broadcasting), giving an array."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"signatures have different lengths: {a.shape[-1]} and {b.shape[-1]}")
    r = np.mean(a == b, axis=-1)
    return float(r) if np.ndim(r) == 0 else r


def lsh_params(threshold: float, num_perm: int = 128, weights: Tuple[float, float] = (0.5, 0.5)) -> Tuple[int, int]:
    """``(bands, rows)`` minimising ``weights[0]·P(false positive) + weights[1]·P(false
    negative)`` at ``threshold``, like datasketch's ``MinHashLSH``.

    >>> lsh_params(0.8, 128)
    (9, 13)
    """
    t = _check_threshold(threshold)
    n = _check_int("num_perm", num_perm, 1, _MAX_PERM)
    if len(weights) != 2:
        raise ValueError("weights must be a pair (false_positive_weight, false_negative_weight)")
    return _native.lsh_optimal_params(t, n, float(weights[0]), float(weights[1]))


def collision_probability(s: Union[float, np.ndarray], bands: int, rows: int) -> Union[float, np.ndarray]:
    """Probability ``1 − (1 − s^rows)^bands`` that a pair with Jaccard ``s`` becomes a
    candidate (the LSH S-curve)."""
    return 1.0 - (1.0 - np.asarray(s, dtype=float) ** rows) ** bands


def _resolve_bands(threshold: float, num_perm: int, bands: Optional[int], rows: Optional[int],
                   weights: Tuple[float, float]) -> Tuple[int, int]:
    if bands is None and rows is None:
        return lsh_params(threshold, num_perm, weights)
    if bands is None or rows is None:
        if rows is not None:
            rows = _check_int("rows", rows, 1, num_perm)
            bands = num_perm // rows
        else:
            bands = _check_int("bands", bands, 1, num_perm)
            rows = num_perm // bands
    bands = _check_int("bands", bands, 1, _MAX_PERM)
    rows = _check_int("rows", rows, 1, _MAX_PERM)
    _native.lsh_check_bands(num_perm, bands, rows)
    return bands, rows


#: Fewer permutations than this give an S-curve too shallow to act as a threshold.
MIN_USEFUL_PERM = 16


def candidate_probability(j: float, bands: int, rows: int) -> float:
    """Probability that two documents with Jaccard ``j`` share at least one LSH band."""
    return 1.0 - (1.0 - j ** rows) ** bands


def _warn_meaningless_layout(threshold: float, num_perm: int, bands: int, rows: int, explicit: bool,
                             verify: bool) -> None:
    """Warn when the LSH layout cannot separate pairs above the threshold from pairs below it."""
    lo = max(threshold - 0.3, 0.0)
    p_hi, p_lo = candidate_probability(threshold, bands, rows), candidate_probability(lo, bands, rows)
    if num_perm < MIN_USEFUL_PERM:
        what = ("pairs far below the threshold become candidates too; verification rejects them"
                if verify else "pairs far below the threshold are removed too (verification is off)")
        warnings.warn(
            f"num_perm={num_perm} is too few for a similarity threshold: with {bands} band(s) of {rows} row(s) "
            f"a pair with Jaccard {threshold:g} is a candidate with probability {p_hi:.2f} and one with "
            f"Jaccard {lo:g} with probability {p_lo:.2f}; {what}. Use {MIN_USEFUL_PERM * 4} or more permutations",
            stacklevel=3,
        )
    if explicit and bands * rows < num_perm:
        warnings.warn(
            f"bands x rows = {bands} x {rows} uses {bands * rows} of the {num_perm} permutations: the other "
            f"{num_perm - bands * rows} cost time and change nothing but the estimated Jaccard "
            "(omit --bands/--rows to let gristmill choose, or lower --num-perm)",
            stacklevel=3,
        )


@dataclass
class MinHashDedupResult:
    """What :func:`dedup_minhash` found.

    Attributes:
        keep: boolean mask over the documents; ``False`` = a near-duplicate to drop.
        component: ``uint32`` cluster id of every document (the smallest document index of
            its cluster; a document alone in its cluster has its own index).
        clusters: pyarrow table, one row per member of every cluster with ≥ 2 documents:
            ``cluster``, ``doc``, ``id`` (when ids are known), ``kept_doc``, ``is_kept``,
            ``est_jaccard`` (to the kept document), ``exact_jaccard`` (with ``verify``).
        pairs: pyarrow table of the document pairs that joined clusters (a spanning forest
            of every cluster; with ``cluster="star"`` each removed document and the one kept
            for it): ``a``, ``b`` (``a < b``), ``est_jaccard`` and, with ``verify``,
            ``exact_jaccard`` (always ≥ ``threshold``).
        summary: counts and parameters (JSON-serialisable).
        timings: wall seconds per stage.
        signatures: the signature matrix (when ``return_signatures=True``).
        index_match: with ``index``, per document the insertion position of the earliest
            indexed item it collides with (dropped), or -1.
        index_pending: with ``index`` and ``commit_index=False``, the number of kept
            documents :meth:`commit_index` will add to the index.
    """

    keep: np.ndarray
    component: np.ndarray
    clusters: pa.Table
    pairs: pa.Table
    summary: Dict[str, Any]
    timings: Dict[str, float] = field(default_factory=dict)
    signatures: Optional[np.ndarray] = None
    index_match: Optional[np.ndarray] = None
    _pending: Optional[Tuple["MinHashIndex", List[str], np.ndarray]] = field(default=None, repr=False)

    @property
    def index_pending(self) -> int:
        return 0 if self._pending is None else len(self._pending[1])

    def commit_index(self) -> int:
        """Add the kept documents to the index (after ``dedup_minhash(..., commit_index=False)``,
        once the outputs are safely written). The insert is atomic; calling it again does
        nothing. Returns the number of items added."""
        if self._pending is None:
            return 0
        index, keys, sig = self._pending
        if keys:
            index.insert(keys, sig)
        self._pending = None
        return len(keys)


def _batches_of(corpus_or_texts: Any, batch_size: int, keep_field: Optional[str] = None
                ) -> Iterable[Tuple[Optional[pa.Array], pa.Array, Optional[np.ndarray]]]:
    """Yield (ids or None, texts, values of ``keep_field`` or None) batches from a Corpus, a
    pyarrow array/table column or strings. ``keep_field`` (Corpus only) is read in the same
    pass as the texts."""
    if hasattr(corpus_or_texts, "batches") and callable(corpus_or_texts.batches):
        if keep_field is None:
            for b in corpus_or_texts.batches():
                yield b.ids, b.texts, None
            return
        from gristmill.io import CorpusError, CorpusFieldError

        try:
            for b in corpus_or_texts.batches(numbers=[keep_field]):
                yield b.ids, b.texts, b.numbers[keep_field]
        except CorpusFieldError as e:
            raise CorpusError(f"{e}; check --keep column:{keep_field}") from None
        return
    arr = as_string_array(corpus_or_texts)
    for s in range(0, len(arr), batch_size):
        yield None, arr.slice(s, batch_size), None
    if len(arr) == 0:
        return


def dedup_minhash(
    corpus_or_texts: Any,
    threshold: float = 0.8,
    *,
    num_perm: int = 128,
    ngram: int = 5,
    unit: str = "word",
    tokenizer: Any = None,
    seed: int = 1,
    bands: Optional[int] = None,
    rows: Optional[int] = None,
    weights: Tuple[float, float] = DEDUP_WEIGHTS,
    verify: bool = True,
    cluster: str = "components",
    keep: str = "first",
    keep_scores: Optional[Union[Sequence[float], np.ndarray]] = None,
    hasher: Optional[MinHasher] = None,
    batch_size: int = 8192,
    num_threads: Optional[int] = None,
    progress: Any = None,
    return_signatures: bool = False,
    index: Optional["MinHashIndex"] = None,
    index_keys: Optional[Sequence[str]] = None,
    commit_index: bool = True,
    threads: Optional[int] = None,
) -> MinHashDedupResult:
    """Find clusters of near-duplicate documents and decide which copy to keep.

    Args:
        corpus_or_texts: a :class:`gristmill.Corpus`, a pyarrow string array, or a sequence
            of ``str``.
        threshold: Jaccard similarity threshold in (0, 1).
        num_perm, ngram, unit, tokenizer, seed: MinHash parameters (see :class:`MinHasher`;
            ignored when ``hasher`` is given).
        bands, rows: LSH layout (``bands·rows ≤ num_perm``); default: chosen from
            ``threshold`` and ``weights`` by :func:`lsh_params`.
        weights: ``(false_positive_weight, false_negative_weight)``. The default
            ``(0.05, 0.95)`` favours recall, as dedup pipelines want (a missed duplicate
            stays in the training data; a false candidate costs only a comparison, and none
            with ``verify``): at threshold 0.8 and 128 permutations it picks 16 bands × 8
            rows, catching a pair with J = 0.8 with probability 0.95 (datasketch's
            ``(0.5, 0.5)`` picks 9 × 13: 0.40).
        verify: only join candidate pairs whose exact shingle-set Jaccard is ≥ ``threshold``
            (default on, as the ``gristmill dedup minhash`` command: precision 1.0 at the
            cost of re-shingling the candidates). A :class:`Corpus` is then read a second
            time to fetch only the candidates' texts; other inputs are held in memory.
            ``verify=False`` trusts LSH: every candidate pair counts as similar, so pairs
            well below the threshold are removed too.
        cluster: how confirmed pairs form clusters. ``"components"`` (default): connected
            components — documents join through chains of confirmed pairs, so with
            ``a ~ b ~ c`` the document ``c`` can be removed for ``a`` although their own
            Jaccard is far below ``threshold``. ``"star"``: documents are visited in
            keep-priority order (``keep``); each one not yet in a cluster is kept and takes
            every candidate neighbour not yet in a cluster whose similarity *to it* is
            ≥ ``threshold`` (exact Jaccard with ``verify``, the MinHash estimate without).
            Every removed document is then within the threshold of the document kept for it
            (``clusters.exact_jaccard`` / ``est_jaccard`` ≥ ``threshold``); fewer documents
            are removed. ``pairs`` lists each removed document with its kept one.
        keep: which member of a cluster survives: ``"first"`` (smallest index),
            ``"longest"`` (most UTF-8 bytes; ties → first) or ``"column:NAME"`` (largest
            value of ``keep_scores``, ties → first; ``NAME`` is recorded in the summary).
        keep_scores: numbers per document for ``keep="column:NAME"``. Default for a
            :class:`gristmill.Corpus`: the field (JSONL) or column (Parquet) ``NAME``, read in
            the same pass as the texts (missing or null values are NaN, never preferred;
            booleans count as 0/1; any other non-number, or an input in which no document
            has the field, is a :class:`gristmill.io.CorpusError`).
        batch_size: documents per signature batch (results do not depend on it).
        num_threads: worker threads (``None``: all cores; ``threads`` is its deprecated name).
            Results do not depend on it.
        progress: a callable ``progress(stage, docs_done)`` or ``None``.
        index: a :class:`MinHashIndex` of earlier shards. Documents kept within this corpus
            that share an LSH band with an indexed item are dropped too (``index_match``),
            and the survivors are inserted into the index (keys: ``index_keys``, else the
            corpus ids, else ``"doc<i>"``). Its hasher is used for the signatures.
            Documents an earlier, committed run of the same corpus already added (same key,
            same signature) are recognised: they are matched against the index as it was
            before that run and not added again, so re-running a shard gives the same
            result as its first run.
        commit_index: ``False`` leaves the index untouched until
            :meth:`MinHashDedupResult.commit_index` is called — write the outputs first,
            then commit, so that a failed write never loses the shard.

    >>> texts = ["a b c d e f g h", "a b c d e f g h", "something completely different here"]
    >>> r = dedup_minhash(texts, 0.8, ngram=3)
    >>> r.keep.tolist(), r.summary["removed"], r.summary["verify"]
    ([True, False, True], 1, True)
    >>> dedup_minhash(texts, 0.8, ngram=3, cluster="star").keep.tolist()
    [True, False, True]
    """
    t_all = time.perf_counter()
    threads = _num_threads(num_threads, threads, where="dedup_minhash")
    threshold = _check_threshold(threshold)
    if index is not None:
        if hasher is not None and hasher.describe() != index.hasher.describe():
            raise ValueError(f"hasher {hasher!r} differs from the index's {index.hasher!r}")
        hasher = index.hasher
    if hasher is None:
        hasher = MinHasher(num_perm=num_perm, seed=seed, ngram=ngram, unit=unit, tokenizer=tokenizer, num_threads=threads)
    explicit = bands is not None or rows is not None
    bands, rows = _resolve_bands(threshold, hasher.num_perm, bands, rows, weights)
    _warn_meaningless_layout(threshold, hasher.num_perm, bands, rows, explicit, verify)
    batch_size = _check_int("batch_size", batch_size, 1, 1 << 40)
    if keep not in ("first", "longest") and not keep.startswith("column:"):
        raise ValueError(f"keep must be 'first', 'longest' or 'column:NAME', got {keep!r}")
    rereadable = hasattr(corpus_or_texts, "batches") and callable(corpus_or_texts.batches)
    keep_field = None  # a Corpus field read with the texts
    if keep.startswith("column:") and keep_scores is None:
        if not rereadable:
            raise ValueError(f"keep={keep!r} needs keep_scores (one number per document)")
        keep_field = keep[len("column:"):]
    if cluster not in ("components", "star"):
        raise ValueError(f"cluster must be 'components' or 'star', got {cluster!r}")
    timings: Dict[str, float] = {}
    shingle_text = f"{hasher.unit} {hasher.ngram}-grams" + (f" of {hasher.tokenizer.name}" if hasher.tokenizer else "")
    n_known: Optional[int] = None
    if not hasattr(corpus_or_texts, "batches"):
        try:
            n_known = len(corpus_or_texts)
        except TypeError:
            pass
    sig_stage = _progress.stage(
        "dedup minhash: signatures",
        (f"{n_known:,} documents, " if n_known is not None else "")
        + f"{hasher.num_perm} permutations of {shingle_text}",
    )

    # stage 1: signatures (and the text kept for verification / lengths). A Corpus can be
    # read again, so verification then keeps only the candidates' texts (second pass).
    t0 = time.perf_counter()
    sig_parts: List[np.ndarray] = []
    score_parts: List[np.ndarray] = []
    text_parts: List[pa.Array] = []
    id_parts: List[pa.Array] = []
    n_done = 0
    n_bytes = 0
    with sig_stage, _progress.bar("minhash signatures", total=n_known, unit="doc", unit_scale=True) as sbar:
        for ids, texts, field_values in _batches_of(corpus_or_texts, batch_size, keep_field):
            sig_parts.append(hasher.signatures(texts, num_threads=threads))
            if field_values is not None:
                score_parts.append(field_values)
            lengths = np.diff(string_buffers(texts)[1])
            n_bytes += int(lengths.sum())
            if keep == "longest":
                score_parts.append(lengths.astype(np.float64))
            if verify and not rereadable:
                text_parts.append(texts.cast(pa.large_string()))
            if ids is not None:
                id_parts.append(ids)
            n_done += len(texts)
            sbar.update(len(texts))
            if progress is not None:
                progress("signatures", n_done)
    sig = np.concatenate(sig_parts) if sig_parts else np.zeros((0, hasher.num_perm), hasher.dtype)
    n = sig.shape[0]
    timings["signatures"] = time.perf_counter() - t0

    # documents with an empty shingle set (all-maximum signature) never join a cluster
    eligible = ~np.all(sig == hasher.empty_value, axis=1) if n else np.zeros(0, bool)
    scores: Optional[np.ndarray] = None
    if keep == "longest" or keep_field is not None:
        scores = np.concatenate(score_parts) if score_parts else np.zeros(0)
    elif keep.startswith("column:"):
        assert keep_scores is not None
        scores = np.asarray(keep_scores, dtype=np.float64)
        if scores.shape != (n,):
            raise ValueError(f"keep_scores has {scores.size} values for {n} documents")

    # stage 2: LSH candidate groups
    t0 = time.perf_counter()
    with _progress.stage("dedup minhash: LSH", f"{_progress.describe(n, n_bytes)}, {bands} bands x {rows} rows"):
        members, offsets = _native.lsh_candidates(sig, bands, rows, np.ascontiguousarray(eligible), threads)
    sizes = np.diff(offsets)
    n_groups, n_pairs = len(sizes), int((sizes * (sizes - 1) // 2).sum())
    timings["lsh"] = time.perf_counter() - t0

    # stage 3: the candidates' texts for verification (a Corpus is read again for them)
    t0 = time.perf_counter()
    verify_docs = None
    if verify:
        if rereadable:
            import pyarrow.compute as pc

            need = np.zeros(n, dtype=bool)
            need[members] = True
            with _progress.stage("dedup minhash: read candidates", f"{int(need.sum()):,} of {n:,} documents"):
                for b in corpus_or_texts.batches():
                    m = pa.array(need[b.start:b.start + len(b.texts)])
                    text_parts.append(pc.if_else(m, b.texts.cast(pa.large_string()), pa.scalar("", pa.large_string())))
            if sum(len(x) for x in text_parts) != n:
                raise ValueError("the corpus changed while it was being deduplicated")
        all_texts = pa.chunked_array(text_parts, type=pa.large_string()).combine_chunks() if text_parts \
            else pa.array([], pa.large_string())
        verify_docs = string_buffers(all_texts)
        timings["read_candidates"] = time.perf_counter() - t0

    # stage 4: clusters (confirming candidate pairs)
    t0 = time.perf_counter()
    how = (f"exact Jaccard >= {threshold:g}" if verify else
           f"estimated Jaccard >= {threshold:g}" if cluster == "star" else "unverified")
    total, unit = (n_groups, "group") if cluster == "components" else (n, "doc")
    with _progress.stage(f"dedup minhash: {'verify + ' if verify else ''}{cluster}",
                         f"{n_pairs:,} candidate pairs in {n_groups:,} groups, {how}"), \
            _progress.bar(f"{cluster} clusters", total=total, unit=unit, unit_scale=True) as cbar:
        done = [0]

        def tick(k: int) -> None:
            cbar.update(k - done[0])
            done[0] = k

        out = _native.lsh_cluster(
            sig, bands, rows, np.ascontiguousarray(eligible), scores, verify_docs,
            hasher._shingle_spec() if verify else None, threshold, threads,
            cluster, (members, offsets), tick if _progress.bars_enabled() else None,
        )
    timings[f"{cluster}{'_verify' if verify else ''}"] = time.perf_counter() - t0
    if progress is not None:
        progress("clusters", n)

    component = out["component"]
    kept_doc = out["kept_doc"]
    keep_mask = kept_doc == np.arange(n, dtype=np.uint32)
    index_match = None
    all_ids: Optional[pa.Array] = None
    if id_parts and sum(len(x) for x in id_parts) == n:
        all_ids = pa.chunked_array(id_parts).combine_chunks()
    pending = None
    already_indexed = 0
    if index is not None:
        t0 = time.perf_counter()
        index_match = np.full(n, -1, dtype=np.int64)
        cand = np.flatnonzero(keep_mask & eligible)
        _progress.info(f"dedup minhash: index: matching {len(cand):,} kept documents against {len(index):,} "
                       f"indexed ones in {index.path}")

        def keys_of(docs: np.ndarray) -> List[str]:
            if index_keys is not None:
                if len(index_keys) != n:
                    raise ValueError(f"index_keys has {len(index_keys)} keys for {n} documents")
                return [str(index_keys[int(i)]) for i in docs]
            if all_ids is not None:
                return [str(k) for k in all_ids.take(pa.array(docs, pa.int64())).to_pylist()]
            return [f"doc{i}" for i in docs]

        cand_keys = keys_of(cand)
        same = index.find_same(cand_keys, sig[cand]) if len(cand) else np.zeros(0, np.int64)
        if len(cand):
            match = index.query_batch(sig[cand])
            if (same >= 0).any():
                # an earlier run of this corpus was committed: match against the index as it
                # was before that run (its items come first in insertion order)
                match[match >= int(same[same >= 0].min())] = -1
            index_match[cand] = match
        keep_mask &= index_match < 0
        is_new = index_match[cand] < 0
        new_keys = [k for k, m in zip(cand_keys, is_new) if m]
        new_same = same[is_new]
        already_indexed = int((new_same >= 0).sum())
        add = [k for k, d in zip(new_keys, new_same) if d < 0]
        if already_indexed and add:
            raise ValueError(
                f"{index.path}: {already_indexed} kept documents are already in the index from an earlier "
                f"run, but {len(add)} (e.g. {add[0]!r}) are not: the input changed since that run; "
                "deduplicate the changed shard into a new index"
            )
        if len(set(add)) != len(add):
            dup = next(k for i, k in enumerate(add) if k in add[:i])
            raise ValueError(f"two kept documents have the key {dup!r}; give documents unique ids (--id-field)")
        for k in add:
            if k in index:
                raise ValueError(
                    f"{index.path}: key {k!r} is already in the index for a different document; "
                    "give documents unique ids (--id-field) or use another index"
                )
        add_rows = cand[is_new][new_same < 0]
        pending = (index, add, sig[add_rows])
        timings["index"] = time.perf_counter() - t0
    cols: Dict[str, Any] = {
        "cluster": pa.array(out["r_cluster"], pa.uint32()),
        "doc": pa.array(out["r_doc"], pa.uint32()),
    }
    if all_ids is not None:
        cols["id"] = all_ids.take(pa.array(out["r_doc"]))
        cols["kept_id"] = all_ids.take(pa.array(out["r_kept_doc"]))
    cols["kept_doc"] = pa.array(out["r_kept_doc"], pa.uint32())
    cols["is_kept"] = pa.array(out["r_is_kept"], pa.bool_())
    cols["est_jaccard"] = pa.array(out["r_est_jaccard"], pa.float64())
    if out["r_exact_jaccard"] is not None:
        cols["exact_jaccard"] = pa.array(out["r_exact_jaccard"], pa.float64())
    clusters = pa.table(cols)
    ea, eb = out["e_a"].astype(np.int64), out["e_b"].astype(np.int64)
    pcols: Dict[str, Any] = {
        "a": pa.array(out["e_a"], pa.uint32()),
        "b": pa.array(out["e_b"], pa.uint32()),
        "est_jaccard": pa.array(np.mean(sig[ea] == sig[eb], axis=1) if len(ea) else np.zeros(0), pa.float64()),
    }
    if verify:
        pcols["exact_jaccard"] = pa.array(out["e_jaccard"], pa.float64())
    pairs = pa.table(pcols)
    n_clusters = int(np.unique(out["r_cluster"]).size)
    timings["total"] = time.perf_counter() - t_all
    summary: Dict[str, Any] = {
        "docs_in": n,
        "docs_kept": int(keep_mask.sum()),
        "removed": int(n - keep_mask.sum()),
        "clusters": n_clusters,
        "docs_in_clusters": int(len(out["r_doc"])),
        "empty_shingle_sets": int(n - eligible.sum()),
        "threshold": threshold,
        "bands": bands,
        "rows": rows,
        "verify": bool(verify),
        "cluster": cluster,
        "keep": keep,
        "candidate_groups": int(out["candidate_groups"]),
        "candidate_pairs": int(out["candidate_pairs"]),
        "verified_pairs": int(out["verified_pairs"]),
        "rejected_pairs": int(out["rejected_pairs"]),
        "removed_by_index": int((index_match >= 0).sum()) if index_match is not None else 0,
        "already_in_index": already_indexed,
        "minhash": hasher.describe(),
        "seconds": {k: round(v, 4) for k, v in timings.items()},
    }
    result = MinHashDedupResult(
        keep=keep_mask, component=component, clusters=clusters, pairs=pairs, summary=summary, timings=timings,
        signatures=sig if return_signatures else None, index_match=index_match, _pending=pending,
    )
    if commit_index and pending is not None:
        t0 = time.perf_counter()
        result.commit_index()
        timings["index"] += time.perf_counter() - t0
        summary["seconds"]["index"] = round(timings["index"], 4)
    return result


class MinHashIndex:
    """A persistent MinHash LSH index in a folder of memory-mapped files, with the method
    names of ``datasketch.MinHashLSH`` (``insert``, ``query``, ``__contains__``), so a new
    shard can be checked against everything indexed before.

    Args:
        path: folder of the index; created if missing, reopened if it exists.
        threshold, num_perm, weights, params: as ``datasketch.MinHashLSH``: the layout
            ``params=(bands, rows)`` or, by default, :func:`lsh_params` of ``threshold`` and
            ``weights``.
        hasher: the :class:`MinHasher` whose signatures are indexed (default:
            ``MinHasher(num_perm)``); its parameters are stored in the index header.

    Reopening with any other layout, signature type or hashing parameters raises
    :class:`gristmill.GristmillError` naming each mismatch; an index written by another
    format version is refused. Keys are strings. Writes are atomic per ``insert`` (one
    writer at a time); every ``insert`` adds one sorted run file, :meth:`compact` merges them.
    The index stores what it is given: the signatures of empty documents (all
    :attr:`MinHasher.empty_value`) all match each other, so leave them out
    (``np.all(sig == hasher.empty_value, axis=1)``) unless that is what you want.

    Deduplicating a new shard against everything seen before::

        sig = hasher.signatures(shard_texts)
        keep = index.query_batch(sig) < 0          # no earlier candidate
        index.insert([ids[i] for i in np.flatnonzero(keep)], sig[keep])

    >>> import tempfile
    >>> mh = MinHasher(num_perm=64, ngram=2)
    >>> d = tempfile.mkdtemp()
    >>> idx = MinHashIndex(d, threshold=0.5, num_perm=64, hasher=mh)
    >>> idx.insert(["a", "b"], mh.signatures(["the cat sat on the mat", "dogs bark at night"]))
    >>> idx.query(mh.signatures(["the cat sat on the mat!"])[0])
    ['a']
    >>> "b" in MinHashIndex(d, threshold=0.5, num_perm=64, hasher=mh)
    True
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        threshold: float = 0.9,
        num_perm: int = 128,
        weights: Tuple[float, float] = (0.5, 0.5),
        params: Optional[Tuple[int, int]] = None,
        *,
        hasher: Optional[MinHasher] = None,
    ):
        import json

        num_perm = _check_int("num_perm", num_perm, 1, _MAX_PERM)
        if hasher is None:
            hasher = MinHasher(num_perm=num_perm)
        elif hasher.num_perm != num_perm:
            raise ValueError(f"hasher has num_perm={hasher.num_perm} but the index asks num_perm={num_perm}")
        if params is None:
            bands, rows = lsh_params(threshold, num_perm, weights)
        else:
            if len(params) != 2:
                raise ValueError("params must be (bands, rows)")
            bands = _check_int("bands", params[0], 1, num_perm)
            rows = _check_int("rows", params[1], 1, num_perm)
            _native.lsh_check_bands(num_perm, bands, rows)
        self.hasher = hasher
        self.threshold = threshold
        self.b, self.r = bands, rows
        meta = json.dumps(_index_meta(hasher), sort_keys=True)
        self.path = os.fspath(path)
        self._core = _native.MinHashIndexCore(
            os.fspath(path), num_perm, bands, rows, hasher.dtype.itemsize, meta
        )

    def _sig2d(self, signatures: Any) -> np.ndarray:
        a = np.asarray(signatures)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2:
            raise ValueError(f"signatures must be 1-D or 2-D, got shape {a.shape}")
        if a.dtype != self.hasher.dtype:
            raise TypeError(f"signatures must be {self.hasher.dtype} (this index's hasher), got {a.dtype}")
        if a.shape[1] != self.hasher.num_perm:
            raise ValueError(f"signatures have {a.shape[1]} values; the index uses num_perm={self.hasher.num_perm}")
        return np.ascontiguousarray(a)

    def insert(self, keys: Union[str, Sequence[str]], signatures: Any) -> None:
        """Add one key with its signature, or many keys with a 2-D signature array. Keys
        must be new (``ValueError`` naming the key otherwise)."""
        if isinstance(keys, str):
            keys = [keys]
        keys = list(keys)
        for k in keys:
            if not isinstance(k, str):
                raise TypeError(f"keys must be str, got {type(k).__name__}")
        self._core.insert(keys, self._sig2d(signatures))

    def query(self, signature: Any) -> List[str]:
        """Keys of the indexed items sharing at least one LSH band with ``signature``."""
        sig = self._sig2d(signature)
        if sig.shape[0] != 1:
            raise ValueError("query takes one signature; use query_batch for many")
        return self._core.query(sig)

    def query_batch(self, signatures: Any) -> np.ndarray:
        """For every row, the insertion index of the earliest candidate item, or -1
        (``int64``): ``query_batch(sigs) >= 0`` marks the documents to drop as already seen."""
        return self._core.query_first(self._sig2d(signatures))

    def find_same(self, keys: Sequence[str], signatures: Any) -> np.ndarray:
        """Per row, the insertion position of the item with that key *and* that signature
        (``int64``), or -1: which documents an earlier run already added."""
        return self._core.find_same([str(k) for k in keys], self._sig2d(signatures))

    def key(self, item: int) -> str:
        """The key of the item inserted at position ``item``."""
        return self._core.key(int(item))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._core.contains(key)

    def __len__(self) -> int:
        return len(self._core)

    def is_empty(self) -> bool:
        return len(self._core) == 0

    def compact(self) -> None:
        """Merge the run files into one (faster queries)."""
        self._core.compact()

    @property
    def num_runs(self) -> int:
        return self._core.num_runs()
