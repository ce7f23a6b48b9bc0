"""Train byte-level BPE tokenizers (the merge list Hugging Face ``tokenizers`` would learn).

>>> import gristmill
>>> tok = gristmill.train_bpe(["low lower lowest", "new newer newest"] * 50, vocab_size=262)
>>> [tok.token_bytes(int(i)) for i in tok.merges()[:3, 2]]
[b'we', b'lo', b'ne']
>>> tok.decode(tok.encode("newest lowest"))
'newest lowest'

Training reads the corpus once, in batches: every document is pre-tokenized with the
``pattern`` regex and the distinct pieces ("words") are counted in parallel, so memory is
bounded by the table of distinct words, not by the corpus. Merges then run over that table.

**Same result as HF.** With the same pre-tokenization, the merge list equals the one
``tokenizers.trainers.BpeTrainer`` learns with
``pre_tokenizers.Sequence([Split(Regex(pattern), "isolated"), ByteLevel(add_prefix_space=False,
use_regex=False)])`` and ``initial_alphabet=ByteLevel.alphabet()``: the next merge is the pair
with the highest count, ties going to the pair whose ``(left id, right id)`` is smallest, with
ids numbered as HF numbers them (the 256 bytes in the order of their byte-level characters,
then merged tokens in creation order). The result is identical at any thread count.

One corner differs by construction: HF never lowers the count of a pair it has merged, so if
a later merge re-creates an already merged pair (possible only when two different merges
produce the same string, e.g. ``"ab"+"c"`` after ``"a"+"bc"``), HF merges it again right away
with its stale count plus the new occurrences, while gristmill merges it when its true count is the highest. Both keep
only the last occurrence of the pair in the merge list. This was not observed on the test
corpora (100 MB of man pages + Linux source at 32,768 tokens gives identical merge lists).

**Token ids.** ``0..256`` are the single bytes (HF byte-level order), then one id per merge
(a merge whose result already exists reuses its id), then ``special_tokens`` in the order
given. HF's trainer puts special tokens first instead; the merges are the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa

from gristmill import _native, _progress
from gristmill._arrow import string_buffers
from gristmill.io import Corpus, atomic_write
from gristmill.tokenizer import CL100K_PATTERN, GPT2_PATTERN, O200K_PATTERN, R50K_PATTERN, Tokenizer

__all__ = ["train_bpe", "TrainedTokenizer", "PATTERNS", "hf_regex"]

#: Named pre-tokenizer patterns accepted by :func:`train_bpe`.
PATTERNS: Dict[str, str] = {
    "o200k": O200K_PATTERN,
    "cl100k": CL100K_PATTERN,
    "gpt2": GPT2_PATTERN,
    "r50k": R50K_PATTERN,
}

PathLike = Union[str, "os.PathLike[str]"]
CorpusLike = Union[PathLike, Sequence[PathLike], Corpus, pa.Array, pa.ChunkedArray, Iterable[str]]

_BATCH_DOCS = 8192
_BATCH_BYTES = 16 << 20


class TrainedTokenizer(Tokenizer):
    """A :class:`gristmill.Tokenizer` with writers for the usual tokenizer file formats.

    >>> import tempfile, tokenizers, gristmill
    >>> tok = gristmill.train_bpe(["hello world"] * 10, vocab_size=270, special_tokens=["<|endoftext|>"])
    >>> d = tempfile.mkdtemp()
    >>> tok.save(d + "/tokenizer.json")
    >>> hf = tokenizers.Tokenizer.from_file(d + "/tokenizer.json")
    >>> hf.encode("hello world").ids == tok.encode("hello world")
    True
    """

    # ------------------------------------------------------------------ pieces
    def _ordinary_ids(self) -> List[int]:
        special = set(self.special_tokens.values())
        return [i for i in range(self.n_vocab) if i not in special]

    def _vocab_strings(self) -> Dict[str, int]:
        ids = self._ordinary_ids()
        strings = _native.byte_level_strings([self.token_bytes(i) for i in ids])
        return dict(zip(strings, ids))

    def _merge_strings(self) -> List[Tuple[str, str]]:
        m = self.merges()
        left = _native.byte_level_strings([self.token_bytes(int(i)) for i in m[:, 0]])
        right = _native.byte_level_strings([self.token_bytes(int(i)) for i in m[:, 1]])
        return list(zip(left, right))

    # ------------------------------------------------------------------ writers
    def to_huggingface_json(self) -> Dict[str, Any]:
        """The Hugging Face ``tokenizer.json`` document (a dict)."""
        added = [
            {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for s, i in sorted(self.special_tokens.items(), key=lambda kv: kv[1])
        ]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": {
                "type": "Sequence",
                "pretokenizers": [
                    {"type": "Split", "pattern": {"Regex": hf_regex(self.pat_str)}, "behavior": "Isolated", "invert": False},
                    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
                ],
            },
            "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "ignore_merges": False,
                "vocab": self._vocab_strings(),
                "merges": [list(m) for m in self._merge_strings()],
            },
        }

    def save_huggingface(self, path: PathLike) -> None:
        """Write a Hugging Face ``tokenizer.json`` (loads with ``tokenizers.Tokenizer.from_file``)."""
        doc = json.dumps(self.to_huggingface_json(), ensure_ascii=False, indent=1)
        with atomic_write(path) as f:
            f.write(doc.encode("utf-8"))

    def save_tiktoken(self, path: PathLike) -> None:
        """Write a ``.tiktoken`` rank file (``base64(token) rank`` per line).

        The file holds neither the pattern nor the special tokens: pass ``pat_str=tok.pat_str``
        and ``special_tokens=tok.special_tokens`` to ``tiktoken.Encoding`` or
        :meth:`gristmill.Tokenizer.from_tiktoken`. tiktoken merges any adjacent pair whose
        concatenation is a token (by rank) where HF applies only the listed merges, so the two
        can differ on rare inputs where a token was learned through a different split.
        """
        import base64

        lines = [base64.b64encode(self.token_bytes(i)) + b" %d\n" % i for i in self._ordinary_ids()]
        with atomic_write(path) as f:
            f.write(b"".join(lines))

    def save_vocab_merges(self, directory: PathLike) -> None:
        """Write GPT-2 style ``vocab.json`` + ``merges.txt`` into ``directory``."""
        d = Path(directory)
        vocab = self._vocab_strings()
        for s, i in self.special_tokens.items():
            vocab[s] = i
        with atomic_write(d / "vocab.json") as f:
            f.write(json.dumps(vocab, ensure_ascii=False).encode("utf-8"))
        text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self._merge_strings())
        with atomic_write(d / "merges.txt") as f:
            f.write(text.encode("utf-8"))

    def save(self, path: PathLike) -> None:
        """Save by file name: ``*.json`` → HF ``tokenizer.json``; ``*.tiktoken`` → rank file;
        an existing directory or a name without suffix → ``vocab.json`` + ``merges.txt``."""
        p = Path(path)
        if p.suffix == ".json":
            self.save_huggingface(p)
        elif p.suffix == ".tiktoken":
            self.save_tiktoken(p)
        elif p.is_dir() or not p.suffix:
            self.save_vocab_merges(p)
        else:
            raise ValueError(f"{p}: unknown tokenizer format {p.suffix!r} (use .json, .tiktoken or a directory)")


def hf_regex(pattern: str) -> str:
    """``pattern`` spelled for HF tokenizers' regex engine (Oniguruma, Ruby syntax).

    Oniguruma reads ``{n,m}+`` as "``{n,m}``, one or more times" rather than as a possessive
    interval, so cl100k's ``\\p{N}{1,3}+`` would split digit runs differently; at the end of an
    alternative the possessive and greedy forms match the same text, so it is written
    ``\\p{N}{1,3}``.
    """
    return pattern.replace(r"\p{N}{1,3}+", r"\p{N}{1,3}")


def _resolve_pattern(pattern: str) -> str:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("pattern must be a name (o200k, cl100k, gpt2, r50k) or a non-empty regex")
    key = pattern[:-5] if pattern.endswith("_base") else pattern
    return PATTERNS.get(key, pattern)


def _batches(corpus: CorpusLike) -> Iterator[Tuple[int, Tuple[np.ndarray, np.ndarray], int]]:
    """Yield ``(first doc index, buffers, n docs)``."""
    if isinstance(corpus, (str, os.PathLike)) or (
        isinstance(corpus, (list, tuple)) and corpus and all(isinstance(p, os.PathLike) for p in corpus)
    ):
        corpus = Corpus(corpus)  # type: ignore[arg-type]
    if isinstance(corpus, Corpus):
        for b in corpus.batches():
            yield b.start, string_buffers(b.texts), len(b)
        return
    if isinstance(corpus, pa.ChunkedArray):
        start = 0
        for ch in corpus.chunks:
            yield start, string_buffers(ch), len(ch)
            start += len(ch)
        return
    if isinstance(corpus, pa.Array):
        yield 0, string_buffers(corpus), len(corpus)
        return
    if isinstance(corpus, bytes):
        raise TypeError("corpus must be paths, a Corpus, a pyarrow string array or an iterable of str, not bytes")
    start = 0
    batch: List[str] = []
    size = 0
    for i, t in enumerate(corpus):
        if not isinstance(t, str):
            raise TypeError(f"corpus[{i}] is {type(t).__name__}, expected str")
        batch.append(t)
        size += len(t)
        if len(batch) >= _BATCH_DOCS or size >= _BATCH_BYTES:
            yield start, string_buffers(batch), len(batch)
            start += len(batch)
            batch, size = [], 0
    if batch:
        yield start, string_buffers(batch), len(batch)


def train_bpe(
    corpus: CorpusLike,
    vocab_size: int,
    pattern: str = "o200k",
    special_tokens: Sequence[str] = (),
    min_frequency: int = 0,
    max_word_count: Optional[int] = None,
    *,
    num_threads: Optional[int] = None,
    progress: Optional[bool] = None,
    name: str = "trained",
) -> TrainedTokenizer:
    """Train a byte-level BPE tokenizer.

    Args:
        corpus: a file or folder path (``str`` or ``Path``), a list of ``pathlib.Path``
            (read with :class:`gristmill.Corpus`), a :class:`gristmill.Corpus`, a pyarrow
            string array, or an iterable of ``str`` texts (consumed once, in batches). A list
            of ``str`` is texts, not paths.
        vocab_size: final vocabulary size: 256 byte tokens + merges + ``special_tokens``.
        pattern: pre-tokenizer: ``"o200k"``, ``"cl100k"``, ``"gpt2"``, ``"r50k"`` or any regex
            (text between matches becomes its own piece, like HF ``Split(..., "isolated")``).
        special_tokens: appended after the merged tokens, in this order.
        min_frequency: stop when the most frequent pair occurs fewer times than this.
        max_word_count: keep only this many distinct words (the most frequent; ties by bytes)
            before merging; ``None`` keeps all.
        num_threads: worker threads (default: all cores). The result does not depend on it.
        progress: show progress bars on stderr (default: as configured by the CLI, else off).

    Raises:
        GristmillError: ``vocab_size`` below ``256 + len(special_tokens)``, an empty corpus,
            an invalid regex (the message quotes the pattern and the error position), or a
            document that is not valid UTF-8 (named by its index).
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)):
        raise TypeError(f"vocab_size must be an int, not {type(vocab_size).__name__}")
    if isinstance(special_tokens, str):
        raise TypeError("special_tokens must be a sequence of strings, not a single string")
    specials = list(special_tokens)
    for s in specials:
        if not isinstance(s, str):
            raise TypeError(f"special tokens must be str, got {type(s).__name__}")
    if vocab_size < 256 + len(specials):
        raise _native.GristmillError(
            f"vocab_size {vocab_size} is too small: the byte alphabet needs 256 tokens"
            + ("" if not specials else " and there is 1 special token" if len(specials) == 1
               else f" and there are {len(specials)} special tokens")
            + f", so vocab_size must be at least {256 + len(specials)}"
        )
    if min_frequency < 0:
        raise ValueError("min_frequency must be >= 0")
    if max_word_count is not None and max_word_count < 1:
        raise ValueError("max_word_count must be >= 1 or None")
    pat = _resolve_pattern(pattern)
    trainer = _native._BpeTrainer(pat, num_threads)
    show = _progress._state["enabled"] if progress is None else bool(progress)
    if progress is not None:
        saved = dict(_progress._state)
        _progress.configure(enabled=show)
    try:
        with _progress.bar("counting words", unit="B", unit_scale=True) as bar:
            for start, buffers, _n in _batches(corpus):
                trainer.count(buffers, start)
                bar.update(int(buffers[0].nbytes))
        if trainer.n_words == 0:
            raise _native.GristmillError("the corpus is empty: no words to train on")
        with _progress.bar("merges", total=vocab_size - 256 - len(specials), unit="merge") as mbar:
            def report(done: int, wanted: int) -> None:
                mbar.update(done - mbar.n)

            native = trainer.train(vocab_size, int(min_frequency), specials, max_word_count, report if show else None)
    finally:
        if progress is not None:
            _progress._state.update(saved)
    return TrainedTokenizer._wrap(native, name)
