"""Progress bars and status lines on stderr.

Bars appear only when stderr is a terminal and ``--quiet`` was not given, so logs and pipes
stay clean. Library callers get no bars unless they call :func:`configure` with ``enabled=True``.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional

from tqdm.auto import tqdm

__all__ = ["configure", "bar", "bars_enabled", "info", "stage", "Timer"]

_state: Dict[str, Any] = {"enabled": False, "quiet": True}


def configure(*, enabled: Optional[bool] = None, quiet: bool = False) -> None:
    """Turn progress bars on (default: only if stderr is a TTY) and status lines on/off."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    _state["enabled"] = bool(enabled) and not quiet
    _state["quiet"] = quiet


def bars_enabled() -> bool:
    """Whether :func:`bar` draws anything (progress callbacks can be skipped otherwise)."""
    return bool(_state["enabled"])


def bar(desc: str, *, total: Optional[float] = None, unit: str = "it", unit_scale: bool = False) -> Any:
    """A tqdm bar on stderr (a no-op bar when disabled). Use as a context manager."""
    return tqdm(
        desc=desc,
        total=total,
        unit=unit,
        unit_scale=unit_scale,
        disable=not _state["enabled"],
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
        mininterval=0.25,
    )


def info(msg: str) -> None:
    """A status line on stderr, unless quiet."""
    if not _state["quiet"]:
        print(msg, file=sys.stderr, flush=True)


@contextmanager
def stage(name: str, detail: str = "") -> Iterator[None]:
    """Status lines on stderr (unless quiet) when a long stage starts and when it ends:
    ``NAME: DETAIL ...`` then ``NAME: done in 1.2 s`` (or ``NAME: failed after 1.2 s``)."""
    t0 = time.perf_counter()
    info(f"{name}: {detail} ..." if detail else f"{name} ...")
    ok = False
    try:
        yield
        ok = True
    finally:
        info(f"{name}: {'done in' if ok else 'failed after'} {time.perf_counter() - t0:.1f} s")


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def describe(n_docs: int, n_bytes: int) -> str:
    """``"1,234 documents, 5.6 MB"`` (the totals a stage line announces)."""
    return f"{n_docs:,} documents, {_size(n_bytes)}"


class Timer:
    """Collects wall time per named stage: ``with timer("signatures"): ...``."""

    def __init__(self) -> None:
        self.stages: Dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stages[stage] = self.stages.get(stage, 0.0) + time.perf_counter() - t0

    def as_dict(self) -> Dict[str, float]:
        return {k: round(v, 4) for k, v in self.stages.items()}
