"""Exact-substring deduplication with suffix arrays (Lee et al. 2021, done boundary-safe).

Every function takes a batch of documents (a pyarrow string array, a sequence of ``str``, or a
:class:`gristmill.io.Corpus`) and finds the windows of ``min_length`` bytes that occur more
than once. The whole batch is sorted in memory by libsais (about 5.5 bytes of RAM per input
byte with 32-bit indices and ``min_length >= 64``, measured 6.5 with the interpreter; 64-bit
indices beyond 2 GiB of text).

Memory and Ctrl-C: the memory a call needs is estimated before the big buffers are allocated
and compared with what is available (``MemAvailable``, the cgroup limit, ``ulimit -v``). When
the in-memory repeat finder of :func:`find_repeats` / :func:`dedup_exact` does not fit, they
switch to the memory-limited path (as with ``memory_limit``; same result) with a warning;
:func:`contamination` and :meth:`SuffixIndex.build`, which have no such path, raise
``MemoryError`` naming the memory needed and available. A failed large allocation is a
``MemoryError`` too, never an abort. Ctrl-C (``KeyboardInterrupt``) stops every call within a
fraction of a second — except during the suffix-array construction itself (one libsais call,
about 0.1 s per MB of text on two cores), which finishes first — and leaves no partial output
or temporary file.

Semantics (tested against a brute-force reference):

* An *occurrence* of a window is a start position whose ``min_length`` bytes lie entirely
  inside one document — repeats never cross document boundaries.
* ``keep="none"`` removes every byte covered by any copy of a window that occurs twice or
  more (the paper's behaviour).
* ``keep="first"`` removes every byte covered by a *later copy* of a window — an occurrence
  whose content also occurs at an earlier position in corpus order (document order, then
  offset). The result contains no window twice: every ``min_length``-window lying wholly in
  kept text is the first copy of its content (for ``min_length >= 4``; a shorter window can
  survive inside a multi-byte character that a span is shrunk around), and every removed byte
  lies inside a later copy (nothing more is removed). Of two identical documents the second
  disappears and the first is cut only where it repeats earlier text, so they never both
  vanish. The cost is on self-overlapping text: a first copy is cut where it repeats itself —
  a periodic run of period ``q`` (``abcabc…``, identical table rows) at least
  ``q + min_length`` long keeps only its first ``q`` bytes. Windows formed by joining the text
  on both sides of a removed span are new text and are not considered.
* :func:`dedup_exact` (and ``gristmill dedup exact``) default to ``keep="first"``;
  :func:`find_repeats` and :func:`find_token_repeats` report every copy (``keep="none"``)
  unless told otherwise.
* Spans are merged byte ranges ``[start, end)`` relative to each document, **shrunk inward to
  UTF-8 character boundaries** so removal never cuts a character. ``occurrences`` is the
  largest number of copies of any removed window covering the span.

>>> from gristmill.suffix import find_repeats
>>> docs = ["intro: " + "x" * 5 + "the same long sentence appears twice." , "the same long sentence appears twice."]
>>> find_repeats(docs, min_length=20, keep="first").to_pylist()
[{'doc': 1, 'start': 0, 'end': 37, 'occurrences': 2}]
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from os import PathLike, fspath
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa

from gristmill import _native, _progress
from gristmill._arrow import TextLike, as_string_array, string_buffers
from gristmill._threads import num_threads as _num_threads

__all__ = [
    "find_repeats",
    "find_token_repeats",
    "dedup_exact",
    "contamination",
    "DedupResult",
    "ContaminationResult",
    "SuffixIndex",
    "suffix_array",
]

KEEP_CHOICES = ("none", "first")
UNIT_CHOICES = ("bytes", "tokens")
DEFAULT_MIN_LENGTH = {"bytes": 100, "tokens": 50}
Texts = Union[TextLike, Any]  # also gristmill.io.Corpus


def _threads(num_threads: Optional[int], threads: Optional[int] = None, where: str = "suffix") -> int:
    """``num_threads`` (``threads``: its deprecated name) for the native calls: 0 = all cores."""
    return _num_threads(num_threads, threads, where=where) or 0


def _min_length(min_length: int) -> int:
    if isinstance(min_length, bool) or not isinstance(min_length, (int, np.integer)):
        raise TypeError(f"min_length must be an integer, got {type(min_length).__name__}")
    if min_length < 1:
        raise ValueError(f"min_length must be at least 1, got {min_length}")
    return int(min_length)


def _keep(keep: str) -> str:
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep must be one of {KEEP_CHOICES}, got {keep!r}")
    return keep


def _gather(texts: Texts, what: str, spill_dir: Optional[str] = None) -> Tuple[pa.Array, Optional[pa.Array]]:
    """Texts as one large_string array, plus document ids when the input is a Corpus.

    With ``spill_dir``, a Corpus's text is streamed to a file there and memory-mapped, so it
    is never held in anonymous memory (used with ``memory_limit``)."""
    from gristmill.io import Corpus

    if isinstance(texts, Corpus) and spill_dir is not None:
        path = os.path.join(spill_dir, "texts.bin")
        ids_l: List[pa.Array] = []
        offs: List[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        total = 0
        with open(path, "wb") as f:
            for b in texts.batches():
                data, o = string_buffers(b.texts)
                f.write(data[o[0] : o[-1]].data)
                offs.append((o[1:] - o[0]).astype(np.int64) + total)
                total += int(o[-1] - o[0])
                ids_l.append(b.ids)
                del b, data, o
        offsets = np.concatenate(offs)
        # the read batches are freed: return their memory before the repeat finder runs
        # (the native side also trims the C heap), so the limit is not spent on it
        pa.default_memory_pool().release_unused()
        buf = pa.memory_map(path, "r").read_buffer() if total else pa.py_buffer(b"")
        arr = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), buf)
        return arr, (pa.concat_arrays(ids_l) if ids_l else pa.array([], type=pa.string()))
    if isinstance(texts, Corpus):
        ids: List[pa.Array] = []
        chunks: List[pa.Array] = []
        for b in texts.batches():
            ids.append(b.ids)
            chunks.append(b.texts.cast(pa.large_string()))
        if not chunks:
            return pa.array([], type=pa.large_string()), pa.array([], type=pa.string())
        arr, id_arr = pa.concat_arrays(chunks), pa.concat_arrays(ids)
        del chunks, ids, b
        # the batches are freed now; hand their memory back to the OS before the suffix
        # array is allocated (Arrow's allocator keeps it otherwise: ~1 byte per input byte)
        pa.default_memory_pool().release_unused()
        return arr, id_arr
    return as_string_array(texts, what=what), None


def _nbytes(arr: pa.Array) -> int:
    """Text bytes of a string array (its value range, not its buffer capacity)."""
    o = string_buffers(arr)[1]
    return int(o[-1] - o[0]) if len(o) else 0


def _spans_table(arrays: Tuple[Any, ...], doc_name: str = "doc", occ_name: str = "occurrences") -> pa.Table:
    d, s, e, o = arrays[:4]
    return pa.table({doc_name: d, "start": s, "end": e, occ_name: o})


def find_repeats(
    texts: Texts,
    min_length: int = 100,
    keep: str = "none",
    *,
    num_threads: Optional[int] = None,
    threads: Optional[int] = None,
    memory_limit: Optional[int] = None,
) -> pa.Table:
    """Spans of ``texts`` to remove: repeated windows of at least ``min_length`` bytes.

    Returns a pyarrow table with int64 columns ``doc`` (index into ``texts``), ``start``,
    ``end`` (byte offsets in the document's UTF-8 encoding) and ``occurrences``, sorted by
    document and start. ``keep`` defaults to ``"none"`` here (every copy is reported, as in
    Lee et al.); ``"first"`` reports only the later copies (see the module docs) and is the
    default of :func:`dedup_exact`. ``num_threads``: suffix-array construction threads (default: all cores; ``threads`` is its deprecated name);
    the result is identical for any value.

    ``memory_limit`` (bytes) switches to the external path: every window is hashed once and
    its entry spilled to one of several hash parts in a temporary folder (8 bytes of disk per
    input byte below 4 GiB, 16 beyond); each part is then sorted and checked byte by byte
    separately, so the working memory stays under the limit (1 bit per input byte for the
    marks plus 4 bytes per 64 for the class sizes must fit); the spans are identical to the
    in-memory path.

    Raises :class:`gristmill.GristmillError` (a ``ValueError``) if ``min_length < 1`` or if
    ``min_length`` is longer than every document.
    """
    ml, kp, th = _min_length(min_length), _keep(keep), _threads(num_threads, threads)
    mem = _memory_limit(memory_limit)
    with tempfile.TemporaryDirectory(prefix="gristmill-") if mem is not None else _nullcontext() as tmp:
        arr, _ = _gather(texts, "texts", tmp)
        out, _ = _repeats(arr, ml, kp, th, mem, tmp, None)
        return _spans_table(out)


def _out_of_memory(e: MemoryError, hint: str) -> MemoryError:
    """``e`` (from the core: what needs how much, or which allocation failed) with what to do."""
    return MemoryError(f"{str(e) or 'out of memory'}; {hint}")


def _repeats(arr: pa.Array, ml: int, kp: str, th: int, mem: Optional[int], tmp: Optional[str],
             tok: Any, work_dir: Optional[str] = None) -> Tuple[Tuple[Any, ...], Optional[int]]:
    """The repeat finder on ``arr`` (bytes, or tokens of ``tok``): in memory unless ``mem``;
    when the in-memory path does not fit (estimated before allocating, or a failed
    allocation), the memory-limited path with 3/4 of the available memory, with a warning.
    ``work_dir``: the memory-limited path keeps its files there and reuses those of an
    earlier, unfinished run (resumable). Returns the native result and the memory limit used
    (None: in memory)."""
    resume = work_dir is not None

    def call(m: Optional[int], work: Optional[str]) -> Tuple[Any, ...]:
        if tok is None:
            return tuple(_native.suffix_find_repeats(string_buffers(arr), ml, kp, th, False, m, work, resume))
        return tuple(_native.suffix_find_repeats_tokenized(string_buffers(arr), tok._t, ml, kp, th, m, work, resume))

    if mem is not None:
        try:
            return call(mem, work_dir or tmp), mem
        except MemoryError as e:
            raise _out_of_memory(e, f"lower memory_limit (--memory-limit), now {mem:,} bytes") from None
    try:
        return call(None, None), None
    except MemoryError as e:
        avail = _native.available_memory()
        if not avail:
            raise _out_of_memory(e, "give memory_limit (--memory-limit) to use the memory-limited repeat finder") from None
        limit = avail * 3 // 4
        warnings.warn(f"{e}: switching to the memory-limited repeat finder (as with --memory-limit "
                      f"{limit / 2**20:.0f}M): same result, slower, about 8 bytes per input byte spilled to "
                      f"{'the work folder' if resume else 'the temporary folder'}", RuntimeWarning, stacklevel=3)
        with tempfile.TemporaryDirectory(prefix="gristmill-") if work_dir is None else _nullcontext() as work:
            try:
                return call(limit, work_dir or work), limit
            except MemoryError as e2:
                raise _out_of_memory(e2, "not even the memory-limited repeat finder fits; free memory or "
                                         "split the corpus") from None
            except _native.GristmillError as e2:
                if "memory_limit" not in str(e2):
                    raise
                raise MemoryError(f"{e}; the memory-limited repeat finder does not fit either ({e2})") from None


def _free_disk(path: str) -> int:
    """Free bytes in the file system of ``path`` (``GRISTMILL_FREE_DISK`` overrides it, for tests)."""
    import shutil

    env = os.environ.get("GRISTMILL_FREE_DISK")
    if env:
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
        t = env.strip().upper().removesuffix("B").removesuffix("I")
        return int(float(t[:-1]) * units[t[-1]]) if t[-1] in units else int(t)
    return shutil.disk_usage(path).free


def _work_folder(work_dir: Union[str, "PathLike[str]"], texts: Texts) -> str:
    """Create ``work_dir`` and check, before anything is written, that the spilled text of a
    Corpus fits (estimated from the input files' sizes); the native path checks its own
    files exactly once the text is known."""
    from gristmill.io import Corpus

    wd = fspath(work_dir)
    os.makedirs(wd, exist_ok=True)
    if isinstance(texts, Corpus):
        need = 0
        for src in texts.sources:
            for p in src.input_paths():
                try:
                    need += os.path.getsize(p) if os.path.isfile(p) else 0
                except OSError:
                    pass
        free = _free_disk(wd)
        if need + (64 << 20) > free:
            raise OSError(f"not enough disk space in {wd} for the work folder: the corpus text alone needs about "
                          f"{need:,} bytes (the size of the input files) plus 64 MiB of headroom, but only {free:,} "
                          f"bytes are free; choose another --work-dir or free space")
    return wd


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None


def _unit(unit: str, min_length: Optional[int], tokenizer: Any) -> Tuple[int, Any]:
    """Checked ``min_length`` (default by unit) and the Tokenizer for ``unit="tokens"`` (else None)."""
    from gristmill.tokenizer import Tokenizer

    if unit not in UNIT_CHOICES:
        raise ValueError(f"unit must be one of {UNIT_CHOICES}, got {unit!r}")
    ml = _min_length(DEFAULT_MIN_LENGTH[unit] if min_length is None else min_length)
    if unit == "bytes":
        return ml, None
    if isinstance(tokenizer, Tokenizer):
        return ml, tokenizer
    if isinstance(tokenizer, (str, PathLike)):
        return ml, Tokenizer.from_tiktoken(tokenizer)
    raise TypeError(f"tokenizer must be a gristmill.Tokenizer or a tiktoken encoding name, got {type(tokenizer).__name__}")


def _memory_limit(m: Optional[int]) -> Optional[int]:
    if m is None:
        return None
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"memory_limit must be a positive number of bytes, got {m!r}")
    return int(m)


def find_token_repeats(
    tokens: Union[Sequence[Sequence[int]], Tuple[np.ndarray, np.ndarray]],
    min_length: int = 50,
    keep: str = "none",
    *,
    token_lengths: Optional[Union[Sequence[Sequence[int]], np.ndarray]] = None,
    num_threads: Optional[int] = None,
    threads: Optional[int] = None,
) -> pa.Table:
    """Token mode: repeated runs of at least ``min_length`` tokens, per document.

    ``tokens`` is either one sequence of token ids per document, or ``(ids, doc_offsets)``:
    a flat ``uint32`` array of all ids and ``n + 1`` token offsets. Same semantics as
    :func:`find_repeats` (windows never cross documents; ``keep`` none, the default, or
    first). Any vocabulary
    size works (more than 65,536 distinct ids goes through libsais' integer alphabet).

    Spans are in tokens, unless ``token_lengths`` (the byte length of every token, same
    layout as ``tokens``) is given: then ``start``/``end`` are exact byte offsets of the
    span's first token and of the end of its last token in the document's bytes. (For
    byte-level BPE a token boundary may fall inside a UTF-8 character.)

    >>> find_token_repeats([[1, 2, 3, 4], [9, 2, 3, 4]], 3).to_pylist()
    [{'doc': 0, 'start': 1, 'end': 4, 'occurrences': 2}, {'doc': 1, 'start': 1, 'end': 4, 'occurrences': 2}]
    >>> find_token_repeats([[1, 2, 3, 4], [9, 2, 3, 4]], 3, token_lengths=[[1, 2, 1, 3], [4, 2, 1, 3]]).to_pylist()
    [{'doc': 0, 'start': 1, 'end': 7, 'occurrences': 2}, {'doc': 1, 'start': 4, 'end': 10, 'occurrences': 2}]
    """
    ml, kp, th = _min_length(min_length), _keep(keep), _threads(num_threads, threads)
    ids, offsets = _flat_tokens(tokens, "tokens")
    starts = doc_bytes = None
    if token_lengths is not None:
        lengths, loff = _flat_tokens(token_lengths, "token_lengths", dtype=np.uint64)
        if not np.array_equal(loff, offsets):
            raise ValueError("token_lengths must have exactly one entry per token, document by document")
        ends = np.cumsum(lengths, dtype=np.uint64)
        totals = np.concatenate([[0], ends]).astype(np.uint64)
        doc_start_bytes = totals[offsets[:-1]]
        doc_bytes = (totals[offsets[1:]] - doc_start_bytes).astype(np.uint64)
        starts = (totals[:-1] - np.repeat(doc_start_bytes, np.diff(offsets))).astype(np.uint64)
    out = _native.suffix_find_repeats_tokens(ids, offsets, ml, kp, starts, doc_bytes, th)
    return _spans_table(out)


def _flat_tokens(tokens: Any, what: str, dtype: Any = np.uint32) -> Tuple[np.ndarray, np.ndarray]:
    if isinstance(tokens, tuple) and len(tokens) == 2 and isinstance(tokens[0], np.ndarray):
        ids = np.ascontiguousarray(tokens[0])
        offsets = np.ascontiguousarray(tokens[1], dtype=np.int64)
        if offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(ids) or np.any(np.diff(offsets) < 0):
            raise ValueError(f"{what}: doc_offsets must start at 0, end at len(ids) and not decrease")
    else:
        seqs = [np.asarray(t) for t in tokens]
        lens = np.array([len(t) for t in seqs], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        ids = np.concatenate(seqs) if seqs else np.zeros(0, dtype=dtype)
    if ids.size and (ids.min() < 0 or ids.max() > np.iinfo(np.uint32).max):
        raise ValueError(f"{what}: values must fit in uint32")
    return np.ascontiguousarray(ids, dtype=dtype), offsets


@dataclass
class DedupResult:
    """What :func:`dedup_exact` produced.

    Attributes:
        texts: the documents with the spans removed (pyarrow ``large_string``, same order and
            count as the input; a fully duplicated document becomes ``""``).
        spans: the removed spans (``doc``, ``start``, ``end``, ``occurrences``; plus ``id`` when
            the input was a Corpus).
        summary: documents, bytes, bytes_removed, documents_touched, documents_emptied, spans,
            duplicate_classes, min_length, keep.
        timings: seconds per stage (read, suffix_array, lcp, find_repeats, collect_spans, trim).
    """

    texts: pa.Array
    spans: pa.Table
    summary: Dict[str, Any]
    timings: Dict[str, float] = field(default_factory=dict)


def _trim(arr: pa.Array, spans: pa.Table) -> pa.Array:
    data, offsets = _native.suffix_trim(
        string_buffers(arr),
        spans.column("doc").to_numpy(),
        spans.column("start").to_numpy(),
        spans.column("end").to_numpy(),
    )
    return pa.LargeStringArray.from_buffers(len(arr), pa.py_buffer(offsets), pa.py_buffer(data))


def dedup_exact(
    texts: Texts,
    min_length: Optional[int] = None,
    keep: str = "first",
    *,
    unit: str = "bytes",
    tokenizer: Any = "o200k_base",
    num_threads: Optional[int] = None,
    threads: Optional[int] = None,
    memory_limit: Optional[int] = None,
    work_dir: Optional[Union[str, "PathLike[str]"]] = None,
) -> DedupResult:
    """Remove repeated spans of at least ``min_length`` bytes and return the trimmed texts, the
    spans report, a summary and stage timings. ``keep="first"`` (the default) removes the
    later copies so that no window of ``min_length`` bytes is left twice; ``keep="none"``
    removes every copy (Lee et al.); see the module docs.
    ``memory_limit``: see :func:`find_repeats` (a Corpus is then spilled to a temporary file
    and memory-mapped; the returned texts are built in memory). With ``unit="tokens"`` the
    token ids (4 bytes per token) and their byte offsets (8) are held in memory besides.
    ``work_dir``: folder for the memory-limited path's files (the spilled text, the hash parts,
    the marks of every finished part) instead of a temporary folder. They stay there until
    the run succeeds, so a rerun after a kill or an error with the same corpus, settings and
    ``memory_limit`` reuses the hashing pass and the finished parts, each verified by an
    xxh3 checksum (a damaged file is rebuilt); ``summary`` then says how many
    (``memory_parts_reused``). Free disk space is checked before anything is written.

    ``unit="tokens"`` measures ``min_length`` in tokens of ``tokenizer`` (a
    :class:`gristmill.Tokenizer` or a tiktoken encoding name) instead of bytes: documents
    are encoded (special-token strings count as plain text), repeated runs of at least
    ``min_length`` token ids are found with a suffix array over the ids, and every span is
    reported and removed as the exact byte range of its tokens, shrunk inward to UTF-8
    character boundaries. The default ``min_length`` is 100 bytes or 50 tokens.

    >>> r = dedup_exact(["a shared sentence of some length.", "x a shared sentence of some length."], 10)
    >>> r.texts.to_pylist(), r.summary["bytes_removed"]
    (['a shared sentence of some length.', 'x '], 33)
    >>> dedup_exact(["a shared sentence of some length.", "x a shared sentence of some length."], 10, "none").texts.to_pylist()
    ['', 'x ']
    >>> r = dedup_exact(["one two three four five six", "zero one two three four five six"], 5, "first", unit="tokens")
    >>> r.texts.to_pylist(), r.spans.to_pylist()
    (['one two three four five six', 'zero one'], [{'doc': 1, 'start': 8, 'end': 32, 'occurrences': 2}])
    """
    ml, tok = _unit(unit, min_length, tokenizer)
    kp, th = _keep(keep), _threads(num_threads, threads)
    mem = _memory_limit(memory_limit)
    wd = _work_folder(work_dir, texts) if work_dir is not None else None
    with tempfile.TemporaryDirectory(prefix="gristmill-") if mem is not None and wd is None else _nullcontext() as tmp:
        spill = wd if wd is not None and mem is not None else tmp
        t0 = time.perf_counter()
        with _progress.stage("dedup exact: read", "reading the corpus"):
            arr, ids = _gather(texts, "texts", spill)
        timings: Dict[str, float] = {"read": time.perf_counter() - t0}
        with _progress.stage("dedup exact: suffix array + repeats",
                             _progress.describe(len(arr), _nbytes(arr)) + f", windows of {ml} {unit}"):
            (d, s, e, o, stats), mem = _repeats(arr, ml, kp, th, mem, tmp, tok, wd)
        timings.update({k: v for k, v in stats["timings"] if k != "parts"})
        spans = _spans_table((d, s, e, o))
        t0 = time.perf_counter()
        with _progress.stage("dedup exact: trim", f"removing {len(d):,} spans"):
            trimmed = _trim(arr, spans)  # new buffers: never a view of the spill file
        timings["trim"] = time.perf_counter() - t0
        n_docs = len(arr)
        lengths = np.diff(string_buffers(arr)[1]).astype(np.int64)
        del arr
        if spill is not None and spill == wd and os.path.exists(os.path.join(wd, "texts.bin")):
            os.remove(os.path.join(wd, "texts.bin"))  # the run succeeded: leave the folder as it was
    if ids is not None:
        spans = spans.add_column(1, "id", ids.take(pa.array(d)))
    removed = np.bincount(d, weights=(e - s), minlength=n_docs).astype(np.int64) if len(d) else np.zeros(n_docs, np.int64)
    summary = {
        "documents": n_docs,
        "bytes": int(lengths.sum()),
        "bytes_removed": int(removed.sum()),
        "documents_touched": int((removed > 0).sum()),
        "documents_emptied": int(((removed == lengths) & (lengths > 0)).sum()),
        "spans": len(d),
        "duplicate_classes": int(stats["classes"]),
        "min_length": ml,
        "unit": unit,
        "keep": kp,
    }
    if tok is not None:
        summary["tokenizer"] = tok.name
    if mem is not None:
        summary["memory_limit"] = mem
        summary["memory_parts"] = int(dict(stats["timings"]).get("parts", 1))
        summary["memory_part_overflow_bytes"] = int(stats.get("part_overflow_bytes", 0))
        if wd is not None:
            summary["work_dir"] = wd
            summary["memory_parts_reused"] = int(stats.get("parts_reused", 0))
            summary["memory_parts_rebuilt"] = int(stats.get("parts_rebuilt", 0))
            summary["memory_hash_reused"] = bool(stats.get("hash_reused", False))
            summary["memory_hash_rebuilt"] = bool(stats.get("hash_rebuilt", False))
    return DedupResult(texts=trimmed, spans=spans, summary=summary, timings=timings)


@dataclass
class ContaminationResult:
    """What :func:`contamination` found.

    Attributes:
        spans: eval byte ranges covered by windows of ``min_length`` bytes that also occur in
            the training corpus: ``eval_doc``, ``start``, ``end``, ``train_occurrences`` (largest
            number of training copies of a window covering the span); plus ``id`` for a Corpus.
        documents: one row per contaminated eval document: ``eval_doc``, ``bytes``,
            ``contaminated_bytes``, ``fraction``, ``spans``, ``max_train_occurrences``.
        summary: eval documents, contaminated documents, bytes, contaminated bytes, min_length.
        timings: seconds per stage.
    """

    spans: pa.Table
    documents: pa.Table
    summary: Dict[str, Any]
    timings: Dict[str, float] = field(default_factory=dict)


def contamination(
    train: Texts,
    eval: Texts,
    min_length: Optional[int] = None,
    *,
    unit: str = "bytes",
    tokenizer: Any = "o200k_base",
    num_threads: Optional[int] = None,
    threads: Optional[int] = None,
) -> ContaminationResult:
    """Which ``eval`` documents share spans of at least ``min_length`` bytes with ``train``,
    where, and how often (one suffix array over train + eval; windows never cross documents).
    ``unit="tokens"`` counts ``min_length`` in tokens of ``tokenizer`` (see
    :func:`dedup_exact`); spans are still exact byte ranges of the eval documents. The
    default ``min_length`` is 100 bytes or 50 tokens.

    >>> r = contamination(["the answer is forty-two, said the computer"], ["q: the answer is forty-two?"], 12)
    >>> r.spans.to_pylist()
    [{'eval_doc': 0, 'start': 3, 'end': 26, 'train_occurrences': 1}]
    >>> contamination(["the answer is forty-two, said the computer"], ["q: the answer is forty-two?"], 4,
    ...               unit="tokens").spans.to_pylist()
    [{'eval_doc': 0, 'start': 6, 'end': 26, 'train_occurrences': 1}]
    """
    ml, tok = _unit(unit, min_length, tokenizer)
    th = _threads(num_threads, threads)
    t0 = time.perf_counter()
    with _progress.stage("contamination: read", "reading train and eval"):
        tr, _ = _gather(train, "train")
        ev, ev_ids = _gather(eval, "eval")
    timings: Dict[str, float] = {"read": time.perf_counter() - t0}
    with _progress.stage("contamination: suffix array + shared windows",
                         f"train {_progress.describe(len(tr), _nbytes(tr))}; eval {_progress.describe(len(ev), _nbytes(ev))}"):
        try:
            if tok is None:
                d, s, e, o, stats = _native.suffix_contamination(string_buffers(tr), string_buffers(ev), ml, th)
            else:
                d, s, e, o, stats = _native.suffix_contamination_tokenized(string_buffers(tr), string_buffers(ev), tok._t, ml, th)
        except MemoryError as err:
            raise _out_of_memory(err, "contamination has no memory-limited mode (--memory-limit is for `dedup exact`): "
                                      "split the training corpus and run once per part (an eval span is "
                                      "contaminated iff it occurs in some part), or free memory") from None
    timings.update({k: v for k, v in stats["timings"]})
    spans = _spans_table((d, s, e, o), "eval_doc", "train_occurrences")
    if ev_ids is not None:
        spans = spans.add_column(1, "id", ev_ids.take(pa.array(d)))
    lengths = np.diff(string_buffers(ev)[1]).astype(np.int64)
    n = len(ev)
    cont = np.bincount(d, weights=(e - s), minlength=n).astype(np.int64) if len(d) else np.zeros(n, np.int64)
    nspans = np.bincount(d, minlength=n).astype(np.int64) if len(d) else np.zeros(n, np.int64)
    maxocc = np.zeros(n, np.int64)
    if len(d):
        np.maximum.at(maxocc, d, o)
    which = np.flatnonzero(cont > 0)
    docs = pa.table({
        "eval_doc": which.astype(np.int64),
        "bytes": lengths[which],
        "contaminated_bytes": cont[which],
        "fraction": cont[which] / np.maximum(lengths[which], 1),
        "spans": nspans[which],
        "max_train_occurrences": maxocc[which],
    })
    if ev_ids is not None:
        docs = docs.add_column(1, "id", ev_ids.take(pa.array(which)))
    summary = {
        "eval_documents": n,
        "contaminated_documents": int(len(which)),
        "eval_bytes": int(lengths.sum()),
        "contaminated_bytes": int(cont.sum()),
        "shared_windows": int(stats["classes"]),
        "min_length": ml,
        "unit": unit,
    }
    if tok is not None:
        summary["tokenizer"] = tok.name
    return ContaminationResult(spans=spans, documents=docs, summary=summary, timings=timings)


def suffix_array(data: Union[bytes, bytearray, memoryview, np.ndarray], *, num_threads: Optional[int] = None,
                 threads: Optional[int] = None) -> np.ndarray:
    """The suffix array of a byte string (libsais; int32 below 2**31 bytes, else int64).

    >>> suffix_array(b"banana").tolist()
    [5, 3, 1, 0, 4, 2]
    """
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else np.ascontiguousarray(data, dtype=np.uint8)
    return _native.suffix_array_bytes(buf, _threads(num_threads, threads))


def _pattern(pattern: Union[str, bytes]) -> bytes:
    if isinstance(pattern, str):
        return pattern.encode("utf-8")
    if isinstance(pattern, (bytes, bytearray, memoryview)):
        return bytes(pattern)
    raise TypeError(f"pattern must be str or bytes, got {type(pattern).__name__}")


class SuffixIndex:
    """A memory-mapped suffix index on disk: exact counts and locations of any string.

    One file holds the text (documents separated by ``0xFF``, a byte that never occurs in
    UTF-8, so matches never cross documents), the document offsets, the document ids (when
    built from a :class:`gristmill.Corpus` or with ``ids``) and the suffix array, each section
    with its own checksum. It is written to a temporary file and renamed into place only
    when complete. :meth:`open` checks the header, the section sizes and the document offsets;
    ``verify=True`` re-hashes everything. A damaged file raises
    :class:`gristmill.GristmillError` naming the file and saying it is corrupted.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "corpus.gsi")
    >>> idx = SuffixIndex.build(["abracadabra", "cadabra!"], path)
    >>> idx.count("abra"), idx.locate("cad").to_pylist()
    (3, [{'doc': 0, 'offset': 4}, {'doc': 1, 'offset': 0}])
    """

    def __init__(self, native: Any, path: str):
        self._native = native
        self.path = path

    @classmethod
    def build(cls, texts: Texts, path: Union[str, "PathLike[str]"], *, num_threads: Optional[int] = None,
              threads: Optional[int] = None,
              ids: Optional[Sequence[str]] = None) -> "SuffixIndex":
        """Index ``texts`` into ``path`` (replacing it atomically) and open the result. The
        document ids of a :class:`gristmill.Corpus` (or ``ids``) are stored too."""
        from gristmill.io import Corpus, check_not_over_inputs

        if isinstance(texts, Corpus):
            check_not_over_inputs(texts, path)
        with _progress.stage("index build: read", "reading the corpus"):
            arr, corpus_ids = _gather(texts, "texts")
        id_arr = as_string_array(list(ids), what="ids") if ids is not None else corpus_ids
        p = fspath(path)
        with _progress.stage("index build: suffix array + write", _progress.describe(len(arr), _nbytes(arr))):
            try:
                _native.NativeSuffixIndex.build(string_buffers(arr), p, _threads(num_threads, threads), False,
                                                string_buffers(id_arr) if id_arr is not None else None)
            except MemoryError as e:
                raise _out_of_memory(e, "the suffix index is built in memory (there is no --memory-limit mode "
                                        "for it): index the corpus in parts, or free memory") from None
        return cls.open(p)

    @classmethod
    def open(cls, path: Union[str, "PathLike[str]"], *, verify: bool = False) -> "SuffixIndex":
        """Open an index. The header (its checksum, the section sizes against the file size)
        and the document offsets are always checked; ``verify=True`` also re-hashes the text,
        the ids and the suffix array (detects any corruption)."""
        p = fspath(path)
        return cls(_native.NativeSuffixIndex.open(p, verify), p)

    @property
    def info(self) -> Dict[str, int]:
        """Header fields: version, sa_width, num_docs, text_bytes, file_bytes, corpus_checksum, has_ids."""
        return dict(self._native.info())

    @property
    def num_docs(self) -> int:
        return int(self._native.info()["num_docs"])

    def __len__(self) -> int:
        return self.num_docs

    def __repr__(self) -> str:
        i = self.info
        return f"SuffixIndex({self.path!r}, docs={i['num_docs']}, text_bytes={i['text_bytes']})"

    def count(self, pattern: Union[str, bytes]) -> int:
        """Number of occurrences of ``pattern`` inside the indexed documents."""
        return int(self._native.count(_pattern(pattern)))

    def locate(self, pattern: Union[str, bytes], limit: int = 100) -> pa.Table:
        """Up to ``limit`` occurrences as a table (``doc``, ``offset`` in bytes, and ``id``
        when the index stores ids), sorted."""
        if limit < 0:
            raise ValueError("limit must be non-negative")
        d, o = self._native.locate(_pattern(pattern), int(limit))
        cols: Dict[str, Any] = {"doc": d, "offset": o}
        if self.info["has_ids"]:
            cols["id"] = pa.array([self._native.doc_id(int(i)) for i in d], pa.string())
        return pa.table(cols)

    def document(self, i: int) -> str:
        """Document ``i`` as stored in the index."""
        return self._native.document(int(i))  # a corrupted-index error if no longer UTF-8

    def doc_id(self, i: int) -> Optional[str]:
        """The id of document ``i`` (``None`` when the index was built without ids)."""
        return self._native.doc_id(int(i))

    def verify(self) -> None:
        """Re-hash the whole file against the header checksum."""
        self._native.verify()

    def check_corpus(self, texts: Texts) -> None:
        """Raise :class:`gristmill.GristmillError` unless ``texts`` are exactly the indexed documents."""
        arr, _ = _gather(texts, "texts")
        self._native.check_corpus(string_buffers(arr))
