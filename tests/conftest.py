"""Shared fixtures: the embedded default traces are built once per session (and cached on disk)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TQDM_DISABLE", "1")  # upstream draws a progress bar per CFM call
# hypothesis keeps its unicode tables in ./.hypothesis unless told otherwise: never in the checkout
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "indextts-parity-hypothesis"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per worker, and per model run a worker starts (the CLI runs inherit it): two workers of
    # two threads each on two cores wait on each other (measured under `make test`: a one-step capture 30%
    # slower with two threads; reference_hooks/class_check.py measured 5x). Set before torch is imported; the
    # thread count is in every trace's provenance and in the cache key, so runs of another count stay apart.
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    if "torch" in sys.modules:  # a plugin imported it first: the environment came too late for this process
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
ROOT = Path(__file__).resolve().parent.parent
#: what a test run may leave in the checkout: the environment and Python's own byte-code caches
ALLOWED = (".venv/", "__pycache__/", ".egg-info/", ".pytest_cache/")


def _untracked() -> set[str]:
    proc = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return set()
    return {line[3:] for line in proc.stdout.splitlines()
            if line[:2] in ("??", "!!") and not any(a in line[3:] or line[3:].startswith(a) for a in ALLOWED)}


@pytest.fixture(scope="session", autouse=True)
def leaves_nothing_behind():
    """The suite writes reports, traces and caches into temporary folders and the user's cache, never into the
    checkout (each xdist worker checks what it left)."""
    before = _untracked()
    yield
    left = sorted(_untracked() - before)
    assert not left, f"the test run left files in the checkout: {left[:10]}"


def _ensure(**kw):
    from harness.commands import models
    from harness.configs import TINY

    steps = kw.pop("steps", None)
    config = TINY.with_(steps=steps) if steps else TINY
    return models.ensure(config, log=lambda *_: None, **kw)


@pytest.fixture(scope="session")
def tiny_run():
    """The embedded default at full detail, 3 ODE steps, seed 1: every internal of every step and token. The
    same reference as the full-detail fault cases (test_faults.py), so the session captures it once; the
    README's 25 steps differ only in how many times the same step runs (`make onnx` runs 25)."""
    return _ensure(steps=3, seed=1, detail="full")


@pytest.fixture(scope="session")
def tiny_short_run():
    """A 3-step tiny run at the default detail: enough for tests that need a trace but not 25 steps."""
    return _ensure(steps=3, seed=1)


@pytest.fixture(scope="session")
def tiny_short_fault_run():
    """The same 3-step run with one real porting fault switched on in our reimplementation."""
    return _ensure(steps=3, seed=1, faults=("cfm.final_layer.no_silu",))


def pytest_sessionfinish(session):
    """The suite leaves the cache within its budget (least recently used entries go). Run once, by the
    process that ran the tests or, under xdist, by the controller after every worker is done: a worker that
    finishes first must not evict what another is still reading."""
    if hasattr(session.config, "workerinput"):
        return
    from harness import cache

    cache.enforce(grace=0.0)
