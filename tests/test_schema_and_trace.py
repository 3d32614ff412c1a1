import numpy as np
import pytest

from harness import stages
from harness.errors import UserError
from harness.trace import Trace, TraceWriter

VELOCITY = "cfm/seg_00/step_00/dit/velocity"


def test_every_template_resolves_to_itself():
    for spec in stages.STAGES:
        path = spec.path(seg=1, step=7, block=11, layer=3, token=12)
        assert stages.spec_for(path) is spec
        assert spec.part in stages.PART_NAMES


def test_every_stage_declares_a_known_kind_detail_and_layout():
    for spec in stages.STAGES:
        assert spec.kind in (stages.FLOAT, stages.EXACT, stages.AUDIO)
        assert spec.detail in (stages.BOUNDARY, stages.INTERNAL)
        assert spec.layout and spec.doc
        assert spec.cfg in (stages.CFG_NONE, stages.CFG_COND, stages.CFG_UNCOND, stages.CFG_BOTH)


@pytest.mark.parametrize("selection,path,hit", [
    ("dit", "cfm/seg_00/step_03/dit/block_02/attn_norm", True),
    ("dit", "s2mel/length_regulator/prompt/in", False),
    ("lr", "s2mel/seg_01/length_regulator/target/block_3/out", True),
    ("dit/block_2", "cfm/seg_00/step_03/dit/block_02/out", True),
    ("dit/block_2", "cfm/seg_00/step_03/dit/block_12/out", False),
    ("cfm/step_3", "cfm/seg_01/step_03/v_cfg", True),
    ("cfm/seg_01/step_3", "cfm/seg_00/step_03/v_cfg", False),
    ("final_layer/out", "cfm/seg_00/step_24/dit/final_layer/out", True),
    ("cfm/step_*/v_cfg", "cfm/seg_00/step_11/v_cfg", True),
    ("cfm", "cfm/seg_00/mel_out", True),
    ("vocoder", "cfm/seg_00/mel_out", False),
])
def test_selector(selection, path, hit):
    assert stages.selector(selection)(path) is hit


@pytest.mark.parametrize("bad", ["nope", "dit/blok_2", "cfm/step_03/dit/attn"])
def test_unknown_selection_is_user_error(bad):
    with pytest.raises(UserError):
        stages.selector(bad)


def test_writer_roundtrip_and_atomic_name(tmp_path):
    out = tmp_path / "t.h5"
    with TraceWriter(out, {"config": "x"}) as w:
        w.write("frontend/mel/out", np.ones((1, 80, 5), np.float32))
        w.write(VELOCITY, np.zeros((2, 80, 5), np.float32))
        assert not out.exists() and w.tmp.exists() and w.tmp.name.endswith(".partial")
    assert out.exists() and not list(tmp_path.glob("*.partial"))
    with Trace(out) as t:
        assert t.complete and t.provenance["config"] == "x"
        assert [s.path for s in t.stages()] == ["frontend/mel/out", VELOCITY]
        v = t.info(VELOCITY)
        assert (v.layout, v.cfg, v.shape, v.detail) == ("B C T", "both", (2, 80, 5), "boundary")
        assert t.read("frontend/mel/out", (0, 0, slice(0, 2))).tolist() == [1.0, 1.0]


def test_unknown_stage_cannot_be_written(tmp_path):
    with TraceWriter(tmp_path / "t.h5", {}) as w:
        with pytest.raises(UserError):
            w.write("cfm/seg_00/step_00/dit/nonsense", np.zeros(3))


def test_interrupted_capture_leaves_readable_partial(tmp_path):
    out = tmp_path / "t.h5"
    with pytest.raises(RuntimeError):
        with TraceWriter(out, {}) as w:
            w.write("frontend/mel/out", np.ones((1, 80, 5), np.float32))
            raise RuntimeError("killed")
    assert not out.exists()
    (partial,) = tmp_path.glob("t.h5.*.partial")
    with Trace(partial) as t:
        assert not t.complete and "killed" in t.provenance["interrupted"]
        assert [s.path for s in t.stages()] == ["frontend/mel/out"]


def test_bad_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        Trace(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(UserError, match="not a readable HDF5"):
        Trace(junk)
    out = tmp_path / "ok.h5"
    with TraceWriter(out, {}) as w:
        w.write("frontend/mel/out", np.ones((1, 80, 4000), np.float32))
    cut = tmp_path / "cut.h5"
    cut.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(UserError):
        with Trace(cut) as t:
            t.read("frontend/mel/out")
