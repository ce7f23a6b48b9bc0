"""In CI every peer library must be importable: a differential test that skips for a missing
peer would pass without checking anything."""

import importlib
import os

import pytest

PEERS = ("tiktoken", "tokenizers", "datasketch", "pydivsufsort", "hypothesis")


def pytest_configure(config):
    if os.environ.get("CI"):
        missing = []
        for name in PEERS:
            try:
                importlib.import_module(name)
            except ImportError:
                missing.append(name)
        if missing:
            pytest.exit(f"CI needs the peer libraries {missing}: pip install -e '.[test]'", returncode=1)
