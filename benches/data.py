"""Build and cache the real benchmark corpora from Debian packages.

    python benches/data.py            # build everything (installs the packages if root)
    python benches/data.py --list     # show what is cached

Corpora (JSONL, one document per line, fields ``text`` and ``path``), cached under
``benches/.cache/`` (or ``$GRISTMILL_BENCH_DATA``):

* ``linux.jsonl`` — every UTF-8 text file of the Linux kernel source (Debian
  ``linux-source-6.1``): C, headers, docs, Makefiles, device trees. Binary files (NUL bytes)
  and non-UTF-8 files are left out and counted.
* ``man-<lang>.jsonl`` — the man pages of one language (Debian ``manpages``, ``manpages-de``,
  ``-fr``, ``-es``, ``-it``, ``-pl``, ``-ru``, ``-ja``, ``-nl``, ``-pt-br``, ``-cs``, ``-uk``),
  roff source as installed under ``/usr/share/man``.
* ``mixed.jsonl`` — a fixed mix for tokenizer benchmarks: English man pages, every other
  language's man pages, Linux C source and Python standard-library code, interleaved.

Every file is written through a temporary name and renamed into place, so an interrupted build
never leaves a cache entry that looks complete.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

CACHE = Path(os.environ.get("GRISTMILL_BENCH_DATA", Path(__file__).resolve().parent / ".cache"))
LINUX_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
MAN_ROOT = Path("/usr/share/man")
# Debian package -> directory under /usr/share/man ("" = English, the manN folders at the top)
MAN_PACKAGES: Dict[str, str] = {
    "manpages": "en", "manpages-de": "de", "manpages-fr": "fr", "manpages-es": "es",
    "manpages-it": "it", "manpages-pl": "pl", "manpages-ru": "ru", "manpages-ja": "ja",
    "manpages-nl": "nl", "manpages-pt-br": "pt_BR", "manpages-cs": "cs", "manpages-uk": "uk",
}
LANGS = list(MAN_PACKAGES.values())


def _apt_install(packages: List[str]) -> None:
    if os.geteuid() != 0:
        raise SystemExit(f"missing Debian packages {packages}: run `sudo apt-get install {' '.join(packages)}`")
    print(f"installing {' '.join(packages)} …", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True, env=env)


class _AtomicJsonl:
    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.docs = 0
        self.bytes = 0

    def __enter__(self) -> "_AtomicJsonl":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.tmp, "w", encoding="utf-8")
        return self

    def add(self, text: str, path: str) -> None:
        self.f.write(json.dumps({"text": text, "path": path}, ensure_ascii=False))
        self.f.write("\n")
        self.docs += 1
        self.bytes += len(text.encode("utf-8"))

    def __exit__(self, exc_type, exc, tb) -> None:
        self.f.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def build_linux(force: bool = False) -> Path:
    out = CACHE / "linux.jsonl"
    if out.exists() and not force:
        return out
    if not LINUX_TARBALL.exists():
        _apt_install(["linux-source-6.1"])
    skipped = 0
    with _AtomicJsonl(out) as w, tarfile.open(LINUX_TARBALL, "r|xz") as tar:
        for m in tar:
            if not m.isfile():
                continue
            f = tar.extractfile(m)
            if f is None:
                continue
            raw = f.read()
            if b"\0" in raw:
                skipped += 1
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                skipped += 1
                continue
            w.add(text, m.name)
    print(f"linux: {w.docs:,} files, {w.bytes / 1e6:.0f} MB ({skipped} binary/non-UTF-8 files left out)",
          file=sys.stderr)
    return out


def _man_dir(lang: str) -> Path:
    return MAN_ROOT if lang == "en" else MAN_ROOT / lang


def _man_pages(lang: str) -> Iterator[Tuple[str, str]]:
    base = _man_dir(lang)
    for section in sorted(base.glob("man[1-9]")):
        for page in sorted(section.iterdir()):
            if page.is_symlink() or not page.is_file():
                continue
            raw = page.read_bytes()
            if page.suffix == ".gz":
                try:
                    raw = gzip.decompress(raw)
                except (OSError, EOFError):
                    continue
            if raw.startswith(b".so ") and raw.count(b"\n") <= 2:
                continue  # a one-line redirect to another page
            try:
                yield raw.decode("utf-8"), str(page)
            except UnicodeDecodeError:
                continue


def build_man(lang: str, force: bool = False) -> Path:
    out = CACHE / f"man-{lang}.jsonl"
    if out.exists() and not force:
        return out
    pkg = next(p for p, l in MAN_PACKAGES.items() if l == lang)
    if not any(_man_dir(lang).glob("man[1-9]")) or (lang == "en" and not (MAN_ROOT / "man2").exists()):
        _apt_install([pkg])
    with _AtomicJsonl(out) as w:
        for text, path in _man_pages(lang):
            w.add(text, path)
    print(f"man-{lang}: {w.docs:,} pages, {w.bytes / 1e6:.1f} MB", file=sys.stderr)
    return out


def _read_jsonl(path: Path, limit_bytes: Optional[int] = None) -> Iterator[Tuple[str, str]]:
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            yield r["text"], r["path"]
            n += len(r["text"].encode())
            if limit_bytes is not None and n >= limit_bytes:
                return


def build_mixed(force: bool = False, per_part_bytes: int = 4_000_000) -> Path:
    """~4 MB each of English man pages, other-language man pages (together), Linux C source and
    Python stdlib code, interleaved document by document."""
    out = CACHE / "mixed.jsonl"
    if out.exists() and not force:
        return out
    parts: List[List[Tuple[str, str]]] = []
    parts.append(list(_read_jsonl(build_man("en"), per_part_bytes)))
    other: List[Tuple[str, str]] = []
    for lang in LANGS:
        if lang != "en":
            other += list(_read_jsonl(build_man(lang), per_part_bytes // (len(LANGS) - 1)))
    parts.append(other)
    linux = [d for d in _read_jsonl(build_linux(), 4 * per_part_bytes) if d[1].endswith((".c", ".h"))]
    parts.append(_take(linux, per_part_bytes))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    py = []
    for p in sorted(stdlib.rglob("*.py")):
        if "site-packages" in p.parts:
            continue
        try:
            py.append((p.read_text(encoding="utf-8"), str(p)))
        except (UnicodeDecodeError, OSError):
            continue
    parts.append(_take(py, per_part_bytes))
    with _AtomicJsonl(out) as w:
        for i in range(max(len(p) for p in parts)):
            for p in parts:
                if i < len(p):
                    w.add(*p[i])
    print(f"mixed: {w.docs:,} documents, {w.bytes / 1e6:.1f} MB", file=sys.stderr)
    return out


def _take(docs: List[Tuple[str, str]], limit: int) -> List[Tuple[str, str]]:
    out, n = [], 0
    for d in docs:
        if n >= limit:
            break
        out.append(d)
        n += len(d[0].encode())
    return out


def corpus(name: str) -> Path:
    """Path of a cached corpus, building it if needed: ``linux``, ``mixed``, ``man-<lang>``."""
    if name == "linux":
        return build_linux()
    if name == "mixed":
        return build_mixed()
    if name.startswith("man-"):
        return build_man(name[4:])
    raise KeyError(f"unknown corpus {name!r}")


def load_texts(name: str, limit_bytes: Optional[int] = None) -> List[str]:
    """Texts of a cached corpus (optionally only the first ``limit_bytes``)."""
    return [t for t, _ in _read_jsonl(corpus(name), limit_bytes)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="list cached corpora")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--only", choices=["linux", "man", "mixed"], help="build one family")
    a = ap.parse_args()
    if not a.list:
        if a.only in (None, "man"):
            for lang in LANGS:
                build_man(lang, a.force)
        if a.only in (None, "linux"):
            build_linux(a.force)
        if a.only in (None, "mixed"):
            build_mixed(a.force)
    for p in sorted(CACHE.glob("*.jsonl")):
        print(f"{p}  {p.stat().st_size / 1e6:9.1f} MB")


if __name__ == "__main__":
    main()
