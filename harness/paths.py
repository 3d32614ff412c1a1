"""Where the harness writes: reports to `./reports` of the current folder, the cache to the user's cache.

The cache holds what can be made again (seeded weights, reference traces with their noise floors,
replays, converted foreign dumps): `$INDEXTTS_PARITY_CACHE`, else `$XDG_CACHE_HOME/indextts-parity`,
else `~/.cache/indextts-parity`. Nothing is ever written into the installed package.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE = "INDEXTTS_PARITY_CACHE"


def reports_dir() -> Path:
    return Path.cwd() / "reports"


def cache_dir() -> Path:
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "indextts-parity"
