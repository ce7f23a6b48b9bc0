"""The ``gristmill`` command.

Every subcommand reads its inputs through :class:`gristmill.io.Corpus` (JSONL, JSONL.gz/.zst,
Parquet, folders of text files), writes outputs atomically in the input's format, shows progress
on stderr when it is a terminal, and exits 0 on success, 1 on an error (one readable line, the
traceback only with ``--debug``) and 2 on a usage error.

To add a subcommand: write ``_add_<name>(sub)`` that creates its parser with
:func:`_command`, call :func:`add_input_args` for corpus inputs, set ``func``, and call it
from :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
import textwrap
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from gristmill import _progress, __version__
from gristmill.io import (Corpus, CorpusError, OutputFolder, OutputFolderInUseError, OutputOverInputError,
                          check_not_over_inputs, corpus_stats)

__all__ = ["main", "build_parser", "add_input_args", "add_input_options", "corpus_from_args"]

PROG = "gristmill"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


def _command(sub: Any, name: str, *, help: str, description: str, examples: str) -> argparse.ArgumentParser:
    """Create a subcommand whose --help ends with runnable examples."""
    return sub.add_parser(
        name,
        help=help,
        description=textwrap.dedent(description).strip(),
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=_Formatter,
    )


def add_input_args(p: argparse.ArgumentParser, *, nargs: str = "+") -> None:
    """The corpus arguments every command shares: INPUT... plus :func:`add_input_options`."""
    p.add_argument("inputs", nargs=nargs, metavar="INPUT",
                   help="JSONL (.jsonl, .jsonl.gz, .jsonl.zst), Parquet files, or folders of text files")
    add_input_options(p)


def add_input_options(p: argparse.ArgumentParser) -> None:
    """How to read inputs (fields, folders, encodings), for commands whose inputs are options."""
    g = p.add_argument_group("input options")
    g.add_argument("--text-field", default="text", metavar="NAME",
                   help="JSON field / Parquet column with the text (default: text)")
    g.add_argument("--id-field", default=None, metavar="NAME",
                   help="field with document ids (default: path:line, path#row, or file path)")
    g.add_argument("--glob", default=None, metavar="PATTERN",
                   help="in folders, read only files matching PATTERN, e.g. '*.py' (default: all files)")
    g.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="in folders, skip files and sub-folders named like PATTERN (repeatable)")
    g.add_argument("--on-invalid-utf8", choices=("error", "replace", "skip"), default="error",
                   help="what to do with a document that is not valid UTF-8 (default: error)")


def corpus_from_args(args: argparse.Namespace, inputs: Optional[Sequence[str]] = None) -> Corpus:
    return Corpus(
        list(inputs if inputs is not None else args.inputs),
        text_field=args.text_field,
        id_field=args.id_field,
        on_invalid_utf8=args.on_invalid_utf8,
        glob=args.glob,
        exclude=args.exclude,
    )


OVERWRITE_HELP = ("write into an output folder that holds other files: outputs of a run on the same inputs "
                  "are replaced, files of other inputs are kept (default: refuse unless the folder is empty "
                  "or holds an earlier run of the same command on the same inputs)")


def _output_folder(args: argparse.Namespace, command: str, *corpora: Corpus) -> OutputFolder:
    """Claim the output folder (see :class:`gristmill.io.OutputFolder`) before any work."""
    folder = OutputFolder(args.output, command=command, inputs=list(corpora), overwrite=args.overwrite)
    folder.claim()
    return folder


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _stats_with_progress(corpus: Corpus) -> Dict[str, int]:
    from gristmill import _native
    from gristmill._arrow import string_buffers

    total: Dict[str, int] = {}
    with _progress.bar("reading", unit="doc", unit_scale=True) as bar:
        for b in corpus.batches():
            d = _native.corpus_stats_batch(string_buffers(b.texts))
            for k, v in d.items():
                total[k] = max(total.get(k, 0), v) if k == "max_doc_bytes" else total.get(k, 0) + v
            bar.update(len(b))
    if not total:
        total = corpus_stats([])
    return total


def _print_stats(stats: Dict[str, int]) -> None:
    print(f"  documents       {stats['docs']:>14,}  ({stats['empty_docs']:,} empty)")
    print(f"  text            {stats['bytes']:>14,} bytes ({_human_bytes(stats['bytes'])}), "
          f"{stats['chars']:,} characters")
    print(f"  lines / words   {stats['lines']:>14,} / {stats['words']:,}")
    print(f"  largest doc     {stats['max_doc_bytes']:>14,} bytes")


# ---------------------------------------------------------------------------------------------
# stats


def _run_stats(args: argparse.Namespace) -> int:
    corpus = corpus_from_args(args)
    stats = _stats_with_progress(corpus)
    if corpus.skipped:
        stats["skipped_invalid_utf8"] = len(corpus.skipped)
    if args.json:
        print(json.dumps(stats))
    else:
        print(f"{len(corpus.sources)} input(s):")
        _print_stats(stats)
        if corpus.skipped:
            print(f"  skipped         {len(corpus.skipped):>14,} documents with invalid UTF-8")
    return 0


def _add_stats(sub: Any) -> None:
    p = _command(
        sub, "stats",
        help="count documents, bytes, lines and words of a corpus",
        description="""
        Read a corpus once and print its size: documents, empty documents, bytes, characters,
        lines, words and the largest document. A quick check that gristmill reads your files
        the way you expect (fields, encodings) before a long run.
        """,
        examples="""
        gristmill stats data/*.jsonl.zst
        gristmill stats corpus.parquet --text-field content --json
        gristmill stats src/ --glob '*.py'
        """,
    )
    add_input_args(p)
    p.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    p.set_defaults(func=_run_stats)


# ---------------------------------------------------------------------------------------------
# demo


def default_demo_corpus() -> Path:
    """The running interpreter's standard library: real Python code present on every machine."""
    return Path(sysconfig.get_paths()["stdlib"])


def _run_demo(args: argparse.Namespace) -> int:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from gristmill.io import atomic_write, check_output_path, write_json
    from gristmill.minhash import dedup_minhash
    from gristmill.suffix import dedup_exact

    src = Path(args.input) if args.input else default_demo_corpus()
    out = Path(args.output)
    # site-packages holds third-party code, not the standard library; a few stdlib test files
    # are deliberately not UTF-8 — they are skipped and counted.
    corpus = Corpus([src], glob=args.glob, exclude=["site-packages", "__pycache__"], on_invalid_utf8="skip")
    check_not_over_inputs(corpus, out)
    check_output_path(corpus, out / "corpus")
    folder = _output_folder(args, "demo", corpus)
    timer = _progress.Timer()
    print(f"gristmill {__version__} demo")
    print(f"corpus: {src} (files matching {args.glob!r})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped files are reported below, once
        with timer("read"):
            stats = _stats_with_progress(corpus)
        _print_stats(stats)
        if corpus.skipped:
            print(f"  skipped {len(corpus.skipped)} file(s) that are not UTF-8, e.g. {corpus.skipped[0]}")
        if stats["docs"] == 0:
            raise CorpusError(f"{src}: no files match {args.glob!r}")

        # 1. near-duplicate files: MinHash + LSH over word 5-grams, verified by exact Jaccard
        with _progress.bar("near-duplicates (minhash)", unit="doc", unit_scale=True) as bar:
            done = [0]

            def progress(stage: str, n: int) -> None:
                if stage == "signatures":
                    bar.update(n - done[0])
                    done[0] = n

            with timer("near_duplicates"):
                near = dedup_minhash(corpus, args.threshold, verify=True, keep="longest", progress=progress)
        s = near.summary
        print(f"\n1. near-duplicate files (word 5-grams, Jaccard >= {args.threshold}, verified): "
              f"{s['clusters']:,} clusters, {s['removed']:,} files removed")
        cl = near.clusters
        if cl.num_rows and "id" in cl.column_names:
            drop = cl.filter(pc.invert(cl["is_kept"]))
            for row in drop.slice(0, 3).to_pylist():
                print(f"   {_short(row['id'], src)}  ~  {_short(row['kept_id'], src)}  "
                      f"(Jaccard {row['exact_jaccard']:.2f})")

        # 2. exact repeated passages in what is left: suffix array, keep the first copy
        texts = pa.concat_arrays([b.texts for b in corpus.batches()]) if stats["docs"] else pa.array([], pa.large_string())
        kept_idx = np.flatnonzero(near.keep)
        with _progress.bar("repeated passages (suffix array)", total=None) as bar, timer("exact_substrings"):
            ex = dedup_exact(texts.take(pa.array(kept_idx)), args.min_length, keep="first")
            bar.update(1)
    e = ex.summary
    print(f"2. repeated passages of >= {args.min_length} bytes (suffix array, first copy kept): "
          f"{e['spans']:,} spans, {e['bytes_removed']:,} bytes from {e['documents_touched']:,} files")
    if ex.spans.num_rows:
        longest = ex.spans.sort_by([("end", "descending")]).to_pylist()
        row = max(longest, key=lambda r: r["end"] - r["start"])
        doc_text = texts[int(kept_idx[row["doc"]])].as_py().encode("utf-8")
        snippet = doc_text[row["start"]:row["end"]].decode("utf-8", "replace")
        first_line = next((ln.strip() for ln in snippet.splitlines() if ln.strip()), "")
        print(f"   longest: {row['end'] - row['start']:,} bytes in "
              f"{_short(corpus_id(texts, kept_idx, row['doc'], corpus), src)}, seen {row['occurrences']}x, "
              f"starting {first_line[:60]!r}")

    # 3. write the cleaned corpus (same layout as the input) and the reports
    out.mkdir(parents=True, exist_ok=True)
    trimmed = ex.texts
    touched = np.unique(ex.spans.column("doc").to_numpy()) if ex.spans.num_rows else np.zeros(0, np.int64)
    replace = {int(kept_idx[i]): trimmed[int(i)].as_py() for i in touched}
    with timer("write"), _progress.bar("writing", unit="file") as bar:
        files = corpus.write(out / "corpus", keep=near.keep, replace=replace, folder=folder)
        bar.update(len(files))
    with atomic_write(out / "near_duplicates.parquet", binary_path=True) as tmp:
        pq.write_table(near.clusters, str(tmp))
    spans = ex.spans.append_column("file_index", pa.array(kept_idx[ex.spans.column("doc").to_numpy()]
                                                           if ex.spans.num_rows else [], pa.int64()))
    with atomic_write(out / "repeated_spans.parquet", binary_path=True) as tmp:
        pq.write_table(spans, str(tmp))
    summary = {
        "input": str(src), "stats": stats, "skipped_not_utf8": len(corpus.skipped),
        "near_duplicates": near.summary, "exact_substrings": ex.summary,
        "files_written": len(files), "seconds": timer.as_dict(),
    }
    write_json(out / "summary.json", summary)
    folder.commit([*files, out / "near_duplicates.parquet", out / "repeated_spans.parquet", out / "summary.json"])
    bytes_out = stats["bytes"] - int(np.sum(pc.binary_length(texts).to_numpy(zero_copy_only=False)[~near.keep])) - e["bytes_removed"]
    print(f"\nkept {len(files):,} of {stats['docs']:,} files, {bytes_out:,} of {stats['bytes']:,} bytes "
          f"({100 * bytes_out / max(stats['bytes'], 1):.1f}%) in {sum(timer.stages.values()):.1f} s")
    print(f"wrote {out / 'corpus'}/ (cleaned files), near_duplicates.parquet, repeated_spans.parquet, "
          f"summary.json in {out}/")
    return 0


def corpus_id(texts: Any, kept_idx: Any, doc: int, corpus: Corpus) -> str:
    """Id of the ``doc``-th kept document (ids are not kept in memory: walk the batches)."""
    g = int(kept_idx[doc])
    for b in corpus.batches():
        if b.start <= g < b.stop:
            return str(b.ids[g - b.start].as_py())
    return str(g)


def _short(doc_id: str, root: Path) -> str:
    prefix = str(root).rstrip("/") + "/"
    return doc_id[len(prefix):] if doc_id.startswith(prefix) else doc_id


def _add_demo(sub: Any) -> None:
    p = _command(
        sub, "demo",
        help="run gristmill on a built-in real corpus (this Python's standard library)",
        description="""
        Run the main jobs on a corpus that exists on every machine without downloads: the
        .py files of the running interpreter's standard library. Prints what it finds and
        where it wrote the results.
        """,
        examples="""
        gristmill demo
        gristmill demo -o /tmp/demo-out
        gristmill demo --input ~/src/myproject --glob '*.py'
        """,
    )
    p.add_argument("-o", "--output", default="gristmill-demo-output", metavar="DIR",
                   help="where to write results (default: ./gristmill-demo-output)")
    p.add_argument("--input", default=None, metavar="DIR",
                   help="a folder to use instead of the standard library")
    p.add_argument("--glob", default="*.py", metavar="PATTERN", help="files to read (default: *.py)")
    p.add_argument("--threshold", type=_open_unit, default=0.8, metavar="J",
                   help="Jaccard similarity that makes two files near-duplicates (default: 0.8)")
    p.add_argument("--min-length", type=_int_at_least(1), default=300, metavar="N",
                   help="shortest repeated passage to remove, in bytes (default: 300)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.set_defaults(func=_run_demo)


# ---------------------------------------------------------------------------------------------
# dedup


def _int_at_least(lo: int, hi: Optional[int] = None) -> Callable[[str], int]:
    """argparse type: an integer in [lo, hi] (a bad value is a usage error, exit code 2)."""
    def parse(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, not {v!r}") from None
        if n < lo or (hi is not None and n > hi):
            raise argparse.ArgumentTypeError(
                f"must be at least {lo}, not {v}" if hi is None else f"must be between {lo} and {hi}, not {v}")
        return n
    return parse


def _open_unit(v: str) -> float:
    """argparse type: a number strictly between 0 and 1 (a Jaccard or overlap threshold)."""
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, not {v!r}") from None
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, not {v}")
    return x


def _keep_arg(v: str) -> str:
    if v in ("first", "longest") or (v.startswith("column:") and len(v) > 7):
        return v
    raise argparse.ArgumentTypeError(f"must be first, longest or column:NAME, not {v!r}")


def _run_dedup_minhash(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from gristmill.io import atomic_write, check_output_path, write_json
    from gristmill.minhash import DEDUP_WEIGHTS, MinHasher, MinHashIndex, dedup_minhash

    corpus = corpus_from_args(args)
    out = Path(args.output)
    check_output_path(corpus, out)
    if args.index:
        check_not_over_inputs(corpus, args.index, option="--index")
    folder = _output_folder(args, "dedup minhash", corpus)
    timer = _progress.Timer()
    index = res = None
    if args.engine == "ray":
        keep, clusters, found = _minhash_on_ray(args, corpus, timer)
    else:
        tokenizer = None
        if args.unit == "token":
            tokenizer = _load_tokenizer(args.tokenizer or "o200k_base", args.pat_str)
        elif args.tokenizer is not None:
            raise ValueError("--tokenizer applies only with --shingle token")
        hasher = MinHasher(num_perm=args.num_perm, seed=args.seed, ngram=args.ngram, unit=args.unit,
                           fold_digits=args.fold_digits, nfkc=args.nfkc, tokenizer=tokenizer)
        if args.index:
            params = (args.bands, args.rows) if args.bands and args.rows else None
            index = MinHashIndex(args.index, threshold=args.threshold, num_perm=args.num_perm,
                                 weights=DEDUP_WEIGHTS, params=params, hasher=hasher)
        # stage lines and bars on stderr come from dedup_minhash itself; a --keep column:NAME
        # field is read in the same pass as the texts
        res = dedup_minhash(
            corpus, args.threshold, hasher=hasher, bands=args.bands, rows=args.rows, verify=args.verify,
            cluster=args.cluster, keep=args.keep, index=index, commit_index=False,
        )
        keep, clusters, found = res.keep, res.clusters, res.summary
    _progress.info(f"clusters: {found['clusters']:,}, removing {found['removed']:,} "
                   f"of {found['docs_in']:,} documents")
    out.mkdir(parents=True, exist_ok=True)
    with timer("write"), _progress.stage("dedup minhash: write", f"{int(keep.sum()):,} documents to {out}"):
        with _progress.bar("writing", unit="file") as bar:
            files = corpus.write(out, keep=keep, folder=folder)
            bar.update(len(files))
        report = out / "minhash_clusters.parquet"
        with atomic_write(report, binary_path=True) as tmp:
            pq.write_table(clusters, tmp)
    summary = dict(found)
    summary["seconds"] = {**summary.get("seconds", {}), **timer.as_dict()}
    summary["inputs"] = [s.display for s in corpus.sources]
    summary["outputs"] = [str(f) for f in files]
    summary["clusters_report"] = str(report)
    if corpus.skipped:
        summary["skipped_invalid_utf8"] = len(corpus.skipped)
    if index is not None and res is not None:
        summary["index"] = {"path": str(args.index), "items": len(index) + res.index_pending}
    write_json(out / "minhash_summary.json", summary)
    folder.commit([*files, report, out / "minhash_summary.json"])
    if res is not None:
        # the index learns this shard only once every output is in place: a failed or killed
        # write leaves it as it was, and the retry gives the same output as a clean run
        res.commit_index()
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['docs_in']:,} documents in, {summary['removed']:,} removed "
              f"({summary['clusters']:,} clusters; bands x rows = {summary['bands']} x {summary['rows']}"
              f"{', verified' if args.verify else ''}, {args.cluster}{', on Ray' if args.engine == 'ray' else ''})")
        if index is not None:
            print(f"{summary['removed_by_index']:,} of them matched {args.index}, which now holds {len(index):,} documents")
            if summary["already_in_index"]:
                print(f"{summary['already_in_index']:,} kept documents were already in the index from an earlier "
                      "run of this input: matched against the index as it was before that run, not added again")
        print(f"wrote {len(files)} file(s), {report.name} and minhash_summary.json to {out}")
    return 0


class _RaySession:
    """``--engine ray``: connect to ``--ray-address`` (or start a local runtime with
    ``--threads`` CPUs) unless Ray is already initialised; shut down what was started."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = False

    def __enter__(self) -> Any:
        try:
            import ray

            import gristmill.ray as gr
        except ImportError:
            raise ValueError("--engine ray needs Ray Data: pip install 'gristmill[ray]'") from None
        if not ray.is_initialized():
            kw: Dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.args.ray_address:
                kw["address"] = self.args.ray_address
            elif self.args.threads:
                kw["num_cpus"] = self.args.threads
            ray.init(**kw)
            self.started = True
        ray.data.DataContext.get_current().enable_progress_bars = not self.args.quiet
        return gr

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            import ray

            ray.shutdown()


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this machine (default); ray: the same stages on Ray Data, same outputs "
                        "(pip install 'gristmill[ray]')")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --engine ray: the cluster to join (e.g. auto, ray://head:10001; "
                        "default: a local Ray runtime with --threads CPUs)")


def _minhash_on_ray(args: argparse.Namespace, corpus: Any, timer: Any) -> Tuple[Any, Any, Dict[str, Any]]:
    """``dedup minhash --engine ray``: the keep mask, the clusters table and the summary from
    :func:`gristmill.ray.dedup_minhash` on the corpus read by the workers; the caller writes
    the outputs exactly as for the local engine."""
    import pyarrow as pa

    for flag, bad in (("--index", args.index), ("--cluster star", args.cluster == "star"),
                      ("--keep column:NAME", args.keep.startswith("column:")),
                      ("--pat-str", args.pat_str)):
        if bad:
            raise ValueError(f"{flag} is not available with --engine ray (use the local engine)")
    if args.tokenizer is not None and args.unit != "token":
        raise ValueError("--tokenizer applies only with --shingle token")
    with _RaySession(args) as gr:
        with timer("ray"), _progress.stage("dedup minhash: ray", f"{len(corpus.sources)} input(s)"):
            res = gr.dedup_minhash(
                gr.corpus_dataset(corpus), id_column="id", threshold=args.threshold, ngram=args.ngram,
                num_perm=args.num_perm, seed=args.seed, bands=args.bands, rows=args.rows, unit=args.unit,
                tokenizer=(args.tokenizer or "o200k_base") if args.unit == "token" else None,
                fold_digits=args.fold_digits, nfkc=args.nfkc, keep=args.keep, verify=args.verify)
            keep = res.keep_mask()
            batches = list(res.clusters.iter_batches(batch_format="pyarrow", batch_size=1 << 20))
            clusters = pa.concat_tables(batches) if batches else gr._empty_clusters("id", args.verify)
    return keep, clusters, {**res.summary, "engine": "ray", "cluster": args.cluster}


def _run_dedup_units(args: argparse.Namespace) -> int:
    from gristmill.docdedup import dedup_docs, dedup_paragraphs
    from gristmill.io import check_output_path, write_json

    unit = args.method  # "docs" or "paragraphs"
    corpus = corpus_from_args(args)
    out = Path(args.output)
    check_output_path(corpus, out)
    folder = _output_folder(args, f"dedup {unit}", corpus)
    timer = _progress.Timer()
    with timer("hash"), _progress.stage(f"dedup {unit}: hash", f"exact 128-bit keys, normalize {args.normalize}"):
        if unit == "docs":
            key = None if args.key in ("text", args.text_field) else args.key
            res = dedup_docs(corpus, normalize=args.normalize, min_length=args.min_length, key=key,
                             num_threads=_threads_arg(args))
        else:
            res = dedup_paragraphs(corpus, normalize=args.normalize, min_length=args.min_length,
                                   keep_empty=args.keep_empty, num_threads=_threads_arg(args))
    s = res.summary
    out.mkdir(parents=True, exist_ok=True)
    with timer("write"), _progress.stage(f"dedup {unit}: write", f"{s['documents_out']:,} documents to {out}"):
        files = corpus.write(out, keep=res.keep, replace=res.replace, folder=folder)
    summary = dict(s)
    summary["seconds"] = timer.as_dict()
    summary["inputs"] = [src.display for src in corpus.sources]
    summary["outputs"] = [str(f) for f in files]
    if corpus.skipped:
        summary["skipped_invalid_utf8"] = len(corpus.skipped)
    report = out / f"dedup-{unit}.summary.json"
    write_json(report, summary)
    folder.commit([*files, report])
    if args.json:
        print(json.dumps(summary))
        return 0
    pct = 100.0 * summary["bytes_removed"] / max(summary["bytes_in"], 1)
    print(f"exact {unit} dedup (normalize {args.normalize}, min length {args.min_length} bytes):")
    print(f"  documents       {summary['documents_in']:>14,} in, {summary['documents_out']:,} out")
    if unit == "paragraphs":
        print(f"  paragraphs      {summary['paragraphs_in']:>14,} in, {summary['paragraphs_removed']:,} removed "
              f"({summary['documents_changed']:,} documents changed, {summary['documents_emptied']:,} emptied and dropped)")
    print(f"  bytes           {summary['bytes_in']:>14,} in, {summary['bytes_removed']:,} removed ({pct:.2f}%)")
    _print_timings(summary["seconds"])
    print(f"wrote {len(files)} file(s) under {out}, summary in {report}")
    return 0


def _add_dedup_units(dsub: Any) -> None:
    common_desc = """
        Units are keyed by the 128-bit xxh3 hash of their text after --normalize and visited
        in corpus order; a unit whose key was seen earlier is removed, so the first
        occurrence wins, at any --threads. Exact: nothing is removed unless its text equals
        an earlier one (a 128-bit collision needs ~2^64 units). --normalize decides only what
        counts as equal: none compares bytes, whitespace collapses each run of Unicode
        whitespace to one space and trims both ends, lower does that and lower-cases. The
        text written is always the original. Units shorter than --min-length bytes are never
        removed. Keys are held in memory (about 40 bytes per distinct unit).
    """
    for unit, helptext, desc, examples in (
        ("docs", "remove documents equal to an earlier one (exact hashes)",
         """
         Exact document deduplication: drop every document whose text (or --key field)
         equals that of an earlier document. Writes the remaining documents to OUT in the
         input's format, unchanged, and OUT/dedup-docs.summary.json (documents and bytes in
         and out, parameters, seconds).
         """ + common_desc,
         """
         gristmill dedup docs data/*.jsonl.zst -o dedup/
         gristmill dedup docs crawl.jsonl -o out/ --key url
         gristmill dedup docs corpus.parquet -o out/ --normalize whitespace --json
         """),
        ("paragraphs", "remove paragraphs (lines) equal to an earlier one (exact hashes)",
         """
         Exact paragraph deduplication: a document is cut at newlines; a paragraph is a
         maximal non-empty run of characters other than \\n together with the newlines
         after it. Newlines at the very start of a document belong to no paragraph and are
         kept. Paragraphs compare by their text without the newlines ("a\\n\\n" equals a
         final "a"). Every paragraph equal to one earlier in the corpus (or earlier in the
         same document) is removed together with its newlines; all other bytes stay as they
         were. Documents left empty are dropped unless --keep-empty. Writes the corpus in the
         input's format and OUT/dedup-paragraphs.summary.json (documents, paragraphs and
         bytes in and out).
         """ + common_desc,
         """
         gristmill dedup paragraphs data/*.jsonl.zst -o dedup/ --min-length 20
         gristmill dedup paragraphs docs/ --glob '*.txt' -o out/ --normalize whitespace
         gristmill dedup paragraphs corpus.parquet -o out/ --json
         """),
    ):
        p = _command(dsub, unit, help=helptext, description=desc, examples=examples)
        add_input_args(p)
        p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
        if unit == "docs":
            p.add_argument("--key", default="text", metavar="text|FIELD",
                           help="compare this JSON field / Parquet column instead of the text, e.g. url "
                                "(default: text, i.e. --text-field)")
        p.add_argument("--normalize", choices=("none", "whitespace", "lower"), default="none",
                       help="what counts as equal: bytes, whitespace-collapsed text, or that lower-cased (default: none)")
        p.add_argument("--min-length", type=_int_at_least(0), default=0, metavar="N",
                       help=f"{'documents' if unit == 'docs' else 'paragraphs'} shorter than N bytes are never "
                            "removed (default: 0)")
        if unit == "paragraphs":
            p.add_argument("--keep-empty", action="store_true",
                           help="write documents that become empty (default: drop them)")
        p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
        p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
        p.set_defaults(func=_run_dedup_units)


def _add_dedup(sub: Any) -> None:
    p = sub.add_parser(
        "dedup", help="remove duplicated documents (minhash, docs), paragraphs or repeated text spans (exact)",
        description="Remove near-duplicate documents (minhash), identical documents (docs) or paragraphs "
                    "(paragraphs), or repeated byte spans (exact) from a corpus. "
                    "Choose a method.",
        formatter_class=_Formatter,
    )
    methods = p.add_subparsers(dest="method", metavar="METHOD", title="methods")
    _add_dedup_exact(methods)
    _add_dedup_units(methods)
    methods.required = True
    m = _command(
        methods, "minhash",
        help="near-duplicate documents (MinHash + LSH)",
        description="""
        Find near-duplicate documents — shingle sets with Jaccard similarity at or above
        --threshold — with MinHash signatures and locality-sensitive hashing, keep one
        document per cluster and write the rest of the corpus to OUT in the input's format.
        Also writes OUT/minhash_clusters.parquet (cluster, doc, id, kept document, estimated
        and exact Jaccard) and OUT/minhash_summary.json (counts, parameters,
        seconds per stage). Shingles: lower-cased words with punctuation as separators,
        --ngram words each; or characters (--shingle char), or token ids of the same
        normalised text (--shingle token --tokenizer NAME|PATH).

        Every candidate pair from LSH is confirmed by its exact Jaccard (--no-verify skips
        this: faster, but every LSH candidate then counts as similar, so documents well below
        the threshold are removed too).

        --cluster decides how confirmed pairs form clusters. components (the default):
        documents join through chains of confirmed pairs (a ~ b ~ c puts a, b and c in one
        cluster), so a removed document can be much less similar to the kept one than
        --threshold. star: documents are visited in the order --keep prefers them; each one
        not yet in a cluster is kept and takes every candidate not yet in a cluster whose own
        Jaccard to it is at or above --threshold (exact with --verify, estimated with
        --no-verify). Every removed document is then within --threshold of the document kept
        for it; fewer documents are removed. Results do not depend on --threads.

        Progress goes to stderr (stage lines with totals; bars on a terminal); -q hides it,
        the result line goes to stdout. Too few permutations (--num-perm below 16) or
        --bands x --rows leaving permutations unused are warned about.
        """,
        examples="""
        gristmill dedup minhash data/*.jsonl.zst -o deduped/
        gristmill dedup minhash corpus.parquet -o out/ --threshold 0.7 --keep longest
        gristmill dedup minhash big/*.jsonl.zst -o out/ --no-verify
        gristmill dedup minhash man-de.jsonl -o out/ --cluster star
        gristmill dedup minhash shard.jsonl -o out/ --keep column:quality --num-perm 256
        gristmill dedup minhash shard-002.jsonl -o out-002/ --index seen.idx/
        gristmill dedup minhash code.jsonl -o out/ --shingle token --tokenizer o200k_base --ngram 8
        """,
    )
    add_input_args(m)
    m.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    m.add_argument("--threshold", type=_open_unit, default=0.8, help="Jaccard similarity threshold in (0, 1) (default: 0.8)")
    m.add_argument("--ngram", type=_int_at_least(1), default=5, help="shingle size in words (default: 5)")
    m.add_argument("--unit", "--shingle", dest="unit", choices=("word", "char", "token"), default="word",
                   help="shingle unit: word, char or token n-grams (default: word)")
    m.add_argument("--tokenizer", default=None, metavar="NAME|PATH",
                   help="tokenizer for --shingle token: a bundled encoding (o200k_base, cl100k_base, ...), "
                        "a Hugging Face tokenizer.json or a .tiktoken file with --pat-str (default: o200k_base)")
    m.add_argument("--pat-str", default=None, help="pre-tokenizer regex for a .tiktoken --tokenizer file")
    m.add_argument("--num-perm", type=_int_at_least(1, 65536), default=128, help="MinHash permutations (default: 128)")
    m.add_argument("--seed", type=int, default=1, help="permutation seed (default: 1)")
    m.add_argument("--bands", type=_int_at_least(1), default=None, help="LSH bands (default: chosen from the threshold)")
    m.add_argument("--rows", type=_int_at_least(1), default=None, help="LSH rows per band (default: chosen from the threshold)")
    m.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True,
                   help="join candidate pairs only if their exact shingle Jaccard is >= threshold "
                        "(default: on; --no-verify trusts the MinHash estimate, faster but it also "
                        "removes documents well below the threshold)")
    m.add_argument("--keep", type=_keep_arg, default="first", metavar="first|longest|column:NAME",
                   help="which document of a cluster to keep (default: first)")
    m.add_argument("--cluster", choices=("components", "star"), default="components",
                   help="components: chains of confirmed pairs join (a removed document may be far from "
                        "the kept one); star: every removed document is within --threshold of the kept "
                        "one (default: components)")
    m.add_argument("--fold-digits", action="store_true", help="treat all digits as 0 when shingling")
    m.add_argument("--nfkc", action="store_true", help="apply Unicode NFKC before shingling")
    m.add_argument("--index", default=None, metavar="DIR",
                   help="persistent index of earlier shards: also drop documents matching it, "
                        "then add the kept ones once every output is written (created if missing; "
                        "re-running a shard already added gives the same output and adds nothing)")
    _add_engine_args(m)
    m.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    m.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    m.set_defaults(func=_run_dedup_minhash)


# ---------------------------------------------------------------------------------------------
# exact-substring dedup, contamination, suffix index (gristmill.suffix)


def _threads_arg(args: argparse.Namespace) -> Optional[int]:
    return getattr(args, "threads", None)


def _write_table(table: Any, path: Path, fmt: str) -> None:
    from gristmill.io import atomic_write

    if fmt == "parquet":
        import pyarrow.parquet as pq

        with atomic_write(path, binary_path=True) as tmp:
            pq.write_table(table, str(tmp))
    else:
        with atomic_write(path) as f:
            for row in table.to_pylist():
                f.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")


def _parse_size(text: str) -> int:
    """'500M', '2G', '123456' -> bytes (powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise ValueError(f"--memory-limit: cannot read {text!r} as a size (e.g. 500M, 2G)") from None


def _print_timings(timings: Dict[str, float]) -> None:
    print("  time per stage  " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))


def _add_unit_args(p: Any, what: str) -> None:
    """--min-length / --unit / --tokenizer, shared by `dedup exact` and `contamination`."""
    p.add_argument("--min-length", type=_int_at_least(1), default=None, metavar="N",
                   help=f"{what}, in --unit (default: 100 bytes or 50 tokens)")
    p.add_argument("--unit", choices=("bytes", "tokens"), default="bytes",
                   help="length unit of --min-length (default: bytes); tokens are counted with --tokenizer "
                        "and spans are still reported as exact byte ranges")
    p.add_argument("--tokenizer", default="o200k_base", metavar="NAME",
                   help="with --unit tokens: tiktoken encoding name or .tiktoken file (default: o200k_base)")


def _unit_tokenizer(args: argparse.Namespace) -> Any:
    if args.unit != "tokens":
        return None
    from gristmill.tokenizer import Tokenizer

    return Tokenizer.from_tiktoken(args.tokenizer)


def _unit_text(summary: Dict[str, Any]) -> str:
    if summary.get("unit") == "tokens":
        return f"{summary['min_length']} tokens of {summary['tokenizer']}"
    return f"{summary['min_length']} bytes"


def _run_dedup_exact(args: argparse.Namespace) -> int:
    import numpy as np

    from gristmill.io import check_output_path, write_json
    from gristmill.suffix import dedup_exact

    corpus = corpus_from_args(args)
    out = Path(args.output)
    check_output_path(corpus, out)
    folder = _output_folder(args, "dedup exact", corpus)
    _progress.info(f"reading {len(corpus.sources)} input(s) and building the suffix array …")
    r = dedup_exact(corpus, args.min_length, args.keep, unit=args.unit, tokenizer=_unit_tokenizer(args),
                    num_threads=_threads_arg(args),
                    memory_limit=_parse_size(args.memory_limit) if args.memory_limit else None,
                    work_dir=args.work_dir)
    timer = _progress.Timer()
    with timer("write"):
        d = r.spans.column("doc").to_numpy()
        touched = np.unique(d)
        new_texts = r.texts.take(touched).to_pylist() if len(touched) else []
        import pyarrow.compute as pc

        lengths = pc.binary_length(r.texts).to_numpy(zero_copy_only=False).astype(np.int64)
        keep = None
        if not args.keep_empty:
            keep = lengths > 0
            keep[touched] = lengths[touched] > 0
            # documents that were empty in the input stay
            originally_empty = np.ones(len(r.texts), dtype=bool)
            originally_empty[touched] = False
            keep |= originally_empty
        replace = {int(i): t for i, t in zip(touched.tolist(), new_texts)}
        files = corpus.write(out, keep=keep, replace=replace, folder=folder)
        ext = "parquet" if args.report_format == "parquet" else "jsonl"
        report = out / f"dedup-exact.spans.{ext}"
        _write_table(r.spans, report, args.report_format)
    timings = {**{k: round(v, 4) for k, v in r.timings.items()}, **timer.as_dict()}
    summary = dict(r.summary)
    summary["documents_dropped"] = 0 if keep is None else int((~keep).sum())
    summary["timings"] = timings
    summary["outputs"] = [str(f) for f in files]
    summary["spans_report"] = str(report)
    write_json(out / "dedup-exact.summary.json", summary)
    folder.commit([*files, report, out / "dedup-exact.summary.json"])
    if args.json:
        print(json.dumps(summary))
        return 0
    pct = 100.0 * summary["bytes_removed"] / max(summary["bytes"], 1)
    print(f"exact-substring dedup (min length {_unit_text(summary)}, keep {args.keep}):")
    print(f"  documents       {summary['documents']:>14,}  ({summary['documents_touched']:,} touched, "
          f"{summary['documents_emptied']:,} emptied, {summary['documents_dropped']:,} dropped)")
    print(f"  bytes           {summary['bytes']:>14,}  ({summary['bytes_removed']:,} removed, {pct:.2f}%)")
    print(f"  spans           {summary['spans']:>14,}")
    _print_timings(timings)
    print(f"wrote {len(files)} file(s) under {out}, spans in {report}, summary in {out / 'dedup-exact.summary.json'}")
    return 0


def _add_dedup_exact(dsub: Any) -> None:
    e = _command(
        dsub, "exact",
        help="remove byte spans that occur more than once (suffix array)",
        description="""
        Exact-substring deduplication (Lee et al. 2021): every window of at least
        --min-length bytes that occurs more than once is found with a suffix array over the
        whole corpus. Repeats never cross document boundaries and removed spans never cut a
        UTF-8 character (they are shrunk to character boundaries).

        --unit tokens measures --min-length in tokens of --tokenizer instead: documents are
        encoded, the suffix array is built over the token ids, and every repeated run of
        tokens is removed as the exact bytes of those tokens.

        --keep first (the default) removes every byte inside a later copy of a window (one
        whose text occurs earlier in corpus order), so the output contains no window of
        --min-length bytes twice and the first of two identical documents stays; a periodic
        run keeps only its first period. --keep none removes every copy (the paper's
        behaviour).

        Writes the corpus with the spans removed in the input's format (documents left empty
        are dropped unless --keep-empty), dedup-exact.spans.parquet (doc, id, start, end,
        occurrences) and dedup-exact.summary.json (bytes removed, documents touched, time per
        stage). The whole corpus is sorted in memory (about 5.5 bytes of RAM per input byte,
        plus ~120 MB) unless --memory-limit is given; when that does not fit in the available
        memory, the memory-limited path is used by itself (a warning says so). Ctrl-C stops
        the run (exit 130) without writing anything.
        """,
        examples="""
        gristmill dedup exact data/*.jsonl.zst -o dedup/ --min-length 100
        gristmill dedup exact corpus.parquet -o out/ --keep none --report-format jsonl
        gristmill dedup exact src/ --glob '*.py' -o out/ --min-length 200 --json
        gristmill dedup exact big/*.jsonl.zst -o out/ --memory-limit 4G
        gristmill dedup exact big/*.jsonl.zst -o out/ --memory-limit 4G --work-dir /scratch/gm   # resumable
        gristmill dedup exact data.jsonl -o out/ --unit tokens --min-length 50 --tokenizer cl100k_base
        """,
    )
    add_input_args(e)
    e.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    _add_unit_args(e, "shortest repeat to remove")
    e.add_argument("--keep", choices=("none", "first"), default="first",
                   help="first: remove later copies, no window is left twice (default); none: remove every copy")
    e.add_argument("--memory-limit", default=None, metavar="SIZE",
                   help="bound the repeat finder's working memory, e.g. 2G: the corpus is spilled to a "
                        "temporary file, every window is hashed once into hash parts on disk (8 bytes per "
                        "input byte) and the parts are sorted one at a time (same result)")
    e.add_argument("--work-dir", default=None, metavar="DIR",
                   help="folder for the memory-limited path's files (spilled text, hash parts, finished parts) "
                        "instead of a temporary folder; they stay until the run succeeds, and a rerun with the "
                        "same inputs, settings and --memory-limit reuses them (verified by checksums); free "
                        "space is checked first")
    e.add_argument("--keep-empty", action="store_true",
                   help="write documents that become empty (default: drop them)")
    e.add_argument("--report-format", choices=("parquet", "jsonl"), default="parquet",
                   help="format of the spans report (default: parquet)")
    e.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    e.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    e.set_defaults(func=_run_dedup_exact)


def _run_contamination(args: argparse.Namespace) -> int:
    from gristmill.io import write_json
    from gristmill.suffix import contamination

    train = corpus_from_args(args, args.train)
    ev = corpus_from_args(args, args.eval)
    if args.output:
        check_not_over_inputs([train, ev], args.output)
        folder = _output_folder(args, "contamination", train, ev)
    _progress.info("reading both corpora and building one suffix array …")
    r = contamination(train, ev, args.min_length, unit=args.unit, tokenizer=_unit_tokenizer(args),
                      num_threads=_threads_arg(args))
    summary: Dict[str, Any] = dict(r.summary)
    summary["timings"] = {k: round(v, 4) for k, v in r.timings.items()}
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        ext = "parquet" if args.report_format == "parquet" else "jsonl"
        written = [out / f"contamination.spans.{ext}", out / f"contamination.documents.{ext}",
                   out / "contamination.summary.json"]
        _write_table(r.spans, written[0], args.report_format)
        _write_table(r.documents, written[1], args.report_format)
        write_json(written[2], summary)
        folder.commit(written)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"contamination of {summary['eval_documents']:,} eval documents by the training corpus "
          f"(windows of {_unit_text(summary)}):")
    print(f"  contaminated documents {summary['contaminated_documents']:>10,}")
    print(f"  contaminated bytes     {summary['contaminated_bytes']:>10,} of {summary['eval_bytes']:,}")
    docs = r.documents.sort_by([("fraction", "descending")]).slice(0, args.top).to_pylist()
    for row in docs:
        name = row.get("id", row["eval_doc"])
        print(f"    {name}: {row['contaminated_bytes']:,}/{row['bytes']:,} bytes ({100 * row['fraction']:.1f}%), "
              f"{row['spans']} span(s), up to {row['max_train_occurrences']} training copies")
    _print_timings(summary["timings"])
    if args.output:
        print(f"wrote reports under {args.output}")
    return 0


def _add_contamination(sub: Any) -> None:
    p = _command(
        sub, "contamination",
        help="find evaluation text that also occurs in the training corpus",
        description="""
        Which evaluation documents share spans of at least --min-length bytes (or tokens,
        with --unit tokens) with the training corpus, where, and how often. One suffix array is built over train + eval;
        windows never cross document boundaries. With -o, writes contamination.spans
        (eval_doc, id, start, end, train_occurrences), contamination.documents (per
        contaminated eval document) and contamination.summary.json.
        """,
        examples="""
        gristmill contamination --train train/*.jsonl.zst --eval test.jsonl --min-length 50
        gristmill contamination --train corpus.parquet --eval eval/ -o contamination/ --json
        gristmill contamination --train train.jsonl --eval test.jsonl --unit tokens --min-length 13
        """,
    )
    p.add_argument("--train", nargs="+", required=True, metavar="INPUT", help="training corpus inputs")
    p.add_argument("--eval", nargs="+", required=True, metavar="INPUT", help="evaluation corpus inputs")
    p.add_argument("-o", "--output", default=None, metavar="DIR", help="write reports to this folder")
    _add_unit_args(p, "shortest shared span")
    p.add_argument("--report-format", choices=("parquet", "jsonl"), default="parquet",
                   help="format of the reports (default: parquet)")
    p.add_argument("--top", type=_int_at_least(0), default=10, metavar="K", help="print the K most contaminated documents")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_input_options(p)
    p.set_defaults(func=_run_contamination)


def _run_index_build(args: argparse.Namespace) -> int:
    from gristmill.suffix import SuffixIndex

    corpus = corpus_from_args(args)
    check_not_over_inputs(corpus, args.output)
    timer = _progress.Timer()
    with timer("build"):
        idx = SuffixIndex.build(corpus, args.output, num_threads=_threads_arg(args))
    info = idx.info
    if args.json:
        print(json.dumps({**info, "timings": timer.as_dict()}))
    else:
        print(f"indexed {info['num_docs']:,} documents, {_human_bytes(info['text_bytes'])} of text, "
              f"into {args.output} ({_human_bytes(info['file_bytes'])}) in {timer.as_dict()['build']:.2f}s")
    return 0


def _open_index(args: argparse.Namespace) -> Any:
    from gristmill.suffix import SuffixIndex

    idx = SuffixIndex.open(args.index, verify=args.verify)
    if getattr(args, "corpus", None):
        idx.check_corpus(corpus_from_args(args, args.corpus))
    return idx


def _run_index_count(args: argparse.Namespace) -> int:
    idx = _open_index(args)
    counts = {p: idx.count(p) for p in args.patterns}
    if args.json:
        print(json.dumps(counts, ensure_ascii=False))
    else:
        for p, c in counts.items():
            print(f"{c}\t{p}")
    return 0


def _run_index_locate(args: argparse.Namespace) -> int:
    idx = _open_index(args)
    t = idx.locate(args.pattern, limit=args.limit)
    rows = t.to_pylist()
    if args.json:
        print(json.dumps({"pattern": args.pattern, "count": idx.count(args.pattern), "hits": rows}, ensure_ascii=False))
        return 0
    print(f"{idx.count(args.pattern):,} occurrence(s); showing {len(rows)}")
    for row in rows:
        text = idx.document(row["doc"]).encode("utf-8")
        a = max(0, row["offset"] - 30)
        b = row["offset"] + len(args.pattern.encode("utf-8")) + 30
        snippet = text[a:b].decode("utf-8", "replace").replace("\n", "\\n")
        where = row["id"] if row.get("id") is not None else f"doc {row['doc']}"
        print(f"{where}\toffset {row['offset']}\t…{snippet}…")
    return 0


def _run_index_verify(args: argparse.Namespace) -> int:
    args.verify = True
    idx = _open_index(args)
    print(f"ok: {idx!r}" + (" matches the corpus" if args.corpus else ""))
    return 0


def _add_index(sub: Any) -> None:
    p = sub.add_parser("index", help="build and query an on-disk suffix index",
                       description="Build and query a memory-mapped suffix index of a corpus.",
                       formatter_class=_Formatter)
    isub = p.add_subparsers(dest="index_command", metavar="ACTION", title="actions")
    isub.required = True
    b = _command(
        isub, "build",
        help="index a corpus into one memory-mapped file",
        description="""
        Build a suffix index of a corpus: one file with the text, document offsets, document
        ids and the suffix array, each section with its own checksum (format version 2;
        version 1 files are refused: rebuild them). It is written to a temporary file and
        renamed into place when complete, so an interrupted or failed build (e.g. disk full)
        never leaves a file that looks valid. Queries always check the header, the section
        sizes and the document offsets (cheap); --verify re-hashes the whole file first
        (about as long as reading it). A damaged index is reported as corrupted, by name.
        """,
        examples="""
        gristmill index build data/*.jsonl.zst -o corpus.gsi
        gristmill index build src/ --glob '*.py' -o code.gsi
        """,
    )
    add_input_args(b)
    b.add_argument("-o", "--output", required=True, metavar="INDEX", help="index file to write")
    b.add_argument("--json", action="store_true", help="print the index header as JSON")
    b.set_defaults(func=_run_index_build)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--verify", action="store_true",
                       help="re-hash the whole index file first (text and suffix array too; default: "
                            "header, section sizes and document offsets only)")
        q.add_argument("--corpus", nargs="+", default=None, metavar="INPUT",
                       help="fail unless the index was built from exactly these inputs")
        add_input_options(q)

    c = _command(
        isub, "count",
        help="count occurrences of strings",
        description="Print how often each string occurs inside the indexed documents (exact, byte-wise).",
        examples="""
        gristmill index count corpus.gsi "Copyright (C)" "GNU General Public License"
        gristmill index count corpus.gsi "def main" --json
        """,
    )
    c.add_argument("index", metavar="INDEX")
    c.add_argument("patterns", nargs="+", metavar="TEXT")
    c.add_argument("--json", action="store_true", help="print {text: count} as JSON")
    common(c)
    c.set_defaults(func=_run_index_count)
    loc = _command(
        isub, "locate",
        help="show where a string occurs",
        description="Print the document id (its number for an index built without ids), byte offset and "
                    "context of occurrences of a string.",
        examples="""
        gristmill index locate corpus.gsi "SPDX-License-Identifier" --limit 5
        """,
    )
    loc.add_argument("index", metavar="INDEX")
    loc.add_argument("pattern", metavar="TEXT")
    loc.add_argument("--limit", type=_int_at_least(0), default=10, metavar="N", help="show at most N occurrences (default: 10)")
    loc.add_argument("--json", action="store_true", help="print hits as JSON")
    common(loc)
    loc.set_defaults(func=_run_index_locate)
    v = _command(
        isub, "verify",
        help="check an index file (and that it matches a corpus)",
        description="Re-hash an index file against its header; with --corpus, also check it was built from those inputs.",
        examples="""
        gristmill index verify corpus.gsi
        gristmill index verify corpus.gsi --corpus data/*.jsonl.zst
        """,
    )
    v.add_argument("index", metavar="INDEX")
    v.add_argument("--corpus", nargs="+", default=None, metavar="INPUT",
                   help="fail unless the index was built from exactly these inputs")
    add_input_options(v)
    v.set_defaults(func=_run_index_verify)



# train-bpe


def _run_train_bpe(args: argparse.Namespace) -> int:
    import time

    from gristmill.train import train_bpe

    corpus = corpus_from_args(args)
    out = Path(args.output)
    check_not_over_inputs(corpus, out, writes=[] if out.suffix in (".json", ".tiktoken") else [out / "vocab.json", out / "merges.txt"])
    t0 = time.perf_counter()
    tok = train_bpe(corpus, args.vocab_size, pattern=args.pattern, special_tokens=args.special_token,
                    min_frequency=args.min_frequency, max_word_count=args.max_word_count)
    secs = time.perf_counter() - t0
    tok.save(out)
    print(f"trained {len(tok.merges()):,} merges, vocabulary {tok.n_vocab:,} in {secs:.1f} s; wrote {out}")
    return 0


def _add_train_bpe(sub: Any) -> None:
    p = _command(
        sub, "train-bpe",
        help="train a byte-level BPE tokenizer (same merges as HF tokenizers' BpeTrainer)",
        description="""
        Read a corpus once, count its pre-tokenized words, and learn byte-level BPE merges until
        the vocabulary (256 bytes + merges + special tokens) reaches --vocab-size. Ties between
        equally frequent pairs are broken exactly like Hugging Face tokenizers' BpeTrainer.
        The output format follows the file name: .json (HF tokenizer.json), .tiktoken (rank
        file), or a directory (vocab.json + merges.txt).
        """,
        examples="""
        gristmill train-bpe corpus.jsonl.zst --vocab-size 32768 -o tokenizer.json
        gristmill train-bpe src/ --glob '*.py' --vocab-size 8000 --pattern cl100k -o code.tiktoken
        gristmill train-bpe data/ --vocab-size 50000 --special-token '<|endoftext|>' -o out_dir/
        """,
    )
    add_input_args(p)
    p.add_argument("--vocab-size", type=_int_at_least(1), required=True, metavar="N", help="final vocabulary size")
    p.add_argument("-o", "--output", required=True, metavar="PATH",
                   help="tokenizer.json, NAME.tiktoken, or a directory for vocab.json + merges.txt")
    p.add_argument("--pattern", default="o200k", metavar="NAME|REGEX",
                   help="pre-tokenizer: o200k (default), cl100k, gpt2, r50k, or a regex")
    p.add_argument("--special-token", action="append", default=[], metavar="TEXT",
                   help="special token appended to the vocabulary (repeatable)")
    p.add_argument("--min-frequency", type=int, default=0, metavar="N",
                   help="stop when the best pair occurs fewer than N times (default: 0)")
    p.add_argument("--max-word-count", type=int, default=None, metavar="N",
                   help="keep only the N most frequent distinct words (default: all)")
    p.set_defaults(func=_run_train_bpe)


# ---------------------------------------------------------------------------------------------
# tokenize


def _load_tokenizer(name: str, pat_str: Optional[str]) -> Any:
    from gristmill.tokenizer import ENCODINGS, Tokenizer

    if name in ENCODINGS:
        return Tokenizer.from_tiktoken(name)
    if name.endswith(".json") or Path(name).is_dir():
        return Tokenizer.from_huggingface(name)
    if pat_str is None:
        raise ValueError(f"--tokenizer {name}: a rank file needs --pat-str (or use one of {', '.join(ENCODINGS)})")
    return Tokenizer.from_tiktoken(name, pat_str=pat_str)


def _run_tokenize(args: argparse.Namespace) -> int:
    from gristmill.tokenizer import tokenize_corpus

    corpus = corpus_from_args(args)
    check_not_over_inputs(corpus, args.output)
    folder = _output_folder(args, "tokenize", corpus)
    tok = _load_tokenizer(args.tokenizer, args.pat_str)
    buckets = _parse_buckets(args.buckets) if args.buckets else None
    if args.engine == "ray":
        if buckets:
            raise ValueError("--buckets is not available with --engine ray (use the local engine)")
        with _RaySession(args) as gr, _progress.stage("tokenize: ray", f"{len(corpus.sources)} input(s)"):
            m = gr.tokenize(gr.corpus_dataset(corpus), tok, output=args.output, eos=args.eos, bos=args.bos,
                            shard_tokens=args.shard_tokens)
    else:
        with _progress.bar("tokenizing", unit="doc", unit_scale=True) as bar:
            m = tokenize_corpus(corpus, tok, args.output, eos=args.eos, bos=args.bos, shard_tokens=args.shard_tokens,
                                num_threads=args.threads, progress=bar, buckets=buckets)
    out = Path(args.output)
    shards = m["shards"] if buckets is None else [sh for b in m["buckets"] for sh in b["shards"]]
    folder.commit([out / "manifest.json"] + [out / f for sh in shards for f in (sh["tokens"], sh["index"])])
    print(f"{m['total_docs']:,} documents -> {m['total_tokens']:,} {m['dtype']} tokens "
          f"in {len(shards)} shard(s) under {args.output}")
    if buckets is not None:
        for b in m["buckets"]:
            print(f"  2^{b['log2']:<2} ({b['seq_len']:,} targets): {b['n_chunks']:,} chunks, {b['n_tokens']:,} tokens")
        print(f"  dropped {m['dropped_targets']:,} targets (document tails shorter than 2^{buckets[0]})")
    return 0


def _parse_buckets(text: str) -> Tuple[int, int]:
    lo, sep, hi = text.partition("..")
    try:
        if not sep:
            raise ValueError
        return int(lo), int(hi)
    except ValueError:
        raise ValueError(f"--buckets: expected MIN_LOG2..MAX_LOG2 such as 8..13, got {text!r}") from None


def _add_tokenize(sub: Any) -> None:
    p = _command(
        sub, "tokenize",
        help="encode a corpus into packed token shards (tiktoken / Hugging Face BPE)",
        description="""
        Tokenize every document and write packed shards readable with numpy.memmap:
        OUT/tokens-NNNNN.bin (uint16 when the vocabulary fits, else uint32), OUT/tokens-NNNNN.idx.npy
        (int64 document offsets into the shard, n_docs + 1) and OUT/manifest.json. Token ids are
        identical to tiktoken's / Hugging Face's; special-token text inside documents is encoded as
        ordinary text. Files are written atomically; the manifest last.
        """,
        examples="""
        gristmill tokenize corpus.jsonl.zst --tokenizer o200k_base -o tokens/
        gristmill tokenize docs/ --glob '*.md' --tokenizer cl100k_base --eos '<|endoftext|>' -o tok/
        gristmill tokenize data.parquet --tokenizer my/tokenizer.json --bos 1 -o tok/
        gristmill tokenize corpus.jsonl --eos '<|endoftext|>' --buckets 8..13 -o buckets/
        """,
    )
    add_input_args(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.add_argument("--tokenizer", default="o200k_base", metavar="NAME|PATH",
                   help="r50k_base, p50k_base, cl100k_base, o200k_base (default), a tokenizer.json, "
                        "or a .tiktoken file with --pat-str")
    p.add_argument("--pat-str", default=None, help="pre-tokenizer regex for a .tiktoken rank file")
    p.add_argument("--eos", default=None, metavar="TOKEN", help="append this special token (name or id) to every document")
    p.add_argument("--bos", default=None, metavar="TOKEN", help="prepend this special token (name or id) to every document")
    p.add_argument("--shard-tokens", type=_int_at_least(1), default=1 << 28, metavar="N",
                   help="start a new shard after N tokens (default: 268435456)")
    p.add_argument("--buckets", nargs="?", const="8..13", default=None, metavar="MIN..MAX",
                   help="length buckets (Dataset Decomposition): cut each document's next-token targets into "
                        "chunks of 2^k targets (2^k + 1 tokens), 2^MAX while they last, then one per set bit of "
                        "the rest, largest first; tails under 2^MIN are dropped; shards per bucket "
                        "(tokens-bKK-NNNNN.bin). Default 8..13 when given without a value")
    _add_engine_args(p)
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.set_defaults(func=_run_tokenize)


# ---------------------------------------------------------------------------------------------
# mixture


def _categories_from_args(args: argparse.Namespace, parser_error: Callable[[str], Any]) -> Dict[str, Corpus]:
    specs: Dict[str, List[str]] = {}
    for spec in args.category:
        name, sep, paths = spec.partition("=")
        name = name.strip()
        if not sep or not name or not paths.strip():
            parser_error(f"--category {spec!r}: expected NAME=PATH[,PATH...]")
        if name in specs:
            parser_error(f"--category {name!r} is given twice")
        specs[name] = [p for p in paths.split(",") if p]
    if len(specs) < 2:
        parser_error("give at least two --category NAME=PATH options")
    return {name: corpus_from_args(args, paths) for name, paths in specs.items()}


def _check_json_output(output: Optional[str], corpora: Sequence[Corpus]) -> None:
    from gristmill.io import check_not_over_inputs

    if not output:
        return
    if Path(output).is_dir():
        raise ValueError(f"-o {output}: is a folder; give a file name such as result.json")
    check_not_over_inputs(list(corpora), output)


def _run_mixture_infer(args: argparse.Namespace) -> int:
    from gristmill.io import write_json
    from gristmill.mixture import infer

    cats = _categories_from_args(args, args.parser_error)
    _check_json_output(args.output, list(cats.values()))
    r = infer(args.tokenizer, cats, num_merges=args.num_merges, bytes_per_category=args.bytes_per_category,
              seed=args.seed, bootstrap=args.bootstrap, num_threads=args.threads, text_field=args.text_field)
    if args.output:
        write_json(args.output, r.to_dict())
    if args.json:
        print(r.to_json())
        return 0
    d = r.diagnostics
    print(f"training mixture of {d['tokenizer']} inferred from its first {d['num_merges']:,} merges "
          + (f"(optimal after {d['rounds']} LP rounds):" if d["converged"] else
             f"(NOT converged after {d['rounds']} LP rounds; the LP objective is within "
             f"{100 * d['optimality_gap']:.2g} % of its optimum):"))
    print(textwrap.indent(str(r), "  "))
    seen = d["num_merges"] - d["merges_unseen"]
    print(f"  {seen:,} of {d['num_merges']:,} merges occur in the samples; shares are of the tokenizer's "
          "training bytes, among these categories only")
    _print_timings({k: float(v) for k, v in d["seconds"].items()})
    if args.output:
        print(f"wrote {args.output}")
    return 0


def _run_mixture_experiment(args: argparse.Namespace) -> int:
    from gristmill.io import write_json
    from gristmill.mixture import experiment

    cats = _categories_from_args(args, args.parser_error)
    _check_json_output(args.output, list(cats.values()))

    def on_trial(i: int, t: Dict[str, Any]) -> None:
        _progress.info(f"trial {i + 1}/{args.trials}: log10 MSE {t['log10_mse']:.3f} ({t['seconds']:.1f} s)")

    r = experiment(cats, trials=args.trials, train_bytes=args.train_bytes, infer_bytes=args.infer_bytes,
                   vocab_size=args.vocab_size, num_merges=args.num_merges, pattern=args.pattern,
                   trainer=args.trainer, infer_on=args.infer_on, seed=args.seed, num_threads=args.threads,
                   text_field=args.text_field, on_trial=on_trial)
    if args.output:
        write_json(args.output, r.to_dict())
    if args.json:
        print(json.dumps(r.to_dict()))
        return 0
    print(r)
    if args.output:
        print(f"wrote {args.output}")
    return 0


def _add_mixture(sub: Any) -> None:
    p = sub.add_parser("mixture", help="infer the training-data mixture of a BPE tokenizer",
                       description="Infer what mix of languages, code or domains a BPE tokenizer was trained on "
                                   "(Hayase et al. 2024), from its ordered merge list and sample text per category.",
                       formatter_class=_Formatter)
    msub = p.add_subparsers(dest="mixture_command", metavar="ACTION", title="actions")
    msub.required = True

    def categories(q: argparse.ArgumentParser) -> None:
        q.add_argument("--category", action="append", required=True, metavar="NAME=PATH[,PATH...]",
                       help="a category and its sample text: corpus files, folders or globs (repeat, at least 2)")
        q.add_argument("--seed", type=int, default=0, help="seed of the document sampling (default: 0)")
        q.add_argument("-o", "--output", default=None, metavar="FILE.json", help="also write the full result as JSON")
        q.add_argument("--json", action="store_true", help="print the result as one JSON object")
        add_input_options(q)

    i = _command(
        msub, "infer",
        help="estimate the shares of each category in a tokenizer's training bytes",
        description="""
        A BPE tokenizer's t-th merge was the most frequent pair of its training data after the
        merges before it. gristmill replays the merge list on sample text of every category
        and solves a linear program (HiGHS) for the mixture that best explains every merge.
        The shares printed are of the tokenizer's training *bytes*, among the categories given:
        text of a kind no category covers is attributed to the nearest ones, so give a category
        for everything the tokenizer may have seen. More sample text per category (and more
        merges) gives sharper answers; --bootstrap K adds a 90% interval per category.

        TOKENIZER is a bundled encoding (o200k_base, cl100k_base, p50k_base, r50k_base), a
        tokenizer.json, a folder with vocab.json + merges.txt, or NAME.tiktoken for a known NAME.
        """,
        examples="""
        gristmill mixture infer o200k_base --category en=en/ --category de=de/ --category code=src/ --glob '*.py'
        gristmill mixture infer tokenizer.json --category en=en.jsonl --category fr=fr.jsonl \\
            --num-merges 30000 --bytes-per-category 100000000 --bootstrap 20 -o mix.json
        """,
    )
    i.add_argument("tokenizer", metavar="TOKENIZER")
    categories(i)
    i.add_argument("--num-merges", type=int, default=None, metavar="T",
                   help="use the first T merges (default: all)")
    i.add_argument("--bytes-per-category", type=int, default=None, metavar="N",
                   help="sample at most N bytes of each category, documents in a seeded random order (default: all)")
    i.add_argument("--bootstrap", type=int, default=0, metavar="K",
                   help="re-run on K resamples of each category's documents for a 90%% interval (default: 0)")
    i.set_defaults(func=_run_mixture_infer, parser_error=i.error)

    e = _command(
        msub, "experiment",
        help="measure the inference's accuracy on local data (the paper's controlled protocol)",
        description="""
        For each trial: draw mixture weights uniformly on the simplex, build a training mixture
        of --train-bytes from the categories, train a BPE tokenizer on it, infer the mixture from
        --infer-bytes of other (held-out) text of each category, and score the byte shares by
        log10 mean squared error. Prints mean +- std over trials next to two baselines run in
        the same harness: a uniform guess and a token-frequency guess.
        """,
        examples="""
        gristmill mixture experiment --category en=man-en.jsonl --category de=man-de.jsonl \\
            --category fr=man-fr.jsonl --category ja=man-ja.jsonl --category ru=man-ru.jsonl --trials 10
        gristmill mixture experiment --category c=linux/ --category py=stdlib/ --trainer hf --infer-on train
        """,
    )
    categories(e)
    e.add_argument("--trials", type=int, default=10, metavar="N", help="number of random mixtures (default: 10)")
    e.add_argument("--train-bytes", type=int, default=4_000_000, metavar="N",
                   help="size of each trial's tokenizer-training mixture (default: 4000000)")
    e.add_argument("--infer-bytes", type=int, default=2_000_000, metavar="N",
                   help="held-out bytes per category used for inference (default: 2000000)")
    e.add_argument("--vocab-size", type=int, default=8000, metavar="N", help="trained vocabulary size (default: 8000)")
    e.add_argument("--num-merges", type=int, default=3000, metavar="T", help="merges used for inference (default: 3000)")
    e.add_argument("--pattern", default="o200k", metavar="NAME|REGEX",
                   help="pre-tokenizer of the trained tokenizers (default: o200k)")
    e.add_argument("--trainer", choices=("gristmill", "hf"), default="gristmill",
                   help="BPE trainer: gristmill's or Hugging Face tokenizers' (default: gristmill)")
    e.add_argument("--infer-on", choices=("heldout", "train"), default="heldout",
                   help="infer from held-out text (default) or from the training text itself (a sanity check)")
    e.set_defaults(func=_run_mixture_experiment, parser_error=e.error)


# ---------------------------------------------------------------------------------------------
# main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=_Formatter,
        description=textwrap.dedent("""
        gristmill turns raw text corpora into clean pretraining data.

        Inputs are JSONL (.jsonl, .jsonl.gz, .jsonl.zst), Parquet, or folders of text files;
        outputs are written in the same format, atomically, never over the inputs.
        """).strip(),
        epilog=textwrap.dedent("""
        examples:
          gristmill demo                              # try it on this Python's standard library
          gristmill stats corpus.jsonl.zst            # how big is it, is it readable?

        Run 'gristmill COMMAND --help' for the options and examples of each command.
        """).strip(),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    _add_demo(sub)
    _add_stats(sub)
    _add_dedup(sub)
    _add_contamination(sub)
    _add_index(sub)
    _add_train_bpe(sub)
    _add_tokenize(sub)
    _add_mixture(sub)
    # the global options are accepted after the command too (`gristmill stats x -q`)
    stack = [parser]
    while stack:
        for action in stack.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                for p in action.choices.values():
                    _add_global_options(p, None)
                    stack.append(p)
    return parser


def _add_global_options(p: argparse.ArgumentParser, top: Optional[argparse.ArgumentParser]) -> None:
    """-q/--debug/--threads: on the top parser with their defaults; on every subcommand
    without defaults (argparse.SUPPRESS), so a value given before the command is kept."""
    g = p.add_argument_group("global options") if top is None else p
    d: Dict[str, Any] = {} if top is not None else {"default": argparse.SUPPRESS}
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or status lines", **d)
    g.add_argument("--debug", action="store_true", help="show the full traceback on errors", **d)
    g.add_argument("--threads", type=int, metavar="N", help="worker threads for the Rust core (default: all cores)",
                   **({"default": None} if top is not None else d))


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


#: After Ctrl-C, a command that has not unwound within this many seconds (the one native call
#: that cannot poll: libsais' suffix-array construction, ~10 s per 100 MB) removes its
#: temporaries and exits 130 at once.
INTERRUPT_GRACE_S = 1.0


def _interrupt_handler(args: argparse.Namespace, armed: List[Any]) -> Any:
    """SIGINT handler for the command: the first Ctrl-C raises KeyboardInterrupt (every stage
    polls for it and unwinds) and arms a watchdog; if the command is still running when it
    fires, the watchdog discards the staged outputs, removes this process's temporary files
    next to the outputs and exits 130."""
    import signal
    import threading

    def watchdog() -> None:
        from gristmill.io import finish_staged, remove_own_temps

        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        try:
            finish_staged(False)
            out = getattr(args, "output", None)
            if out:
                o = Path(out)
                remove_own_temps(o.parent)
                if o.is_dir():
                    remove_own_temps(o, recursive=True)
        finally:
            os._exit(130)

    def handler(signum: int, frame: Any) -> None:
        if not armed:
            t = threading.Timer(INTERRUPT_GRACE_S, watchdog)
            t.daemon = True
            t.start()
            armed.append(t)
        signal.default_int_handler(signum, frame)

    return handler


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import signal
    import threading

    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    _progress.configure(quiet=args.quiet)
    warnings.showwarning = _show_warning
    from gristmill.io import finish_staged

    own_sigint = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    armed: List[Any] = []
    if own_sigint:
        signal.signal(signal.SIGINT, _interrupt_handler(args, armed))
    ok = False
    try:
        rc = int(args.func(args) or 0)
        ok = True
        return rc
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError as e:  # estimated up front or a failed large allocation: never an abort
        if args.debug:
            raise
        msg = str(e)
        print(f"{PROG}: error: {msg if 'memory' in msg else 'out of memory' + (': ' + msg if msg else '')}", file=sys.stderr)
        return 1
    except (OutputOverInputError, OutputFolderInUseError) as e:  # usage errors: nothing was written
        if args.debug:
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError, TypeError, KeyError) as e:
        if args.debug:
            raise
        msg = str(e) if not isinstance(e, KeyError) else str(e.args[0] if e.args else e)
        if isinstance(e, OSError) and not isinstance(e, CorpusError) and e.filename:
            msg = f"{e.filename}: {e.strerror or e}"
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 1
    finally:
        finish_staged(ok)  # outputs of a failed run never appear (see gristmill.io.staged_outputs)
        for t in armed:  # unwound in time: no hard exit
            t.cancel()
        if own_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
