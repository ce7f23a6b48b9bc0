"""gristmill.ray against the local path (one shared local Ray runtime, 2 CPUs)."""

import random

import numpy as np
import pyarrow as pa
import pytest

import ray  # a test dependency (pyproject [test]): never skipped

import gristmill.ray as gr  # noqa: E402
from gristmill.io import CorpusError  # noqa: E402
from gristmill.minhash import dedup_minhash  # noqa: E402


@pytest.fixture(scope="module")
def session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield
    ray.shutdown()


def corpus(seed=0, n=160):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(300)]
    base = [" ".join(rng.choice(words) for _ in range(40)) for _ in range(25)]
    texts = []
    for _ in range(n):
        b = base[rng.randrange(len(base))].split()
        for _ in range(rng.randrange(5)):
            b[rng.randrange(len(b))] = rng.choice(words)
        texts.append(" ".join(b))
    return texts + ["", " ... ", "short one"]


def dataset(texts, blocks):
    t = pa.table({"text": texts, "n": list(range(len(texts))), "name": [f"d{i}" for i in range(len(texts))]})
    return ray.data.from_arrow(t).repartition(blocks)


def check_same(r, loc, texts, id_column=None):
    kept = r.kept.to_pandas()
    assert kept["n"].tolist() == np.flatnonzero(loc.keep).tolist()
    assert kept["text"].tolist() == [texts[i] for i in np.flatnonzero(loc.keep)]
    assert set(kept.columns) == {"text", "n", "name"}
    cl = pa.Table.from_pandas(r.clusters.to_pandas(), preserve_index=False)
    want = loc.clusters
    if id_column:
        ids = pa.array([f"d{i}" for i in range(len(texts))])
        doc = want.column("doc").to_numpy().astype(np.int64)
        kd = want.column("kept_doc").to_numpy().astype(np.int64)
        want = want.add_column(2, "id", ids.take(pa.array(doc))).add_column(3, "kept_id", ids.take(pa.array(kd)))
    assert cl.schema.names == want.schema.names
    assert cl.cast(want.schema).equals(want)
    assert r.summary["removed"] == loc.summary["removed"]
    assert r.summary["clusters"] == loc.summary["clusters"]


@pytest.mark.parametrize("keep,verify,blocks", [
    ("first", False, 1), ("longest", True, 2), ("first", True, 7), ("longest", False, 7),
])
def test_same_as_local(session, keep, verify, blocks):
    texts = corpus(blocks)
    loc = dedup_minhash(texts, 0.8, verify=verify, keep=keep)
    assert loc.summary["removed"] > 10  # the corpus has real near-duplicates
    r = gr.dedup_minhash(dataset(texts, blocks), keep=keep, verify=verify,
                         id_column="name" if blocks == 7 else None)
    assert r.summary["blocks"] == blocks
    check_same(r, loc, texts, id_column="name" if blocks == 7 else None)


def test_worker_killed_once_gives_same_result(session, tmp_path):
    texts = corpus(3)
    loc = dedup_minhash(texts, 0.8, verify=True)
    marker = tmp_path / "killed"
    r = gr.dedup_minhash(dataset(texts, 3), _fault=("large_star", str(marker)))
    assert marker.exists()  # a worker really died in the components step
    check_same(r, loc, texts)


def test_bad_input_same_error_on_driver(session):
    ds = ray.data.from_items([{"body": "a b c"}])
    with pytest.raises(CorpusError, match="no column 'text'"):
        gr.dedup_minhash(ds)
    ds = ray.data.from_items([{"text": 3}, {"text": 4}])
    with pytest.raises(CorpusError, match="has type int64, expected string"):
        gr.dedup_minhash(ds)
    ds = ray.data.from_arrow(pa.table({"text": pa.array(["a b", None], pa.string())}))
    with pytest.raises(CorpusError, match="row 1: 'text' is null"):
        gr.dedup_minhash(ds)
    ok = ray.data.from_items([{"text": "a b"}])
    for kw, local_kw in [({"threshold": 1.5}, {"threshold": 1.5}), ({"num_perm": 0}, {"num_perm": 0}),
                         ({"bands": 100, "rows": 100}, {"bands": 100, "rows": 100}), ({"unit": "byte"}, {"unit": "byte"})]:
        with pytest.raises((ValueError, TypeError)) as local_err:
            dedup_minhash(["a b"], **local_kw)
        with pytest.raises(type(local_err.value)) as ray_err:
            gr.dedup_minhash(ok, **kw)
        assert str(ray_err.value) == str(local_err.value)


def test_module_example(session):
    ds = ray.data.from_items([{"text": "a b c d e f"}, {"text": "a b c d e f"}, {"text": "x y z"}])
    r = gr.dedup_minhash(ds, ngram=3)
    assert (r.kept.count(), r.clusters.count()) == (2, 2)
    assert r.kept.take_all()[1]["text"] == "x y z"
