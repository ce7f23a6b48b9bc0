"""MinHash dedup and tokenization on Ray Data, with the results of the local path.

``pip install 'gristmill[ray]'``. Every stage runs on the Ray workers as Arrow blocks
handed to the same Rust kernels the local path uses; the driver only plans, checks
arguments and counts. See ``docs/ray.md`` for what runs where, memory and shuffle sizes.

:func:`dedup_minhash` stages (``P`` = shuffle partitions):

1. **order**: the dataset is materialized once; every row gets its read-order index
   ``doc`` (block order, then row order: the local path's document index).
2. **signatures** (``map_batches``, pyarrow batches, text column handed to Rust without a
   copy): signature, band keys, length; rows with an empty shingle set are never clustered.
3. **candidate groups**: ``(band, key, doc)`` rows are shuffled by key (``groupby`` on a
   partition of the key) and grouped in Rust; each shard emits a spanning forest of its
   groups (union-find inside the shard).
4. **verification** (``verify=True``): group memberships are joined with the texts and
   shuffled by group; each shard checks candidate pairs by exact shingle Jaccard
   (the local kernel) and emits the confirmed spanning forest.
5. **connected components**: alternating large-star / small-star rounds (Kiveris et al.,
   SoCC 2014), one shuffle per step, until the graph is a forest of stars centred at the
   smallest document of each component (checked exactly, on the workers); O(log n) rounds.
   No edge list is ever collected on one node.
6. **clusters**: members are joined with their signatures (and texts) and shuffled by
   component; each shard picks the kept document and writes the report rows (the local
   kernel), so ``clusters`` equals ``minhash_clusters.parquet`` of the local path.
7. **kept**: an anti-join of the input with the removed documents, sorted back to read order.

Example (run in ``tests/test_ray.py`` on a local Ray runtime)::

    import ray, gristmill.ray
    ds = ray.data.from_items([{"text": "a b c d e f"}, {"text": "a b c d e f"}, {"text": "x y z"}])
    r = gristmill.ray.dedup_minhash(ds, ngram=3)
    r.kept.count(), r.clusters.count()   # (2, 2)
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, cast

import numpy as np
import pyarrow as pa

from gristmill import _native
from gristmill._arrow import string_buffers
from gristmill.io import CorpusError
from gristmill.minhash import (
    DEDUP_WEIGHTS,
    MinHasher,
    _check_threshold,
    _resolve_bands,
    _warn_meaningless_layout,
)

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = ["RayDedupResult", "dedup_minhash", "tokenize", "connected_components", "corpus_dataset"]

DOC = "__gm_doc"  # read-order index column added internally
_U64_MAX = np.iinfo(np.uint64).max


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError("gristmill.ray needs Ray Data: pip install 'gristmill[ray]'") from e
    return ray


@dataclass
class RayDedupResult:
    """What :func:`dedup_minhash` found.

    Attributes:
        kept: ``ray.data.Dataset`` of the kept rows, every input column, in read order.
        clusters: ``ray.data.Dataset`` with the columns of ``minhash_clusters.parquet``
            (``cluster``, ``doc``, ``id``/``kept_id`` with ``id_column``, ``kept_doc``,
            ``is_kept``, ``est_jaccard``, ``exact_jaccard`` with ``verify``), ordered by
            cluster then document.
        summary: counts, parameters, rounds of the components step and seconds per stage.
    """

    kept: Any
    clusters: Any
    summary: Dict[str, Any] = field(default_factory=dict)

    def keep_mask(self) -> np.ndarray:
        """Boolean mask over the documents in read order (collects ``n`` bits and the
        removed documents' indices on the driver: for writing local outputs)."""
        n = int(self.summary["docs_in"])
        mask = np.ones(n, dtype=bool)
        for b in self.clusters.iter_batches(batch_format="pyarrow", batch_size=1 << 20):
            doc = np.asarray(b.column("doc"), dtype=np.int64)
            is_kept = np.asarray(b.column("is_kept"), dtype=bool)
            mask[doc[~is_kept]] = False
        return mask


# ---------------------------------------------------------------------------------------------
# errors raised on workers reach the driver wrapped by Ray; give back the original one


def _unwrap(e: BaseException) -> BaseException:
    seen = set()
    cur: Optional[BaseException] = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (CorpusError, _native.GristmillError)) or type(cur) in (TypeError, ValueError):
            return cur
        cause = getattr(cur, "cause", None)
        cur = cur.__cause__ or (cause if isinstance(cause, BaseException) else None) or cur.__context__
    return e


def _run(f: Any, *args: Any, **kwargs: Any) -> Any:
    ctx = _ray().data.DataContext.get_current()
    before = getattr(ctx, "raise_original_map_exception", None)
    if before is not None:
        ctx.raise_original_map_exception = True  # a UDF's own exception, not a wrapper
    try:
        return f(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - re-raised, unwrapped when it is ours
        err, orig = e, _unwrap(e)
    finally:
        if before is not None:
            ctx.raise_original_map_exception = before
    if orig is err:
        raise err
    raise type(orig)(*orig.args) from None


def _sort_shuffle(f: _F) -> _F:
    """Run ``f`` with Ray Data's sort-based pull shuffle: on the test corpus (25 MB, 2 CPUs)
    the default actor-based hash shuffle spends ~10 s idle per shuffle (142 s in all against
    15.6 s, same result; benches/RESULTS.md "Ray engine"). Datasets made inside keep it."""

    @functools.wraps(f)
    def run(*args: Any, **kwargs: Any) -> Any:
        from ray.data.context import ShuffleStrategy

        ctx = _ray().data.DataContext.get_current()
        before = ctx.shuffle_strategy
        ctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
        try:
            return f(*args, **kwargs)
        finally:
            ctx.shuffle_strategy = before

    return cast(_F, run)


# ---------------------------------------------------------------------------------------------
# fault injection for the tests: kill the worker process the first time a stage runs


def _maybe_fail(fault: Optional[Tuple[str, str]], stage: str) -> None:
    if fault is None or fault[0] != stage:
        return
    try:
        fd = os.open(fault[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(1)  # the worker dies mid-task, as a crashed or pre-empted node would


# ---------------------------------------------------------------------------------------------
# stage 1: read-order index


def _add_index(block: Any, start: int) -> pa.Table:
    from ray.data.block import BlockAccessor

    t = BlockAccessor.for_block(block).to_arrow()
    return t.append_column(DOC, pa.array(np.arange(start, start + t.num_rows, dtype=np.uint64)))


def _indexed(ds: Any) -> Tuple[Any, int, int]:
    """``ds`` with the read-order index column; returns (dataset, rows, blocks)."""
    ray = _ray()
    mat = ds.materialize()
    add = ray.remote(_add_index)
    refs = []
    start = 0
    for bundle in mat.iter_internal_ref_bundles():
        for entry in bundle.blocks:
            block_ref, meta = (entry.ref, entry.metadata) if hasattr(entry, "ref") else entry
            n = meta.num_rows
            refs.append(add.remote(block_ref, start))
            start += int(n)
    if not refs:
        return None, 0, 0
    return ray.data.from_arrow_refs(refs), start, len(refs)


# ---------------------------------------------------------------------------------------------
# stage 2: signatures


_HASHERS: Dict[str, MinHasher] = {}


def _hasher(spec: Dict[str, Any]) -> MinHasher:
    key = json.dumps(spec, sort_keys=True)
    h = _HASHERS.get(key)
    if h is None:
        h = _HASHERS[key] = MinHasher(**spec, num_threads=1)
    return h


def _text_array(batch: pa.Table, text_column: str, doc: np.ndarray) -> pa.Array:
    col = batch.column(text_column)
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        if hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t):
            col = col.cast(pa.large_string())
        else:
            raise CorpusError(f"dataset: column {text_column!r} has type {t}, expected string")
    if col.null_count:
        first = int(doc[col.is_null().index(True).as_py()])
        raise CorpusError(f"dataset row {first}: {text_column!r} is null, expected a string")
    return col


def _signature_batch(batch: pa.Table, *, spec: Dict[str, Any], text_column: str, id_column: Optional[str],
                     order_column: Optional[str], keep: str, verify: bool, fault: Any) -> pa.Table:
    _maybe_fail(fault, "signatures")
    h = _hasher(spec)
    doc = np.asarray(batch.column(DOC), dtype=np.uint64)
    texts = _text_array(batch, text_column, doc)
    sig = h.signatures(texts, num_threads=1)
    eligible = ~np.all(sig == h.empty_value, axis=1) if len(sig) else np.zeros(0, bool)
    width = sig.shape[1] * sig.dtype.itemsize
    cols: Dict[str, Any] = {
        DOC: pa.array(doc),
        "sig": pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(sig), [None, pa.py_buffer(np.ascontiguousarray(sig))]),
        "eligible": pa.array(eligible),
    }
    if keep == "longest":
        cols["score"] = pa.array(np.diff(string_buffers(texts)[1]).astype(np.float64))
    elif order_column is not None:
        o = batch.column(order_column)
        if o.null_count or not (pa.types.is_integer(o.type) or pa.types.is_floating(o.type)):
            raise CorpusError(f"dataset: order column {order_column!r} must hold numbers without nulls, got {o.type}")
        # keep the smallest order key: the largest score (ties → smallest doc)
        cols["score"] = pa.array(-np.asarray(o, dtype=np.float64))
    if id_column is not None:
        cols["id"] = batch.column(id_column)
    if verify:
        cols["text"] = texts.cast(pa.large_string())
    return pa.table(cols)


def _sig_matrix(col: Any, num_perm: int, dtype: np.dtype) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    if n == 0:
        return np.zeros((0, num_perm), dtype)
    width = num_perm * dtype.itemsize
    if not pa.types.is_fixed_size_binary(arr.type):  # a join may hand it back as binary
        arr = arr.cast(pa.binary(width))
    buf = arr.buffers()[1]
    raw = np.frombuffer(buf, dtype=np.uint8)[arr.offset * width:(arr.offset + n) * width]
    return np.ascontiguousarray(raw.view(dtype).reshape(n, num_perm))


# ---------------------------------------------------------------------------------------------
# stage 3: band keys -> candidate groups


def _band_rows(batch: pa.Table, *, num_perm: int, dtype: str, bands: int, rows: int, parts: int) -> pa.Table:
    elig = np.asarray(batch.column("eligible"), dtype=bool)
    doc = np.asarray(batch.column(DOC), dtype=np.uint64)[elig]
    sig = _sig_matrix(batch.column("sig"), num_perm, np.dtype(dtype))[elig]
    keys = _native.lsh_band_keys(np.ascontiguousarray(sig), bands, rows, 1) if len(sig) else np.zeros((0, bands), np.uint64)
    key = keys.ravel()
    return pa.table({
        "part": pa.array((key % np.uint64(parts)).astype(np.int64)),
        "band": pa.array(np.tile(np.arange(bands, dtype=np.uint32), len(doc))),
        "key": pa.array(key),
        "doc": pa.array(np.repeat(doc, bands)),
    })


_EDGE_SCHEMA = pa.schema([("a", pa.uint64()), ("b", pa.uint64())])
_MEMBER_SCHEMA = pa.schema([("gid", pa.uint64()), (DOC, pa.uint64())])


def _groups_shard(t: pa.Table, *, verify: bool, fault: Any) -> pa.Table:
    _maybe_fail(fault, "groups")
    band = np.asarray(t.column("band"), dtype=np.uint32)
    key = np.asarray(t.column("key"), dtype=np.uint64)
    doc = np.asarray(t.column("doc"), dtype=np.uint64)
    members, offsets = _native.lsh_band_groups(band, key, doc)
    if verify:
        part = int(t.column("part")[0].as_py()) if t.num_rows else 0
        gid = (np.uint64(part) << np.uint64(32)) + np.arange(len(offsets) - 1, dtype=np.uint64)
        return pa.table({"gid": pa.array(np.repeat(gid, np.diff(offsets))), DOC: pa.array(members)},
                        schema=_MEMBER_SCHEMA)
    uniq, inv = np.unique(members, return_inverse=True)
    out = _native.lsh_group_edges(inv.astype(np.uint32), offsets, len(uniq), None, None, None, 1)
    return pa.table({"a": pa.array(uniq[out["e_a"]]), "b": pa.array(uniq[out["e_b"]])}, schema=_EDGE_SCHEMA)


# ---------------------------------------------------------------------------------------------
# stage 4: verification of candidate pairs


def _add_part(batch: pa.Table, *, column: str, parts: int) -> pa.Table:
    v = np.asarray(batch.column(column), dtype=np.uint64)
    # multiplicative mixing: group ids of one shard are consecutive
    p = ((v * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) % np.uint64(parts)
    return batch.append_column("vpart", pa.array(p.astype(np.int64)))


def _verify_shard(t: pa.Table, *, spec: Dict[str, Any], threshold: float, fault: Any) -> pa.Table:
    _maybe_fail(fault, "verify")
    gid = np.asarray(t.column("gid"), dtype=np.uint64)
    doc = np.asarray(t.column(DOC), dtype=np.uint64)
    order = np.lexsort((doc, gid))
    gid, doc = gid[order], doc[order]
    uniq, first, inv = np.unique(doc, return_index=True, return_inverse=True)
    texts = t.column("text").take(pa.array(order[first]))
    bounds = np.flatnonzero(np.diff(gid)) + 1 if len(gid) else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], bounds, [len(gid)]]).astype(np.int64)
    h = _hasher(spec)
    out = _native.lsh_group_edges(inv.astype(np.uint32), offsets, len(uniq), string_buffers(texts),
                                  h._shingle_spec(), threshold, 1)
    return pa.table({"a": pa.array(uniq[out["e_a"]]), "b": pa.array(uniq[out["e_b"]])}, schema=_EDGE_SCHEMA)


# ---------------------------------------------------------------------------------------------
# stage 5: connected components, alternating large-star / small-star


def _half_edges(batch: pa.Table, *, parts: int) -> pa.Table:
    a = np.asarray(batch.column("a"), dtype=np.uint64)
    b = np.asarray(batch.column("b"), dtype=np.uint64)
    child, parent = np.maximum(a, b), np.minimum(a, b)
    keep = child != parent
    child, parent = child[keep], parent[keep]
    node = np.concatenate([child, parent])
    return pa.table({
        "part": pa.array((node % np.uint64(parts)).astype(np.int64)),
        "node": pa.array(node),
        "other": pa.array(np.concatenate([parent, child])),
        "is_child": pa.array(np.concatenate([np.ones(len(child), bool), np.zeros(len(parent), bool)])),
    })


_STAR_SCHEMA = pa.schema([("a", pa.uint64()), ("b", pa.uint64()), ("not_star", pa.int64())])


def _large_star_shard(t: pa.Table, *, fault: Any) -> pa.Table:
    _maybe_fail(fault, "large_star")
    child, parent, bad = _native.cc_large_star(
        np.asarray(t.column("node"), dtype=np.uint64), np.asarray(t.column("other"), dtype=np.uint64),
        np.asarray(t.column("is_child"), dtype=bool))
    # one extra row carries this shard's count of nodes that are not yet stars
    return pa.table({
        "a": pa.array(np.append(child, _U64_MAX).astype(np.uint64)),
        "b": pa.array(np.append(parent, _U64_MAX).astype(np.uint64)),
        "not_star": pa.array(np.append(np.zeros(len(child), np.int64), bad)),
    }, schema=_STAR_SCHEMA)


def _small_star_rows(batch: pa.Table, *, parts: int) -> pa.Table:
    a = np.asarray(batch.column("a"), dtype=np.uint64)
    b = np.asarray(batch.column("b"), dtype=np.uint64)
    real = a != _U64_MAX
    a, b = a[real], b[real]
    return pa.table({"part": pa.array((a % np.uint64(parts)).astype(np.int64)), "node": pa.array(a),
                     "smaller": pa.array(b)})


def _small_star_shard(t: pa.Table) -> pa.Table:
    child, parent, _ = _native.cc_small_star(np.asarray(t.column("node"), dtype=np.uint64),
                                             np.asarray(t.column("smaller"), dtype=np.uint64))
    return pa.table({"a": pa.array(child), "b": pa.array(parent)}, schema=_EDGE_SCHEMA)


def connected_components(edges: Any, *, parts: int, fault: Any = None, max_rounds: int = 200) -> Tuple[Any, int]:
    """Connected components of an edge ``Dataset`` (columns ``a``, ``b``, ``uint64`` node
    labels) without collecting it: returns ``(dataset of (a=node, b=component), rounds)``
    with one row per node of a component of ≥ 2 nodes other than its smallest node, whose
    label is the component id. Alternating large-star / small-star (Kiveris et al. 2014);
    the loop stops when the workers find no node violating the star-forest shape."""
    e = edges
    rounds = 0
    while True:
        rounds += 1
        if rounds > max_rounds:  # pragma: no cover - O(log n) rounds in theory and practice
            raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
        half = e.map_batches(_half_edges, batch_format="pyarrow", fn_kwargs={"parts": parts})
        large = half.groupby("part", num_partitions=parts).map_groups(_large_star_shard, batch_format="pyarrow",
                                                fn_kwargs={"fault": fault}).materialize()
        bad = large.sum("not_star") or 0
        if bad == 0:
            break
        small_in = large.map_batches(_small_star_rows, batch_format="pyarrow", fn_kwargs={"parts": parts})
        e = small_in.groupby("part", num_partitions=parts).map_groups(_small_star_shard, batch_format="pyarrow").materialize()
    star = e.map_batches(_oriented, batch_format="pyarrow")
    return star, rounds


def _oriented(batch: pa.Table) -> pa.Table:
    a = np.asarray(batch.column("a"), dtype=np.uint64)
    b = np.asarray(batch.column("b"), dtype=np.uint64)
    child, parent = np.maximum(a, b), np.minimum(a, b)
    keep = child != parent
    return pa.table({"a": pa.array(child[keep]), "b": pa.array(parent[keep])}, schema=_EDGE_SCHEMA)


# ---------------------------------------------------------------------------------------------
# stage 6: cluster rows


def _member_rows(batch: pa.Table, *, parts: int) -> pa.Table:
    child = np.asarray(batch.column("a"), dtype=np.uint64)
    root = np.asarray(batch.column("b"), dtype=np.uint64)
    doc = np.concatenate([child, root])  # roots repeat; the cluster shard keeps one row each
    roots = np.concatenate([root, root])
    return pa.table({DOC: pa.array(doc), "root": pa.array(roots),
                     "cpart": pa.array((roots % np.uint64(parts)).astype(np.int64))})


def _cluster_shard(t: pa.Table, *, spec: Dict[str, Any], keep: str, verify: bool, has_score: bool,
                   id_column: Optional[str], fault: Any) -> pa.Table:
    _maybe_fail(fault, "clusters")
    h = _hasher(spec)
    doc = np.asarray(t.column(DOC), dtype=np.uint64)
    uniq, first = np.unique(doc, return_index=True)
    t = t.take(pa.array(first))
    root = np.asarray(t.column("root"), dtype=np.uint64)
    local_root = np.searchsorted(uniq, root).astype(np.uint32)
    sig = _sig_matrix(t.column("sig"), h.num_perm, h.dtype)
    scores = np.asarray(t.column("score"), dtype=np.float64) if has_score else None
    docs = string_buffers(t.column("text")) if verify else None
    out = _native.lsh_cluster_rows(sig, local_root, scores, docs, h._shingle_spec() if verify else None, 1)
    r_doc, r_kept = out["r_doc"].astype(np.int64), out["r_kept_doc"].astype(np.int64)
    cols: Dict[str, Any] = {
        "cluster": pa.array(uniq[out["r_cluster"]].astype(np.uint32)),
        "doc": pa.array(uniq[r_doc].astype(np.uint32)),
    }
    if id_column is not None:
        ids = t.column("id")
        cols["id"] = ids.take(pa.array(r_doc))
        cols["kept_id"] = ids.take(pa.array(r_kept))
    cols["kept_doc"] = pa.array(uniq[r_kept].astype(np.uint32))
    cols["is_kept"] = pa.array(out["r_is_kept"], pa.bool_())
    cols["est_jaccard"] = pa.array(out["r_est_jaccard"], pa.float64())
    if verify:
        cols["exact_jaccard"] = pa.array(out["r_exact_jaccard"], pa.float64())
    return pa.table(cols)


def _drop_doc(batch: pa.Table) -> pa.Table:
    return batch.drop_columns([DOC])


def _removed_docs(batch: pa.Table) -> pa.Table:
    doc = np.asarray(batch.column("doc"), dtype=np.uint64)
    kept = np.asarray(batch.column("is_kept"), dtype=bool)
    return pa.table({DOC: pa.array(doc[~kept])})


# ---------------------------------------------------------------------------------------------
# the public entry point


def _check_columns(ds: Any, text_column: str, id_column: Optional[str], order_column: Optional[str]) -> None:
    schema = ds.schema()
    if schema is None:
        return
    names = list(schema.names)
    types = dict(zip(names, schema.types))
    for name, role in ((text_column, "text"), (id_column, "id"), (order_column, "order")):
        if name is not None and name not in names:
            raise CorpusError(f"dataset: no column {name!r} (columns: {', '.join(names[:10])}); "
                              f"choose the {role} column with {role}_column=")
    if DOC in names:
        raise ValueError(f"dataset: column {DOC!r} is reserved by gristmill.ray")
    t = types[text_column]
    if isinstance(t, pa.DataType) and not (pa.types.is_string(t) or pa.types.is_large_string(t)
                                           or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))):
        raise CorpusError(f"dataset: column {text_column!r} has type {t}, expected string")


def _parts(rows: int, per_part: int, cpus: int) -> int:
    return max(2 * cpus, min(4096, math.ceil(rows / per_part)))


@_sort_shuffle
def dedup_minhash(
    ds: Any,
    *,
    text_column: str = "text",
    id_column: Optional[str] = None,
    order_column: Optional[str] = None,
    threshold: float = 0.8,
    ngram: int = 5,
    num_perm: int = 128,
    seed: int = 1,
    bands: Optional[int] = None,
    rows: Optional[int] = None,
    unit: str = "word",
    tokenizer: Optional[str] = None,
    fold_digits: bool = False,
    nfkc: bool = False,
    keep: str = "first",
    verify: bool = True,
    weights: Tuple[float, float] = DEDUP_WEIGHTS,
    partitions: Optional[int] = None,
    _fault: Optional[Tuple[str, str]] = None,
) -> RayDedupResult:
    """Near-duplicate dedup of a ``ray.data.Dataset``, with the result of the local path.

    Same parameters and defaults as ``gristmill dedup minhash`` (verification on); the kept
    rows and the clusters equal those of :func:`gristmill.minhash.dedup_minhash` on the
    same texts in read order (block order, then row order), whatever the block count.

    Args:
        ds: the dataset; ``text_column`` holds the text (string).
        id_column: names rows in ``clusters`` (``id``, ``kept_id``), as ``--id-field``.
        order_column: with ``keep="first"``, keep the member with the smallest value of this
            numeric column (ties → read order) instead of the first in read order.
        threshold, ngram, num_perm, seed, bands, rows, unit, fold_digits, nfkc, weights:
            as :func:`gristmill.minhash.dedup_minhash`; ``tokenizer`` (``unit="token"``)
            is the name of a bundled encoding.
        keep: ``"first"`` or ``"longest"`` (most UTF-8 bytes, ties → first).
        verify: confirm candidate pairs by exact shingle Jaccard (default on).
        partitions: shuffle partitions (default: from the data size and cluster CPUs;
            results do not depend on it).

    Errors in the input (missing or non-string column, null text) and invalid parameters
    raise the local path's exception on the driver.
    """
    ray = _ray()
    t_all = time.perf_counter()
    threshold = _check_threshold(threshold)
    spec: Dict[str, Any] = {"num_perm": num_perm, "seed": seed, "ngram": ngram, "unit": unit,
                            "fold_digits": fold_digits, "nfkc": nfkc, "tokenizer": tokenizer}
    if tokenizer is not None and not isinstance(tokenizer, str):
        raise TypeError("tokenizer must be the name of a bundled encoding on the Ray path")
    hasher = MinHasher(**spec)
    explicit = bands is not None or rows is not None
    bands, rows = _resolve_bands(threshold, hasher.num_perm, bands, rows, weights)
    _warn_meaningless_layout(threshold, hasher.num_perm, bands, rows, explicit, verify)
    if keep not in ("first", "longest"):
        raise ValueError(f"keep must be 'first' or 'longest' on the Ray path, got {keep!r}")
    if order_column is not None and keep != "first":
        raise ValueError("order_column applies only with keep='first'")
    if partitions is not None and (isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1):
        raise ValueError(f"partitions must be a positive int, got {partitions!r}")
    _check_columns(ds, text_column, id_column, order_column)
    timings: Dict[str, float] = {}

    t0 = time.perf_counter()
    indexed, n, blocks = _run(_indexed, ds)
    timings["order"] = time.perf_counter() - t0
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    summary: Dict[str, Any] = {"docs_in": n, "blocks": blocks, "threshold": threshold, "bands": bands,
                               "rows": rows, "verify": bool(verify), "keep": keep, "minhash": hasher.describe()}
    if n == 0:
        empty = ray.data.from_arrow(pa.table({text_column: pa.array([], pa.string())}))
        return RayDedupResult(kept=empty, clusters=ray.data.from_arrow(_empty_clusters(id_column, verify)),
                              summary={**summary, "docs_kept": 0, "removed": 0, "clusters": 0, "rounds": 0})
    P = partitions or _parts(n * bands, 4 << 20, cpus)
    has_score = keep == "longest" or order_column is not None

    t0 = time.perf_counter()
    info = indexed.map_batches(
        _signature_batch, batch_format="pyarrow", zero_copy_batch=True,
        fn_kwargs={"spec": spec, "text_column": text_column, "id_column": id_column, "order_column": order_column,
                   "keep": keep, "verify": verify, "fault": _fault},
    )
    info = _run(info.materialize)
    timings["signatures"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    band_rows = info.map_batches(_band_rows, batch_format="pyarrow", fn_kwargs={
        "num_perm": hasher.num_perm, "dtype": hasher.dtype.name, "bands": bands, "rows": rows, "parts": P})
    grouped = band_rows.groupby("part", num_partitions=P).map_groups(_groups_shard, batch_format="pyarrow",
                                                   fn_kwargs={"verify": verify, "fault": _fault})
    grouped = _run(grouped.materialize)
    timings["candidate_groups"] = time.perf_counter() - t0

    if verify:
        t0 = time.perf_counter()
        members = grouped
        n_members = members.count()
        if n_members:
            joined = members.join(info.select_columns([DOC, "text"]), "inner", num_partitions=P, on=(DOC,))
            joined = joined.map_batches(_add_part, batch_format="pyarrow", fn_kwargs={"column": "gid", "parts": P})
            edges = joined.groupby("vpart", num_partitions=P).map_groups(
                _verify_shard, batch_format="pyarrow",
                fn_kwargs={"spec": spec, "threshold": threshold, "fault": _fault})
            edges = _run(edges.materialize)
        else:
            edges = ray.data.from_arrow(_EDGE_SCHEMA.empty_table())
        timings["verify"] = time.perf_counter() - t0
    else:
        edges = grouped
    n_edges = edges.count()
    summary["forest_edges"] = n_edges

    t0 = time.perf_counter()
    if n_edges:
        star, rounds = _run(connected_components, edges, parts=P, fault=_fault)
    else:
        star, rounds = None, 0
    timings["components"] = time.perf_counter() - t0
    summary["rounds"] = rounds

    t0 = time.perf_counter()
    if star is not None:
        mem = star.map_batches(_member_rows, batch_format="pyarrow", fn_kwargs={"parts": P})
        cols = [DOC, "sig"] + (["score"] if has_score else []) + (["id"] if id_column else []) + \
            (["text"] if verify else [])
        joined = mem.join(info.select_columns(cols), "inner", num_partitions=P, on=(DOC,))
        clusters = joined.groupby("cpart", num_partitions=P).map_groups(
            _cluster_shard, batch_format="pyarrow",
            fn_kwargs={"spec": spec, "keep": keep, "verify": verify, "has_score": has_score,
                       "id_column": id_column, "fault": _fault})
        clusters = _run(clusters.sort(["cluster", "doc"]).materialize)
        removed = clusters.map_batches(_removed_docs, batch_format="pyarrow").materialize()
        n_removed = removed.count()
    else:
        clusters = ray.data.from_arrow(_empty_clusters(id_column, verify))
        n_removed = 0
    timings["clusters"] = time.perf_counter() - t0

    if n_removed:
        kept = indexed.join(removed, "left_anti", num_partitions=P, on=(DOC,)).sort(DOC)
    else:
        kept = indexed
    kept = kept.map_batches(_drop_doc, batch_format="pyarrow")
    n_clusters = 0 if star is None else _count_clusters(clusters)
    timings["total"] = time.perf_counter() - t_all
    summary.update({"docs_kept": n - n_removed, "removed": n_removed, "clusters": n_clusters,
                    "docs_in_clusters": clusters.count(), "partitions": P,
                    "seconds": {k: round(v, 4) for k, v in timings.items()}})
    return RayDedupResult(kept=kept, clusters=clusters, summary=summary)


# ---------------------------------------------------------------------------------------------
# tokenization: packed shards written by the workers, one manifest written by the driver


def _tokenize_block(batch: pa.Table, *, tokenizer: Any, stage: str, shard_tokens: int, eos_id: Optional[int],
                    bos_id: Optional[int], text_column: str, fault: Any) -> pa.Table:
    from pathlib import Path

    from gristmill.tokenizer import _ShardWriter, _with_specials, token_dtype

    _maybe_fail(fault, "tokenize")
    doc = np.asarray(batch.column(DOC), dtype=np.int64)
    out: Dict[str, List[Any]] = {"first_doc": [], "n_docs": [], "n_tokens": [], "tokens": [], "index": []}
    if len(doc):
        first = int(doc[0])
        if not np.array_equal(doc, np.arange(first, first + len(doc))):
            raise RuntimeError("gristmill.ray.tokenize: a batch holds rows out of read order")
        texts = _text_array(batch, text_column, doc.astype(np.uint64))
        toks, offs = tokenizer.encode_batch_flat(texts, num_threads=1, ordinary=True)
        # names by first document: unique across blocks and the same when Ray retries a task
        w = _ShardWriter(Path(stage), token_dtype(tokenizer), shard_tokens,
                         lambda k, first_doc: f"d{first_doc:015d}.bin", first_doc=first, empty_shard=False)
        with w:
            w.add(*_with_specials(toks, offs, bos_id, eos_id))
        for sh in w.shards:
            for k in out:
                out[k].append(sh[k])
    return pa.table({"first_doc": pa.array(out["first_doc"], pa.int64()), "n_docs": pa.array(out["n_docs"], pa.int64()),
                     "n_tokens": pa.array(out["n_tokens"], pa.int64()), "tokens": pa.array(out["tokens"], pa.string()),
                     "index": pa.array(out["index"], pa.string())})


@_sort_shuffle
def tokenize(
    ds: Any,
    tokenizer: Any,
    *,
    output: Any,
    text_column: str = "text",
    eos: Any = None,
    bos: Any = None,
    shard_tokens: int = 1 << 28,
    _fault: Optional[Tuple[str, str]] = None,
) -> Dict[str, Any]:
    """Tokenize a ``ray.data.Dataset`` into packed shards under ``output``: the format of
    ``gristmill tokenize`` (``tokens-NNNNN.bin``, ``tokens-NNNNN.idx.npy``, ``manifest.json``)
    and, document by document in read order, the same token stream.

    The workers encode their blocks with the local kernel and write each block's shards
    themselves (``output`` must be a folder every worker can write: a local disk on one
    machine, a shared file system on a cluster); a block never shares a shard with another,
    so shard boundaries follow the blocks (and ``shard_tokens``). The driver then renames
    the shards into read order and writes ``manifest.json`` last. A failed run leaves no
    output; a task Ray retries rewrites the same files.

    Args:
        ds: the dataset; ``text_column`` holds the text (string).
        tokenizer: a :class:`gristmill.Tokenizer` or the name of a bundled encoding.
        output: output folder (created if missing).
        eos, bos: special token (name or id) appended / prepended to every document.
        shard_tokens: start a new shard after this many tokens (a document is never split).

    Returns the manifest (also written to ``output/manifest.json``).

    Example::

        m = gristmill.ray.tokenize(ray.data.read_parquet("data/"), "o200k_base", output="tok/", eos="<|endoftext|>")
        m["total_tokens"]
    """
    import shutil
    from pathlib import Path

    from gristmill.io import adopt_file, remove_stale_temps, staged_outputs, write_json
    from gristmill.tokenizer import Tokenizer, _ShardWriter, _special_or_id, get_encoding, token_dtype, tokens_manifest

    ray = _ray()
    if isinstance(tokenizer, str):
        tokenizer = get_encoding(tokenizer)
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be a gristmill.Tokenizer or a bundled encoding name, got {type(tokenizer).__name__}")
    if isinstance(shard_tokens, bool) or not isinstance(shard_tokens, int) or shard_tokens < 1:
        raise ValueError(f"shard_tokens must be a positive int, got {shard_tokens!r}")
    eos_id = _special_or_id(tokenizer, eos, "eos")
    bos_id = _special_or_id(tokenizer, bos, "bos")
    _check_columns(ds, text_column, None, None)
    out = Path(output)
    try:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out)
        stage = out / f".ray-tokens.tmp-{os.getpid()}"
        stage.mkdir(exist_ok=True)
    except OSError as e:
        raise CorpusError(f"{out}: cannot write: {e.strerror or e}") from None
    dtype = token_dtype(tokenizer)
    try:
        indexed, n, _ = _run(_indexed, ds)
        rows: List[Dict[str, Any]] = []
        if n:
            meta = indexed.map_batches(
                _tokenize_block, batch_format="pyarrow", batch_size=None, zero_copy_batch=True,
                fn_kwargs={"tokenizer": tokenizer, "stage": str(stage.resolve()), "shard_tokens": shard_tokens,
                           "eos_id": eos_id, "bos_id": bos_id, "text_column": text_column, "fault": _fault})
            table = _run(lambda: pa.concat_tables([ray.get(r) for r in meta.to_arrow_refs()]))
            rows = sorted(table.to_pylist(), key=lambda r: r["first_doc"])
        with staged_outputs():
            shards: List[Dict[str, Any]] = []
            for k, r in enumerate(rows):
                name = f"tokens-{k:05d}.bin"
                idx = f"tokens-{k:05d}.idx.npy"
                adopt_file(stage / r["tokens"], out / name)
                adopt_file(stage / r["index"], out / idx)
                shards.append({"tokens": name, "index": idx, "first_doc": r["first_doc"], "n_docs": r["n_docs"],
                               "n_tokens": r["n_tokens"]})
            if not shards:  # no document: one empty shard, as locally
                with _ShardWriter(out, dtype, shard_tokens, lambda k, first: f"tokens-{k:05d}.bin") as w:
                    pass
                shards = w.shards
            manifest = tokens_manifest(tokenizer, dtype, eos_id, bos_id, shards)
            if manifest["total_docs"] != n:
                raise RuntimeError(f"gristmill.ray.tokenize: shards hold {manifest['total_docs']} of {n} documents")
            write_json(out / "manifest.json", manifest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return manifest


def _count_clusters(clusters: Any) -> int:
    return int(sum(b.column("is_kept").to_numpy(zero_copy_only=False).sum()
                   for b in clusters.select_columns(["is_kept"]).iter_batches(batch_format="pyarrow")))


def _empty_clusters(id_column: Optional[str], verify: bool) -> pa.Table:
    cols: List[Tuple[str, pa.DataType]] = [("cluster", pa.uint32()), ("doc", pa.uint32())]
    if id_column is not None:
        cols += [("id", pa.string()), ("kept_id", pa.string())]
    cols += [("kept_doc", pa.uint32()), ("is_kept", pa.bool_()), ("est_jaccard", pa.float64())]
    if verify:
        cols.append(("exact_jaccard", pa.float64()))
    return pa.schema(cols).empty_table()


# ---------------------------------------------------------------------------------------------
# a gristmill Corpus as a Dataset: one read task per source, the local path's ids and order


def _read_source(corpus: Any, i: int) -> pa.Table:
    import copy

    c = copy.copy(corpus)
    c.sources = [corpus.sources[i]]
    c._counts = None
    c._warned_empty = True
    ids: List[pa.Array] = []
    texts: List[pa.Array] = []
    for b in c.batches():
        ids.append(b.ids)
        texts.append(b.texts.cast(pa.large_string()))
    return pa.table({"id": pa.chunked_array(ids, pa.string()), "text": pa.chunked_array(texts, pa.large_string())})


def corpus_dataset(corpus: Any) -> Any:
    """A ``ray.data.Dataset`` (columns ``id``, ``text``) of a :class:`gristmill.Corpus`: one
    read task per input file or folder on the workers, with the local path's document ids
    and order (file order, then row order)."""
    ray = _ray()
    read = ray.remote(_read_source)
    refs = [read.remote(corpus, i) for i in range(len(corpus.sources))]
    return ray.data.from_arrow_refs(refs)
