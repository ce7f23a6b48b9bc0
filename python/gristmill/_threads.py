"""One thread-count convention for the whole Python API.

``num_threads`` (the name tiktoken and Hugging Face use): ``None`` = all cores, a positive int
= that many worker threads. Results never depend on it. The older keyword ``threads`` of
some functions is still accepted, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional


def num_threads(value: Any, legacy: Any = None, *, where: str) -> Optional[int]:
    """Validate a ``num_threads`` argument (``legacy``: the value given as ``threads=``)."""
    if legacy is not None:
        if value is not None:
            raise TypeError(f"{where}: give num_threads only (threads is its old name)")
        warnings.warn(f"{where}: threads= is deprecated, use num_threads=", DeprecationWarning, stacklevel=3)
        value = legacy
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"num_threads must be a positive integer or None (all cores), got {value!r}")
    return value
