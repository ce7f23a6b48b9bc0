"""Type stubs for the Rust extension module ``gristmill._native``."""

from typing import Tuple, final


import numpy as np
import numpy.typing as npt

__version__: str

class GristmillError(ValueError):
    """Base class of gristmill's errors about bad input or arguments."""

_Docs = Tuple[npt.NDArray[np.uint8], npt.NDArray[np.int32] | npt.NDArray[np.int64]]

def corpus_stats_batch(docs: _Docs) -> dict[str, int]: ...

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
    ) -> _Tokenizer: ...
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
