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

__all__ = ["configure", "bar", "info", "Timer"]

_state: Dict[str, Any] = {"enabled": False, "quiet": True}


def configure(*, enabled: Optional[bool] = None, quiet: bool = False) -> None:
    """Turn progress bars on (default: only if stderr is a TTY) and status lines on/off."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    _state["enabled"] = bool(enabled) and not quiet
    _state["quiet"] = quiet


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
