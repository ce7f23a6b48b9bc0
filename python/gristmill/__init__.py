"""gristmill — turn raw text corpora into clean pretraining data.

Rust-accelerated exact-substring and near-duplicate deduplication, fast BPE tokenization
and mixture inference, with thin typed Python wrappers and a ``gristmill`` command.

>>> import gristmill
>>> gristmill.corpus_stats(["one document", "another one"])["words"]
4
"""

from __future__ import annotations

from gristmill._native import GristmillError, __version__
from gristmill.io import Corpus, CorpusError, corpus_stats
from gristmill.tokenizer import Tokenizer
from gristmill.train import TrainedTokenizer, train_bpe

__all__ = [
    "__version__",
    "GristmillError",
    "CorpusError",
    "Corpus",
    "corpus_stats",
    "Tokenizer",
    "TrainedTokenizer",
    "train_bpe",
]
