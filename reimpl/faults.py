"""The switch of the fault catalogue: which real porting bugs are on in this run.

The catalogue itself is declared per part, torch-free, in `harness/stages/<part>.py` (name, what the port
got wrong, where it must show first, the hint expected). A fault named `<part>.<module>.<what>` lives in
`reimpl/<part>/<module>.py`, which asks `active(name)` at the one place the bug lives.
"""
from __future__ import annotations

import contextlib

from harness import stages

_active: frozenset[str] = frozenset()


def active(name: str) -> bool:
    """Is this fault switched on? Called at the one place each bug lives."""
    assert name in {f.name for f in stages.FAULTS}, name
    return name in _active


@contextlib.contextmanager
def enabled(names: tuple[str, ...] | list[str]):
    """Switch faults on for the duration of a run; always switched off again afterwards."""
    global _active
    for n in names:
        stages.fault(n)
    before = _active
    _active = frozenset(names)
    try:
        yield
    finally:
        _active = before
