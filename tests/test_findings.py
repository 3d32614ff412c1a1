"""Malformed candidates become findings in the verdict, not crashes.

These are robustness tests of the comparison on bad input (a port's trace with NaN, a stage it did not
write, an undeclared layout, a wrong shape); the candidates are copies of our reimplementation's real
trace with one thing broken. That the harness finds real bugs is shown with real faults in
test_faults.py.
"""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from harness.compare import TraceSet, compare_traces
from harness.trace import Trace

STAGE = "cfm/seg_00/step_00/dit/block_02/attn_out"


@pytest.fixture
def broken(tmp_path, tiny_short_run):
    def make(edit) -> Trace:
        path = tmp_path / "cand.h5"
        shutil.copy(tiny_short_run.free, path)
        with h5py.File(path, "r+") as f:
            edit(f)
        return Trace(path)

    return make


def _compare(ref_path, cand: Trace):
    with Trace(ref_path) as ref:
        try:
            return compare_traces(TraceSet(ref, cand), stage="dit")
        finally:
            cand.close()


def test_nan_in_candidate(broken, tiny_short_run):
    def edit(f):
        data = f[STAGE][...]
        data[0, 3, 5] = np.nan
        f[STAGE][...] = data

    c = _compare(tiny_short_run.reference, broken(edit))
    assert c.first_divergence.label == f"{STAGE} (cond)"
    assert "NaN/Inf" in c.first_divergence.problem and c.exit_code == 1


def test_missing_stage_is_listed(broken, tiny_short_run):
    c = _compare(tiny_short_run.reference, broken(lambda f: f.__delitem__(STAGE)))
    missing = [r for r in c.results if r.status == "missing"]
    assert [r.label for r in missing] == [f"{STAGE} (cond)", f"{STAGE} (uncond)"]
    assert any("absent from the candidate" in w for w in c.warnings)


def test_unknown_layout_and_wrong_shape(broken, tiny_short_run):
    def edit(f):
        f[STAGE].attrs["layout"] = "B X Y"
        data = f["cfm/seg_00/step_00/v_cfg"][...]
        del f["cfm/seg_00/step_00/v_cfg"]
        f.create_dataset("cfm/seg_00/step_00/v_cfg", data=data[..., :-1])
        f["cfm/seg_00/step_00/v_cfg"].attrs.update(layout="B C T", cfg="none", derived=True, dtype="float32", order=10**6)

    c = _compare(tiny_short_run.reference, broken(edit))
    by = {r.label: r for r in c.results}
    # a shape or axis that differs from the reference's is a divergence at that stage, saying how it differs
    bad_axes = by[f"{STAGE} (cond)"]
    assert bad_axes.status == "fail" and "extra axis X" in bad_axes.problem and "axis T missing" in bad_axes.problem
    short = by["cfm/seg_00/step_00/v_cfg"]
    assert short.status == "fail" and "shape" in short.problem and short.propagated is not None  # the overlap
    assert c.first_divergence.label == f"{STAGE} (cond)"  # earlier in pipeline order than the step's v_cfg


def test_declared_transpose_is_applied_and_said(broken, tiny_short_run):
    def edit(f):
        data = f["cfm/seg_00/mel_out"][...]
        del f["cfm/seg_00/mel_out"]
        f.create_dataset("cfm/seg_00/mel_out", data=np.ascontiguousarray(data.transpose(0, 2, 1)))
        f["cfm/seg_00/mel_out"].attrs.update(layout="B T C", cfg="none", derived=False, dtype="float32", order=10**6)

    c = _compare(tiny_short_run.reference, broken(edit))
    mel = next(r for r in c.results if r.path == "cfm/seg_00/mel_out")
    assert mel.status == "pass" and mel.transform == "transposed B T C -> B C T"
