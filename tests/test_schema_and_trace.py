import numpy as np
import pytest

from harness import schema
from harness.errors import UserError
from harness.trace import Trace, TraceWriter, partial_path


def test_every_template_resolves_to_itself():
    for spec in schema.STAGES:
        path = spec.template.format(step="07", block="11", layer="3", half="target")
        assert schema.spec_for(path) is spec


@pytest.mark.parametrize("selection,path,hit", [
    ("dit", "cfm/step_03/dit/block_02/attn_norm", True),
    ("dit", "s2mel/length_regulator/prompt/in", False),
    ("lr", "s2mel/length_regulator/target/block_3", True),
    ("dit/block_2", "cfm/step_03/dit/block_02/out", True),
    ("dit/block_2", "cfm/step_03/dit/block_12/out", False),
    ("cfm/step_3", "cfm/step_03/v_cfg", True),
    ("final_layer/out", "cfm/step_24/dit/final_layer/out", True),
    ("cfm/step_*/v_cfg", "cfm/step_11/v_cfg", True),
])
def test_selector(selection, path, hit):
    assert schema.selector(selection)(path) is hit


@pytest.mark.parametrize("bad", ["nope", "dit/blok_2", "cfm/step_03/dit/attn"])
def test_unknown_selection_is_user_error(bad):
    with pytest.raises(UserError):
        schema.selector(bad)


def test_writer_roundtrip_and_atomic_name(tmp_path):
    out = tmp_path / "t.h5"
    with TraceWriter(out, {"config": "x"}) as w:
        w.write("inputs/noise", np.ones((1, 80, 5), np.float32))
        w.write(schema.dit_path(0, "velocity"), np.zeros((2, 80, 5), np.float32))
        assert not out.exists() and partial_path(out).exists()
    assert out.exists() and not partial_path(out).exists()
    with Trace(out) as t:
        assert t.complete and t.provenance["config"] == "x"
        assert [s.path for s in t.stages()] == ["inputs/noise", "cfm/step_00/dit/velocity"]
        v = t.info("cfm/step_00/dit/velocity")
        assert (v.layout, v.cfg, v.shape) == ("B C T", "both", (2, 80, 5))
        assert t.read("inputs/noise", (0, 0, slice(0, 2))).tolist() == [1.0, 1.0]


def test_unknown_stage_cannot_be_written(tmp_path):
    with TraceWriter(tmp_path / "t.h5", {}) as w:
        with pytest.raises(UserError):
            w.write("cfm/step_00/dit/nonsense", np.zeros(3))


def test_interrupted_capture_leaves_readable_partial(tmp_path):
    out = tmp_path / "t.h5"
    with pytest.raises(RuntimeError):
        with TraceWriter(out, {}) as w:
            w.write("inputs/noise", np.ones((1, 80, 5), np.float32))
            raise RuntimeError("killed")
    assert not out.exists()
    with Trace(partial_path(out)) as t:
        assert not t.complete and "killed" in t.provenance["interrupted"]
        assert [s.path for s in t.stages()] == ["inputs/noise"]


def test_bad_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        Trace(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(UserError, match="not a readable HDF5"):
        Trace(junk)
    out = tmp_path / "ok.h5"
    with TraceWriter(out, {}) as w:
        w.write("inputs/noise", np.ones((1, 80, 4000), np.float32))
    cut = tmp_path / "cut.h5"
    cut.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(UserError):
        with Trace(cut) as t:
            t.read("inputs/noise")
