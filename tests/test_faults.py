"""Every fault of the catalogue, switched on in our reimplementation, is found where it lives.

Each case runs the real faulty code of the fault's part (free-running inside the part and teacher-forced, fed
the reference's boundary stages; 3 ODE steps of `tiny`) and checks that the first divergence is the stage its
declaration names (harness/stages/<part>.py), not a later one, that the declared hint explains it, and that
every stage of the part before it is clean. A fault declared by a
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


def _compare(run, stage: str | None = None):
    with open_traces(**run.roles()) as traces:
        return compare_traces(traces, stage=stage)


def _in_a_middle_iteration(fault) -> bool:
    """Whether the fault's stage lies inside an ODE step or a generated token other than the first and the last:
    only there does the default detail keep fewer internals than full (harness/detail.py). A stage outside the
    loops or in their first or last iteration is kept at both levels alike, and so is every stage before it
    (`test_the_default_detail_drops_only_internals_inside_a_step_or_a_token`)."""
    from harness.configs import TINY

    cfg = TINY.with_(steps=3, **dict(fault.config))
    last = {"step": cfg.cfm.steps - 1, "token": cfg.gpt.max_tokens - 1}
    found = re.findall(r"/(step|token)_(\d+)/", stages.expected_stage(fault, cfg))
    return any(int(n) not in (0, last[what]) for what, n in found)


def _cases() -> list:
    """Every fault at the default detail; every fault of a part whose default detail keeps only some of its
    internals (the CFM: first and last step; the GPT: first and last token) at full detail too where its stage lies
    in another step or token, so that nothing full detail finds is missed, or found at another stage, at the
    default detail (every other part's default detail keeps all its internals)."""
    partial = {"cfm", "gpt"}
    return [pytest.param(f, d, id=f"{f.name}-{d}") for f in stages.FAULTS
            for d in (("default", "full") if f.part in partial and _in_a_middle_iteration(f) else ("default",))]


def test_the_default_detail_drops_only_internals_inside_a_step_or_a_token():
    """What lets a fault outside the loops, or in their first or last iteration, run at the default detail alone:
    every stage without a step or token number is kept there as at full detail, and so is every stage of the
    first and the last step and token (the rule `_cases` relies on); a middle one's internals are not."""
    from harness.configs import TINY
    from harness.detail import for_config

    default = for_config("default", TINY.with_(steps=3))
    checked = 0
    for spec in (spec for part in stages.PARTS for spec in part.stages):
        if "{step}" not in spec.template and "{token}" not in spec.template:
            path = re.sub(r"\{(\w+)\}", "00", spec.template)
            assert stages.find_spec(path) is spec, path
            checked += 1
            assert default.wants(path), path
        else:
            for k in (0, 2):  # 3 steps (the last is 2); tokens: the first, and 2 against the cap's last, 15
                path = re.sub(r"\{(\w+)\}", "00", spec.template.replace("{step}", f"{k:02d}").replace(
                    "{token}", f"{k * 15 // 2:04d}" if k else "0000"))
                assert default.wants(path), path
    assert checked > 100
    middle = for_config("default", TINY.with_(steps=3))
    assert not middle.wants("cfm/seg_00/step_01/dit/block_00/attn_out")
    assert not middle.wants("gpt/seg_00/token_0001/input")


@pytest.mark.parametrize(("fault", "detail"), _cases())
def test_fault_is_found_where_it_lives(fault, detail):
    """At the default detail exactly as at full detail, where the default keeps fewer internals."""
    from harness.commands import models
    from harness.configs import TINY

    cfg = TINY.with_(steps=3, **dict(fault.config))  # e.g. the emotion-vector mode
    # only the fault's part is replayed, fed the reference's boundary stages: the earlier parts are upstream's
    # own values there, so the part's first divergence is the fault's (the whole chain is test_parity_tiny's)
    speaker = ROOT / "fixtures" / fault.recording if fault.recording else None  # e.g. an odd feature frame count
    run = models.ensure(cfg, seed=1, faults=(fault.name,), detail=detail, log=lambda *_: None, part=fault.part,
                        speaker=speaker)
    c = _compare(run, stage=fault.part)
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
