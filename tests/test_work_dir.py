"""`gristmill dedup exact --memory-limit … --work-dir DIR` (issue 19, item 3): the memory-limited
path keeps its files in DIR until it succeeds; a rerun after a stop reuses the hashing pass and
the finished parts (checked by checksums, damaged ones rebuilt) and writes exactly what an
uninterrupted run writes; free disk space is checked before anything is written.

Stops are simulated with GRISTMILL_TEST_STOP_AFTER_PARTS (the run stops like Ctrl-C after that
many parts, leaving the work folder as a kill would); free space is faked with
GRISTMILL_FREE_DISK. The corpus is real text: the Python standard library's own sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Dict, List

import pytest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 1.5 MB of the standard library (license headers, imports and copied helpers repeat)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in (root / "email").rglob("*.py")) + sorted(p for p in (root / "json").rglob("*.py")) \
        + sorted(p for p in (root / "asyncio").rglob("*.py"))
    out = tmp_path_factory.mktemp("work") / "stdlib.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        for p in files:
            f.write(json.dumps({"id": p.relative_to(root).as_posix(), "text": p.read_text(encoding="utf-8")}) + "\n")
    return out


def gm(args: List[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    e: Dict[str, str] = dict(os.environ)
    for k in ("GRISTMILL_TEST_STOP_AFTER_PARTS", "GRISTMILL_FREE_DISK", "GRISTMILL_AVAILABLE_MEMORY"):
        e.pop(k, None)
    e.update(env)
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True, cwd=cwd, env=e)


def dedup(corpus: Path, out: str, *extra: str) -> List[str]:
    return ["dedup", "exact", str(corpus), "-o", out, "--min-length", "60", "--json", *extra]


def files(d: Path) -> List[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_a_stopped_run_is_resumed_from_its_finished_parts(corpus, tmp_path):
    ref = gm(dedup(corpus, "ref"), tmp_path)
    assert ref.returncode == 0, ref.stderr
    work = tmp_path / "work"
    args = dedup(corpus, "out", "--memory-limit", "1M", "--work-dir", str(work))
    a = gm(args, tmp_path, GRISTMILL_TEST_STOP_AFTER_PARTS="3")
    assert a.returncode == 130, a.stderr
    assert not (tmp_path / "out" / "stdlib.jsonl").exists()
    left = files(work)
    assert "exact-parts.bin" in left and "exact-parts.idx" in left and "texts.bin" in left, left
    assert [f for f in left if f.endswith(".marks")] == [f"exact-part-{i:06}.marks" for i in range(3)]
    b = gm(args, tmp_path)
    assert b.returncode == 0, b.stderr
    s, r = json.loads(b.stdout), json.loads(ref.stdout)
    assert s["memory_parts"] > 3
    assert (s["memory_parts_reused"], s["memory_parts_rebuilt"], s["memory_hash_reused"]) == (3, 0, True)
    for k in ("bytes_removed", "spans", "documents_touched", "duplicate_classes"):
        assert s[k] == r[k], k
    assert (tmp_path / "out" / "stdlib.jsonl").read_bytes() == (tmp_path / "ref" / "stdlib.jsonl").read_bytes()
    assert files(work) == []  # a finished run leaves the folder as it found it


def test_a_damaged_part_is_detected_and_rebuilt(corpus, tmp_path):
    work = tmp_path / "work"
    args = dedup(corpus, "out", "--memory-limit", "1M", "--work-dir", str(work))
    assert gm(args, tmp_path, GRISTMILL_TEST_STOP_AFTER_PARTS="2").returncode == 130
    part = work / "exact-part-000001.marks"
    raw = bytearray(part.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    part.write_bytes(bytes(raw))
    b = gm(args, tmp_path)
    assert b.returncode == 0, b.stderr
    s = json.loads(b.stdout)
    assert (s["memory_parts_reused"], s["memory_parts_rebuilt"]) == (1, 1)
    ref = gm(dedup(corpus, "ref", "--memory-limit", "1M"), tmp_path)
    assert json.loads(ref.stdout)["bytes_removed"] == s["bytes_removed"]
    assert (tmp_path / "out" / "stdlib.jsonl").read_bytes() == (tmp_path / "ref" / "stdlib.jsonl").read_bytes()


def test_disk_space_is_checked_up_front_with_the_bytes_needed_and_free(corpus, tmp_path):
    work = tmp_path / "work"
    args = dedup(corpus, "out", "--memory-limit", "1M", "--work-dir", str(work))
    # not even the spilled text fits: stopped before reading the corpus
    a = gm(args, tmp_path, GRISTMILL_FREE_DISK="1M")
    assert a.returncode != 0 and "Traceback" not in a.stderr, a.stderr
    assert "not enough disk space in" in a.stderr and f"{1 << 20:,} bytes are free" in a.stderr, a.stderr
    assert files(work) == []
    # the text fits but not the hash parts and marks: the exact need, before any part is written
    size = corpus.stat().st_size
    b = gm(args, tmp_path, GRISTMILL_FREE_DISK=str(size + (64 << 20) + 1000))
    assert b.returncode != 0 and "Traceback" not in b.stderr, b.stderr
    msg = b.stderr
    assert "not enough disk space in" in msg and "it needs" in msg and f"only {size + (64 << 20) + 1000} bytes" in msg, msg
    assert [f for f in files(work) if f.startswith("exact-")] == []
    assert not (tmp_path / "out" / "stdlib.jsonl").exists()
