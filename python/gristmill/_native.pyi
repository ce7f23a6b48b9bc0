"""Type stubs for the Rust extension module ``gristmill._native``."""

from typing import Tuple

import numpy as np
import numpy.typing as npt

__version__: str

class GristmillError(ValueError):
    """Base class of gristmill's errors about bad input or arguments."""

_Docs = Tuple[npt.NDArray[np.uint8], npt.NDArray[np.int32] | npt.NDArray[np.int64]]

def corpus_stats_batch(docs: _Docs) -> dict[str, int]: ...
