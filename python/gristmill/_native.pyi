"""Type stubs for the Rust extension module ``gristmill._native``."""

from typing import Any, Tuple, final

import numpy as np
import numpy.typing as npt

__version__: str

class GristmillError(ValueError):
    """Base class of gristmill's errors about bad input or arguments."""

_Docs = Tuple[npt.NDArray[np.uint8], npt.NDArray[np.int32] | npt.NDArray[np.int64]]

def corpus_stats_batch(docs: _Docs) -> dict[str, int]: ...

_I64 = npt.NDArray[np.int64]

def suffix_find_repeats(
    docs: _Docs,
    min_length: int,
    keep: str,
    threads: int = 0,
    force_64: bool = False,
    memory_limit: int | None = None,
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
    def build(docs: _Docs, path: str, threads: int = 0, force_64: bool = False) -> dict[str, int]: ...
    @staticmethod
    def open(path: str, verify: bool = False) -> NativeSuffixIndex: ...
    def info(self) -> dict[str, int]: ...
    def verify(self) -> None: ...
    def check_corpus(self, docs: _Docs) -> None: ...
    def count(self, pattern: bytes) -> int: ...
    def locate(self, pattern: bytes, limit: int) -> Tuple[_I64, _I64]: ...
    def document(self, i: int) -> bytes: ...
