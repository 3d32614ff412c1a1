"""Parts run alone, detail levels and the stored noise floors, from real traces of the embedded default."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import stages
from harness.compare import compare_traces, open_traces
from harness.detail import Detail
from harness.trace import Trace

ROOT = Path(__file__).resolve().parent.parent


def _harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


@pytest.mark.parametrize("part", ["frontend", "style", "semantic", "gpt", "s2mel", "cfm", "vocoder"])
def test_a_part_replays_alone_from_a_trace(tmp_path, tiny_short_run, part):
    out = tmp_path / f"{part}.h5"
    proc = _harness("replay", str(tiny_short_run.reference), "--part", part, "--teacher-forced", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    with Trace(out) as t:
        parts = {stages.find_spec(s.path).part for s in t.stages()}
        assert parts == {part} and t.provenance["part"] == part
    with open_traces(tiny_short_run.reference, out, out) as traces:
        c = compare_traces(traces, stage=part)
    taught = [r for r in c.results if r.status != "missing"]
    assert c.passed and all(r.local is not None and r.local.rmse == 0 for r in taught)
    # teacher forcing cannot make the GPT sampler's decisions (they need every beam row): they alone are absent
    untaught = {r.path.rsplit("/", 1)[-1] for r in c.results if r.status == "missing"}
    assert untaught == ({"candidates", "beams", "row", "code"} if part == "gpt" else set())


def test_default_detail_keeps_internals_of_the_first_and_last_step_only(tiny_short_run):
    with Trace(tiny_short_run.reference) as ref:
        paths = [s.path for s in ref.stages()]
        # the last token is the cap: random weights never draw the stop code
        assert Detail.from_json(ref.provenance["detail"]) == Detail("default", (("step", 2), ("token", 15)))
    for step in range(3):
        here = f"cfm/seg_00/step_{step:02d}"
        assert f"{here}/dit/velocity" in paths and f"{here}/x_next" in paths  # boundaries: every step
        assert (f"{here}/dit/block_00/attn_out" in paths) == (step in (0, 2))  # internals: first and last
    for token in range(16):
        here = f"gpt/seg_01/token_{token:04d}"
        assert f"{here}/logits" in paths and f"{here}/code" in paths  # boundaries: every token
        assert (f"{here}/penalized" in paths) == (token in (0, 15))  # internals: first and last


def test_a_zoom_keeps_every_internal_of_the_named_part_only():
    """`--detail full:cfm`: the default detail, and every internal of every ODE step (what a port of the CFM loop
    needs, without every token's internals of the GPT)."""
    from harness.configs import TINY
    from harness.detail import for_config

    zoom, default = for_config("full:cfm", TINY.with_(steps=3)), for_config("default", TINY.with_(steps=3))
    assert zoom.full_parts == ("cfm",) and Detail.from_json(zoom.to_json()) == zoom
    assert zoom.wants("cfm/seg_00/step_01/dit/block_00/attn_out")
    assert not default.wants("cfm/seg_00/step_01/dit/block_00/attn_out")
    assert not zoom.wants("gpt/seg_00/token_0003/penalized") and zoom.wants("gpt/seg_00/token_0000/penalized")
    assert zoom.wants("gpt/seg_00/token_0003/logits")  # a boundary stage, at every level


def test_floors_are_stored_for_every_compared_stage(tiny_short_run):
    from harness import floors

    with Trace(tiny_short_run.reference) as ref:
        assert floors.valid(ref)
        for info in ref.stages():
            halves = ["cond", "uncond"] if info.cfg == stages.CFG_BOTH else [""]
            assert sorted(info.propagated_floor) == sorted(halves), info.path
            assert sorted(info.local_floor) == sorted(halves), info.path
        velocity = ref.info("cfm/seg_00/step_02/dit/velocity")
        # float32 accumulates error over the steps: the propagated floor exceeds the local one
        assert velocity.propagated_floor["cond"].rmse > velocity.local_floor["cond"].rmse > 0


def test_an_older_trace_format_is_one_line_with_the_fix(tmp_path):
    import h5py

    old = tmp_path / "old.h5"
    with h5py.File(old, "w") as f:
        f.attrs["format"] = "indextts-parity-trace"
        f.attrs["format_version"] = 1
    proc = _harness("stages", str(old))
    assert proc.returncode == 2 and "format version 1" in proc.stderr and "capture it again" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
