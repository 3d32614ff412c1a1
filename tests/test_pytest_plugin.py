"""The pytest plugin, run as a port's CI would run it: per-group items pass, then fail with a fault on."""
from __future__ import annotations

pytest_plugins = ["pytester"]

EXAMPLE = '''
import pytest
from harness.pytest_plugin import stage_groups

REF, CAND, FORCED = {ref!r}, {cand!r}, {forced!r}

@pytest.mark.parametrize("group", stage_groups(REF))
def test_parity(parity, group):
    parity(REF, CAND, forced=FORCED).check(group)
'''


def _groups(outcomes) -> int:
    return sum(outcomes.values())


def test_example_parity_test_passes_then_fails(pytester, tiny_short_run, tiny_short_fault_run):
    ok = tiny_short_run
    pytester.makepyfile(test_port=EXAMPLE.format(ref=str(ok.reference), cand=str(ok.free), forced=str(ok.forced)))
    result = pytester.runpytest_subprocess("-q")
    outcomes = result.parseoutcomes()
    # one item per parity group: at least one per part of the pipeline, every one passing
    assert outcomes.get("passed", 0) >= 8 and not {"failed", "error", "errors", "skipped"} & set(outcomes), outcomes
    bad = tiny_short_fault_run
    pytester.makepyfile(test_port=EXAMPLE.format(ref=str(bad.reference), cand=str(bad.free), forced=str(bad.forced)))
    result = pytester.runpytest_subprocess("-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1 and outcomes.get("passed", 0) >= 1
    result.stdout.fnmatch_lines(["*cfm/seg_00/step_00/dit/final_layer/silu (cond) [[]first divergence of the run[]]*"])


def test_command_line_items(pytester, tiny_short_run, tiny_short_fault_run):
    ok = tiny_short_run
    result = pytester.runpytest_subprocess("-q", "--parity-ref", str(ok.reference), "--parity-cand", str(ok.free),
                                           "--parity-forced", str(ok.forced), "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    # one item per parity group: at least one per part of the pipeline, every one passing
    assert outcomes.get("passed", 0) >= 8 and not {"failed", "error", "errors", "skipped"} & set(outcomes), outcomes
    bad = tiny_short_fault_run
    result = pytester.runpytest_subprocess("-q", "--parity-ref", str(bad.reference), "--parity-cand", str(bad.free),
                                           "--parity-forced", str(bad.forced), "--parity-stage", "dit")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] >= 1
    result.stdout.fnmatch_lines(["*parity*cfm/seg_00/step_00*"])


def test_foreign_port_through_the_plugin(pytester, tmp_path, tiny_short_fault_run):
    """A port's own dump (npz, its names, B T C, halves apart) checked in CI through --parity-map."""
    from tests.test_foreign import write_foreign, write_map

    bad = tiny_short_fault_run
    cand, map_path = tmp_path / "port.npz", tmp_path / "port.map.toml"
    write_foreign(bad.free, cand)
    write_map(map_path)
    result = pytester.runpytest_subprocess("-q", "--parity-ref", str(bad.reference), "--parity-cand", str(cand),
                                           "--parity-map", str(map_path), "--parity-stage", "dit")
    outcomes = result.parseoutcomes()
    # per segment (the default text makes two): 3 steps, the mel and the vocoder's input inherit; set-up passes
    assert outcomes["failed"] == 2 * 5 and outcomes["passed"] == 2, outcomes
    result.stdout.fnmatch_lines(["*cfm/seg_00/step_00/dit/final_layer/silu (cond) [[]first divergence of the run[]]*"])
