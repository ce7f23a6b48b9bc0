"""Exact document / paragraph dedup (`gristmill dedup docs|paragraphs`, gristmill.docdedup).

The properties state the user's promise directly, without re-implementing the algorithm:
kept units are pairwise different after normalisation, every removed unit equals an earlier
kept one, and the kept text is byte-identical and in order.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill import Corpus
from gristmill.docdedup import dedup_docs, dedup_paragraphs

# Unicode White_Space (what "whitespace" normalisation collapses)
WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_WS_RUN = re.compile(f"[{re.escape(WS)}]+")


def norm(s: str, mode: str) -> str:
    if mode == "none":
        return s
    s = _WS_RUN.sub(" ", s).strip(" ")
    return "".join(c.lower() for c in s) if mode == "lower" else s


def split_paragraphs(text: str):
    """(leading newlines, [(content, terminator), ...]) per the documented definition."""
    lead = re.match(r"\n*", text).group(0)  # type: ignore[union-attr]
    return lead, re.findall(r"([^\n]+)(\n*)", text[len(lead):])


# small alphabet so that duplicates are frequent; includes case pairs and odd whitespace
ALPHABET = st.sampled_from(list("abAB \n\n\n\t\x0b\x1f") + ["\u00a0", "\u3000", "\u03a3", "\u03c3", "\u00c9", "\u00e9", "\r"])
TEXTS = st.lists(st.text(ALPHABET, max_size=14), max_size=25)
MODES = st.sampled_from(["none", "whitespace", "lower"])


def utf8_len(s: str) -> int:
    return len(s.encode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(TEXTS, MODES, st.integers(0, 4))
def test_docs_promise(texts, mode, min_length):
    r = dedup_docs(texts, normalize=mode, min_length=min_length)
    assert r.keep.shape == (len(texts),)
    kept = set()
    for t, k in zip(texts, r.keep.tolist()):
        n = norm(t, mode)
        if utf8_len(t) < min_length:
            assert k, "a document below --min-length is never removed"
            continue
        if k:
            assert n not in kept, "two kept documents are equal after normalisation"
            kept.add(n)
        else:
            assert n in kept, "a removed document equals an earlier kept one"
    assert r.texts() == [t for t, k in zip(texts, r.keep) if k]
    s = r.summary
    assert s["documents_in"] == len(texts)
    assert s["documents_out"] == int(r.keep.sum())
    assert s["bytes_in"] == sum(map(utf8_len, texts))
    assert s["bytes_out"] == sum(utf8_len(t) for t in r.texts())


def check_paragraph_promise(texts, out_texts, keep, mode, min_length):
    """Match each output document against its input as a subsequence of paragraphs and check
    the promise on the removed and kept ones."""
    kept_keys = set()
    removed = 0
    for t, k, o in zip(texts, keep, out_texts):
        lead, paras = split_paragraphs(t)
        out_lead, out_paras = split_paragraphs(o) if k else ("", [])
        assert out_lead == lead or not k
        j = 0
        rebuilt = lead
        for content, term in paras:
            is_kept = j < len(out_paras) and out_paras[j][0] == content
            if is_kept:
                j += 1
                rebuilt += content + term
                if utf8_len(content) >= min_length:
                    key = norm(content, mode)
                    assert key not in kept_keys, f"two kept paragraphs are equal: {content!r}"
                    kept_keys.add(key)
            else:
                removed += 1
                assert utf8_len(content) >= min_length, "a paragraph below --min-length was removed"
                assert norm(content, mode) in kept_keys, f"removed {content!r}, which equals no earlier kept paragraph"
        assert j == len(out_paras), "the output holds a paragraph that is not in the input"
        if k:
            assert o == rebuilt, "kept text must be byte-identical, only whole paragraphs removed"
        else:
            assert rebuilt == "" and t != "", "only documents emptied by the removal are dropped"
    return removed


@settings(max_examples=300, deadline=None)
@given(TEXTS, MODES, st.integers(0, 4), st.booleans())
def test_paragraphs_promise(texts, mode, min_length, keep_empty):
    r = dedup_paragraphs(texts, normalize=mode, min_length=min_length, keep_empty=keep_empty)
    out = [r.replace.get(i, t) if k else "" for i, (t, k) in enumerate(zip(texts, r.keep))]
    removed = check_paragraph_promise(texts, out, r.keep.tolist(), mode, min_length)
    s = r.summary
    assert s["paragraphs_removed"] == removed
    assert s["paragraphs_in"] == sum(len(split_paragraphs(t)[1]) for t in texts)
    assert s["bytes_in"] - s["bytes_removed"] == sum(utf8_len(o) for o in out)  # dropped ones are empty
    if keep_empty:
        assert r.keep.all()
    assert r.texts() == [o for o, k in zip(out, r.keep) if k]


def test_paragraph_definition_examples():
    r = dedup_paragraphs(["\n\nA\n\nB\n\nA\n\nC", "B", "x\r\nA\r\n"], keep_empty=True)
    # leading newlines stay; the second A goes with its "\n\n"; "B" (no newline) equals "B\n\n";
    # "A\r" is not "A"
    assert r.texts() == ["\n\nA\n\nB\n\nC", "", "x\r\nA\r\n"]
    assert r.summary["paragraphs_removed"] == 2
    r = dedup_paragraphs(["a\nb\na"])
    assert r.texts() == ["a\nb\n"]  # a last paragraph without newline leaves the previous newline
    r = dedup_paragraphs(["same\nsame\n", "same"], min_length=5)
    assert r.texts() == ["same\nsame\n", "same"]  # 4 bytes < --min-length 5: never removed
    r = dedup_paragraphs(["dup\n", "dup\n", ""])
    assert r.keep.tolist() == [True, False, True]  # emptied: dropped; empty in the input: kept
    assert r.summary["documents_emptied"] == 1


def test_normalization_examples():
    assert dedup_docs(["Hello  World", "hello world", "hello\u3000world "], normalize="lower").keep.tolist() == [True, False, False]
    assert dedup_docs(["Hello  World", "hello world"], normalize="whitespace").keep.tolist() == [True, True]
    assert dedup_docs(["a b", "a  b"], normalize="none").keep.tolist() == [True, True]


def test_same_result_at_any_thread_count():
    import random

    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "Alpha", "  beta"]
    texts = ["\n".join(rng.choice(words) + str(rng.randrange(30)) for _ in range(rng.randrange(1, 12)))
             for _ in range(20000)]
    runs = [dedup_paragraphs(texts, num_threads=k, normalize="lower") for k in (1, 2, 3)]
    for r in runs[1:]:
        assert r.replace == runs[0].replace and (r.keep == runs[0].keep).all()
    docs = [dedup_docs(texts, num_threads=k) for k in (1, 2)]
    assert (docs[0].keep == docs[1].keep).all()
    assert runs[0].summary["paragraphs_removed"] > 0 and not docs[0].keep.all()


def test_corpus_batches_share_one_key_set(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps({"text": f"doc {i % 50}\nline {i % 7}"}) + "\n" for i in range(400)))
    c = Corpus([p], batch_bytes=64)  # many small batches
    r = dedup_docs(c)
    assert int(r.keep.sum()) == 350 and r.keep[:350].all()  # lcm(50, 7) distinct documents
    r = dedup_paragraphs(Corpus([p], batch_bytes=64))
    assert r.summary["paragraphs_out"] == 50 + 7


def test_bad_arguments():
    with pytest.raises(ValueError, match="normalize must be one of"):
        dedup_docs(["a"], normalize="upper")
    with pytest.raises(ValueError, match="min_length"):
        dedup_paragraphs(["a"], min_length=-1)
    with pytest.raises(ValueError, match="needs a Corpus"):
        dedup_docs(["a"], key="url")


# --------------------------------------------------------------------------------------------
# CLI


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_docs(tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [{"text": "one", "url": "u1", "n": 1}, {"text": "two", "url": "u2", "n": 2},
                      {"text": "one", "url": "u3", "n": 3}, {"text": "three", "url": "u1", "n": 4}])
    r = run("dedup", "docs", str(src), "-o", str(tmp_path / "out"), "--json", "-q")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["documents_in"], s["documents_out"], s["documents_removed"]) == (4, 3, 1)
    assert (s["bytes_in"], s["bytes_removed"]) == (14, 3)
    assert [row["n"] for row in read_jsonl(tmp_path / "out" / "in.jsonl")] == [1, 2, 4]
    assert json.loads((tmp_path / "out" / "dedup-docs.summary.json").read_text())["documents_out"] == 3
    r = run("dedup", "docs", str(src), "-o", str(tmp_path / "by-url"), "--key", "url", "--json", "-q")
    assert r.returncode == 0, r.stderr
    assert [row["n"] for row in read_jsonl(tmp_path / "by-url" / "in.jsonl")] == [1, 2, 3]
    assert json.loads(r.stdout)["key"] == "url"


def test_cli_paragraphs_keeps_other_fields_and_formats(tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [{"id": "a", "text": "header\nbody one\n"}, {"id": "b", "text": "header\nbody two"},
                      {"id": "c", "text": "header\n"}])
    r = run("dedup", "paragraphs", str(src), "-o", str(tmp_path / "out"), "--json", "-q")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["paragraphs_in"], s["paragraphs_removed"], s["documents_emptied"]) == (5, 2, 1)
    assert read_jsonl(tmp_path / "out" / "in.jsonl") == [{"id": "a", "text": "header\nbody one\n"},
                                                         {"id": "b", "text": "body two"}]
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "1.txt").write_text("shared\nmine\n")
    (folder / "2.txt").write_text("Shared\ntheirs\n")
    r = run("dedup", "paragraphs", str(folder), "-o", str(tmp_path / "out2"), "--normalize", "lower", "-q")
    assert r.returncode == 0, r.stderr
    assert "1 removed" in r.stdout
    assert (tmp_path / "out2" / "txt" / "2.txt").read_text() == "theirs\n"


def test_cli_help_and_bad_input(tmp_path):
    for unit in ("docs", "paragraphs"):
        r = run("dedup", unit, "--help")
        assert r.returncode == 0 and f"gristmill dedup {unit}" in r.stdout and "--normalize" in r.stdout
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [{"text": "x", "url": "a"}, {"text": "y"}])
    r = run("dedup", "docs", str(src), "-o", str(tmp_path / "o1"), "--key", "url")
    assert r.returncode == 1
    assert f"{src}:2: missing field 'url'" in r.stderr and "--key" in r.stderr, r.stderr
    assert not (tmp_path / "o1" / "in.jsonl").exists()
    r = run("dedup", "paragraphs", str(src), "-o", str(tmp_path / "o2"), "--text-field", "body")
    assert r.returncode == 1 and "missing field 'body'" in r.stderr and "--text-field" in r.stderr
    r = run("dedup", "docs", str(src), "-o", str(tmp_path / "o3"), "--normalize", "upper")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = run("dedup", "docs", str(src), "-o", str(tmp_path / "o3"), "--min-length", "-1")
    assert r.returncode == 2
    r = run("dedup", "docs", str(src), "-o", str(tmp_path))  # output folder holds the input
    assert r.returncode == 2
