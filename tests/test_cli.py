"""The `gristmill` command: exit codes, help, error lines, demo."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gristmill.cli import build_parser, main


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True, cwd=cwd)


def subcommands(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, p in action.choices.items():
                yield name, p
                for sub_name, sp in subcommands(p):
                    yield f"{name} {sub_name}", sp


def test_every_subcommand_help_teaches_with_examples():
    parser = build_parser()
    top = parser.format_help()
    assert "examples:" in top
    names = [n for n, _ in subcommands(parser)]
    assert "demo" in names and "stats" in names
    for name, p in subcommands(parser):
        text = p.format_help()
        if any(True for _ in subcommands(p)):
            continue  # a group: its members carry the examples
        assert "examples:" in text, name
        assert f"gristmill {name}" in text, name


def test_exit_codes_and_one_line_errors(tmp_path):
    ok = tmp_path / "a.jsonl"
    ok.write_text('{"text": "hello world"}\n')
    r = run("stats", str(ok), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["words"] == 2
    r = run("stats")
    assert r.returncode == 2 and "required" in r.stderr
    r = run("nonsense")
    assert r.returncode == 2
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"text": "x"}\n{"text": 1}\n')
    r = run("stats", str(bad))
    assert r.returncode == 1
    assert r.stderr.strip() == f"gristmill: error: {bad}:2: field 'text' is a number, expected a string"
    assert "Traceback" not in r.stderr
    r = run("--debug", "stats", str(bad))
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_no_progress_output_when_stderr_is_not_a_tty(tmp_path):
    ok = tmp_path / "a.jsonl"
    ok.write_text('{"text": "hello"}\n' * 100)
    r = run("stats", str(ok))
    assert r.returncode == 0
    assert r.stderr == ""


def test_main_returns_codes_in_process(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "missing.jsonl")]) == 1
    assert "missing.jsonl: no such file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--threads", "0", "stats", "x"])
    assert e.value.code == 2


def test_demo_runs_on_builtin_corpus(tmp_path):
    out = tmp_path / "demo"
    r = run("demo", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "documents" in r.stdout
    assert str(out) in r.stdout
    assert (out / "stats.json").exists()


def test_skipped_documents_are_reported_as_a_warning(tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_bytes(b'{"text": "a"}\n{"text": "\\xff"}\n')
    p.write_bytes(b'{"text": "a"}\n{"text": "\xff"}\n')
    r = run("stats", str(p), "--on-invalid-utf8", "skip")
    assert r.returncode == 0
    assert f"gristmill: warning: skipped 1 document(s) with invalid UTF-8, first: {p}:2" in r.stderr
