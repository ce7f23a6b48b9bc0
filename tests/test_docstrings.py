"""Every example in the package's docstrings runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["gristmill", "gristmill.io", "gristmill.tokenizer", "gristmill.train", "gristmill.minhash", "gristmill.suffix", "gristmill.mixture",
           "gristmill.docdedup"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run python -m doctest)"
