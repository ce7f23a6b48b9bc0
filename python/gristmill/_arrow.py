"""Zero-copy hand-off of text columns to the Rust core.

A pyarrow ``string``/``large_string`` array is two buffers: UTF-8 bytes and ``n + 1``
offsets. The core reads both in place through numpy views; nothing is copied and no
per-document Python object is created.
"""

from __future__ import annotations

from typing import Iterable, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa

TextLike = Union[pa.Array, pa.ChunkedArray, Sequence[str], Iterable[str]]

__all__ = ["TextLike", "as_string_array", "string_buffers"]


def as_string_array(texts: TextLike, *, what: str = "texts") -> pa.Array:
    """Coerce ``texts`` (pyarrow array, chunked array, or sequence of ``str``) to one
    pyarrow string array without nulls.

    Raises ``TypeError`` naming the index of the first item that is not a ``str``.
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    if isinstance(texts, pa.Array):
        t = texts.type
        if pa.types.is_dictionary(t):
            texts = texts.dictionary_decode()
            t = texts.type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            if pa.types.is_string_view(t) if hasattr(pa.types, "is_string_view") else False:
                texts = texts.cast(pa.large_string())
            else:
                raise TypeError(f"{what} must be a string array, got an Arrow array of type {t}")
        if texts.null_count:
            first = texts.is_null().index(True).as_py()
            raise TypeError(f"{what}[{first}] is null; expected a string")
        return texts
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of strings, not a single {type(texts).__name__}")
    items = texts if isinstance(texts, (list, tuple)) else list(texts)
    for i, x in enumerate(items):
        if not isinstance(x, str):
            raise TypeError(f"{what}[{i}] is {type(x).__name__}, expected str")
    try:
        return pa.array(items, type=pa.large_string())
    except (UnicodeEncodeError, pa.ArrowInvalid) as e:  # lone surrogates cannot become UTF-8
        for i, x in enumerate(items):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError as ue:
                raise ValueError(f"{what}[{i}] is not valid Unicode text: {ue.reason} at character {ue.start}") from None
        raise ValueError(f"{what}: {e}") from None


def string_buffers(texts: TextLike, *, what: str = "texts") -> Tuple[np.ndarray, np.ndarray]:
    """Return ``(data, offsets)`` numpy views of a string column: ``data`` is ``uint8``,
    ``offsets`` is ``int32`` or ``int64`` with ``len(texts) + 1`` entries indexing ``data``."""
    arr = as_string_array(texts, what=what)
    _, off_buf, data_buf = arr.buffers()[:3]
    dtype = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    n = len(arr)
    if off_buf is None:
        offsets = np.zeros(n + 1, dtype=dtype)
    else:
        offsets = np.frombuffer(off_buf, dtype=dtype)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
    return data, offsets
