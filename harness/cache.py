"""The cache's disk budget: least-recently-used eviction of what can be made again.

The cache (harness/paths.py) holds seeded weights, reference traces with their floors, replays, converted
port dumps and crash logs. A real-size capture is gigabytes, so the cache has a budget
(`$INDEXTTS_PARITY_CACHE_BUDGET`, e.g. `20G`; default `DEFAULT_BUDGET`). An entry is one run folder
(`runs/<config>-<key>/`: a reference and its replays), one weights file, one converted dump, one crash
log, or a `.partial` left by an interrupted run. Every use of an entry stamps its modification time;
after a command adds to the cache, the least recently used entries are removed until the cache fits,
except those used in the last `GRACE` seconds (another process may be reading them: a running
comparison never loses its traces). `harness cache list` shows the entries; `harness cache clean`
enforces the budget now with no grace, `--all` empties the cache.

Only a folder this harness created is ever cleaned: it carries a CACHEDIR.TAG written on creation, so a
cache variable pointing at, say, the home folder deletes nothing.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.paths import cache_dir

ENV_BUDGET = "INDEXTTS_PARITY_CACHE_BUDGET"
DEFAULT_BUDGET = "10G"
GRACE = 3600.0
SUBFOLDERS = ("runs", "weights", "foreign", "crashes")
TAG = "CACHEDIR.TAG"
TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file marks an indextts-parity cache (https://bford.info/cachedir/); it can be deleted whole.\n")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str, what: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        raise UserError(f"{what} = {text!r} is not a size (e.g. 500M, 20G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def budget() -> int:
    return parse_size(os.environ.get(ENV_BUDGET) or DEFAULT_BUDGET, f"${ENV_BUDGET}")


@contextmanager
def making(entry: Path) -> Iterator[None]:
    """Exclusive right to make one cache entry (a run folder's file, a weights file). Another process making
    the same entry (a parallel test worker, a second terminal) waits here, then finds it made instead of
    making it twice; the files themselves are still written to a unique name and renamed (harness/files.py).
    The lock is advisory (flock) and dies with its process, so a crash never leaves the entry locked."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(entry.parent / f".{entry.name}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def folder(name: str) -> Path:
    """A subfolder of the cache, created (with the cache's tag) on first use."""
    if name not in SUBFOLDERS:
        raise ValueError(name)
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    tag = root / TAG
    if not tag.exists():
        try:
            with open(tag, "x") as f:
                f.write(TAG_TEXT)
        except FileExistsError:
            pass
    sub = root / name
    sub.mkdir(exist_ok=True)
    return sub


def touch(path: Path) -> None:
    """Stamp an entry as used now (its place in the least-recently-used order)."""
    try:
        os.utime(path)
    except OSError:
        pass


@dataclass(frozen=True)
class Entry:
    path: Path
    size: int
    used: float  # last use (modification time of the entry or anything in it)


def _size_and_time(path: Path) -> tuple[int, float]:
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size, st.st_mtime
    size, used = 0, st.st_mtime
    for base, _, files in os.walk(path):
        for f in files:
            try:
                s = os.lstat(os.path.join(base, f))
            except OSError:
                continue
            size, used = size + s.st_size, max(used, s.st_mtime)
    return size, used


def entries() -> list[Entry]:
    """Every entry of the cache, least recently used first."""
    root = cache_dir()
    found = []
    for sub in SUBFOLDERS:
        d = root / sub
        if not d.is_dir() or d.is_symlink():
            continue
        for p in d.iterdir():
            if p.name.endswith(".lock"):  # a `making` lock: empty, and possibly held right now
                continue
            try:
                size, used = _size_and_time(p)
            except OSError:
                continue
            found.append(Entry(p, size, used))
    return sorted(found, key=lambda e: e.used)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _is_ours() -> bool:
    tag = cache_dir() / TAG
    try:
        return tag.is_file() and tag.read_text().startswith(TAG_TEXT.splitlines()[0])
    except OSError:
        return False


def enforce(limit: int | None = None, grace: float = GRACE, everything: bool = False) -> list[Entry]:
    """Remove least recently used entries until the cache fits `limit`; returns what was removed."""
    if not _is_ours():
        return []
    limit = budget() if limit is None else limit
    now = time.time()
    found = entries()
    total = sum(e.size for e in found)
    removed = []
    for e in found:
        if not everything and total <= limit:
            break
        if not everything and now - e.used < grace:
            continue
        _remove(e.path)
        total -= e.size
        removed.append(e)
    return removed


def clean(everything: bool = False) -> list[Entry]:
    """`harness cache clean`: the budget now (no grace), or everything; refuses a folder it did not create."""
    root = cache_dir()
    if not root.exists():
        return []
    if not _is_ours():
        raise UserError(f"{root} does not carry the {TAG} this harness writes in its cache; refusing to delete "
                        f"anything there (check ${'INDEXTTS_PARITY_CACHE'})")
    stale = [Entry(p, p.stat().st_size, p.stat().st_mtime) for p in root.rglob("*.partial")
             if p.is_file() and time.time() - p.stat().st_mtime > GRACE]  # left by runs that were killed
    for e in stale:
        _remove(e.path)
    return stale + enforce(grace=0.0, everything=everything)
