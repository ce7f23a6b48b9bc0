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
from typing import Any, Callable, Dict, List, Optional, Sequence

from gristmill import _progress, __version__
from gristmill.io import Corpus, CorpusError, corpus_stats

__all__ = ["main", "build_parser", "add_input_args", "corpus_from_args"]

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
    """The corpus arguments every command shares."""
    p.add_argument("inputs", nargs=nargs, metavar="INPUT",
                   help="JSONL (.jsonl, .jsonl.gz, .jsonl.zst), Parquet files, or folders of text files")
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
    src = Path(args.input) if args.input else default_demo_corpus()
    out = Path(args.output)
    # site-packages holds third-party code, not the standard library; a few stdlib test files
    # are deliberately not UTF-8 — they are skipped and counted.
    corpus = Corpus([src], glob=args.glob, exclude=["site-packages", "__pycache__"], on_invalid_utf8="skip")
    print(f"gristmill {__version__} demo")
    print(f"corpus: {src} (files matching {args.glob!r})")
    stats = _stats_with_progress(corpus)
    _print_stats(stats)
    if corpus.skipped:
        print(f"  skipped {len(corpus.skipped)} file(s) that are not UTF-8, e.g. {corpus.skipped[0]}")
    if stats["docs"] == 0:
        raise CorpusError(f"{src}: no files match {args.glob!r}")
    out.mkdir(parents=True, exist_ok=True)
    from gristmill.io import write_json

    report = out / "stats.json"
    write_json(report, stats)
    print(f"wrote {report}")
    return 0


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
    p.set_defaults(func=_run_demo)


# ---------------------------------------------------------------------------------------------
# train-bpe


def _run_train_bpe(args: argparse.Namespace) -> int:
    import time

    from gristmill.train import train_bpe

    corpus = corpus_from_args(args)
    out = Path(args.output)
    t0 = time.perf_counter()
    tok = train_bpe(corpus, args.vocab_size, pattern=args.pattern, special_tokens=args.special_token,
                    min_frequency=args.min_frequency, max_word_count=args.max_word_count)
    secs = time.perf_counter() - t0
    tok.save(out)
    _progress.info(f"trained {len(tok.merges()):,} merges, vocabulary {tok.n_vocab:,} in {secs:.1f} s; wrote {out}")
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
    p.add_argument("--vocab-size", type=int, required=True, metavar="N", help="final vocabulary size")
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


def _run_tokenize(args: argparse.Namespace) -> int:
    from gristmill.io import check_output_path
    from gristmill.tokenizer import ENCODINGS, Tokenizer, tokenize_corpus

    corpus = corpus_from_args(args)
    check_output_path(corpus, args.output)
    name = args.tokenizer
    if name in ENCODINGS:
        tok = Tokenizer.from_tiktoken(name)
    elif name.endswith(".json") or Path(name).is_dir():
        tok = Tokenizer.from_huggingface(name)
    else:
        if args.pat_str is None:
            raise ValueError(f"--tokenizer {name}: a rank file needs --pat-str (or use one of {', '.join(ENCODINGS)})")
        tok = Tokenizer.from_tiktoken(name, pat_str=args.pat_str)
    with _progress.bar("tokenizing", unit="doc", unit_scale=True) as bar:
        m = tokenize_corpus(corpus, tok, args.output, eos=args.eos, bos=args.bos,
                            shard_tokens=args.shard_tokens, num_threads=args.threads, progress=bar)
    _progress.info(f"{m['total_docs']:,} documents -> {m['total_tokens']:,} {m['dtype']} tokens "
                   f"in {len(m['shards'])} shard(s) under {args.output}")
    return 0


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
    p.add_argument("--shard-tokens", type=int, default=1 << 28, metavar="N",
                   help="start a new shard after N tokens (default: 268435456)")
    p.set_defaults(func=_run_tokenize)


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
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or status lines")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="worker threads for the Rust core (default: all cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    _add_demo(sub)
    _add_stats(sub)
    _add_train_bpe(sub)
    _add_tokenize(sub)
    return parser


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    _progress.configure(quiet=args.quiet)
    warnings.showwarning = _show_warning
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (ValueError, OSError, TypeError, KeyError) as e:
        if args.debug:
            raise
        msg = str(e) if not isinstance(e, KeyError) else str(e.args[0] if e.args else e)
        if isinstance(e, OSError) and not isinstance(e, CorpusError) and e.filename:
            msg = f"{e.filename}: {e.strerror or e}"
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
