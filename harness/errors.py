"""The two kinds of failure the CLI tells apart, and how an internal error is reported.

A `UserError` is bad input or usage: the CLI prints its one line and exits 2. Anything else is a bug in
the harness: the CLI prints one line naming a crash log that holds the traceback, and exits 3. Neither is
ever exit 0 or 1 (a pass or a divergence).
"""
from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

INTERNAL_ERROR = 3


class UserError(Exception):
    """Bad input or usage: a missing or corrupt file, an unknown stage, config or layout."""

    exit_code = 2


def crash_log(exc: BaseException, argv: list[str], folder: Path) -> Path:
    """Write the traceback of an internal error to a new file in `folder` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    with open(path, "x") as f:  # a new file: never through an existing one
        f.write(f"harness {' '.join(argv)}\n\n{text}")
    return path
