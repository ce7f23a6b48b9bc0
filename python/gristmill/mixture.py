"""BPE mixture inference: what mix of languages, code or domains a tokenizer was trained on.

Method (Hayase et al. 2024, "Data Mixture Inference: What do BPE Tokenizers Reveal about their
Training Data?"): a BPE tokenizer's ``t``-th merge was the most frequent pair of its training
data after merges ``1..t-1``. Given sample text of each candidate category, the Rust core
replays the tokenizer's merge list on each sample's word counts (``c_i(t, p)``: the count of
pair ``p`` before merge ``t``, normalised by the sample's pair count) and finds the weights
``α`` (``α ≥ 0``, ``Σα = 1``) that best explain every choice by the linear program

.. code-block:: text

    minimise   Σ_t v_t + Σ_p v_p
    subject to Σ_i α_i (c_i(t, m(t)) − c_i(t, p)) + v_t + v_p ≥ 0   for every t ≤ T, p ≠ m(t)

Constraints are far too many to write down, so they are added lazily, and in bulk: a pair's
counts are constant between the steps where a merge changes them, so one row states the
pair's constraints on a whole node of a segment tree over the steps (an auxiliary ``z_N`` is
kept at most every step's ``W(m(t)) + v_t`` below the node by two rows per node). The core
sweeps the merges, finds the stretches where a pair beats some merge by more than the slacks
allow and returns one row per violated tree node; HiGHS re-solves warm-started; a sweep that
finds none proves the solution optimal for the full LP. Because a row covers its stretch
whatever α becomes, the LP converges in tens of rounds where rows per step needed hundreds.

>>> import gristmill
>>> from gristmill.mixture import infer
>>> en = ["the cat sat on the mat with the hat " * 40] * 5
>>> de = ["die Katze sitzt auf der Matte mit dem Hut " * 40] * 5
>>> tok = gristmill.train_bpe(en[:3] + de[:1], vocab_size=300, pattern="gpt2")
>>> r = infer(tok, {"en": en, "de": de})
>>> sorted(r.proportions, key=r.proportions.get, reverse=True)
['en', 'de']
"""

from __future__ import annotations

import glob as _glob
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill import _native
from gristmill import _progress as progress
from gristmill._arrow import as_string_array, string_buffers
from gristmill.io import Corpus
from gristmill.tokenizer import ENCODINGS, Tokenizer

__all__ = [
    "MixtureResult",
    "infer",
    "ExperimentResult",
    "experiment",
    "load_tokenizer",
    "load_category",
    "sample_bytes",
]

PathLike = Union[str, "os.PathLike[str]"]
CategoryData = Union[Sequence[str], pa.Array, pa.ChunkedArray, Corpus, PathLike, Sequence[PathLike]]
Categories = Union[Mapping[str, CategoryData], Sequence[Tuple[str, CategoryData]]]
TokenizerLike = Union[Tokenizer, PathLike]

_log = logging.getLogger(__name__)

#: A category sample smaller than this is refused: its pair counts would be mostly noise.
MIN_BYTES = 1000
#: At most this many rows are added per round (the most violated first): bigger batches mean
#: fewer rounds but slower warm re-solves.
_MAX_ROWS = 5_000
#: At most this many rows per pair and round (0: no limit).
_PER_PAIR = 0
#: A row whose slack was basic in more than this many solves in a row leaves the LP (the
#: oracle may hand it out again): the LP stays about as small as its basis.
_DROP_AFTER = 1
#: A constraint counts as violated when short by more than this (LP units: per million pairs).
_TOLERANCE = 1e-6
_MAX_ROUNDS = 500
#: HiGHS options of the mixture LP (beyond silencing it).
_HIGHS_OPTIONS: Dict[str, Any] = {}


# --------------------------------------------------------------------------------------------
# inputs


def load_tokenizer(tokenizer: TokenizerLike) -> Tokenizer:
    """A :class:`~gristmill.Tokenizer` from itself, a bundled encoding name (``o200k_base``,
    ``cl100k_base``, …), a ``tokenizer.json``, a ``vocab.json`` (with ``merges.txt`` beside it),
    a folder holding either, or a ``.tiktoken`` rank file named after a known encoding
    (``cl100k_base.tiktoken``; merges are derived from the ranks). For other rank files build
    the tokenizer with ``Tokenizer.from_tiktoken(path, pat_str=...)`` and pass that.
    """
    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    if not isinstance(tokenizer, (str, os.PathLike)):
        raise TypeError(f"tokenizer must be a gristmill.Tokenizer, an encoding name or a path, not {type(tokenizer).__name__}")
    name = os.fspath(tokenizer)
    if name in ENCODINGS:
        return Tokenizer.from_tiktoken(name)
    p = Path(name)
    if not p.exists():
        raise ValueError(f"tokenizer {name!r} is neither a bundled encoding ({', '.join(ENCODINGS)}) nor an existing path")
    if p.name.endswith((".tiktoken", ".tiktoken.gz")):
        # Merges are derived from the ranks; the pattern comes from the encoding's name.
        stem = p.name.split(".tiktoken")[0]
        if stem in ENCODINGS:
            return Tokenizer.from_tiktoken(p, pat_str=ENCODINGS[stem][0])
        raise ValueError(
            f"{name}: a .tiktoken rank file carries no pre-tokenizer pattern and {stem!r} is not a "
            f"known encoding ({', '.join(ENCODINGS)}); load it with "
            "gristmill.Tokenizer.from_tiktoken(path, pat_str=...) and pass the tokenizer"
        )
    try:
        return Tokenizer.from_huggingface(p)
    except _native.GristmillError as e:
        if name in str(e):
            raise
        raise _native.GristmillError(f"{name}: {e}") from None


def load_category(data: CategoryData, *, name: str = "category", text_field: str = "text") -> pa.Array:
    """All documents of one category as one pyarrow string array.

    ``data`` is a list of texts, a pyarrow string array, a :class:`~gristmill.Corpus`, or
    paths / glob patterns of corpus files and folders (anything ``Corpus`` reads)."""
    if isinstance(data, Corpus):
        chunks = [b.texts for b in data.batches()]
        return pa.concat_arrays([c.cast(pa.large_string()) for c in chunks]) if chunks else pa.array([], pa.large_string())
    if isinstance(data, (str, os.PathLike)):
        data = [data]
    if isinstance(data, (list, tuple)) and data and all(isinstance(x, os.PathLike) for x in data):
        return load_category(Corpus([os.fspath(x) for x in data], text_field=text_field), name=name)
    if isinstance(data, (list, tuple)) and data and all(isinstance(x, str) for x in data) and _looks_like_paths(data):
        paths: List[str] = []
        for pat in data:
            hits = sorted(_glob.glob(pat)) if _glob.has_magic(pat) else [pat]
            if not hits:
                raise ValueError(f"category {name!r}: the pattern {pat!r} matches no file")
            paths.extend(hits)
        return load_category(Corpus(paths, text_field=text_field), name=name)
    return as_string_array(data, what=f"category {name!r}")  # type: ignore[arg-type]


def _looks_like_paths(items: Sequence[str]) -> bool:
    """Strings are paths when every one names an existing file/folder or is a glob matching one."""
    for s in items:
        if "\n" in s or len(s) > 4096:
            return False
        if _glob.has_magic(s):
            if not _glob.glob(s):
                return False
        elif not os.path.exists(s):
            return False
    return True


def sample_bytes(texts: pa.Array, budget: Optional[int], rng: np.random.Generator, *, replace: bool = False) -> pa.Array:
    """Documents of ``texts`` in a random order until ``budget`` bytes (the last one cut at a
    UTF-8 character boundary so the total is at most ``budget``). ``budget=None`` keeps every
    document (in a random order when ``replace`` is set: a bootstrap resample)."""
    n = len(texts)
    if n == 0:
        return texts
    if replace:
        order = rng.integers(0, n, size=n)
    elif budget is None:
        return texts
    else:
        order = rng.permutation(n)
    picked = texts.take(pa.array(order))
    if budget is None:
        return picked
    lengths = pc.binary_length(picked).to_numpy(zero_copy_only=False).astype(np.int64)
    ends = np.cumsum(lengths)
    k = int(np.searchsorted(ends, budget, side="left"))
    if k >= n:
        return picked
    head = picked.slice(0, k)
    used = int(ends[k - 1]) if k else 0
    rest = budget - used
    last = picked[k].as_py().encode("utf-8")[:rest].decode("utf-8", errors="ignore")
    if not last:
        return head
    return pa.concat_arrays([head.cast(pa.large_string()), pa.array([last], pa.large_string())])


def _named(categories: Categories) -> List[Tuple[str, CategoryData]]:
    items = list(categories.items()) if isinstance(categories, Mapping) else list(categories)
    if not items:
        raise ValueError("no categories given")
    seen: Dict[str, int] = {}
    for i, it in enumerate(items):
        if not (isinstance(it, tuple) and len(it) == 2 and isinstance(it[0], str)):
            raise TypeError(f"categories[{i}] must be a (name, data) pair")
        name = it[0]
        if not name:
            raise ValueError(f"categories[{i}] has an empty name")
        if name in seen:
            raise ValueError(f"category name {name!r} is given twice (entries {seen[name]} and {i})")
        seen[name] = i
    if len(items) < 2:
        raise ValueError("mixture inference needs at least two categories")
    return items


# --------------------------------------------------------------------------------------------
# result


@dataclass
class MixtureResult:
    """The inferred mixture.

    Attributes:
        categories: category names, in the order given.
        proportions: name → share of the tokenizer's training *bytes* (sums to 1).
        pair_proportions: name → the LP's weight α on the category's pair-count distribution.
        intervals: with ``bootstrap=K``, name → (5th, 95th) percentile of the byte share.
        diagnostics: objective, rounds, rows and columns added, merges never seen in any
            sample, bytes and words per category, time per stage.
    """

    categories: List[str]
    proportions: Dict[str, float]
    pair_proportions: Dict[str, float]
    intervals: Optional[Dict[str, Tuple[float, float]]] = None
    diagnostics: Dict[str, Any] = field(default_factory=dict)

    def ranked(self) -> List[Tuple[str, float]]:
        """``(name, byte share)`` from the largest share down."""
        return sorted(self.proportions.items(), key=lambda kv: (-kv[1], kv[0]))

    def to_table(self) -> pa.Table:
        """One row per category, largest share first."""
        names = [n for n, _ in self.ranked()]
        cols: Dict[str, Any] = {
            "category": names,
            "share": [self.proportions[n] for n in names],
            "pair_share": [self.pair_proportions[n] for n in names],
            "sample_bytes": [self.diagnostics["categories"][n]["bytes"] for n in names],
        }
        if self.intervals is not None:
            cols["share_p05"] = [self.intervals[n][0] for n in names]
            cols["share_p95"] = [self.intervals[n][1] for n in names]
        return pa.table(cols)

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {
            "proportions": dict(self.ranked()),
            "pair_proportions": self.pair_proportions,
            "diagnostics": self.diagnostics,
        }
        if self.intervals is not None:
            d["intervals_90"] = {k: list(v) for k, v in self.intervals.items()}
        return d

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        width = max(len(n) for n in self.categories)
        lines = [f"{'category':<{width}}   share" + ("   90% interval" if self.intervals else "")]
        for n, s in self.ranked():
            line = f"{n:<{width}}  {100 * s:6.2f}%"
            if self.intervals:
                lo, hi = self.intervals[n]
                line += f"   {100 * lo:6.2f}–{100 * hi:.2f}%"
            lines.append(line)
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# the LP


def _quiet_highs(highspy: Any) -> Any:
    """A HiGHS instance, created with stdout muted (its constructor prints a banner)."""
    import sys

    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return highspy.Highs()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            h = highspy.Highs()
    finally:
        os.dup2(saved, fd)
        os.close(saved)
    return h


def _solve(oracle: Any, n: int, *, bar: Any = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Solve the mixture LP with lazily added stretch rows; return ``(α, diagnostics)``.

    Columns: α, one slack per step, one ``z_N`` per internal node of a segment tree over the
    steps (``z_N`` ≤ every step's ``W(m(t)) + v_t`` below N, by two rows per node), and a
    slack per pair once a row needs it. A stretch row bounds a pair's weighted count on all
    steps of a tree node at once, so a row found once stays valid wherever α moves.
    """
    import highspy

    T, n_pairs = oracle.num_merges, oracle.n_pairs
    h = _quiet_highs(highspy)
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)
    for opt, value in _HIGHS_OPTIONS.items():
        h.setOptionValue(opt, value)
    inf = highspy.kHighsInf
    empty_i = np.zeros(0, dtype=np.int32)
    empty_f = np.zeros(0, dtype=np.float64)
    mc = np.asarray(oracle.merge_counts(), dtype=np.float64)  # (T, n)
    children = np.asarray(oracle.tree_children(), dtype=np.int64)  # (T - 1, 2)
    n_int = len(children)
    z0 = n + T  # column of z for internal node T + i is z0 + i
    h.addCols(n, np.zeros(n), np.zeros(n), np.ones(n), 0, empty_i, empty_i, empty_f)
    h.addCols(T, np.ones(T), np.zeros(T), np.full(T, inf), 0, empty_i, empty_i, empty_f)
    if n_int:
        h.addCols(n_int, np.zeros(n_int), np.zeros(n_int), np.full(n_int, inf), 0, empty_i, empty_i, empty_f)
    h.addRows(1, np.ones(1), np.ones(1), n, np.zeros(1, dtype=np.int32), np.arange(n, dtype=np.int32), np.ones(n))
    no_pair = np.uint32(0xFFFFFFFF)
    # Every LP row after row 0 (Σα = 1): its tree node, and its pair (no_pair for tree rows).
    row_k = np.zeros(0, dtype=np.uint32)
    row_p = np.zeros(0, dtype=np.uint32)
    row_age = np.zeros(0, dtype=np.int32)  # solves in a row each stretch row's slack was basic
    tree_in = np.zeros(n_int, dtype=bool)

    def add_tree(nodes: np.ndarray) -> None:
        """Add the two rows of every internal node below the given nodes not in the LP yet:
        child − z_N ≥ 0, a leaf child t being α·mc[t] + v_t."""
        nonlocal row_k, row_p, row_age
        stack = [int(k) - T for k in np.unique(nodes) if k >= T and not tree_in[int(k) - T]]
        todo = []
        while stack:
            i = stack.pop()
            if tree_in[i]:
                continue
            tree_in[i] = True
            todo.append(i)
            for c in children[i]:
                if c >= T and not tree_in[c - T]:
                    stack.append(int(c) - T)
        if not todo:
            return
        sel = np.array(todo, dtype=np.int64)
        parent = np.repeat(sel, 2)
        child = children[sel].ravel()
        leaf = child < T
        width = n + 2
        m = len(child)
        idx = np.full((m, width), -1, dtype=np.int64)
        val = np.zeros((m, width))
        idx[:, 0] = z0 + parent
        val[:, 0] = -1.0
        li = np.flatnonzero(leaf)
        idx[li, 1 : n + 1] = np.arange(n)
        val[li, 1 : n + 1] = mc[child[li]]
        idx[li, n + 1] = n + child[li]
        val[li, n + 1] = 1.0
        ii = np.flatnonzero(~leaf)
        idx[ii, 1] = z0 + (child[ii] - T)
        val[ii, 1] = 1.0
        keep = idx >= 0
        counts = keep.sum(axis=1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        h.addRows(m, np.zeros(m), np.full(m, inf), int(counts.sum()), starts, idx[keep].astype(np.int32), val[keep])
        row_k = np.concatenate([row_k, (parent + T).astype(np.uint32)])
        row_p = np.concatenate([row_p, np.full(m, no_pair, dtype=np.uint32)])
        row_age = np.concatenate([row_age, np.zeros(m, dtype=np.int32)])

    pair_col: Dict[int, int] = {}
    next_col = n + T + n_int
    dropped = 0
    alpha = np.full(n, 1.0 / n)
    v_step = np.zeros(T)
    v_pair = np.zeros(n_pairs)
    rounds = 0
    objective = 0.0
    solve_s = sweep_s = 0.0
    converged = False
    while rounds < _MAX_ROUNDS:
        t0 = time.perf_counter()
        r_nodes, r_pairs, cnts, worst, n_str = oracle.stretch_sweep(alpha, v_step, v_pair, T, _PER_PAIR, _MAX_ROWS, _TOLERANCE)
        sweep_s += time.perf_counter() - t0
        if bar is not None:
            bar.set_postfix_str(f"round {rounds + 1}, {h.getNumRow():,} rows, worst {worst:.3g}")
            bar.update(1)
        if len(r_nodes) == 0:
            converged = True
            break
        rounds += 1
        new = [int(p) for p in np.unique(r_pairs) if int(p) not in pair_col]
        if new:
            k = len(new)
            h.addCols(k, np.ones(k), np.zeros(k), np.full(k, inf), 0, empty_i, empty_i, empty_f)
            for j, p in enumerate(new):
                pair_col[p] = next_col + j
            next_col += k
        add_tree(r_nodes)
        m = len(r_nodes)
        nodes = r_nodes.astype(np.int64)
        leaf = nodes < T
        width = n + 2
        idx = np.empty((m, width), dtype=np.int32)
        val = np.empty((m, width), dtype=np.float64)
        idx[:, :n] = np.arange(n, dtype=np.int32)
        val[:, :n] = -cnts
        val[leaf, :n] += mc[nodes[leaf]]
        idx[:, n] = np.where(leaf, n + nodes, z0 + (nodes - T)).astype(np.int32)
        idx[:, n + 1] = np.array([pair_col[int(p)] for p in r_pairs], dtype=np.int32)
        val[:, n:] = 1.0
        total = m * width
        starts = np.arange(0, total, width, dtype=np.int32)
        h.addRows(m, np.zeros(m), np.full(m, inf), total, starts, idx.ravel(), val.ravel())
        row_k = np.concatenate([row_k, r_nodes])
        row_p = np.concatenate([row_p, r_pairs])
        row_age = np.concatenate([row_age, np.zeros(m, dtype=np.int32)])
        t0 = time.perf_counter()
        h.run()
        solve_s += time.perf_counter() - t0
        _log.debug("round %d: +%d rows (%d stretches, worst %.3g), %d rows, %d cols, solve %.2f s, %d iterations",
                   rounds, m, n_str, worst, h.getNumRow(), h.getNumCol(), time.perf_counter() - t0,
                   h.getInfo().simplex_iteration_count)
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"the mixture LP did not solve: HiGHS status {h.modelStatusToString(status)}")
        sol = h.getSolution()
        x = np.asarray(sol.col_value)
        objective = float(h.getInfo().objective_function_value)
        # Stretch rows whose slack stayed basic leave the LP (tree rows stay); the basis
        # stays valid and optimal, and the oracle may hand the rows out again.
        basic = highspy.HighsBasisStatus.kBasic
        status_of = np.asarray(h.getBasis().row_status, dtype=object)[1:]
        is_basic = (status_of == basic).astype(bool)
        row_age = np.where(is_basic & (row_p != no_pair), row_age + 1, 0)
        slack = row_age > _DROP_AFTER
        if slack.any():
            gone = np.flatnonzero(slack)
            h.deleteRows(len(gone), (gone + 1).astype(np.int32))
            oracle.forget_stretches(row_k[gone], row_p[gone])
            keep_r = ~slack
            row_k, row_p, row_age = row_k[keep_r], row_p[keep_r], row_age[keep_r]
            dropped += len(gone)
        alpha = np.clip(x[:n], 0.0, None)
        alpha /= alpha.sum()
        v_step = np.clip(x[n : n + T], 0.0, None)
        if pair_col:
            ids = np.fromiter(pair_col.keys(), dtype=np.int64, count=len(pair_col))
            cols = np.fromiter(pair_col.values(), dtype=np.int64, count=len(pair_col))
            v_pair[ids] = np.clip(x[cols], 0.0, None)
    upper = objective
    if not converged:
        p_steps, p_pairs, p_coefs, _, _ = oracle.pair_sweep(alpha, v_step, v_pair, _TOLERANCE)
        if len(p_steps):
            short = -(np.asarray(p_coefs) @ alpha + v_step[p_steps] + v_pair[p_pairs])
            upper = objective + float(np.clip(short, 0.0, None).sum())
    return alpha, {
        "objective": objective,
        "objective_upper_bound": upper,
        "optimality_gap": (upper - objective) / upper if upper > 0 else 0.0,
        "rounds": rounds,
        "converged": converged,
        "rows_added": int(oracle.stretch_rows_added) + dropped,
        "rows_kept": int((row_p != no_pair).sum()),
        "pair_columns": len(pair_col),
        "sweep_seconds": round(sweep_s, 3),
        "solve_seconds": round(solve_s, 3),
    }


def _count(tok: Tokenizer, samples: List[pa.Array], num_merges: Optional[int], num_threads: Optional[int], names: List[str]) -> Any:
    counter = _native._MixtureCounter(tok._t, len(samples), num_merges, num_threads)
    for i, s in enumerate(samples):
        try:
            counter.count(i, string_buffers(s))
        except _native.GristmillError as e:
            raise _native.GristmillError(f"category {names[i]!r}: {e}") from None
    return counter


def _shares(alpha: np.ndarray, sample_bytes_: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    per_pair = np.divide(sample_bytes_, pairs, out=np.zeros_like(sample_bytes_), where=pairs > 0)
    w = alpha * per_pair
    s = w.sum()
    return w / s if s > 0 else np.full(len(alpha), 1.0 / len(alpha))


def _run_once(
    tok: Tokenizer, samples: List[pa.Array], names: List[str], num_merges: Optional[int], num_threads: Optional[int], label: str = ""
) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any], Any]:
    timer = progress.Timer()
    with timer("count"):
        counter = _count(tok, samples, num_merges, num_threads, names)
    T = counter.num_merges
    with timer("replay"), progress.bar(f"replaying merges{label}", total=T * len(samples), unit="merge", unit_scale=True) as b:
        oracle = counter.build(progress=b.update)
    with timer("solve"), progress.bar(f"solving{label}", unit="round") as b:
        alpha, diag = _solve(oracle, len(samples), bar=b)
    summaries = oracle.summaries
    pairs = np.array([s[1] for s in summaries], dtype=np.float64)
    nbytes = np.array([counter.totals(i)[1] for i in range(len(samples))], dtype=np.float64)
    diag["seconds"] = timer.as_dict()
    diag["num_merges"] = T
    diag["pairs"] = int(oracle.n_pairs)
    diag["pair_count_changes"] = int(oracle.n_changes)
    mc = oracle.merge_counts()
    diag["merges_unseen"] = int((mc.sum(axis=1) == 0).sum())
    diag["categories"] = {
        names[i]: {
            "documents": int(counter.totals(i)[0]),
            "bytes": int(nbytes[i]),
            "words": int(summaries[i][0]),
            "pairs": int(summaries[i][1]),
            "merges_seen": int(summaries[i][2]),
        }
        for i in range(len(samples))
    }
    return alpha, _shares(alpha, nbytes, pairs), diag, mc


def infer(
    tokenizer: TokenizerLike,
    categories: Categories,
    *,
    num_merges: Optional[int] = None,
    bytes_per_category: Optional[int] = None,
    seed: int = 0,
    bootstrap: int = 0,
    num_threads: Optional[int] = None,
    text_field: str = "text",
    min_bytes: int = MIN_BYTES,
) -> MixtureResult:
    """Infer the training mixture of ``tokenizer`` over ``categories``.

    Args:
        tokenizer: a :class:`~gristmill.Tokenizer`, a bundled encoding name (``o200k_base``),
            a ``tokenizer.json``, ``vocab.json`` (+ ``merges.txt``) or a folder with either.
            Its own pre-tokenizer (and NFC normalizer, if any) splits the sample text.
        categories: name → sample text: a list of texts, a pyarrow string array, a
            :class:`~gristmill.Corpus`, or paths / globs of corpus files.
        num_merges: use the first ``T`` merges (default: all of them).
        bytes_per_category: sample at most this many bytes of each category (documents drawn
            in a seeded random order, the last one cut at a character boundary).
        seed: seeds the document sampling and the bootstrap.
        bootstrap: ``K > 0`` re-runs the inference on ``K`` resamples (documents drawn with
            replacement) and reports a 90 % interval per category in ``intervals``.
        num_threads: threads for counting and replay (default: all cores).
        text_field: the text field of JSONL / Parquet inputs.
        min_bytes: refuse a category sample smaller than this.

    Returns:
        a :class:`MixtureResult`; ``proportions`` are shares of training *bytes*.

    Example:
        >>> r = infer("o200k_base", {"en": ["Hello there, how are you today?"] * 60,
        ...                           "py": ["def f(x):\\n    return x + 1\\n"] * 60})
        >>> round(sum(r.proportions.values()), 6)
        1.0
    """
    if bootstrap < 0:
        raise ValueError("bootstrap must be >= 0")
    if bytes_per_category is not None and bytes_per_category < min_bytes:
        raise ValueError(f"bytes_per_category={bytes_per_category} is below the minimum sample of {min_bytes} bytes")
    items = _named(categories)
    names = [n for n, _ in items]
    tok = load_tokenizer(tokenizer)
    t0 = time.perf_counter()
    samples: List[pa.Array] = []
    for i, (name, data) in enumerate(items):
        texts = load_category(data, name=name, text_field=text_field)
        s = sample_bytes(texts, bytes_per_category, np.random.default_rng([seed, i]))
        nb = int(pc.sum(pc.binary_length(s)).as_py() or 0) if len(s) else 0
        if nb < min_bytes:
            raise ValueError(
                f"category {name!r} has {nb:,} bytes of text; at least {min_bytes:,} are needed "
                "(give it more documents, or lower min_bytes)"
            )
        samples.append(s)
    load_s = time.perf_counter() - t0
    alpha, shares, diag, mc = _run_once(tok, samples, names, num_merges, num_threads)
    diag["seconds"]["load"] = round(load_s, 4)
    diag["tokenizer"] = tok.name
    intervals = None
    if bootstrap:
        draws = []
        with progress.bar("bootstrap", total=bootstrap, unit="resample") as b:
            for k in range(bootstrap):
                rs = [sample_bytes(s, None, np.random.default_rng([seed, 1_000_003 + k, i]), replace=True) for i, s in enumerate(samples)]
                _, sh, _, _ = _run_once(tok, rs, names, num_merges, num_threads, label=f" (resample {k + 1})")
                draws.append(sh)
                b.update(1)
        d = np.array(draws)
        lo, hi = np.percentile(d, 5, axis=0), np.percentile(d, 95, axis=0)
        intervals = {n: (float(lo[i]), float(hi[i])) for i, n in enumerate(names)}
        diag["bootstrap"] = bootstrap
    return MixtureResult(
        categories=names,
        proportions={n: float(shares[i]) for i, n in enumerate(names)},
        pair_proportions={n: float(alpha[i]) for i, n in enumerate(names)},
        intervals=intervals,
        diagnostics=diag,
    )


# --------------------------------------------------------------------------------------------
# the controlled experiment


@dataclass
class ExperimentResult:
    """Per-trial truth, estimates and log10 MSE of the controlled protocol.

    ``log10_mse`` / ``baselines[...]`` hold one value per trial; :meth:`summary` gives
    mean ± std for the method and each baseline."""

    categories: List[str]
    truth: List[List[float]]
    estimates: List[List[float]]
    log10_mse: List[float]
    baselines: Dict[str, List[float]]
    settings: Dict[str, Any]
    seconds: List[float]

    def summary(self) -> Dict[str, Dict[str, float]]:
        out = {"mixture_lp": _mean_std(self.log10_mse)}
        for k, v in self.baselines.items():
            out[k] = _mean_std(v)
        return out

    def to_dict(self) -> Dict[str, Any]:
        return {
            "categories": self.categories,
            "settings": self.settings,
            "summary": self.summary(),
            "trials": [
                {"truth": t, "estimate": e, "log10_mse": m, "seconds": s,
                 **{f"{k}_log10_mse": v[i] for k, v in self.baselines.items()}}
                for i, (t, e, m, s) in enumerate(zip(self.truth, self.estimates, self.log10_mse, self.seconds))
            ],
        }

    def __str__(self) -> str:
        lines = [f"{len(self.log10_mse)} trials, {len(self.categories)} categories ({', '.join(self.categories)})",
                 f"{'method':<16} log10 MSE (mean ± std)"]
        for k, v in self.summary().items():
            lines.append(f"{k:<16} {v['mean']:8.3f} ± {v['std']:.3f}")
        return "\n".join(lines)


def _mean_std(v: Sequence[float]) -> Dict[str, float]:
    a = np.asarray(v, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std())}


def _log10_mse(est: np.ndarray, truth: np.ndarray) -> float:
    return float(math.log10(max(float(np.mean((est - truth) ** 2)), 1e-300)))


def _take_cyclic(texts: pa.Array, budget: int) -> pa.Array:
    """The first ``budget`` bytes of ``texts``, cycling through it again when it is shorter."""
    parts: List[pa.Array] = []
    total = int(pc.sum(pc.binary_length(texts)).as_py() or 0)
    if total == 0 or budget <= 0:
        return pa.array([], pa.large_string())
    while budget >= total:
        parts.append(texts.cast(pa.large_string()))
        budget -= total
    if budget:
        parts.append(_prefix(texts, budget))
    return pa.concat_arrays(parts)


def _prefix(texts: pa.Array, budget: int) -> pa.Array:
    lengths = pc.binary_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    ends = np.cumsum(lengths)
    k = int(np.searchsorted(ends, budget, side="left"))
    head = texts.slice(0, k).cast(pa.large_string())
    if k >= len(texts):
        return head
    rest = budget - (int(ends[k - 1]) if k else 0)
    last = texts[k].as_py().encode("utf-8")[:rest].decode("utf-8", errors="ignore")
    return pa.concat_arrays([head, pa.array([last], pa.large_string())]) if last else head


def experiment(
    categories: Categories,
    *,
    trials: int = 10,
    train_bytes: int = 4_000_000,
    infer_bytes: int = 2_000_000,
    vocab_size: int = 8000,
    num_merges: Optional[int] = 3000,
    pattern: str = "o200k",
    trainer: str = "gristmill",
    infer_on: str = "heldout",
    seed: int = 0,
    num_threads: Optional[int] = None,
    text_field: str = "text",
    on_trial: Optional[Callable[[int, Dict[str, Any]], None]] = None,
) -> ExperimentResult:
    """The paper's controlled protocol on local data.

    For each trial: draw mixture weights uniformly on the simplex, build a ``train_bytes``
    training mixture from each category's training part, train a BPE tokenizer on it (with
    gristmill's trainer, or ``trainer="hf"`` for Hugging Face ``tokenizers``), infer the
    mixture from ``infer_bytes`` of each category's held-out part (``infer_on="train"``
    counts on exactly the tokenizer's training text instead: a sanity check that should be
    near-exact), and score the byte shares by log10 mean squared error. Two baselines run in
    the same harness: ``uniform`` (guess ``1/n``) and ``token_frequency`` (each of the first
    ``T`` merges goes to the category whose sample has its pair most often; shares are the
    fractions of merges).

    Each category's documents are shuffled once (seeded) and split: the first ``infer_bytes``
    are held out for inference, the rest is the training pool (cycled if a trial needs more).
    """
    from gristmill.train import train_bpe

    if trials < 1:
        raise ValueError("trials must be >= 1")
    if infer_on not in ("heldout", "train"):
        raise ValueError("infer_on must be 'heldout' or 'train'")
    if trainer not in ("gristmill", "hf"):
        raise ValueError("trainer must be 'gristmill' or 'hf'")
    items = _named(categories)
    names = [n for n, _ in items]
    n = len(names)
    held: List[pa.Array] = []
    pool: List[pa.Array] = []
    for i, (name, data) in enumerate(items):
        texts = load_category(data, name=name, text_field=text_field)
        shuffled = texts.take(pa.array(np.random.default_rng([seed, 7, i]).permutation(len(texts)))) if len(texts) else texts
        h = _prefix(shuffled, infer_bytes) if infer_on == "heldout" else pa.array([], pa.large_string())
        k = len(h)
        # The training pool starts after the held-out documents (a cut document is not reused).
        rest = shuffled.slice(k).cast(pa.large_string())
        if int(pc.sum(pc.binary_length(rest)).as_py() or 0) < MIN_BYTES:
            raise ValueError(f"category {name!r}: too little text left for training after holding out {infer_bytes:,} bytes")
        held.append(h)
        pool.append(rest)
    rng = np.random.default_rng([seed, 11])
    truth_all, est_all, mse, secs = [], [], [], []
    base: Dict[str, List[float]] = {"uniform": [], "token_frequency": []}
    for trial in range(trials):
        t0 = time.perf_counter()
        w = rng.dirichlet(np.ones(n))
        budgets = np.floor(w * train_bytes).astype(np.int64)
        parts = [_take_cyclic(pool[i], int(budgets[i])) for i in range(n)]
        real = np.array([int(pc.sum(pc.binary_length(p)).as_py() or 0) if len(p) else 0 for p in parts], dtype=np.float64)
        truth = real / real.sum()
        mix = pa.concat_arrays([p for p in parts if len(p)])
        tok = _train(mix, vocab_size, pattern, trainer, num_threads, train_bpe)
        samples = parts if infer_on == "train" else held
        # Categories with no training text still get their held-out sample; with infer_on=train
        # an empty one is represented by a tiny slice so the LP keeps every category.
        samples = [s if len(s) else pool[i].slice(0, 1) for i, s in enumerate(samples)]
        _, shares, diag, mc = _run_once(tok, samples, names, num_merges, num_threads, label=f" (trial {trial + 1})")
        freq = np.bincount(np.argmax(mc, axis=1)[mc.max(axis=1) > 0], minlength=n).astype(np.float64)
        freq = freq / freq.sum() if freq.sum() else np.full(n, 1.0 / n)
        truth_all.append(truth.tolist())
        est_all.append(shares.tolist())
        mse.append(_log10_mse(shares, truth))
        base["uniform"].append(_log10_mse(np.full(n, 1.0 / n), truth))
        base["token_frequency"].append(_log10_mse(freq, truth))
        secs.append(time.perf_counter() - t0)
        if on_trial is not None:
            on_trial(trial, {"truth": truth.tolist(), "estimate": shares.tolist(), "log10_mse": mse[-1], "seconds": secs[-1], "lp": diag})
    settings = {
        "trials": trials, "train_bytes": train_bytes, "infer_bytes": infer_bytes, "vocab_size": vocab_size,
        "num_merges": num_merges, "pattern": pattern, "trainer": trainer, "infer_on": infer_on, "seed": seed,
    }
    return ExperimentResult(names, truth_all, est_all, mse, base, settings, secs)


def _train(mix: pa.Array, vocab_size: int, pattern: str, trainer: str, num_threads: Optional[int], train_bpe: Any) -> Tokenizer:
    if trainer == "gristmill":
        return train_bpe(mix, vocab_size=vocab_size, pattern=pattern, num_threads=num_threads)  # type: ignore[no-any-return]
    import tempfile

    from tokenizers import Regex, Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, trainers

    from gristmill.train import _resolve_pattern

    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(_resolve_pattern(pattern)), behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    hf.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    hf.train_from_iterator(mix.to_pylist(), trainer=tr)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "tokenizer.json"
        hf.save(str(path))
        return Tokenizer.from_huggingface(path)
