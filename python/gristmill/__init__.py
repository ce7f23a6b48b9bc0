"""gristmill — turn raw text corpora into clean pretraining data.

Rust-accelerated exact-substring and near-duplicate deduplication, fast BPE tokenization
and mixture inference, with thin typed Python wrappers and a ``gristmill`` command.

>>> import gristmill
>>> gristmill.corpus_stats(["one document", "another one"])["words"]
4
"""

from __future__ import annotations

import os as _os

# libsais runs on OpenMP; busy-waiting worker threads collapse throughput on shared or
# oversubscribed machines (measured: 10x slower). Must be set before libgomp loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from gristmill._native import GristmillError, __version__  # noqa: E402
from gristmill.io import Corpus, CorpusError, corpus_stats
from gristmill import mixture
from gristmill.docdedup import DocDedupResult, dedup_docs, dedup_paragraphs
from gristmill.minhash import MinHashDedupResult, MinHasher, MinHashIndex, dedup_minhash, jaccard_estimate, lsh_params
from gristmill.mixture import MixtureResult, infer as infer_mixture
from gristmill.suffix import SuffixIndex, contamination, dedup_exact, find_repeats
from gristmill.tokenizer import Encoding, Tokenizer, encoding_for_model, encoding_name_for_model, get_encoding, list_encoding_names
from gristmill.train import TrainedTokenizer, train_bpe

__all__ = [
    "__version__",
    "GristmillError",
    "CorpusError",
    "Corpus",
    "corpus_stats",
    "DocDedupResult",
    "dedup_docs",
    "dedup_paragraphs",
    "MinHasher",
    "MinHashIndex",
    "MinHashDedupResult",
    "dedup_minhash",
    "jaccard_estimate",
    "lsh_params",
    "mixture",
    "MixtureResult",
    "infer_mixture",
    "SuffixIndex",
    "contamination",
    "dedup_exact",
    "find_repeats",
    "Tokenizer",
    "Encoding",
    "get_encoding",
    "encoding_for_model",
    "encoding_name_for_model",
    "list_encoding_names",
    "TrainedTokenizer",
    "train_bpe",
]
