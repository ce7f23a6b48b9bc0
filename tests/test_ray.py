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


# ---------------------------------------------------------------------------------------------
# gristmill.ray.tokenize: the local format and token stream


def read_tokens(out):
    import json

    m = json.loads((out / "manifest.json").read_text())
    toks, lens = [], []
    for sh in m["shards"]:
        t = np.fromfile(out / sh["tokens"], dtype=m["dtype"])
        idx = np.load(out / sh["index"])
        assert idx[0] == 0 and idx[-1] == len(t) == sh["n_tokens"] and len(idx) == sh["n_docs"] + 1
        toks.append(t)
        lens.append(np.diff(idx))
    return m, np.concatenate(toks), np.concatenate(lens)


@pytest.mark.parametrize("blocks,shard_tokens", [(1, 1 << 28), (5, 300)])
def test_tokenize_same_stream_as_local(session, tmp_path, blocks, shard_tokens):
    import json

    from gristmill import Corpus
    from gristmill.tokenizer import get_encoding, tokenize_corpus

    texts = corpus(blocks, n=60) + ["héllo wörld <|endoftext|> 𝔘nicode"]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    tok = get_encoding("cl100k_base")
    tokenize_corpus(Corpus(src), tok, tmp_path / "local", eos="<|endoftext|>", bos=100257, shard_tokens=shard_tokens)
    m = gr.tokenize(dataset(texts, blocks), "cl100k_base", output=tmp_path / "ray", eos="<|endoftext|>", bos=100257,
                    shard_tokens=shard_tokens)
    ml, tl, ll = read_tokens(tmp_path / "local")
    mr, tr, lr = read_tokens(tmp_path / "ray")
    assert mr == m
    assert np.array_equal(tl, tr) and np.array_equal(ll, lr)
    assert {k: v for k, v in mr.items() if k != "shards"} == {k: v for k, v in ml.items() if k != "shards"}
    assert mr["total_docs"] == len(texts)
    assert [s["first_doc"] for s in mr["shards"]] == sorted(s["first_doc"] for s in mr["shards"])
    assert len(mr["shards"]) >= blocks  # a block never shares a shard
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(
        ["manifest.json"] + [f for s in mr["shards"] for f in (s["tokens"], s["index"])])  # nothing left behind


def test_tokenize_worker_killed_and_bad_input(session, tmp_path):
    texts = corpus(2, n=40)
    marker = tmp_path / "killed"
    gr.tokenize(dataset(texts, 3), "o200k_base", output=tmp_path / "a")
    gr.tokenize(dataset(texts, 3), "o200k_base", output=tmp_path / "b", _fault=("tokenize", str(marker)))
    assert marker.exists()  # a worker really died while tokenizing; Ray retried the task
    a, b = read_tokens(tmp_path / "a"), read_tokens(tmp_path / "b")
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])

    with pytest.raises(CorpusError, match="no column 'text'"):
        gr.tokenize(ray.data.from_items([{"body": "x"}]), "o200k_base", output=tmp_path / "c")
    bad = ray.data.from_arrow(pa.table({"text": pa.array(["a b", None], pa.string())}))
    with pytest.raises(CorpusError, match="row 1: 'text' is null"):
        gr.tokenize(bad, "o200k_base", output=tmp_path / "d")
    assert not (tmp_path / "d" / "manifest.json").exists()
    assert [p.name for p in (tmp_path / "d").iterdir()] == []  # a failed run leaves nothing
    with pytest.raises(ValueError, match="eos"):
        gr.tokenize(ray.data.from_items([{"text": "x"}]), "o200k_base", output=tmp_path / "e", eos="<|nope|>")


# ---------------------------------------------------------------------------------------------
# the CLI's --engine ray: the local engine's outputs, byte for byte


def test_cli_engine_ray_same_outputs(session, tmp_path):
    import json

    import pyarrow.parquet as pq

    from gristmill.cli import main

    texts = corpus(4, n=120)
    src = tmp_path / "in"
    src.mkdir()
    for part in range(2):
        (src / f"p{part}.jsonl").write_text(
            "".join(json.dumps({"id": f"x{part}-{i}", "text": t, "meta": {"k": i}}) + "\n"
                    for i, t in enumerate(texts[part::2])))
    for engine in ("local", "ray"):
        assert main(["-q", "dedup", "minhash", str(src / "p0.jsonl"), str(src / "p1.jsonl"), "-o",
                     str(tmp_path / engine), "--engine", engine, "--keep", "longest"]) == 0
    for name in ("p0.jsonl", "p1.jsonl"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    a = pq.read_table(tmp_path / "local" / "minhash_clusters.parquet")
    b = pq.read_table(tmp_path / "ray" / "minhash_clusters.parquet")
    assert a.num_rows > 10 and b.schema.names == a.schema.names and b.cast(a.schema).equals(a)
    sa = json.loads((tmp_path / "local" / "minhash_summary.json").read_text())
    sb = json.loads((tmp_path / "ray" / "minhash_summary.json").read_text())
    assert (sb["engine"], sb["removed"], sb["clusters"]) == ("ray", sa["removed"], sa["clusters"])

    for engine in ("local", "ray"):
        assert main(["-q", "tokenize", str(src / "p0.jsonl"), str(src / "p1.jsonl"), "-o", str(tmp_path / f"tok-{engine}"),
                     "--engine", engine,
                     "--tokenizer", "cl100k_base", "--eos", "<|endoftext|>"]) == 0
    ml, tl, ll = read_tokens(tmp_path / "tok-local")
    mr, tr, lr = read_tokens(tmp_path / "tok-ray")
    assert np.array_equal(tl, tr) and np.array_equal(ll, lr) and mr["total_docs"] == ml["total_docs"] == len(texts)

    assert main(["-q", "dedup", "minhash", str(src / "p0.jsonl"), "-o", str(tmp_path / "x"), "--engine", "ray",
                 "--cluster", "star"]) == 1
    assert not (tmp_path / "x").exists()
