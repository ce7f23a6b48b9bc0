"""The README's tour runs as written: every bash block in order, then the Python block with
its printed values checked against the comments."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def tour_blocks(lang: str, section: str = "## A tour on real data") -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(section)
    end = text.index("\n## ", start + 1)
    return re.findall(rf"```{lang}\n(.*?)```", text[start:end], flags=re.S)


def test_readme_tour_commands_run_as_written(tmp_path):
    blocks = tour_blocks("bash")
    assert len(blocks) >= 5
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    script = "set -euo pipefail\n" + "\n".join(blocks)
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = tmp_path / "out"
    for produced in ["near/stdlib.jsonl", "exact/stdlib.jsonl", "stdlib.gsi", "stdlib-bpe.json"]:
        assert (out / produced).exists(), produced
    # each step really removed something from the real corpus
    n_in = sum(1 for _ in open(tmp_path / "stdlib.jsonl"))
    n_near = sum(1 for _ in open(out / "near" / "stdlib.jsonl"))
    assert 0 < n_near < n_in
    assert (out / "exact" / "stdlib.jsonl").stat().st_size < (out / "near" / "stdlib.jsonl").stat().st_size


def test_readme_python_example_prints_what_it_says(capsys):
    (block,) = tour_blocks("python")
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    expected = [line.split("# ", 1)[1].strip() for line in block.splitlines() if line.startswith("print(")]
    assert [p.strip() for p in printed] == expected


def test_readme_mixture_commands_run_as_written(tmp_path):
    blocks = tour_blocks("bash", "## Mixture inference")
    assert len(blocks) == 2
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(blocks)], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    import json

    mix = json.loads((tmp_path / "out" / "o200k-mix.json").read_text())
    assert list(mix["proportions"])[0] == "en" and mix["diagnostics"]["converged"]
    assert "mixture_lp" in r.stdout and "token_frequency" in r.stdout
