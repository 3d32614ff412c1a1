"""Shared fixtures: the embedded default traces are built once per session (and cached on disk)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_run():
    from harness import embedded
    from harness.configs import TINY

    return embedded.ensure(TINY, seed=0, log=lambda *_: None)


@pytest.fixture(scope="session")
def tiny_short_run():
    """A 3-step tiny run: enough for tests that need a trace but not 25 steps."""
    from harness import embedded
    from harness.configs import TINY

    return embedded.ensure(TINY.with_(steps=3), seed=1, log=lambda *_: None)


@pytest.fixture(scope="session")
def tiny_short_fault_run():
    """The same 3-step run with one real porting fault switched on in our reimplementation."""
    from harness import embedded
    from harness.configs import TINY

    return embedded.ensure(TINY.with_(steps=3), seed=1, faults=("final_layer.no_silu",), log=lambda *_: None)
