"""The promise of exact dedup's ``keep="first"`` (the default of ``dedup_exact`` and of
``gristmill dedup exact``), checked on the output itself rather than against a copy of the
marking rule:

* no window of ``min_length`` symbols lying wholly inside kept text occurs twice in the corpus;
* every removed symbol lies inside a later copy of a window (its content also occurs at an
  earlier corpus position): nothing is over-removed;
* two identical documents never both vanish;

for bytes and tokens, on hypothesis-generated text and on real periodic text (the code-page
tables of this Python's ``encodings`` package, C register tables), the in-memory and the
memory-limited paths giving identical spans. Contamination: no kept eval window occurs in the
training corpus, and every removed eval byte lies in a window that does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings, strategies as st

from gristmill import Tokenizer, contamination, dedup_exact, find_repeats
from gristmill.suffix import find_token_repeats

Seq = Sequence  # bytes or a list of token ids


def _removed_masks(lens: List[int], spans: pa.Table) -> List[np.ndarray]:
    masks = [np.zeros(n, dtype=bool) for n in lens]
    for d, s, e in zip(*(spans.column(c).to_pylist() for c in ("doc", "start", "end"))):
        assert 0 <= s < e <= lens[d]
        masks[d][s:e] = True
    return masks


def _window(seq: Seq, p: int, L: int) -> object:
    w = seq[p : p + L]
    return w if isinstance(w, bytes) else tuple(w)


def check_keep_first(docs: Sequence[Seq], L: int, spans: pa.Table) -> None:
    removed = _removed_masks([len(d) for d in docs], spans)
    # 1. no window wholly inside kept text occurs twice
    kept: Dict[object, Tuple[int, int]] = {}
    for d, doc in enumerate(docs):
        run = 0
        for i in range(len(doc)):
            run = 0 if removed[d][i] else run + 1
            if run >= L:
                p = i + 1 - L
                w = _window(doc, p, L)
                assert w not in kept, f"window {w!r} kept at doc {d} offset {p} and at {kept[w]}"
                kept[w] = (d, p)
    # 2. every removed symbol lies in a window whose content occurs earlier
    seen: set = set()
    for d, doc in enumerate(docs):
        reach = 0
        for i in range(len(doc)):
            if i + L <= len(doc):
                w = _window(doc, i, L)
                if w in seen:
                    reach = i + L
                seen.add(w)
            assert not removed[d][i] or i < reach, f"doc {d} offset {i} removed, but no covering window occurs earlier"


def check_contamination(train: List[bytes], ev: List[bytes], L: int, spans: pa.Table) -> None:
    in_train = {t[p : p + L] for t in train for p in range(len(t) - L + 1)}
    table = spans.rename_columns(["doc", "start", "end", "occurrences"])
    removed = _removed_masks([len(b) for b in ev], table)
    for d, b in enumerate(ev):
        reach = 0
        for p in range(len(b)):
            if p + L <= len(b) and b[p : p + L] in in_train:
                reach = p + L
                assert removed[d][p : p + L].any(), f"eval doc {d} keeps the training window at {p}"
            assert not removed[d][p] or p < reach, f"eval doc {d} offset {p} removed, not in a training window"


def _bytes(texts: List[str]) -> List[bytes]:
    return [t.encode() for t in texts]


# ----------------------------------------------------------------------------------------------
# hypothesis

ASCII = st.lists(st.sampled_from("abc"), max_size=40).map("".join)
WIDE = st.lists(st.sampled_from(["a", "é", "中", "🎉", " "]), max_size=25).map("".join)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _longest(texts: List[str]) -> int:
    return max((len(t.encode()) for t in texts), default=0)


@SETTINGS
@given(texts=st.lists(ASCII, min_size=1, max_size=8), L=st.integers(1, 10))
def test_keep_first_promise_ascii(texts, L):
    if L > _longest(texts):
        return
    r = dedup_exact(texts, L)  # the default is keep first
    check_keep_first(_bytes(texts), L, r.spans)
    assert r.summary["keep"] == "first"
    # the memory-limited path gives the same spans
    assert find_repeats(texts, L, "first", memory_limit=1 << 20).equals(r.spans.select(["doc", "start", "end", "occurrences"]))


@SETTINGS
@given(texts=st.lists(WIDE, min_size=1, max_size=8), L=st.integers(4, 16))
def test_keep_first_promise_utf8(texts, L):
    if L > _longest(texts):
        return
    r = dedup_exact(texts, L, "first")
    check_keep_first(_bytes(texts), L, r.spans)
    for t in r.texts.to_pylist():
        t.encode("utf-8")


@SETTINGS
@given(docs=st.lists(st.lists(st.integers(0, 3), max_size=40), min_size=1, max_size=8), L=st.integers(1, 7))
def test_keep_first_promise_tokens(docs, L):
    if L > max(len(d) for d in docs):
        return
    check_keep_first(docs, L, find_token_repeats(docs, L, "first"))


@SETTINGS
@given(train=st.lists(WIDE, min_size=1, max_size=6), ev=st.lists(WIDE, min_size=1, max_size=6), L=st.integers(4, 12))
def test_contamination_promise(train, ev, L):
    if L > _longest(train) or L > _longest(ev):
        return
    check_contamination(_bytes(train), _bytes(ev), L, contamination(train, ev, L).spans)


@SETTINGS
@given(x=st.one_of(ASCII, WIDE), others=st.lists(ASCII, max_size=3), L=st.integers(4, 12))
def test_two_identical_documents_do_not_both_vanish(x, others, L):
    if len(x.encode()) < L:
        return
    r = dedup_exact([x, x, *others], L)
    out = r.texts.to_pylist()
    assert out[0] == dedup_exact([x], L).texts.to_pylist()[0] != ""
    assert out[1] == ""


# ----------------------------------------------------------------------------------------------
# real periodic text


def codepage_tables() -> List[str]:
    enc = Path(sysconfig.get_paths()["stdlib"]) / "encodings"
    paths = sorted(enc.glob("cp*.py"))
    assert len(paths) >= 10, f"expected the cp*.py code-page tables in {enc}"
    return [p.read_text(encoding="utf-8") for p in paths]


def register_tables() -> List[str]:
    """C files with golden-register tables whose rows differ in one field, shared struct
    initialisers, and a block written nine times in a row."""
    files = []
    for f in range(8):
        rows = "".join(
            f"\tSOC15_REG_GOLDEN_VALUE(GC, 0, mmSPI_CONFIG_CNTL_{(r * 7 + f) % 16:X}, 0xffffffff, 0x{(r % 3) << 8:08x}),\n"
            for r in range(50)
        )
        ports = "".join(
            f"\t[PORT_{p}] = {{\n\t\t.name = \"port-{p}\",\n\t\t.irq = {32 + p},\n\t\t.ops = &default_port_ops,\n\t}},\n"
            for p in range(6)
        )
        body = f"/* asic {f} */\nstatic const struct soc15_reg_golden golden_{f}[] = {{\n{rows}}};\n{ports}"
        if f == 3:
            body += "\tWREG32_FIELD15(GC, 0, SPI_CONFIG_CNTL, GPR_WRITE_PRIORITY, 0x2f);\n\tudelay(50); /* fifo */\n" * 9
        files.append(body)
    return files


def _real_check(texts: List[str], L: int) -> None:
    first = dedup_exact(texts, L)
    check_keep_first(_bytes(texts), L, first.spans)
    none = dedup_exact(texts, L, "none")
    assert 0 < first.summary["bytes_removed"] < none.summary["bytes_removed"]
    total = sum(len(b) for b in _bytes(texts))
    limited = dedup_exact(texts, L, memory_limit=total // 3 + (64 << 10))
    assert limited.spans.equals(first.spans) and limited.texts.equals(first.texts)


def test_keep_first_on_python_codepage_tables():
    texts = codepage_tables()
    for L in (50, 100):
        _real_check(texts, L)


def test_keep_first_on_register_tables():
    texts = register_tables()
    for L in (30, 100):
        _real_check(texts, L)


def test_keep_first_on_real_text_in_tokens():
    texts = codepage_tables()[:12] + register_tables()
    tok = Tokenizer.from_tiktoken("cl100k_base")
    ids, offsets = tok.encode_batch_flat(texts)
    docs = [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))]
    for L in (10, 30):
        spans = find_token_repeats((ids, offsets), L, "first")
        check_keep_first(docs, L, spans)
        removed = lambda t: int(np.sum(t.column("end").to_numpy() - t.column("start").to_numpy()))  # noqa: E731
        assert 0 < removed(spans) < removed(find_token_repeats((ids, offsets), L, "none"))
        r = dedup_exact(texts, L, unit="tokens", tokenizer=tok)
        assert r.summary["keep"] == "first" and 0 < r.spans.num_rows <= spans.num_rows


def test_contamination_promise_on_real_text():
    texts = codepage_tables()
    train, ev = texts[::2], texts[1::2]
    r = contamination(train, ev, 60)
    assert r.spans.num_rows > 0
    check_contamination(_bytes(train), _bytes(ev), 60, r.spans)


def test_cli_default_keeps_the_first_of_two_identical_documents(tmp_path):
    table = codepage_tables()[0]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in (table, "something else", table)))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "gristmill", "dedup", "exact", str(src), "-o", str(out), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line)["text"] for line in (out / "c.jsonl").read_text().splitlines()]
    assert rows == [dedup_exact([table]).texts.to_pylist()[0], "something else"]
    assert rows[0].startswith(table[:200])
    assert json.loads(r.stdout)["keep"] == "first"
    help_text = subprocess.run([sys.executable, "-m", "gristmill", "dedup", "exact", "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    assert "(default)" in help_text and "no window" in help_text
