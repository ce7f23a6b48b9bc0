"""Corpus input and output shared by every gristmill command.

A :class:`Corpus` is an ordered list of *sources*: JSONL files (``.jsonl``, ``.jsonl.gz``,
``.jsonl.zst``), Parquet files, and folders of plain-text files (one document per file).
Reading streams :class:`DocBatch` objects — a pyarrow string column of texts plus stable ids —
with memory bounded by the batch size, so a corpus far larger than RAM can be scanned.

Writing goes back to the input's own format: :meth:`Corpus.write` re-reads every source and
writes the kept (and possibly rewritten) documents to ``out_dir``, each file through a temporary
name and an atomic rename. Inputs are never modified, and an interrupted run leaves only hidden
``.*.tmp-*`` files, never an output that looks complete.

Document ids (unless ``id_field`` names a field): ``path:line`` for JSONL (1-based line number),
``path#row`` for Parquet (0-based row), and the path relative to the folder for text files.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "a.jsonl").write_text('{"text": "hello"}\\n{"text": "world"}\\n')
>>> corpus = Corpus([d / "a.jsonl"])
>>> [b.texts.to_pylist() for b in corpus.batches()]
[['hello', 'world']]
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Generator, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill._native import GristmillError

__all__ = [
    "Corpus",
    "CorpusError",
    "CorpusFieldError",
    "DocBatch",
    "Source",
    "atomic_write",
    "corpus_stats",
    "check_output_path",
    "check_not_over_inputs",
    "OutputOverInputError",
    "OutputFolder",
    "OutputFolderInUseError",
]

PathLike = Union[str, "os.PathLike[str]"]
INVALID_UTF8_POLICIES = ("error", "replace", "skip")
_JSONL_SUFFIXES = {".jsonl": None, ".jsonl.gz": "gzip", ".jsonl.zst": "zstd", ".jsonl.zstd": "zstd",
                   ".ndjson": None, ".ndjson.gz": "gzip", ".ndjson.zst": "zstd"}
_PARQUET_SUFFIXES = (".parquet", ".pq")
_READ_CHUNK = 8 << 20


class CorpusError(GristmillError):
    """A corpus file cannot be read as asked: the message names the file, line or document."""


class OutputOverInputError(CorpusError):
    """An output would replace an input or land inside an input folder (a usage error: the
    command exits with 2 before reading or writing anything)."""


class OutputFolderInUseError(CorpusError):
    """The output folder holds files of another run (a usage error, exit 2): choose an empty
    folder or pass ``--overwrite``."""


# --------------------------------------------------------------------------------------------
# batches


@dataclass
class DocBatch:
    """A slice of the corpus, in corpus order.

    Attributes:
        ids: pyarrow string array of document ids.
        texts: pyarrow ``large_string`` array of document texts (valid UTF-8).
        start: corpus-wide index of the first document of this batch.
        source: the source the documents come from.
        numbers: the values of the fields asked for with ``Corpus.batches(numbers=...)``, one
            float64 array per field name (read in the same pass as the texts).
    """

    ids: pa.Array
    texts: pa.Array
    start: int
    source: "Source"
    # positions of the documents within their source (records after skipping), for write-back
    local: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=np.int64))
    numbers: Dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def stop(self) -> int:
        return self.start + len(self.texts)


def _decode(raw: bytes, policy: str, where: str) -> Optional[str]:
    """Decode UTF-8 per ``policy``; ``None`` means skip the document."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if policy == "replace":
            return raw.decode("utf-8", "replace")
        if policy == "skip":
            return None
        raise CorpusError(
            f"{where}: invalid UTF-8 at byte {e.start} ({raw[e.start:e.start + 4]!r}); "
            "fix the file or pass --on-invalid-utf8 replace|skip"
        ) from None


def _check_str(text: str, policy: str, where: str) -> Optional[str]:
    """Strings from JSON may hold lone surrogates (``"\\ud800"``), which are not UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError as e:
        if policy == "replace":
            return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        if policy == "skip":
            return None
        raise CorpusError(
            f"{where}: text has a lone surrogate at character {e.start}, which is not valid UTF-8; "
            "pass --on-invalid-utf8 replace|skip"
        ) from None


class CorpusFieldError(CorpusError):
    """A field asked for with ``Corpus.batches(numbers=...)`` is missing from an input or holds
    something other than a number; :attr:`field` names it."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def _number(v: Any, name: str, where: str) -> float:
    """A field's value as a number: ``None`` is NaN, booleans are 0/1."""
    if v is None:
        return float("nan")
    if isinstance(v, (bool, int, float)):
        return float(v)
    raise CorpusFieldError(f"{where}: field {name!r} is {type(v).__name__}, expected a number", name)


# what the native reader found in a number field (``number_kinds``), as Python type names
_KIND_NAMES = {4: "str", 5: "list", 6: "dict"}


# --------------------------------------------------------------------------------------------
# sources


class Source:
    """One input: a JSONL file, a Parquet file or a folder of text files."""

    kind = ""

    def __init__(self, path: Path, display: str):
        self.path = path
        self.display = display  # how the path appears in ids and messages

    def check_readable(self) -> None:
        if not os.access(self.path, os.R_OK):
            raise CorpusError(f"{self.display}: permission denied (cannot read)")

    def output_name(self) -> str:
        return self.path.name

    def destination_paths(self, out: Path) -> List[Path]:
        return [out / self.output_name()]

    def input_paths(self) -> List[Path]:
        return [self.path]

    # reading --------------------------------------------------------------------------------
    def records(self, corpus: "Corpus") -> Iterator[Tuple[str, Optional[str]]]:
        """(id, text) per record in order; text ``None`` = skipped for invalid UTF-8."""
        raise NotImplementedError

    def records_with(self, corpus: "Corpus", numbers: Sequence[str]) -> Iterator[Tuple[str, Optional[str], List[float]]]:
        """(id, text, values of the ``numbers`` fields) per record, in one pass."""
        if numbers:
            raise CorpusFieldError(
                f"{self.display}: a folder of text files has no fields; field {numbers[0]!r} needs JSONL or "
                "Parquet inputs", numbers[0])
        for doc_id, text in self.records(corpus):
            yield doc_id, text, []

    # writing --------------------------------------------------------------------------------
    def write(self, out: Path, corpus: "Corpus", decide: Callable[[int], Tuple[bool, Optional[str]]]) -> List[Path]:
        """Write kept records; ``decide(local_index)`` → (keep, new_text or None for unchanged).
        Returns the files written."""
        raise NotImplementedError


def _open_stream(path: Path, compression: Optional[str]) -> Any:
    return pa.input_stream(str(path), compression=compression)


def _iter_lines(path: Path, compression: Optional[str], display: str) -> Iterator[Tuple[int, bytes]]:
    """Yield (1-based line number, line bytes without newline) with bounded memory."""
    try:
        stream = _open_stream(path, compression)
    except OSError as e:
        raise CorpusError(f"{display}: cannot open: {e}") from None
    lineno = 0
    carry: List[bytes] = []
    with stream:
        while True:
            try:
                chunk = stream.read(_READ_CHUNK)
            except OSError as e:
                raise CorpusError(
                    f"{display}: the compressed stream is corrupt or truncated after line {lineno}: {e}"
                ) from None
            if not chunk:
                break
            parts = chunk.split(b"\n")
            if carry:
                carry.append(parts[0])
                parts[0] = b"".join(carry)
                carry = []
            for line in parts[:-1]:
                lineno += 1
                yield lineno, line
            if parts[-1]:
                carry.append(parts[-1])
    if carry:
        lineno += 1
        yield lineno, b"".join(carry)


class JsonlSource(Source):
    kind = "jsonl"

    def __init__(self, path: Path, display: str, compression: Optional[str]):
        super().__init__(path, display)
        self.compression = compression

    def _parse(self, lineno: int, line: bytes, corpus: "Corpus") -> Optional[Tuple[str, Optional[str], Dict[str, Any]]]:
        where = f"{self.display}:{lineno}"
        if not line.strip():
            return None  # blank lines are not records (documented)
        try:
            line_text = line.decode("utf-8")
        except UnicodeDecodeError:
            line_text = None
        if line_text is None:
            # invalid UTF-8 inside the JSON line: apply the policy to the whole line
            decoded = _decode(line, corpus.on_invalid_utf8, where)
            if decoded is None:
                # still need the record's id: parse leniently
                decoded = line.decode("utf-8", "replace")
                obj = self._load(decoded, where)
                return self._doc_id(obj, lineno, where, corpus), None, obj
            line_text = decoded
        obj = self._load(line_text, where)
        text = obj.get(corpus.text_field, _MISSING)
        if text is _MISSING:
            fields = ", ".join(list(obj)[:10]) or "none"
            raise CorpusError(
                f"{where}: missing field {corpus.text_field!r} (fields present: {fields}); "
                "choose the text field with --text-field"
            )
        if not isinstance(text, str):
            raise CorpusError(
                f"{where}: field {corpus.text_field!r} is {_json_type(text)}, expected a string"
            )
        return self._doc_id(obj, lineno, where, corpus), _check_str(text, corpus.on_invalid_utf8, where), obj

    @staticmethod
    def _load(line_text: str, where: str) -> Dict[str, Any]:
        try:
            obj = json.loads(line_text)
        except json.JSONDecodeError as e:
            # json's messages may end in "at" ("Unterminated string starting at")
            raise CorpusError(f"{where}: invalid JSON: {e.msg.removesuffix(' at')} at column {e.colno}") from None
        if not isinstance(obj, dict):
            raise CorpusError(f"{where}: expected a JSON object per line, got {_json_type(obj)}")
        return obj

    def _doc_id(self, obj: Dict[str, Any], lineno: int, where: str, corpus: "Corpus") -> str:
        if corpus.id_field is None:
            return f"{self.display}:{lineno}"
        v = obj.get(corpus.id_field, _MISSING)
        if v is _MISSING or v is None:
            raise CorpusError(f"{where}: missing id field {corpus.id_field!r}")
        return v if isinstance(v, str) else json.dumps(v)

    def native_batches(self, corpus: "Corpus", numbers: Sequence[str] = ()
                       ) -> Iterator[Tuple[pa.Array, pa.Array, np.ndarray, Dict[str, Any]]]:
        """The records of the file as parsed by the native reader, a chunk of the file at a
        time: ``(ids, texts, valid, extra)`` — pyarrow ``string`` ids, ``large_string`` texts
        (their buffers are the reader's, not copied), a bool mask, ``False`` where the record is
        skipped for invalid UTF-8 (its text is then empty), and ``extra``: ``lines`` (1-based
        line numbers) and, per field of ``numbers``, ``(values, kinds)`` from the same pass.
        Errors are :class:`CorpusError`."""
        from gristmill import _native

        reader = _native._JsonlReader(str(self.path), self.compression, self.display, corpus.text_field,
                                      corpus.id_field, corpus.on_invalid_utf8, 1, list(numbers))
        try:
            while True:
                try:
                    b = next(reader)
                except StopIteration:
                    return
                except GristmillError as e:
                    raise CorpusError(self._explain(str(e))) from None
                n = len(b["lines"])
                texts = pa.LargeStringArray.from_buffers(n, pa.py_buffer(b["text_offsets"]), pa.py_buffer(b["text"]))
                extra: Dict[str, Any] = {"lines": b["lines"]}
                for name, vals, kinds in zip(numbers, b["numbers"], b["number_kinds"]):
                    extra[name] = (vals, kinds)
                yield self._native_ids(b, n, corpus), texts, b["valid"], extra
        finally:
            reader.close()

    def first_fields(self, lineno: int) -> List[str]:
        """The field names of the record on line ``lineno`` (for messages)."""
        for ln, line in _iter_lines(self.path, self.compression, self.display):
            if ln == lineno:
                return list(json.loads(line.decode("utf-8", "replace")))
        return []

    def _explain(self, msg: str) -> str:
        """Add a hint to a strict-JSON error on a line that Python's lenient ``json`` accepts
        (``NaN``/``Infinity`` literals, keys holding lone surrogates)."""
        m = re.match(re.escape(self.display) + r":(\d+): invalid JSON", msg)
        if not m:
            return msg
        msg = msg.replace(": invalid JSON: EOF while parsing ", ": invalid JSON: the line ends inside ", 1)
        target = int(m.group(1))
        for lineno, line in _iter_lines(self.path, self.compression, self.display):
            if lineno == target:
                try:
                    json.loads(line.decode("utf-8", "surrogateescape"))
                except (ValueError, UnicodeDecodeError):
                    return msg
                return (msg + "; the line is valid only for Python's lenient json (NaN or Infinity, which JSON "
                        "does not allow, or a key with a lone surrogate): write null instead of NaN "
                        "(json.dumps(..., allow_nan=False) finds them)")
        return msg

    def _native_ids(self, b: Dict[str, Any], n: int, corpus: "Corpus") -> pa.Array:
        if corpus.id_field is None:  # "path:line"
            lines = pa.array(b["lines"]).cast(pa.string())
            return pc.binary_join_element_wise(pa.scalar(self.display), lines, ":")
        raw = pa.LargeStringArray.from_buffers(n, pa.py_buffer(b["id_offsets"]), pa.py_buffer(b["ids"]))
        if not b["id_is_json"].any():
            return raw.cast(pa.string())
        # non-string ids (numbers, arrays, …) are rendered like json.dumps
        vals = raw.to_pylist()
        for i in np.flatnonzero(b["id_is_json"]):
            vals[i] = json.dumps(json.loads(vals[i]))
        return pa.array(vals, type=pa.string())

    def records(self, corpus: "Corpus") -> Iterator[Tuple[str, Optional[str]]]:
        for ids, texts, valid, _ in self.native_batches(corpus):
            for doc_id, text, ok in zip(ids.to_pylist(), texts.to_pylist(), valid.tolist()):
                yield doc_id, (text if ok else None)

    def write(self, out: Path, corpus: "Corpus", decide: Callable[[int], Tuple[bool, Optional[str]]]) -> List[Path]:
        local = 0
        with atomic_write(out / self.output_name(), compression=self.compression) as f:
            for lineno, line in _iter_lines(self.path, self.compression, self.display):
                if not line.strip():
                    continue
                keep, new_text = decide(local)
                local += 1
                if not keep:
                    continue
                if new_text is not None:
                    rec = self._parse(lineno, line, corpus)
                    assert rec is not None
                    obj = rec[2]
                    obj[corpus.text_field] = new_text
                    line = json.dumps(obj, ensure_ascii=False).encode("utf-8")
                f.write(line)
                f.write(b"\n")
        return [out / self.output_name()]


class ParquetSource(Source):
    kind = "parquet"

    def _open(self) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(str(self.path))
        except (OSError, pa.ArrowException) as e:
            raise CorpusError(f"{self.display}: not a readable Parquet file: {e}") from None

    def _column(self, pf: pq.ParquetFile, name: str, role: str) -> None:
        names = pf.schema_arrow.names
        if name not in names:
            raise CorpusError(
                f"{self.display}: no column {name!r} (columns: {', '.join(names[:10])}); "
                f"choose the {role} column with --{role}-field"
            )

    def records(self, corpus: "Corpus") -> Iterator[Tuple[str, Optional[str]]]:
        for doc_id, text, _ in self.records_with(corpus, ()):
            yield doc_id, text

    def records_with(self, corpus: "Corpus", numbers: Sequence[str]) -> Iterator[Tuple[str, Optional[str], List[float]]]:
        pf = self._open()
        self._column(pf, corpus.text_field, "text")
        cols = [corpus.text_field]
        if corpus.id_field is not None:
            self._column(pf, corpus.id_field, "id")
            cols.append(corpus.id_field)
        names = pf.schema_arrow.names
        for name in numbers:
            if name not in names:
                raise CorpusFieldError(f"{self.display}: no column {name!r} (columns: {', '.join(names[:10])})", name)
        first_num = len(cols)
        cols.extend(numbers)
        row = 0
        try:
            for rb in pf.iter_batches(batch_size=8192, columns=cols):
                col = rb.column(0)
                if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                        or pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)):
                    raise CorpusError(
                        f"{self.display}: column {corpus.text_field!r} has type {col.type}, expected string"
                    )
                binary = pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)
                ids = rb.column(1).to_pylist() if corpus.id_field is not None else None
                values = [rb.column(first_num + k).to_pylist() for k in range(len(numbers))]
                for i, v in enumerate(col.to_pylist() if not binary else col.to_pylist()):
                    where = f"{self.display}#{row}"
                    if v is None:
                        raise CorpusError(f"{where}: {corpus.text_field!r} is null, expected a string")
                    text = _decode(v, corpus.on_invalid_utf8, where) if binary else _check_str(v, corpus.on_invalid_utf8, where)
                    doc_id = where if ids is None else str(ids[i])
                    nums = [] if text is None else [_number(vals[i], name, where) for name, vals in zip(numbers, values)]
                    yield doc_id, text, nums
                    row += 1
        except pa.ArrowException as e:
            raise CorpusError(f"{self.display}: cannot read row {row}: {e}") from None

    def write(self, out: Path, corpus: "Corpus", decide: Callable[[int], Tuple[bool, Optional[str]]]) -> List[Path]:
        pf = self._open()
        schema = pf.schema_arrow
        ti = schema.get_field_index(corpus.text_field)
        local = 0
        with atomic_write(out / self.output_name(), binary_path=True) as tmp:
            writer = pq.ParquetWriter(str(tmp), schema)
            try:
                for rb in pf.iter_batches(batch_size=8192):
                    mask = np.zeros(rb.num_rows, dtype=bool)
                    texts = rb.column(ti).to_pylist() if rb.num_rows else []
                    changed = False
                    for i in range(rb.num_rows):
                        keep, new = decide(local)
                        local += 1
                        mask[i] = keep
                        if keep and new is not None:
                            texts[i] = new
                            changed = True
                    if changed:
                        rb = rb.set_column(ti, schema.field(ti), pa.array(texts, type=schema.field(ti).type))
                    kept = rb.filter(pa.array(mask))
                    if kept.num_rows:
                        writer.write_batch(kept)
            finally:
                writer.close()
        return [out / self.output_name()]


class TextFolderSource(Source):
    kind = "text"

    def __init__(self, path: Path, display: str, pattern: Optional[str], exclude: Sequence[str] = ()):
        super().__init__(path, display)
        self.pattern = pattern
        self.exclude = tuple(exclude)
        self._files: Optional[List[Path]] = None

    def files(self) -> List[Path]:
        if self._files is None:
            files = []
            for root, dirs, names in os.walk(self.path, onerror=self._walk_error):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not self._excluded(d))
                for n in sorted(names):
                    if n.startswith(".") or self._excluded(n):
                        continue
                    p = Path(root) / n
                    rel = p.relative_to(self.path).as_posix()
                    if self.pattern and not (fnmatch.fnmatch(rel, self.pattern) or fnmatch.fnmatch(n, self.pattern)):
                        continue
                    if p.is_file():
                        files.append(p)
            self._files = files
        return self._files

    def _excluded(self, name: str) -> bool:
        return any(fnmatch.fnmatch(name, pat) for pat in self.exclude)

    def _walk_error(self, e: OSError) -> None:
        raise CorpusError(f"{e.filename}: cannot list folder: {e.strerror}")

    def destination_paths(self, out: Path) -> List[Path]:
        base = out / self.path.name
        return [base / p.relative_to(self.path) for p in self.files()]

    def input_paths(self) -> List[Path]:
        return self.files()

    def records(self, corpus: "Corpus") -> Iterator[Tuple[str, Optional[str]]]:
        for p in self.files():
            rel = p.relative_to(self.path).as_posix()
            where = f"{self.display}/{rel}"
            try:
                raw = p.read_bytes()
            except OSError as e:
                raise CorpusError(f"{where}: cannot read: {e.strerror}") from None
            yield (where if corpus.id_field is None else rel), _decode(raw, corpus.on_invalid_utf8, where)

    def write(self, out: Path, corpus: "Corpus", decide: Callable[[int], Tuple[bool, Optional[str]]]) -> List[Path]:
        base = out / self.path.name
        written: List[Path] = []
        for local, p in enumerate(self.files()):
            keep, new = decide(local)
            if not keep:
                continue
            dest = base / p.relative_to(self.path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(dest) as f:
                f.write(new.encode("utf-8") if new is not None else p.read_bytes())
            written.append(dest)
        return written


_MISSING = object()


def _text_bytes(texts: pa.Array) -> int:
    """Bytes of text in a ``large_string`` array (or slice)."""
    if not len(texts):
        return 0
    offs = np.frombuffer(texts.buffers()[1], dtype=np.int64)
    return int(offs[texts.offset + len(texts)] - offs[texts.offset])


def _json_type(v: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def _source_for(path: Path, display: str, pattern: Optional[str], exclude: Sequence[str]) -> Source:
    if not path.exists():
        raise CorpusError(f"{display}: no such file or folder")
    if path.is_dir():
        return TextFolderSource(path, display, pattern, exclude)
    name = path.name.lower()
    for suf, comp in _JSONL_SUFFIXES.items():
        if name.endswith(suf):
            return JsonlSource(path, display, comp)
    if name.endswith(_PARQUET_SUFFIXES):
        return ParquetSource(path, display)
    raise CorpusError(
        f"{display}: unknown input format; expected .jsonl, .jsonl.gz, .jsonl.zst, .parquet "
        "or a folder of text files"
    )


# --------------------------------------------------------------------------------------------
# the corpus


class Corpus:
    """An ordered set of input files and folders, read as one stream of documents.

    Args:
        paths: files (``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst``, ``.parquet``) and folders of
            text files, in corpus order. Folders are walked in sorted order, hidden entries skipped.
        text_field: JSON field / Parquet column holding the text.
        id_field: field holding a document id; default: ``path:line`` / ``path#row`` / file path.
        on_invalid_utf8: ``"error"`` (default: raise naming the document), ``"replace"`` (U+FFFD)
            or ``"skip"`` (the document is left out of processing *and* of the output, and counted
            in :attr:`skipped`).
        glob: for folders, only files whose relative path or name matches this pattern
            (e.g. ``"*.py"``).
        exclude: for folders, skip files and sub-folders whose name matches any of these
            patterns (e.g. ``["site-packages", "*.min.js"]``).
        batch_bytes: target text bytes per batch (memory bound while streaming).

    JSONL is read by the native reader (one parse per line, texts straight into Arrow
    buffers, chunks of a file parsed in parallel) as strict JSON (RFC 8259): ``NaN`` and
    ``Infinity`` literals, which Python's ``json.dumps`` writes unless ``allow_nan=False``,
    and object keys holding lone-surrogate escapes are errors naming ``file:line`` (write
    ``null`` instead). Blank lines are not records. Lone surrogates in the text field follow
    ``on_invalid_utf8``.
    """

    def __init__(
        self,
        paths: Union[PathLike, Sequence[PathLike]],
        *,
        text_field: str = "text",
        id_field: Optional[str] = None,
        on_invalid_utf8: str = "error",
        glob: Optional[str] = None,
        exclude: Sequence[str] = (),
        batch_bytes: int = 32 << 20,
    ):
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        if not paths:
            raise CorpusError("no input paths given")
        if on_invalid_utf8 not in INVALID_UTF8_POLICIES:
            raise ValueError(f"on_invalid_utf8 must be one of {INVALID_UTF8_POLICIES}, not {on_invalid_utf8!r}")
        if batch_bytes < 1:
            raise ValueError("batch_bytes must be positive")
        self.text_field = text_field
        self.id_field = id_field
        self.on_invalid_utf8 = on_invalid_utf8
        self.batch_bytes = batch_bytes
        self.sources: List[Source] = []
        for p in paths:
            display = os.fspath(p)
            src = _source_for(Path(p), display, glob, exclude)
            src.check_readable()
            self.sources.append(src)
        #: documents skipped because of invalid UTF-8 in the last full pass (policy "skip")
        self.skipped: List[str] = []
        self._counts: Optional[List[Tuple[int, List[int]]]] = None
        self._warned_empty = False

    def __repr__(self) -> str:
        return f"Corpus({[s.display for s in self.sources]!r}, text_field={self.text_field!r})"

    def batches(self, *, batch_docs: int = 65536, numbers: Sequence[str] = ()) -> Iterator[DocBatch]:
        """Stream the corpus as :class:`DocBatch` es in corpus order.

        A batch never spans two sources and holds at most ``batch_docs`` documents and roughly
        ``batch_bytes`` of text (a single larger document forms its own batch).

        ``numbers``: fields (JSONL) or columns (Parquet) whose values are read in the same pass
        as the texts, into :attr:`DocBatch.numbers` (float64; missing or null values are NaN,
        booleans 0/1). A value of another type, or an input in which no document has the
        field (a misspelt name), is a :class:`CorpusFieldError` naming the document or the
        fields there; folders of text files have no fields.
        """
        numbers = list(numbers)
        start = 0
        skipped: List[str] = []
        counts: List[Tuple[int, List[int]]] = []
        for src in self.sources:
            if isinstance(src, JsonlSource):
                n_rec, skipped_rec = yield from self._jsonl_batches(src, batch_docs, start, skipped, numbers)
                start += n_rec - len(skipped_rec)
                counts.append((n_rec, skipped_rec))
                continue
            ids: List[str] = []
            texts: List[str] = []
            local: List[int] = []
            values: List[List[float]] = []
            skipped_local: List[int] = []
            size = 0
            n = 0
            for i, (doc_id, text, nums) in enumerate(src.records_with(self, numbers)):
                n = i + 1
                if text is None:
                    skipped.append(doc_id)
                    skipped_local.append(i)
                    continue
                ids.append(doc_id)
                texts.append(text)
                local.append(i)
                values.append(nums)
                size += len(text)
                if size >= self.batch_bytes or len(texts) >= batch_docs:
                    yield self._batch(ids, texts, local, start, src, numbers, values)
                    start += len(texts)
                    ids, texts, local, values, size = [], [], [], [], 0
            if texts:
                yield self._batch(ids, texts, local, start, src, numbers, values)
                start += len(texts)
            counts.append((n, skipped_local))
        self.skipped = skipped
        self._counts = counts
        if start == 0 and not skipped and not self._warned_empty:
            self._warned_empty = True  # once per corpus, however often it is read
            unmatched = [s for s in self.sources if isinstance(s, TextFolderSource) and s.pattern and not s.files()]
            if unmatched:
                s0 = unmatched[0]
                msg = f"{s0.display}: no files match {s0.pattern!r}; the corpus is empty"
            else:
                msg = f"no documents in {', '.join(s.display for s in self.sources)}; the corpus is empty"
            warnings.warn(msg, stacklevel=2)
        if skipped:
            warnings.warn(
                f"skipped {len(skipped)} document(s) with invalid UTF-8, first: {skipped[0]}",
                stacklevel=2,
            )

    def _jsonl_batches(self, src: "JsonlSource", batch_docs: int, start: int, skipped: List[str],
                       numbers: Sequence[str] = ()) -> Generator[DocBatch, None, Tuple[int, List[int]]]:
        """Batches of one JSONL source from the native reader, cut like the other sources'
        (at most ``batch_docs`` documents, about ``batch_bytes`` of text). Appends the ids of
        skipped records to ``skipped``; returns (records, local indices of skipped records)."""
        n = 0
        skipped_local: List[int] = []
        # pending pieces: (ids, texts, local, numbers) of kept documents not yet emitted
        pend: List[Tuple[pa.Array, pa.Array, np.ndarray, List[np.ndarray]]] = []
        pend_docs = pend_bytes = 0
        seen = {name: False for name in numbers}  # some document has the field
        first_line = 0  # line of the first document (for the field names in messages)

        def cut(final: bool) -> Iterator[DocBatch]:
            """Emit the full batches of ``pend`` (with ``final``, the rest too)."""
            nonlocal pend, pend_docs, pend_bytes, start
            if not pend:
                return
            one = len(pend) == 1
            ids = pend[0][0] if one else pa.concat_arrays([p[0] for p in pend])
            texts = pend[0][1] if one else pa.concat_arrays([p[1] for p in pend])
            local = pend[0][2] if one else np.concatenate([p[2] for p in pend])
            nums = pend[0][3] if one else [np.concatenate([p[3][k] for p in pend]) for k in range(len(numbers))]
            offs = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset:texts.offset + len(texts) + 1]
            i, m = 0, len(texts)
            while i < m:
                # first j > i with bytes(i..j) >= batch_bytes, capped at batch_docs documents
                j = int(np.searchsorted(offs, offs[i] + self.batch_bytes, side="left"))
                j = max(j, i + 1)
                j = min(j, i + batch_docs, m)
                full = j - i >= batch_docs or offs[j] - offs[i] >= self.batch_bytes
                if not full and not final:
                    break
                yield DocBatch(ids=ids.slice(i, j - i), texts=texts.slice(i, j - i), start=start, source=src,
                               local=local[i:j], numbers={name: v[i:j] for name, v in zip(numbers, nums)})
                start += j - i
                i = j
            pend = [(ids.slice(i), texts.slice(i), local[i:], [v[i:] for v in nums])] if i < m else []
            pend_docs = m - i
            pend_bytes = int(offs[m] - offs[i])

        for ids, texts, valid, extra in src.native_batches(self, numbers):
            k = len(texts)
            local = np.arange(n, n + k, dtype=np.int64)
            lines = extra["lines"]
            all_valid = bool(valid.all())
            if not all_valid:
                bad = np.flatnonzero(~valid)
                skipped.extend(ids.take(pa.array(bad)).to_pylist())
                skipped_local.extend((bad + n).tolist())
                mask = pa.array(valid)
                ids, texts, local, lines = ids.filter(mask), texts.filter(mask), local[valid], lines[valid]
            nums = []
            for name in numbers:
                vals, kinds = extra[name]
                if not all_valid:
                    vals, kinds = vals[valid], kinds[valid]
                if len(kinds) and kinds.max() >= 4:  # a string, array or object
                    at = int(np.flatnonzero(kinds >= 4)[0])
                    raise CorpusFieldError(f"{src.display}:{lines[at]}: field {name!r} is "
                                           f"{_KIND_NAMES[int(kinds[at])]}, expected a number", name)
                seen[name] = seen[name] or bool((kinds != 0).any())
                nums.append(vals)
            if first_line == 0 and len(lines):
                first_line = int(lines[0])
            n += k
            if len(texts):
                pend.append((ids, texts, local, nums))
                pend_docs += len(texts)
                pend_bytes += _text_bytes(texts)
            if pend_docs >= batch_docs or pend_bytes >= self.batch_bytes:
                yield from cut(final=False)
        for name in numbers:
            if first_line and not seen[name]:
                fields = src.first_fields(first_line)
                raise CorpusFieldError(
                    f"{src.display}: no document has the field {name!r} (fields: {', '.join(fields[:10])})", name)
        yield from cut(final=True)
        return n, skipped_local

    def __len__(self) -> int:
        """Number of documents (after skipping); needs one pass over the corpus the first time."""
        if self._counts is None:
            for _ in self.batches():
                pass
        assert self._counts is not None
        return sum(n - len(sk) for n, sk in self._counts)

    @staticmethod
    def _batch(ids: List[str], texts: List[str], local: List[int], start: int, src: Source,
               numbers: Sequence[str] = (), values: Sequence[List[float]] = ()) -> DocBatch:
        cols = np.asarray(values, dtype=np.float64).reshape(len(texts), len(numbers))
        return DocBatch(
            ids=pa.array(ids, type=pa.string()),
            texts=pa.array(texts, type=pa.large_string()),
            start=start,
            source=src,
            local=np.asarray(local, dtype=np.int64),
            numbers={name: np.ascontiguousarray(cols[:, k]) for k, name in enumerate(numbers)},
        )

    def texts(self) -> Iterator[str]:
        """Every document's text, in order (convenience; prefer :meth:`batches` for bulk work)."""
        for b in self.batches():
            yield from b.texts.to_pylist()

    def output_paths(self, out_dir: PathLike) -> List[Path]:
        """Where :meth:`write` puts each source's output under ``out_dir``."""
        return [p for s in self.sources for p in s.destination_paths(Path(out_dir))]

    def write(
        self,
        out_dir: PathLike,
        keep: Optional[np.ndarray] = None,
        replace: Optional[Dict[int, str]] = None,
        *,
        folder: Optional["OutputFolder"] = None,
    ) -> List[Path]:
        """Write the corpus to ``out_dir`` in each input's format.

        Args:
            keep: boolean mask over the corpus's documents (as numbered by :meth:`batches`);
                ``False`` drops the document. Default: keep all.
            replace: corpus index → new text for documents whose text changes (e.g. after
                removing duplicated spans); every other field of the record is preserved.

        Each output file is written to a hidden temporary name and renamed into place only
        when complete. Returns the output files written (one per JSONL/Parquet input, one per
        kept file of a folder).

        ``out_dir/.gristmill-outputs.json`` records, per run, its inputs and the files it
        wrote (see :class:`OutputFolder`). Writing the same inputs again replaces the earlier
        run: its files that this run does not write (e.g. documents dropped this time) are
        deleted. Files of runs with other inputs, and files gristmill did not write, are never
        deleted. With ``folder``, the caller records the run itself (``folder.commit``), e.g.
        after writing its reports next to the corpus.
        """
        out = Path(out_dir)
        check_output_path(self, out)
        total = len(self)
        assert self._counts is not None
        if keep is not None:
            keep = np.asarray(keep, dtype=bool)
            if keep.shape != (total,):
                raise ValueError(f"keep has {keep.size} entries; the corpus has {total} documents")
        replace = replace or {}
        out.mkdir(parents=True, exist_ok=True)
        with staged_outputs():
            written_files = self._write_all(out, keep, replace)
        if folder is None:
            OutputFolder(out, command="Corpus.write", inputs=self, overwrite=True).commit(written_files)
        return written_files

    def _write_all(self, out: Path, keep: Optional[np.ndarray], replace: Dict[int, str]) -> List[Path]:
        written_files: List[Path] = []
        start = 0
        assert self._counts is not None
        for src, (n, skipped_local) in zip(self.sources, self._counts):
            # local record index -> corpus index; -1 for records skipped for invalid UTF-8
            is_doc = np.ones(n, dtype=bool)
            is_doc[skipped_local] = False
            mapping = np.where(is_doc, start + np.cumsum(is_doc) - 1, -1)
            start += int(is_doc.sum())

            def decide(local: int, mapping: np.ndarray = mapping) -> Tuple[bool, Optional[str]]:
                g = int(mapping[local]) if local < len(mapping) else -1
                if g < 0 or (keep is not None and not keep[g]):
                    return False, None
                return True, replace.get(g)

            written_files.extend(src.write(out, self, decide))
        return written_files


_OUTPUTS_MANIFEST = ".gristmill-outputs.json"


def _visible_files(root: Path) -> List[Path]:
    """Files under ``root``, skipping hidden files and folders (temporary files, the manifest)."""
    found: List[Path] = []
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(dirpath) / n for n in sorted(names) if not n.startswith("."))
    return found


class OutputFolder:
    """The rule for writing into an output folder that may hold earlier results.

    ``OUT/.gristmill-outputs.json`` records every run that wrote into ``OUT``: its command,
    its inputs (resolved paths) and the files it wrote. Before a command does any work,
    :meth:`claim` accepts the folder when it is missing or empty, or when it holds only the
    outputs of an earlier run of the *same command on the same inputs* (a re-run). Anything
    else — outputs of another command or of other inputs, files gristmill did not write — is
    refused with :class:`OutputFolderInUseError` unless ``overwrite``.

    When the run is complete, :meth:`commit` records it: an earlier run on the same inputs
    (whatever its command) is replaced, so its files that this run did not write are deleted
    — no stale report of another command, no document dropped this time. Files of runs with
    other inputs, and files gristmill did not write, are never deleted (with ``overwrite``, a
    file of the same name is replaced).
    """

    def __init__(self, path: PathLike, *, command: str, inputs: Union["Corpus", Sequence["Corpus"]],
                 overwrite: bool = False):
        self.path = Path(path)
        self.command = command
        corpora = [inputs] if isinstance(inputs, Corpus) else list(inputs)
        self.inputs = sorted({str(s.path.resolve()) for c in corpora for s in c.sources})
        self.overwrite = overwrite

    def _runs(self) -> List[Dict[str, Any]]:
        try:
            loaded = json.loads((self.path / _OUTPUTS_MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        if not isinstance(loaded, dict):
            return []
        runs = loaded.get("runs")
        if not isinstance(runs, list):  # manifest of an earlier gristmill: inputs unknown
            files = loaded.get("files")
            runs = [{"command": None, "inputs": None, "files": files}] if isinstance(files, list) else []
        out = []
        for r in runs:
            if isinstance(r, dict) and isinstance(r.get("files"), list):
                files = [f for f in r["files"] if isinstance(f, str)]
                inputs = r.get("inputs")
                out.append({"command": r.get("command"), "inputs": inputs if isinstance(inputs, list) else None,
                            "files": files})
        return out

    def _same_inputs(self, run: Dict[str, Any]) -> bool:
        return run["inputs"] is not None and sorted(run["inputs"]) == self.inputs

    def claim(self) -> None:
        """Raise :class:`OutputFolderInUseError` unless this run may write into the folder.

        Then open a stage (see :class:`staged_outputs`): the run's outputs stay under hidden
        temporary names until :meth:`commit`, so a failed or killed run leaves no output that
        looks complete. Stale temporaries of dead runs are removed.
        """
        self._check()
        if self.path.is_dir():
            remove_stale_temps(self.path, recursive=True)
        self._stage: Optional[staged_outputs] = staged_outputs()
        self._stage.__enter__()

    def _check(self) -> None:
        if self.overwrite or not self.path.is_dir():
            return
        present = _visible_files(self.path)
        if not present:
            return
        runs = self._runs()
        for r in runs:
            if not (r["command"] == self.command and self._same_inputs(r)):
                what = f"gristmill {r['command']}" if r["command"] and r["command"] != "Corpus.write" else "a gristmill run"
                ins = ", ".join(r["inputs"] or []) or "unrecorded inputs"
                raise OutputFolderInUseError(
                    f"{self.path}: the output folder holds the outputs of {what} on {ins}; "
                    "choose an empty folder (one per shard), or pass --overwrite to write into it "
                    "(outputs of other inputs are kept)"
                )
        root = self.path.resolve()
        listed = {(self.path / f).resolve() for r in runs for f in r["files"]}
        foreign = [p for p in present if p.resolve() not in listed and p.resolve() != root]
        if foreign:
            raise OutputFolderInUseError(
                f"{self.path}: the output folder is not empty and {foreign[0].relative_to(self.path)} "
                f"(and {len(foreign) - 1} more file(s)) was not written by gristmill; choose an empty folder, "
                "or pass --overwrite to write into it (files gristmill did not write are never deleted)"
                if len(foreign) > 1 else
                f"{self.path}: the output folder is not empty and {foreign[0].relative_to(self.path)} was not "
                "written by gristmill; choose an empty folder, or pass --overwrite to write into it "
                "(files gristmill did not write are never deleted)"
            )

    def commit(self, written: Iterable[PathLike]) -> None:
        """Rename this run's staged outputs into place, record its files, delete the files of
        the earlier run it replaces."""
        stage = getattr(self, "_stage", None)
        if stage is not None:
            self._stage = None
            stage.__exit__(None, None, None)
        out = self.path
        root = out.resolve()
        new = sorted({Path(p).resolve().relative_to(root).as_posix() for p in written})
        new_set = set(new)
        kept_runs: List[Dict[str, Any]] = []
        stale: List[str] = []
        for r in self._runs():
            if self._same_inputs(r):
                stale.extend(f for f in r["files"] if f not in new_set)
            else:
                files = [f for f in r["files"] if f not in new_set]
                if files:
                    kept_runs.append({**r, "files": files})
        protected = {(out / f).resolve() for r in kept_runs for f in r["files"]}
        inputs = {Path(i) for i in self.inputs}
        for rel in sorted(set(stale)):
            p = (out / rel).resolve()
            if (not _is_within(p, root) or p == root or p in protected or p.name == _OUTPUTS_MANIFEST
                    or not p.is_file() or any(_is_within(p, i) for i in inputs)):
                continue  # never follow an entry outside the output folder, never delete an input
            p.unlink()
            parent = p.parent
            while parent != root and _is_within(parent, root):
                try:
                    parent.rmdir()  # only if now empty
                except OSError:
                    break
                parent = parent.parent
        runs = kept_runs + [{"command": self.command, "inputs": self.inputs, "files": new}]
        write_json(out / _OUTPUTS_MANIFEST, {"written_by": "gristmill", "version": 2, "runs": runs})


# --------------------------------------------------------------------------------------------
# output helpers


_TMP_NAME = re.compile(r"^\..+\.tmp-(\d+)$")
_cleaned_dirs: set = set()
# open stages: each a list of (temporary, final) paths renamed into place together (see staged_outputs)
_STAGES: List[List[Tuple[Path, Path]]] = []


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process (or unknown): keep its files
    return True


def remove_stale_temps(folder: PathLike, *, recursive: bool = False) -> List[Path]:
    """Remove hidden ``.NAME.tmp-PID`` files and folders under ``folder`` whose process is gone.

    They are what a killed or failed run leaves behind; every later run that writes into the
    folder removes them (temporaries of a live process are never touched). Returns what was removed.
    """
    return _remove_temps(folder, recursive, lambda pid: not _pid_alive(pid))


def remove_own_temps(folder: PathLike, *, recursive: bool = False) -> List[Path]:
    """Remove the hidden ``.NAME.tmp-PID`` files and folders of *this* process under
    ``folder`` (an interrupted command's last act before it exits)."""
    me = os.getpid()
    return _remove_temps(folder, recursive, lambda pid: pid == me)


def _remove_temps(folder: PathLike, recursive: bool, whose: Callable[[int], bool]) -> List[Path]:
    root = Path(folder)
    removed: List[Path] = []
    try:
        walker = os.walk(root) if recursive else [(str(root), [d.name for d in os.scandir(root) if d.is_dir()],
                                                    [])]
    except OSError:
        return removed
    for dirpath, dirs, _ in walker:
        try:
            entries = list(os.scandir(dirpath))
        except OSError:
            continue
        for e in entries:
            m = _TMP_NAME.match(e.name)
            if not m or not whose(int(m.group(1))):
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path)
                    if recursive and e.name in dirs:
                        dirs.remove(e.name)
                else:
                    os.unlink(e.path)
                removed.append(Path(e.path))
            except OSError:
                pass
    return removed


def _publish(pending: List[Tuple[Path, Path]]) -> None:
    for i, (tmp, final) in enumerate(pending):
        try:
            os.replace(tmp, final)
        except OSError as e:
            _discard(pending[i:])
            raise CorpusError(f"{final}: cannot write: {e.strerror or e}") from None


def _discard(pending: List[Tuple[Path, Path]]) -> None:
    for tmp, _ in pending:
        try:
            tmp.unlink()
        except OSError:
            pass


class staged_outputs:
    """Context manager: every file written with :class:`atomic_write` inside the block stays
    under its hidden temporary name until the whole block succeeds; then all are renamed into
    place, in the order they were written (so a manifest written last lands last). On error
    every temporary is removed and no output of the block appears. Nested blocks join the outer one.

    This is what makes a multi-file output (token shards + manifest, a cleaned corpus + its
    reports) appear all at once or not at all.
    """

    def __enter__(self) -> "staged_outputs":
        self._pending: List[Tuple[Path, Path]] = []
        _STAGES.append(self._pending)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        for i in range(len(_STAGES) - 1, -1, -1):
            if _STAGES[i] is self._pending:
                del _STAGES[i]
        if exc_type is not None:
            _discard(self._pending)
        elif _STAGES:
            for tmp, final in self._pending:
                _stage(tmp, final)
        else:
            _publish(self._pending)


def _stage(tmp: Path, final: Path) -> None:
    stage = _STAGES[-1]
    stage[:] = [(t, f) for t, f in stage if t != tmp]  # written twice: the later write wins
    stage.append((tmp, final))


def finish_staged(ok: bool) -> None:
    """Close every open stage at the end of a command: publish it when the command succeeded,
    else remove its temporaries."""
    while _STAGES:
        pending = _STAGES.pop(0)
        _publish(pending) if ok else _discard(pending)


class atomic_write:
    """Context manager: write ``path`` via a hidden temporary file renamed into place on success.

    Yields a binary file object (or, with ``binary_path=True``, the temporary *path* for writers
    that open files themselves). On error the temporary file is removed and ``path`` untouched;
    an ``OSError`` while writing (e.g. a full disk) becomes a :class:`CorpusError` naming
    ``path``. Inside :class:`staged_outputs` the rename waits for the end of the block.
    Stale temporaries of dead processes in the same folder are removed first.
    ``compression`` (``"gzip"``/``"zstd"``) compresses the stream.
    """

    def __init__(self, path: PathLike, *, compression: Optional[str] = None, binary_path: bool = False):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.compression = compression
        self.binary_path = binary_path
        self._f: Any = None

    def __enter__(self) -> Any:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CorpusError(f"{self.path}: cannot write: {e.strerror or e}") from None
        parent = self.path.parent.resolve()
        if parent not in _cleaned_dirs:
            _cleaned_dirs.add(parent)
            remove_stale_temps(parent)
        if self.binary_path:
            return self.tmp
        try:
            self._f = pa.output_stream(str(self.tmp), compression=self.compression)
        except OSError as e:
            raise CorpusError(f"{self.path}: cannot write: {e.strerror or e}") from None
        return self._f

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self._f is not None:
                self._f.close()
        except OSError as e:
            if exc_type is None:
                self._cleanup()
                raise CorpusError(f"{self.path}: cannot write: {e.strerror or e}") from None
        if exc_type is not None:
            self._cleanup()
            if issubclass(exc_type, OSError) and not issubclass(exc_type, CorpusError):
                raise CorpusError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
            return
        if _STAGES:
            _stage(self.tmp, self.path)
            return
        try:
            os.replace(self.tmp, self.path)
        except OSError as e:
            self._cleanup()
            raise CorpusError(f"{self.path}: cannot write: {e.strerror}") from None

    def _cleanup(self) -> None:
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


def adopt_file(src: PathLike, final: PathLike) -> None:
    """Give ``final`` the finished file ``src`` (written by another process, e.g. a Ray
    worker, on the same file system) as :class:`atomic_write` would: renamed into place now,
    or, inside :class:`staged_outputs`, kept under the hidden temporary name until the stage
    is published (and removed if it is discarded)."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        os.replace(src, tmp)
        if _STAGES:
            _stage(tmp, final)
        else:
            os.replace(tmp, final)
    except OSError as e:
        raise CorpusError(f"{final}: cannot write: {e.strerror or e}") from None


def write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as pretty JSON atomically."""
    with atomic_write(path) as f:
        f.write(json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8") + b"\n")


def _is_within(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a == b or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_not_over_inputs(
    inputs: Union["Corpus", Sequence["Corpus"]],
    output: PathLike,
    *,
    writes: Iterable[PathLike] = (),
    option: str = "-o",
) -> None:
    """The one check every writing command makes before it reads or writes anything.

    Raises :class:`OutputOverInputError` when ``output`` (a file or folder to be written) is an
    input file, is an input folder or lies inside one, or when any of ``writes`` (the files the
    command will create) is an input file. Symlinks and hard links count as the same file.
    """
    corpora = [inputs] if isinstance(inputs, Corpus) else list(inputs)
    out = Path(output).resolve()
    files: List[Tuple[Path, str]] = []
    for c in corpora:
        for s in c.sources:
            sp = s.path.resolve()
            if s.kind == "text":
                if _is_within(out, sp):
                    where = "is the input folder" if out == sp else "is inside the input folder"
                    raise OutputOverInputError(
                        f"{option} {output}: {where} {s.display}; writing there would change the "
                        "input (and a later run would read the outputs back); choose an output outside it"
                    )
                files.extend((p.resolve(), f"{s.display}/{p.relative_to(s.path).as_posix()}") for p in s.input_paths())
            else:
                files.append((sp, s.display))
    targets = [(out, f"{option} {output}")] + [(Path(w).resolve(), str(w)) for w in writes]
    for t, shown in targets:
        for f, display in files:
            if _same_file(t, f):
                raise OutputOverInputError(
                    f"{shown}: is the input {display}; writing there would replace it; choose another output"
                )


def check_output_path(corpus: Corpus, out_dir: PathLike) -> None:
    """Refuse output locations that would overwrite or be read back as input."""
    out = Path(out_dir).resolve()
    check_not_over_inputs(corpus, out_dir, writes=corpus.output_paths(out))
    if out.exists() and not out.is_dir():
        raise CorpusError(f"{out_dir}: output must be a folder, but a file of that name exists")
    seen = set()
    for d in corpus.output_paths(out):
        r = d.resolve()
        if r in seen:
            raise CorpusError(
                f"{d}: two inputs would be written to the same output file; rename one of them"
            )
        seen.add(r)


# --------------------------------------------------------------------------------------------
# statistics


def corpus_stats(texts: Union["Corpus", Iterable[str], pa.Array]) -> Dict[str, int]:
    """Count documents, empty documents, bytes, characters, lines and words.

    >>> corpus_stats(["a b", "", "c\\n"])["words"]
    3
    """
    from gristmill import _native
    from gristmill._arrow import string_buffers

    total: Dict[str, int] = {}

    def add(d: Dict[str, int]) -> None:
        for k, v in d.items():
            total[k] = max(total.get(k, 0), v) if k == "max_doc_bytes" else total.get(k, 0) + v

    if isinstance(texts, Corpus):
        for b in texts.batches():
            add(_native.corpus_stats_batch(string_buffers(b.texts)))
        if not total:
            add(_native.corpus_stats_batch(string_buffers([])))
    else:
        add(_native.corpus_stats_batch(string_buffers(texts)))
    return total
