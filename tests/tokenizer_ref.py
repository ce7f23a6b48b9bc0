"""Helpers for the tokenizer tests: tiktoken reference encodings built offline from the rank
files shipped in gristmill, and small samples of real text."""

from __future__ import annotations

import base64
import functools
import gzip
import sysconfig
from pathlib import Path
from typing import List

import tiktoken

import gristmill.tokenizer as T

DATA = Path(T.__file__).resolve().parent / "data"


@functools.lru_cache(maxsize=None)
def ranks(name: str) -> dict:
    raw = gzip.decompress((DATA / f"{name}.tiktoken.gz").read_bytes())
    return {base64.b64decode(tok): int(r) for tok, r in (line.split() for line in raw.splitlines() if line)}


@functools.lru_cache(maxsize=None)
def reference(name: str) -> tiktoken.Encoding:
    pat, specials, _ = T.ENCODINGS[name]
    return tiktoken.Encoding(name, pat_str=pat, mergeable_ranks=ranks(name), special_tokens=specials)


@functools.lru_cache(maxsize=None)
def stdlib_texts(step: int = 1) -> List[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for p in sorted(root.rglob("*.py"))[::step]:
        if "site-packages" in p.parts:
            continue
        try:
            out.append(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
    return out


@functools.lru_cache(maxsize=None)
def man_texts(per_lang: int = 40) -> dict:
    """Up to ``per_lang`` man pages (roff source) of every language under /usr/share/man."""
    root = Path("/usr/share/man")
    langs = {}
    if not root.exists():
        return langs
    for d in sorted(root.iterdir()):
        if not d.is_dir():
            continue
        lang = "en" if d.name.startswith("man") else d.name
        pages = sorted(d.glob("*.gz") if lang == "en" else d.glob("man*/*.gz"))
        docs = langs.setdefault(lang, [])
        if len(docs) >= per_lang:
            continue
        step = max(1, len(pages) // per_lang)
        for p in pages[::step]:
            if len(docs) >= per_lang:
                break
            try:
                docs.append(gzip.decompress(p.read_bytes()).decode("utf-8"))
            except (OSError, EOFError, UnicodeDecodeError):
                continue
    return {k: v for k, v in langs.items() if v}
