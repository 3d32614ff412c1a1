"""Every fault of the catalogue, switched on in our reimplementation, is found where it lives.

Each case runs the real faulty code (free-running and teacher-forced, 3 ODE steps of `tiny`) and checks
that the first divergence is the stage its declaration names (harness/stages/<part>.py), not a later
one, that the declared hint explains it, and that every stage before it is clean. A fault declared by a
part added later is checked here too.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import stages
from harness.compare import compare_traces, open_traces
from harness.console import verdict_line

ROOT = Path(__file__).resolve().parent.parent


def _compare(run):
    with open_traces(**run.roles()) as traces:
        return compare_traces(traces)


@pytest.mark.parametrize("detail", ["default", "full"])
@pytest.mark.parametrize("fault", stages.FAULTS, ids=[f.name for f in stages.FAULTS])
def test_fault_is_found_where_it_lives(fault, detail):
    """At the default detail (internals of the first and last step only) exactly as at full detail."""
    from harness.commands import models
    from harness.configs import TINY

    cfg = TINY.with_(steps=3)
    speaker = ROOT / "fixtures" / fault.recording if fault.recording else None  # e.g. an odd feature frame count
    c = _compare(models.ensure(cfg, seed=1, faults=(fault.name,), detail=detail, log=lambda *_: None, speaker=speaker))
    first = c.first_divergence
    assert first is not None and not c.passed
    assert first.label == stages.expected_stage(fault, cfg)
    assert first.status in ("fail", "error")
    # the verdict's first line names the declared family, or says no known pattern where none is declared
    line = verdict_line(c)
    assert (f"hint [{fault.hint}]: " in line) if fault.hint else ("no known pattern" in line), line
    # every stage before the root is clean: the fault shows nowhere earlier
    before = c.results[: c.results.index(first)]
    assert all(r.status == "pass" for r in before)


@pytest.mark.parametrize("fault", stages.FAULTS, ids=[f.name for f in stages.FAULTS])
def test_fault_name_points_at_its_switch(fault):
    """`<part>.<module>.<what>` lives in reimpl/<part>/<module>.py (`<part>.<what>`: the part's __init__)."""
    pieces = fault.name.split(".")
    home = ROOT / "reimpl" / pieces[0] / (f"{pieces[1]}.py" if len(pieces) == 3 else "__init__.py")
    assert re.search(rf'active\("{re.escape(fault.name)}"\)', home.read_text()), home


def test_no_fault_passes(tiny_short_run):
    c = _compare(tiny_short_run)
    assert c.passed and c.first_divergence is None
