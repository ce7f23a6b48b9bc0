"""Type stubs for the Rust extension module ``gristmill._native``."""

from typing import Any, Callable, Tuple, final

import numpy as np
import numpy.typing as npt

__version__: str

class GristmillError(ValueError):
    """Base class of gristmill's errors about bad input or arguments."""

_Docs = Tuple[npt.NDArray[np.uint8], npt.NDArray[np.int32] | npt.NDArray[np.int64]]

def corpus_stats_batch(docs: _Docs) -> dict[str, int]: ...

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
    ) -> Any: ...

def byte_level_strings(tokens: list[bytes]) -> list[str]: ...
