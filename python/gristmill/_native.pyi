"""Type stubs for the Rust extension module ``gristmill._native``."""

from typing import Any, Tuple, final

import numpy as np
import numpy.typing as npt

__version__: str

class GristmillError(ValueError):
    """Base class of gristmill's errors about bad input or arguments."""

_Docs = Tuple[npt.NDArray[np.uint8], npt.NDArray[np.int32] | npt.NDArray[np.int64]]

def corpus_stats_batch(docs: _Docs) -> dict[str, int]: ...

# minhash ---------------------------------------------------------------------------------------
_Shingle = Tuple[str, int, bool, bool, bool, bool]

def minhash_fast_params(num_perm: int, seed: int) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]: ...
def minhash_signatures(
    docs: _Docs,
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
def minhash_shingles(text: str, shingle: _Shingle) -> list[str]: ...
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
) -> dict[str, Any]: ...

@final
class MinHashIndexCore:
    def __new__(cls, path: str, num_perm: int, bands: int, rows: int, sig_bytes: int, meta: str) -> MinHashIndexCore: ...
    def insert(self, keys: list[str], signatures: npt.NDArray[np.uint32] | npt.NDArray[np.uint64]) -> None: ...
    def query(self, signature: npt.NDArray[np.uint32] | npt.NDArray[np.uint64]) -> list[str]: ...
    def query_first(self, signatures: npt.NDArray[np.uint32] | npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]: ...
    def key(self, id: int) -> str: ...
    def contains(self, key: str) -> bool: ...
    def __len__(self) -> int: ...
    def num_runs(self) -> int: ...
    def compact(self) -> None: ...
    def params(self) -> Tuple[int, int, int, int, str]: ...
