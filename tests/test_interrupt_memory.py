"""Issue 14 items 6 and 7: Ctrl-C stops the suffix commands promptly and cleanly (exit 130, one
"interrupted" line, no output, no temporary file), and a corpus that does not fit in memory
never aborts the process: `dedup exact` switches to the memory-limited path, the commands
without one stop with an error naming the memory needed and available.

Available memory is faked with GRISTMILL_AVAILABLE_MEMORY (documented as a test hook in
gristmill.mem / the README)."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from gristmill import _native
from gristmill.suffix import find_repeats

STAGE = "suffix array + "  # the native stage lines: "dedup exact: suffix array + repeats: …"


def make_corpus(path: Path, mb: float, seed: int = 0) -> Path:
    """Documents of random words with shared paragraphs, about `mb` MB."""
    rng = random.Random(seed)
    words = [f"w{rng.randrange(10**6)}" for _ in range(5000)]
    shared = [" ".join(rng.choices(words, k=40)) for _ in range(200)]
    total, target = 0, int(mb * 1e6)
    with open(path, "w", encoding="utf-8") as f:
        i = 0
        while total < target:
            parts = [" ".join(rng.choices(words, k=rng.randrange(50, 300))) for _ in range(3)]
            parts.insert(1, rng.choice(shared))
            t = "\n".join(parts)
            f.write(json.dumps({"id": f"d{i}", "text": t}) + "\n")
            total += len(t)
            i += 1
    return path


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    d = tmp_path_factory.mktemp("corpora")
    return {"small": make_corpus(d / "small.jsonl", 0.3), "big": make_corpus(d / "big.jsonl", 12, seed=1)}


def env_with(**extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("GRISTMILL_AVAILABLE_MEMORY", None)
    env.update(extra)
    return env


def files_under(root: Path) -> List[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def run_and_interrupt(args: List[str], tmp: Path, delay: float = 0.3):
    """Start `gristmill ARGS`, send SIGINT `delay` s after its native stage line, return
    (returncode, stderr, seconds from SIGINT to exit)."""
    tmpdir = tmp / "TMP"
    tmpdir.mkdir(exist_ok=True)
    p = subprocess.Popen([sys.executable, "-m", "gristmill", *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=env_with(TMPDIR=str(tmpdir)), cwd=tmp)
    lines: List[str] = []
    seen = threading.Event()

    def read() -> None:
        assert p.stderr is not None
        for line in p.stderr:
            lines.append(line)
            if STAGE in line:
                seen.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    assert seen.wait(60), f"the native stage never started: {''.join(lines)}"
    time.sleep(delay)
    assert p.poll() is None, f"finished before the interrupt; make the input larger: {''.join(lines)}"
    t0 = time.perf_counter()
    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(timeout=60)
    finally:
        p.kill()
    latency = time.perf_counter() - t0
    t.join(5)
    return rc, "".join(lines), latency


def assert_clean_interrupt(rc: int, err: str, tmp: Path, outputs: List[Path]) -> None:
    assert rc == 130, err
    assert err.strip().splitlines()[-1] == "gristmill: interrupted", err
    assert "Traceback" not in err
    for o in outputs:
        assert files_under(o) == [] if o.is_dir() else not o.exists(), f"{o}: {files_under(o.parent)}"
    left = [f for f in files_under(tmp) if ".tmp-" in f or f.startswith("TMP/")]
    assert left == [], left


def test_ctrl_c_stops_the_memory_limited_repeat_finder_within_a_second_and_cleans_up(corpora, tmp_path):
    # every step of the memory-limited path polls the interrupt (hashing, spilling, each part)
    out = tmp_path / "out"
    rc, err, latency = run_and_interrupt(["dedup", "exact", str(corpora["big"]), "-o", str(out),
                                          "--memory-limit", "3M"], tmp_path)
    assert_clean_interrupt(rc, err, tmp_path, [out])
    assert latency < 2.0, f"took {latency:.1f} s to stop"


@pytest.mark.parametrize("command", ["dedup exact", "contamination", "index build"])
def test_ctrl_c_during_the_in_memory_suffix_stage_exits_130_without_output(command, corpora, tmp_path):
    big = str(corpora["big"])
    out = tmp_path / "out"
    args = {
        "dedup exact": ["dedup", "exact", big, "-o", str(out)],
        "contamination": ["contamination", "--train", big, "--eval", str(corpora["small"]), "-o", str(out)],
        "index build": ["index", "build", big, "-o", str(tmp_path / "c.gsi")],
    }[command]
    rc, err, latency = run_and_interrupt(args, tmp_path, delay=0.1)
    assert_clean_interrupt(rc, err, tmp_path, [out, tmp_path / "c.gsi"])
    # the one libsais call cannot be interrupted: at most the rest of it (about 1 s for this
    # input on two cores), then every loop polls; the generous bound only catches a hang
    assert latency < 8.0, f"took {latency:.1f} s to stop"


def test_python_call_raises_keyboard_interrupt_and_unwinds(corpora):
    """The library call itself: SIGINT while the native code runs becomes KeyboardInterrupt."""
    texts = [json.loads(line)["text"] for line in open(corpora["big"], encoding="utf-8")]
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        find_repeats(texts, 50, memory_limit=3 << 20)
        time.sleep(30)  # if the call finished first, the signal still arrives here: keep the test honest
    assert time.perf_counter() - t0 < 5
    timer.join()


# --- memory -----------------------------------------------------------------------------------

def gristmill(args: List[str], cwd: Path, avail: Optional[str] = None, preexec=None):
    env = env_with(**({"GRISTMILL_AVAILABLE_MEMORY": avail} if avail else {}), TMPDIR=str(cwd))
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, preexec_fn=preexec, timeout=300)


def test_available_memory_hook_and_real_value(monkeypatch):
    monkeypatch.delenv("GRISTMILL_AVAILABLE_MEMORY", raising=False)
    real = _native.available_memory()
    assert real is None or real > 0
    monkeypatch.setenv("GRISTMILL_AVAILABLE_MEMORY", "5M")
    assert _native.available_memory() == 5 << 20


def test_dedup_exact_switches_to_the_memory_limited_path_when_memory_is_short(corpora, tmp_path):
    src = str(corpora["small"])
    a = gristmill(["dedup", "exact", src, "-o", "a", "--min-length", "50", "--json"], tmp_path)
    assert a.returncode == 0, a.stderr
    assert "memory-limited" not in a.stderr
    # 0.3 MB of text needs ~35 MB (estimate with margin) in memory; claim only 8 MB are free
    b = gristmill(["dedup", "exact", src, "-o", "b", "--min-length", "50", "--json"], tmp_path, avail="8M")
    assert b.returncode == 0, b.stderr
    assert "switching to the memory-limited repeat finder" in b.stderr, b.stderr
    assert "needs about" in b.stderr and "available" in b.stderr
    sa, sb = json.loads(a.stdout), json.loads(b.stdout)
    assert sb["memory_limit"] == (8 << 20) * 3 // 4
    for k in ("bytes_removed", "spans", "documents_touched", "duplicate_classes"):
        assert sa[k] == sb[k], k
    assert (tmp_path / "a" / "small.jsonl").read_bytes() == (tmp_path / "b" / "small.jsonl").read_bytes()
    assert [f for f in files_under(tmp_path) if f.startswith("gristmill-")] == []  # spill folder removed


def test_library_switch_warns_and_gives_the_same_spans(corpora, monkeypatch):
    texts = [json.loads(line)["text"] for line in open(corpora["small"], encoding="utf-8")]
    want = find_repeats(texts, 50, "first")
    monkeypatch.setenv("GRISTMILL_AVAILABLE_MEMORY", "8M")
    with pytest.warns(RuntimeWarning, match="memory-limited"):
        got = find_repeats(texts, 50, "first")
    assert got.equals(want)


@pytest.mark.parametrize("command", ["dedup exact", "contamination", "index build"])
def test_too_little_memory_is_a_clear_error_not_an_abort(command, corpora, tmp_path):
    src = str(corpora["small"])
    args = {
        "dedup exact": ["dedup", "exact", src, "-o", "out"],
        "contamination": ["contamination", "--train", src, "--eval", src, "-o", "out"],
        "index build": ["index", "build", src, "-o", "c.gsi"],
    }[command]
    r = gristmill(args, tmp_path, avail="40K")  # below even the memory-limited path's bitmaps
    assert r.returncode == 1, (r.returncode, r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("gristmill: error: ") and "Traceback" not in r.stderr, r.stderr
    assert "needs about" in last and "is available" in last, last
    if command == "dedup exact":
        assert "memory-limited repeat finder does not fit either" in last, last
    else:
        assert "--memory-limit" in last and ("in parts" in last or "split the training corpus" in last), last
    assert files_under(tmp_path / "out") == [] and not (tmp_path / "c.gsi").exists()
    assert [f for f in files_under(tmp_path) if ".tmp-" in f or f.startswith("gristmill-")] == []


def test_address_space_limit_gives_an_error_or_the_limited_path_never_sigabrt(corpora, tmp_path):
    """A real `ulimit -v`: the estimate sees the headroom (RLIMIT_AS - VmSize), and a big
    allocation that fails anyway is a MemoryError (try_reserve), not `memory allocation …
    failed` + SIGABRT."""
    probe = subprocess.run([sys.executable, "-c", "import gristmill.cli, gristmill.suffix, pyarrow.parquet;"
                            "print(open('/proc/self/status').read().split('VmSize:')[1].split()[0])"],
                           capture_output=True, text=True, check=True)
    base_kb = int(probe.stdout.strip())
    limit = (base_kb << 10) + (48 << 20)  # 48 MB more than the imports take: the 12 MB corpus does not fit in memory

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    r = gristmill(["--threads", "1", "dedup", "exact", str(corpora["big"]), "-o", "out", "--json"], tmp_path, preexec=cap)
    assert r.returncode in (0, 1), (r.returncode, r.stderr[-2000:])
    assert "memory allocation of" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    if r.returncode == 0:
        assert "memory-limited" in r.stderr
    else:
        assert r.stderr.strip().splitlines()[-1].startswith("gristmill: error: "), r.stderr[-2000:]


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 MB in 60 documents of random hex: its suffix array takes libsais several seconds."""
    import json

    import numpy as np

    p = tmp_path_factory.mktemp("huge") / "huge.jsonl"
    rng = np.random.default_rng(3)
    with open(p, "w") as f:
        for _ in range(60):
            f.write(json.dumps({"text": rng.bytes(500_000).hex()}) + "\n")
    return p


def test_ctrl_c_inside_the_libsais_call_exits_within_the_grace_and_cleans_up(huge, tmp_path):
    # libsais' construction cannot poll; the command gives it INTERRUPT_GRACE_S, then removes its
    # temporaries and exits 130 (the rest of the call would take seconds)
    from gristmill.cli import INTERRUPT_GRACE_S

    out = tmp_path / "out"
    rc, err, latency = run_and_interrupt(["dedup", "exact", str(huge), "-o", str(out)], tmp_path, delay=0.1)
    assert_clean_interrupt(rc, err, tmp_path, [out])
    assert latency < INTERRUPT_GRACE_S + 2.0, f"took {latency:.1f} s to stop"
