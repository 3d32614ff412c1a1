"""Every fault of the catalogue, switched on in our reimplementation, is found where it lives.

Each case runs the real faulty code (free-running and teacher-forced, 3 ODE steps of `tiny`) and
checks that the first divergence is the stage where the bug lives, not a later one, and that the
expected diagnosis hint explains it.
"""
from __future__ import annotations

import pytest

from harness.compare import compare_traces, open_traces
from reimpl.faults import CATALOGUE, expected_stage


def _compare(run):
    with open_traces(**run.roles()) as traces:
        return compare_traces(traces)


@pytest.mark.parametrize("fault", CATALOGUE, ids=[f.name for f in CATALOGUE])
def test_fault_is_found_where_it_lives(fault):
    from harness import embedded
    from harness.configs import TINY

    cfg = TINY.with_(steps=3)
    c = _compare(embedded.ensure(cfg, seed=1, faults=(fault.name,), log=lambda *_: None))
    first = c.first_divergence
    assert first is not None and not c.passed
    assert first.label == expected_stage(fault, cfg.depth)
    assert first.status in ("fail", "error")
    if fault.hint:
        assert fault.hint in [h.kind for h in first.hints], [h.message for h in first.hints]
    # every stage before the root is clean: the fault shows nowhere earlier
    before = c.results[: c.results.index(first)]
    assert all(r.status == "pass" for r in before)


def test_no_fault_passes(tiny_short_run):
    c = _compare(tiny_short_run)
    assert c.passed and c.first_divergence is None
