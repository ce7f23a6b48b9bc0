"""Type stubs for the Rust extension module ``gristmill._native``."""

from typing import Any, Iterable, Tuple, final
from typing import Any, Callable, Tuple, final


import numpy as np
import numpy.typing as npt

__version__: str

class GristmillError(ValueError):
    """Base class of gristmill's errors about bad input or arguments."""

_Docs = Tuple[npt.NDArray[np.uint8], npt.NDArray[np.int32] | npt.NDArray[np.int64]]

def available_memory() -> int | None: ...
def corpus_stats_batch(docs: _Docs) -> dict[str, int]: ...

# corpus ----------------------------------------------------------------------------------------
def read_jsonl_file(
    path: str, compression: str | None, display: str, text_field: str, id_field: str | None,
    on_invalid_utf8: str, batch_docs: int,
) -> list[dict[str, Any]]: ...

# minhash ---------------------------------------------------------------------------------------
_Shingle = Tuple[str, int, bool, bool, bool, bool, _Tokenizer | None]

def minhash_fast_params(num_perm: int, seed: int) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]: ...
def minhash_signatures(
    docs: _Docs,
    shingle: _Shingle,
    scheme: str,
    a: npt.NDArray[np.uint64],
    b: npt.NDArray[np.uint64],
    threads: int | None = None,
) -> npt.NDArray[np.uint32] | npt.NDArray[np.uint64]: ...
def minhash_signatures_of_strs(
    texts: list[str] | tuple[str, ...],
    shingle: _Shingle,
    scheme: str,
    a: npt.NDArray[np.uint64],
    b: npt.NDArray[np.uint64],
    threads: int | None = None,
) -> npt.NDArray[np.uint32] | npt.NDArray[np.uint64]: ...
def minhash_signatures_of_sets(
    items: _Docs,
    groups: npt.NDArray[np.int64],
    scheme: str,
    a: npt.NDArray[np.uint64],
    b: npt.NDArray[np.uint64],
    threads: int | None = None,
) -> npt.NDArray[np.uint32] | npt.NDArray[np.uint64]: ...
def minhash_signatures_of_lists(
    sets: Iterable[Iterable[str]],
    scheme: str,
    a: npt.NDArray[np.uint64],
    b: npt.NDArray[np.uint64],
    threads: int | None = None,
) -> npt.NDArray[np.uint32] | npt.NDArray[np.uint64]: ...
def minhash_shingles(text: str, shingle: _Shingle) -> list[str]: ...
def minhash_token_shingles(text: str, shingle: _Shingle) -> list[list[int]]: ...
def minhash_shingle_counts(docs: _Docs, shingle: _Shingle, threads: int | None = None) -> npt.NDArray[np.uint32]: ...
def lsh_optimal_params(threshold: float, num_perm: int, fp_weight: float, fn_weight: float) -> Tuple[int, int]: ...
def lsh_check_bands(num_perm: int, bands: int, rows: int) -> None: ...
def lsh_band_keys(
    signatures: npt.NDArray[np.uint32] | npt.NDArray[np.uint64], bands: int, rows: int, threads: int | None = None
) -> npt.NDArray[np.uint64]: ...
def lsh_candidate_mask(
    signatures: npt.NDArray[np.uint32] | npt.NDArray[np.uint64],
    bands: int,
    rows: int,
    eligible: npt.NDArray[np.bool_],
    threads: int | None = None,
) -> npt.NDArray[np.bool_]: ...
def lsh_cluster(
    signatures: npt.NDArray[np.uint32] | npt.NDArray[np.uint64],
    bands: int,
    rows: int,
    eligible: npt.NDArray[np.bool_],
    scores: npt.NDArray[np.float64] | None = None,
    verify_docs: _Docs | None = None,
    shingle: _Shingle | None = None,
    threshold: float | None = None,
    threads: int | None = None,
    cluster: str = "components",
    groups: Tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]] | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]: ...
def lsh_candidates(
    signatures: npt.NDArray[np.uint32] | npt.NDArray[np.uint64],
    bands: int,
    rows: int,
    eligible: npt.NDArray[np.bool_],
    threads: int | None = None,
) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]: ...

def lsh_band_groups(
    band: npt.NDArray[np.uint32], key: npt.NDArray[np.uint64], doc: npt.NDArray[np.uint64]
) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]: ...
def lsh_group_edges(
    members: npt.NDArray[np.uint32],
    offsets: npt.NDArray[np.int64],
    n: int,
    verify_docs: _Docs | None = None,
    shingle: _Shingle | None = None,
    threshold: float | None = None,
    threads: int | None = None,
) -> dict[str, Any]: ...
def lsh_cluster_rows(
    signatures: npt.NDArray[np.uint32] | npt.NDArray[np.uint64],
    roots: npt.NDArray[np.uint32],
    scores: npt.NDArray[np.float64] | None = None,
    verify_docs: _Docs | None = None,
    shingle: _Shingle | None = None,
    threads: int | None = None,
) -> dict[str, Any]: ...
def cc_large_star(
    node: npt.NDArray[np.uint64], other: npt.NDArray[np.uint64], is_child: npt.NDArray[np.bool_]
) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], int]: ...
def cc_small_star(
    node: npt.NDArray[np.uint64], smaller: npt.NDArray[np.uint64]
) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], int]: ...

@final
class MinHashIndexCore:
    def __new__(cls, path: str, num_perm: int, bands: int, rows: int, sig_bytes: int, meta: str) -> MinHashIndexCore: ...
    def insert(self, keys: list[str], signatures: npt.NDArray[np.uint32] | npt.NDArray[np.uint64]) -> None: ...
    def query(self, signature: npt.NDArray[np.uint32] | npt.NDArray[np.uint64]) -> list[str]: ...
    def query_first(self, signatures: npt.NDArray[np.uint32] | npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]: ...
    def find_same(self, keys: list[str], signatures: npt.NDArray[np.uint32] | npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]: ...
    def key(self, id: int) -> str: ...
    def contains(self, key: str) -> bool: ...
    def __len__(self) -> int: ...
    def num_runs(self) -> int: ...
    def compact(self) -> None: ...
    def params(self) -> Tuple[int, int, int, int, str]: ...
_I64 = npt.NDArray[np.int64]

def suffix_find_repeats(
    docs: _Docs,
    min_length: int,
    keep: str,
    threads: int = 0,
    force_64: bool = False,
    memory_limit: int | None = None,
    work_dir: str | None = None,
) -> Tuple[_I64, _I64, _I64, _I64, dict[str, Any]]: ...
def suffix_contamination_tokenized(
    train: _Docs,
    eval: _Docs,
    tokenizer: _Tokenizer,
    min_length: int,
    threads: int = 0,
) -> Tuple[_I64, _I64, _I64, _I64, dict[str, Any]]: ...
def suffix_find_repeats_tokenized(
    docs: _Docs,
    tokenizer: _Tokenizer,
    min_length: int,
    keep: str,
    threads: int = 0,
    memory_limit: int | None = None,
    work_dir: str | None = None,
) -> Tuple[_I64, _I64, _I64, _I64, dict[str, Any]]: ...
def suffix_find_repeats_tokens(
    ids: npt.NDArray[np.uint32],
    doc_offsets: _I64,
    min_length: int,
    keep: str,
    token_starts: npt.NDArray[np.uint64] | None = None,
    doc_bytes: npt.NDArray[np.uint64] | None = None,
    threads: int = 0,
) -> Tuple[_I64, _I64, _I64, _I64, dict[str, Any]]: ...
def suffix_contamination(
    train: _Docs, eval: _Docs, min_length: int, threads: int = 0, force_64: bool = False
) -> Tuple[_I64, _I64, _I64, _I64, dict[str, Any]]: ...
def suffix_trim(docs: _Docs, doc: _I64, start: _I64, end: _I64) -> Tuple[npt.NDArray[np.uint8], _I64]: ...
def suffix_array_bytes(
    data: npt.NDArray[np.uint8], threads: int = 0, force_64: bool = False
) -> npt.NDArray[np.int32] | npt.NDArray[np.int64]: ...
def suffix_corpus_checksum(docs: _Docs) -> int: ...

@final
class NativeSuffixIndex:
    @staticmethod
    def build(docs: _Docs, path: str, threads: int = 0, force_64: bool = False, ids: _Docs | None = None) -> dict[str, int]: ...
    @staticmethod
    def open(path: str, verify: bool = False) -> NativeSuffixIndex: ...
    def info(self) -> dict[str, int]: ...
    def verify(self) -> None: ...
    def check_corpus(self, docs: _Docs) -> None: ...
    def count(self, pattern: bytes) -> int: ...
    def locate(self, pattern: bytes, limit: int) -> Tuple[_I64, _I64]: ...
    def document(self, i: int) -> str: ...
    def doc_id(self, i: int) -> str | None: ...
@final
class _BpeTrainer:
    def __new__(cls, pattern: str, num_threads: int | None = None) -> "_BpeTrainer": ...
    def count(self, docs: _Docs, first_doc: int = 0) -> None: ...
    def add_word(self, word: bytes, count: int) -> None: ...
    @property
    def n_words(self) -> int: ...
    @property
    def totals(self) -> Tuple[int, int, int]: ...
    def train(
        self,
        vocab_size: int,
        min_frequency: int = 0,
        special_tokens: list[str] = ...,
        max_word_count: int | None = None,
        progress: Callable[[int, int], object] | None = None,
    ) -> _Tokenizer: ...

def byte_level_strings(tokens: list[bytes]) -> list[str]: ...

_Special = str | list[str]

@final
class _Tokenizer:
    @staticmethod
    def from_tiktoken_bytes(
        data: bytes, source: str, pat_str: str, special_tokens: list[tuple[str, int]]
    ) -> _Tokenizer: ...
    @staticmethod
    def from_ranks(
        ranks: list[tuple[bytes, int]], pat_str: str, special_tokens: list[tuple[str, int]]
    ) -> _Tokenizer: ...
    @staticmethod
    def from_byte_level(
        vocab: list[tuple[str, int]],
        merges: list[tuple[str, str]],
        pat_str: str,
        special_tokens: list[tuple[str, int]],
        ignore_merges: bool = False,
        nfc: bool = False,
    ) -> _Tokenizer: ...
    @property
    def normalizer(self) -> str | None: ...
    @property
    def n_vocab(self) -> int: ...
    @property
    def pattern(self) -> str: ...
    @property
    def special_tokens(self) -> list[tuple[str, int]]: ...
    def encode_ordinary(self, text: str) -> npt.NDArray[np.uint32]: ...
    def encode(self, text: str, allowed_special: _Special, disallowed_special: _Special) -> npt.NDArray[np.uint32]: ...
    def count(self, text: str) -> int: ...
    def encode_batch(
        self,
        docs: _Docs,
        allowed_special: _Special,
        disallowed_special: _Special,
        ordinary: bool,
        num_threads: int | None = None,
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]: ...
    def decode_bytes(self, ids: npt.NDArray[np.int64]) -> bytes: ...
    def token_offsets(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]: ...
    def decode_batch_bytes(self, ids: npt.NDArray[np.int64], offsets: npt.NDArray[np.int64]) -> list[bytes]: ...
    def token_bytes(self, id: int) -> bytes | None: ...
    def token_id(self, bytes: bytes) -> int | None: ...
    def pretokenize(self, text: str) -> npt.NDArray[np.uint64]: ...
    def merges(self) -> npt.NDArray[np.uint32]: ...

@final
class _MixtureOracle:
    @property
    def n_pairs(self) -> int: ...
    @property
    def num_merges(self) -> int: ...
    @property
    def n_changes(self) -> int: ...
    @property
    def rows_added(self) -> int: ...
    @property
    def summaries(self) -> list[tuple[int, int, int, int]]: ...
    def merge_counts(self) -> npt.NDArray[np.float64]: ...
    def pair_tokens(self, ids: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]: ...
    def forget(self, steps: npt.NDArray[np.uint32], pairs: npt.NDArray[np.uint32]) -> None: ...
    def tree_children(self) -> npt.NDArray[np.uint32]: ...
    @property
    def stretch_rows_added(self) -> int: ...
    def forget_stretches(self, nodes: npt.NDArray[np.uint32], pairs: npt.NDArray[np.uint32]) -> None: ...
    def stretch_sweep(
        self,
        alpha: npt.NDArray[np.float64],
        v_step: npt.NDArray[np.float64],
        v_pair: npt.NDArray[np.float64],
        first_steps: int,
        per_pair: int,
        max_rows: int,
        tolerance: float,
    ) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float64], float, int]: ...
    def pair_sweep(
        self,
        alpha: npt.NDArray[np.float64],
        v_step: npt.NDArray[np.float64],
        v_pair: npt.NDArray[np.float64],
        tolerance: float,
    ) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float64], float, int]: ...

@final
class _MixtureCounter:
    def __new__(
        cls, tokenizer: _Tokenizer, n_categories: int, num_merges: int | None = None, num_threads: int | None = None
    ) -> "_MixtureCounter": ...
    @property
    def num_merges(self) -> int: ...
    def count(self, category: int, docs: _Docs, first_doc: int = 0) -> None: ...
    def totals(self, category: int) -> Tuple[int, int, int, int]: ...
    def build(self, progress: Callable[[int], object] | None = None) -> _MixtureOracle: ...
