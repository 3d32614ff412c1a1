"""Shared fixtures: the embedded default traces are built once per session (and cached on disk)."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("TQDM_DISABLE", "1")  # upstream draws a progress bar per CFM call


def _ensure(**kw):
    from harness.commands import models
    from harness.configs import TINY

    steps = kw.pop("steps", None)
    config = TINY.with_(steps=steps) if steps else TINY
    return models.ensure(config, log=lambda *_: None, **kw)


@pytest.fixture(scope="session")
def tiny_run():
    """The embedded default at full detail: every internal of every one of the 25 ODE steps."""
    return _ensure(seed=0, detail="full")


@pytest.fixture(scope="session")
def tiny_short_run():
    """A 3-step tiny run at the default detail: enough for tests that need a trace but not 25 steps."""
    return _ensure(steps=3, seed=1)


@pytest.fixture(scope="session")
def tiny_short_fault_run():
    """The same 3-step run with one real porting fault switched on in our reimplementation."""
    return _ensure(steps=3, seed=1, faults=("cfm.final_layer.no_silu",))
