"""Shared fixtures for the benchmark suites (opt-in: `make bench` or `pytest benches`).

Each suite runs gristmill and the peer library on the same real data in the same run; use
`record_ratio(name, gristmill_seconds, peer_seconds, peer=...)` to have the ratio printed in a
table at the end of the session, or pytest-benchmark's `benchmark` fixture with `group=` set so
the two land in one comparison table.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

_RATIOS: List[Tuple[str, str, float, float]] = []


@pytest.fixture
def record_ratio():
    def record(name: str, ours: float, theirs: float, *, peer: str) -> float:
        _RATIOS.append((name, peer, ours, theirs))
        return theirs / ours

    return record


def pytest_terminal_summary(terminalreporter):
    if not _RATIOS:
        return
    tr = terminalreporter
    tr.section("gristmill vs peers (same run, same data)")
    tr.write_line(f"{'benchmark':48} {'peer':14} {'gristmill s':>12} {'peer s':>10} {'speed-up':>9}")
    for name, peer, ours, theirs in _RATIOS:
        tr.write_line(f"{name:48} {peer:14} {ours:12.4f} {theirs:10.4f} {theirs / ours:8.1f}x")
