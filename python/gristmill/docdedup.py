"""Exact document and paragraph deduplication (the ``gristmill dedup docs|paragraphs`` commands).

Each unit — a whole document, or one paragraph — is keyed by the 128-bit xxh3 hash of its
normalised text; units are visited in corpus order and a unit whose key was seen earlier is
removed. So the first occurrence always wins, at any thread count, and nothing is removed
by a hash collision in practice (128-bit keys: a collision needs ~2^64 units).

Paragraphs: a document is cut at ``\\n``. A paragraph is a maximal non-empty run of
characters other than ``\\n`` (its content) plus the run of ``\\n`` after it (its
terminator; empty for a last line without a final newline). Newlines at the very start of a
document belong to no paragraph and are always kept. Paragraphs compare by content only, so
``"a\\n"``, ``"a\\n\\n"`` and a final ``"a"`` are equal. Removing a paragraph removes its content
and terminator; every other byte of the document stays as it was, in order. ``\\r`` is
content (the content of a CRLF line ends in ``\\r``).

Normalisation decides only what counts as equal (the text written is always the original):
``"none"`` compares bytes, ``"whitespace"`` collapses each run of Unicode whitespace to one
space and trims both ends, ``"lower"`` does the same and lower-cases.

``min_length``: units (documents, or paragraph contents without their terminator) shorter
than ``min_length`` bytes are never removed and never count as seen.

>>> r = dedup_paragraphs(["intro\\nshared line\\n", "shared line\\nnew line"])
>>> r.texts()
['intro\\nshared line\\n', 'new line']
>>> dedup_docs(["a b", "A  B", "c"], normalize="lower").keep.tolist()
[True, False, True]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import pyarrow as pa

from gristmill import _native, _progress
from gristmill._arrow import TextLike, as_string_array, string_buffers
from gristmill._threads import num_threads as _num_threads
from gristmill.io import Corpus, CorpusError, TextFolderSource

__all__ = ["NORMALIZE", "DocDedupResult", "dedup_docs", "dedup_paragraphs"]

#: accepted values of ``normalize``
NORMALIZE = ("none", "whitespace", "lower")

Texts = Union[Corpus, TextLike]


@dataclass
class DocDedupResult:
    """What :func:`dedup_docs` / :func:`dedup_paragraphs` decided.

    Attributes:
        keep: boolean mask over the input documents (``False``: the document is dropped —
            a duplicate document, or with paragraphs a document left empty by the removal).
        replace: input index → new text, for documents that lost paragraphs (and are kept).
        summary: counts in and out (documents, paragraphs, bytes), parameters, seconds.
        originals: the input texts when they were given as a list or array (for :meth:`texts`).
    """

    keep: np.ndarray
    replace: Dict[int, str]
    summary: Dict[str, Any]
    originals: Optional[pa.Array] = field(default=None, repr=False)

    def texts(self) -> List[str]:
        """The deduplicated texts, in order (only for inputs given as a list or array)."""
        if self.originals is None:
            raise ValueError("texts() needs the input texts; for a Corpus, write it with Corpus.write(out, keep, replace)")
        src = self.originals.to_pylist()
        return [self.replace.get(i, t) for i, t in enumerate(src) if self.keep[i]]


def _check(normalize: str, min_length: int) -> None:
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE)}, not {normalize!r}")
    if not isinstance(min_length, int) or min_length < 0:
        raise ValueError(f"min_length must be a non-negative integer, not {min_length!r}")


def _batches(texts: Texts) -> Tuple[Iterator[pa.Array], Optional[pa.Array]]:
    if isinstance(texts, Corpus):
        return (b.texts for b in texts.batches()), None
    arr = as_string_array(texts)
    return iter([arr]), arr


def _key_corpus(corpus: Corpus, key: str) -> Corpus:
    if any(isinstance(s, TextFolderSource) for s in corpus.sources):
        raise ValueError("key: folders of text files have no fields; a key field needs JSONL or Parquet inputs")
    if corpus.on_invalid_utf8 == "skip":
        raise ValueError("key: cannot be combined with on_invalid_utf8='skip' (documents would no longer line up)")
    return Corpus([s.display for s in corpus.sources], text_field=key, id_field=corpus.id_field,
                  on_invalid_utf8=corpus.on_invalid_utf8, batch_bytes=corpus.batch_bytes)


def _key_batches(corpus: Corpus, key: str) -> Iterator[pa.Array]:
    try:
        for b in _key_corpus(corpus, key).batches():
            yield b.texts
    except CorpusError as e:
        msg = str(e).replace("choose the text field with --text-field", "choose the key field with --key")
        msg = msg.replace("choose the text column with --text-field", "choose the key column with --key")
        raise CorpusError(msg) from None


def dedup_docs(
    texts: Texts,
    *,
    normalize: str = "none",
    min_length: int = 0,
    key: Optional[str] = None,
    num_threads: Optional[int] = None,
    threads: Optional[int] = None,
) -> DocDedupResult:
    """Drop every document equal (after ``normalize``) to an earlier one; see the module docs.

    ``key``: compare the documents' ``key`` field (e.g. a URL) instead of their text; needs a
    :class:`~gristmill.Corpus` of JSONL or Parquet files. A document without that field is an
    error naming it.

    >>> r = dedup_docs(["x", "y", "x", " x "], normalize="whitespace")
    >>> r.keep.tolist(), r.summary["documents_removed"]
    ([True, True, False, False], 2)
    """
    _check(normalize, min_length)
    t0 = time.perf_counter()
    d = _native._ExactDedup(normalize, min_length, _num_threads(num_threads, threads, where="dedup_docs"))
    batches, originals = _batches(texts)
    keys: Optional[Iterator[pa.Array]] = None
    if key is not None:
        if not isinstance(texts, Corpus):
            raise ValueError("key: needs a Corpus (the texts of a list have no fields)")
        if key != texts.text_field:
            keys = _key_batches(texts, key)
    masks: List[np.ndarray] = []
    lengths: List[np.ndarray] = []
    n_docs = removed = 0
    with _progress.bar("hashing", unit="doc", unit_scale=True) as bar:
        for b in (keys if keys is not None else batches):
            keep, r, _ = d.docs(string_buffers(b))
            masks.append(keep)
            n_docs += len(b)
            removed += r
            bar.update(len(b))
            if keys is None:
                lengths.append(np.diff(string_buffers(b)[1]).astype(np.int64))
    if keys is not None:  # the key field was read on its own: the texts' lengths come from a second pass
        lengths = [np.diff(string_buffers(b)[1]).astype(np.int64) for b in batches]
        if sum(len(x) for x in lengths) != n_docs:
            raise CorpusError(f"key {key!r}: read {n_docs} key values but a different number of documents")
    keep_all = np.concatenate(masks) if masks else np.zeros(0, dtype=bool)
    length = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    n_bytes, removed_bytes = int(length.sum()), int(length[~keep_all].sum())
    summary: Dict[str, Any] = {
        "unit": "documents",
        "normalize": normalize,
        "min_length": min_length,
        "key": key if key is not None else (texts.text_field if isinstance(texts, Corpus) else "text"),
        "hash": "xxh3-128",
        "documents_in": n_docs,
        "documents_out": n_docs - removed,
        "documents_removed": removed,
        "bytes_in": n_bytes,
        "bytes_out": n_bytes - removed_bytes,
        "bytes_removed": removed_bytes,
        "distinct_keys": len(d),
        "seconds": round(time.perf_counter() - t0, 4),
    }
    return DocDedupResult(keep=keep_all, replace={}, summary=summary, originals=originals)


def dedup_paragraphs(
    texts: Texts,
    *,
    normalize: str = "none",
    min_length: int = 0,
    keep_empty: bool = False,
    num_threads: Optional[int] = None,
    threads: Optional[int] = None,
) -> DocDedupResult:
    """Remove every paragraph equal (after ``normalize``) to an earlier one, anywhere earlier in
    the corpus (also earlier in the same document); see the module docs for what a paragraph
    is. Documents left empty by the removal are dropped unless ``keep_empty`` (documents that
    were empty in the input are kept).

    >>> r = dedup_paragraphs(["a\\nb\\na\\n", "b\\n\\nc", "b"], min_length=1)
    >>> r.texts(), r.summary["paragraphs_removed"]
    (['a\\nb\\n', 'c'], 3)
    """
    _check(normalize, min_length)
    t0 = time.perf_counter()
    d = _native._ExactDedup(normalize, min_length, _num_threads(num_threads, threads, where="dedup_paragraphs"))
    batches, originals = _batches(texts)
    replace: Dict[int, str] = {}
    drops: List[int] = []
    start = n_bytes = paragraphs = removed = removed_bytes = 0
    with _progress.bar("hashing", unit="doc", unit_scale=True) as bar:
        for b in batches:
            bufs = string_buffers(b)
            n_bytes += int(np.diff(bufs[1]).sum())
            changed, data, offsets, p, r, rb = d.paragraphs(bufs)
            paragraphs += p
            removed += r
            removed_bytes += rb
            if len(changed):
                new = pa.LargeStringArray.from_buffers(len(changed), pa.py_buffer(offsets), pa.py_buffer(data))
                for i, t in zip(changed.tolist(), new.to_pylist()):
                    if t or keep_empty:
                        replace[start + i] = t
                    else:
                        drops.append(start + i)
            start += len(b)
            bar.update(len(b))
    keep = np.ones(start, dtype=bool)
    keep[np.asarray(drops, dtype=np.int64)] = False
    summary: Dict[str, Any] = {
        "unit": "paragraphs",
        "normalize": normalize,
        "min_length": min_length,
        "hash": "xxh3-128",
        "documents_in": start,
        "documents_out": start - len(drops),
        "documents_changed": len(replace),
        "documents_emptied": len(drops),
        "paragraphs_in": paragraphs,
        "paragraphs_out": paragraphs - removed,
        "paragraphs_removed": removed,
        "bytes_in": n_bytes,
        "bytes_out": n_bytes - removed_bytes,
        "bytes_removed": removed_bytes,
        "distinct_keys": len(d),
        "seconds": round(time.perf_counter() - t0, 4),
    }
    return DocDedupResult(keep=keep, replace=replace, summary=summary, originals=originals)
