"""Our hostile corpus, part 1: what a port's CI or a bug report may hand `harness compare` and `report`.

Each case builds tiny files by hand next to a three-stage-group reference trace, runs the command capped in
time and memory, and asserts the exit code, one stderr line without a traceback (bad input is exit 2), the
words that name the problem and its fix, and that every file that was there before is byte-identical.
"""
from __future__ import annotations

import os
import zipfile

import h5py
import numpy as np
import pytest

from tests.hostile_support import (
    MINI_MAP,
    Case,
    mel,
    mini_stages,
    npy_bytes,
    port_dump,
    safetensors_bytes,
    velocity,
    write_trace,
)


def _cand(f, ref, name="cand.h5", **changes):
    stages = mini_stages() | changes
    return write_trace(f / name, {k: v for k, v in stages.items() if v is not None})


def _map(f, text=MINI_MAP, name="port.map.toml"):
    (f / name).write_text(text)
    return f / name


def _entry(**fields) -> str:
    base = {"name": "mel", "stage": "cfm/seg_00/mel_out", "layout": "B C T", "half": "none"} | fields
    raw = lambda v: not isinstance(v, str) or v.startswith(("[", "{", '"'))  # noqa: E731  (TOML as written)
    body = "\n".join(f"{k} = {v}" if raw(v) else f'{k} = "{v}"' for k, v in base.items() if v is not None)
    return f"[[tensor]]\n{body}\n"


def _dump_with_map(entry_text, tensors=None):
    def build(f, ref):
        return ["compare", ref, port_dump(f / "port.npz", tensors), "--map", _map(f, entry_text), "--json", f / "o.json"]

    return build


def _fifo(f, name):
    os.mkfifo(f / name)
    return f / name


def _h5(f, name, make):
    with h5py.File(f / name, "w") as h:
        h.attrs["format"] = "indextts-parity-trace"
        h.attrs["format_version"] = 2
        h.attrs["complete"] = True
        h.attrs["provenance"] = "{}"
        make(h)
    return f / name


def _npz_raw(f, name, members: dict[str, bytes]):
    with zipfile.ZipFile(f / name, "w") as z:
        for member, data in members.items():
            z.writestr(member, data)
    return f / name


def _file(f, name, data: bytes):
    (f / name).write_bytes(data)
    return f / name


def _objects_npz(f):
    np.savez(f / "obj.npz", a=np.array([{"run": "code"}], dtype=object))
    return f / "obj.npz"


def _tol(f, text):
    (f / "tol.toml").write_text(text)
    return f / "tol.toml"


def _partial(f, ref):
    from harness.trace import TraceWriter

    w = TraceWriter(f / "cut.h5", {"config": "tiny", "seed": 1})
    w.write("frontend/mel/out", mel())
    return w.close(complete=False, reason="KeyboardInterrupt")


CMP = lambda f, ref, cand, *more: ["compare", ref, cand, "--json", f / "o.json", *more]  # noqa: E731

CASES = [
    # -- traces that cannot be read, or should not be --
    Case("ref-missing", lambda f, r: CMP(f, f / "nope.h5", r), 2, ("trace not found",)),
    Case("cand-garbage", lambda f, r: CMP(f, r, _file(f, "bad.h5", b"garbage" * 10)), 2, ("not a readable HDF5",)),
    Case("cand-truncated", lambda f, r: CMP(f, r, _file(f, "cut.h5", _cand(f, r).read_bytes()[:3000])), 2),
    Case("ref-fifo", lambda f, r: CMP(f, _fifo(f, "ref-fifo.h5"), r), 2, ("is a FIFO",)),
    Case("cand-device", lambda f, r: CMP(f, r, (f / "z.safetensors").symlink_to("/dev/zero") or f / "z.safetensors",
                                         "--map", _map(f)), 2, ("character device",)),
    Case("ref-folder", lambda f, r: CMP(f, f, r), 2, ("is a folder",)),
    Case("no-format-mark", lambda f, r: CMP(f, r, _plain_h5(f)), 2,
         ("not an indextts-parity trace",)),
    Case("old-format", lambda f, r: CMP(f, r, _old_h5(f)), 2, ("format version 1", "capture it again")),
    Case("h5-terabytes", lambda f, r: CMP(f, r, _h5(f, "tb.h5", lambda h: h.create_dataset(
        "cfm/seg_00/mel_out", shape=(1 << 20, 1 << 20, 80), dtype="f4", chunks=(1, 64, 80)))), 2,
         ("per-tensor limit", "INDEXTTS_PARITY_MAX_TENSOR_GB")),
    Case("h5-external-data", lambda f, r: CMP(f, r, _h5(f, "ext.h5", lambda h: h.create_dataset(
        "cfm/seg_00/mel_out", shape=(1, 80, 8), dtype="f4", external=[("/etc/hostname", 0, 2560)]))), 2,
         ("other files",)),
    Case("h5-object-stage", lambda f, r: CMP(f, r, _h5(f, "vlen.h5", lambda h: h.create_dataset(
        "cfm/seg_00/mel_out", data=np.array(["a", "b"], dtype=h5py.string_dtype())))), 2, ("not a plain",)),
    Case("h5-provenance-not-json", lambda f, r: CMP(f, r, _h5(f, "prov.h5", lambda h: h.attrs.__setitem__(
        "provenance", "{not json"))), 2, ("corrupt trace",)),
    # -- a port's dumps that lie about themselves --
    Case("npz-declares-terabytes", lambda f, r: CMP(f, r, _npz_raw(f, "huge.npz", {"mel.npy": npy_bytes((1 << 40,))}),
                                                    "--map", _map(f)), 2, ("declares shape", "per-tensor limit")),
    Case("npz-pickled-objects", lambda f, r: CMP(f, r, _objects_npz(f), "--map", _map(f)), 2, ("refusing to unpickle",)),
    Case("npz-not-a-zip", lambda f, r: CMP(f, r, _file(f, "z.npz", b"PK\x03\x04broken"), "--map", _map(f)), 2,
         ("not a readable .npz",)),
    Case("npz-short-member", lambda f, r: CMP(f, r, _npz_raw(f, "short.npz", {"mel.npy": npy_bytes((1, 80, 8)) + b"x"}),
                                              "--map", _map(f)), 2, ("but the archive holds",)),
    Case("npy-declares-more-than-held", lambda f, r: CMP(f, r, _file(f, "mel.npy", npy_bytes((1, 80, 8)) + b"\0" * 16),
                                                         "--map", _map(f)), 2, ("truncated",)),
    Case("safetensors-header-huge", lambda f, r: CMP(f, r, _file(f, "h.safetensors", safetensors_bytes(b"{}", declared=1 << 60)),
                                                     "--map", _map(f)), 2, ("MAX_HEADER_BYTES",)),
    Case("safetensors-header-not-json", lambda f, r: CMP(f, r, _file(f, "j.safetensors", safetensors_bytes(b"{nope")),
                                                         "--map", _map(f)), 2, ("not JSON",)),
    Case("safetensors-offsets-outside", lambda f, r: CMP(f, r, _file(f, "o.safetensors", safetensors_bytes(
        {"mel": {"dtype": "F32", "shape": [1, 80, 8], "data_offsets": [0, 2560]}})), "--map", _map(f)), 2,
         ("do not fit",)),
    Case("safetensors-unknown-dtype", lambda f, r: CMP(f, r, _file(f, "d.safetensors", safetensors_bytes(
        {"mel": {"dtype": "F12", "shape": [1], "data_offsets": [0, 2]}}, b"\0\0")), "--map", _map(f)), 2,
         ("dtype 'F12'",)),
    Case("safetensors-declares-terabytes", lambda f, r: CMP(f, r, _file(f, "t.safetensors", safetensors_bytes(
        {"mel": {"dtype": "F32", "shape": [1 << 20, 1 << 20, 80], "data_offsets": [0, 4]}}, b"\0" * 4)),
        "--map", _map(f)), 2, ("per-tensor limit",)),
    Case("candidate-unknown-kind", lambda f, r: CMP(f, r, _file(f, "w.pt", b"\x80\x04."), "--map", _map(f)), 2,
         ("a candidate is",)),
    Case("dump-without-map", lambda f, r: CMP(f, r, port_dump(f / "port.npz")), 2, ("give --map",)),
    # -- maps that contradict themselves or the schema --
    Case("map-missing", lambda f, r: CMP(f, r, port_dump(f / "port.npz"), "--map", f / "none.toml"), 2,
         ("map not found",)),
    Case("map-not-toml", _dump_with_map("[[tensor]\nname ="), 2, ("not valid TOML",)),
    Case("map-fifo", lambda f, r: CMP(f, r, port_dump(f / "port.npz"), "--map", _fifo(f, "m.toml")), 2, ("is a FIFO",)),
    Case("map-unknown-table", _dump_with_map(_entry().replace("[[tensor]]", "[[tensors]]")), 2,
         ("did you mean tensor?",)),
    Case("map-unknown-key", _dump_with_map(_entry().replace("layout =", "layuot =")), 2, ("did you mean layout?",)),
    Case("map-wrong-type", _dump_with_map(_entry(name=5)), 2, ("name must be a string",)),
    Case("map-transforms-string", _dump_with_map(_entry(transforms='"squeeze:0"')), 2, ("must be a list",)),
    Case("map-unknown-field", _dump_with_map(_entry(name="v{blok}", stage="cfm/seg_00/step_{blok}/dit/velocity",
                                                    half="both")), 2, ("did you mean block?",)),
    Case("map-layer-for-block", _dump_with_map(_entry(name="s{step}.b{layer}", half="cond",
                                                      stage="cfm/seg_00/step_{step}/dit/block_{layer}/out")), 2,
         ("block_{block}, not block_{layer}",)),
    Case("map-unknown-axis", _dump_with_map(_entry(layout="B X T")), 2, ("not one of our axis names",)),
    Case("map-axis-twice", _dump_with_map(_entry(layout="B T T")), 2, ("names an axis twice",)),
    Case("map-half-typo", _dump_with_map(_entry(name="step{step}.v", stage="cfm/seg_00/step_{step}/dit/velocity",
                                                half="cnd")), 2, ("did you mean cond?",)),
    Case("map-half-on-plain-stage", _dump_with_map(_entry(half="cond")), 2, ('set half = "none"',)),
    Case("map-uncaptured-field", _dump_with_map(_entry(name="v", stage="cfm/seg_00/step_{step}/dit/velocity",
                                                       half="both")), 2, ("does not capture",)),
    Case("map-duplicate-name", _dump_with_map(_entry() + _entry()), 2, ("always matches first",)),
    Case("map-empty", _dump_with_map("# nothing\n"), 2, ("no [[tensor]] entries",)),
    Case("map-single-table", _dump_with_map(_entry().replace("[[tensor]]", "[tensor]")), 2, ("array of tables",)),
    Case("map-count-from-uncaptured", _dump_with_map(_entry(count_from="{step = 1}")), 2, ("does not capture",)),
    Case("map-squeeze-wrong-axis", _dump_with_map(_entry(transforms='["squeeze:1"]')), 2, ("has size 80, not 1",)),
    Case("map-layout-vs-tensor", _dump_with_map(_entry(layout="B C T S")), 2, ("names 4",)),
    Case("map-one-half-as-both", _dump_with_map(_entry(name="step{step}.v", stage="cfm/seg_00/step_{step}/dit/velocity",
                                                       half="both"), {"step0.v": velocity(0)[:1]}), 2,
         ('half = "cond"',)),
    Case("map-two-tensors-one-stage", _dump_with_map(_entry() + _entry(name="mel2"), {"mel": mel(), "mel2": mel()}), 2,
         ("both map onto",)),
    # -- nothing compared is never a pass --
    Case("map-counts-from-one", _dump_with_map(MINI_MAP, {f"step{k + 1}.v": velocity(k) for k in range(3)}), 1,
         ("hint [equals_stage]: candidate equals the reference's cfm/seg_00/step_00/dit/velocity (cond)",
          "does the port count steps from 1? add count_from = {step = 1}")),
    Case("map-counts-from-one-nothing-left", _dump_with_map(MINI_MAP, {"step3.v": velocity(2)}), 1,
         ("NOTHING COMPARED", "count_from = {step = 1}")),
    Case("map-matches-nothing", _dump_with_map(MINI_MAP, {"other": mel()}), 1, ("NOTHING COMPARED",)),
    Case("stage-selects-nothing-here", lambda f, r: CMP(f, r, _cand(f, r), "--stage", "s2mel"), 1,
         ("NOTHING COMPARED", "matches no stage of the reference")),
    Case("map-promise-mostly-unkept", _dump_with_map(MINI_MAP, {"mel": mel()}), 0,
         ("PASS: all 1 compared stages", "only 1 of the 7 stages the map promises were provided")),
    Case("selection-mostly-absent", lambda f, r: CMP(f, r, write_trace(f / "c.h5", {"frontend/mel/out": mel()})), 0,
         ("PASS: all 1 compared stages", "only 1 of the 9 selected stages were compared")),
    Case("incomplete-candidate", lambda f, r: CMP(f, r, _partial(f, r), "--stage", "frontend"), 1, ("NOT A PASS",)),
    # -- findings, not refusals: a shape that differs after the map --
    Case("shape-frames-short", lambda f, r: CMP(f, r, _cand(f, r, **{"cfm/seg_00/mel_out": mel()[:, :, :6]})), 1,
         ("first divergence: cfm/seg_00/mel_out - shape (1, 80, 6)", "T 6 vs 8 (2 short)")),
    Case("shape-axis-missing", _dump_with_map(_entry(layout="C T"), {"mel": mel()[0]}), 1,
         ("axis B missing (the reference's has size 1)",)),
    Case("bytes-where-floats", lambda f, r: CMP(f, r, _cand(f, r, **{"cfm/seg_00/mel_out": np.array([b"x"] * 3)})), 1,
         ("byte strings where the reference holds float32",)),
    Case("complex-where-real", lambda f, r: CMP(f, r, _cand(f, r, **{"cfm/seg_00/mel_out": mel().astype(np.complex64)})),
         1, ("complex and real values are not compared by a cast",)),
    Case("nan-in-reference-unmatched", lambda f, r: CMP(f, _nan_ref(f), _cand(f, r)), 1,
         ("the reference holds 3 NaN/Inf value(s); the candidate differs at 3",)),
    Case("complex-stage-equal", lambda f, r: CMP(f, _complex_ref(f), _complex_ref(f, "c.h5")), 0, ("PASS: all 1 stages",)),
    Case("nan-in-reference-matched", lambda f, r: CMP(f, _nan_ref(f), _nan_ref(f, "nan-cand.h5")), 0,
         ("PASS: all 9 stages",)),
    Case("bool-stage-differs", lambda f, r: CMP(f, _bool_ref(f), _bool_ref(f, "c.h5", flip=True)), 1,
         ("exact stage: 1 of 640 values differ",)),
    # -- outputs that would overwrite inputs, or each other --
    Case("json-is-ref-hardlink", lambda f, r: CMP(f, r, _cand(f, r))[:3] + ["--json", _hardlink(r, f / "h.json")], 2,
         ("is the same file as the REF",)),
    Case("json-is-ref-symlink", lambda f, r: CMP(f, r, _cand(f, r))[:3] + ["--json", _symlink(r, f / "s.json")], 2,
         ("is the same file as the REF",)),
    Case("json-is-ref-dotdot", lambda f, r: CMP(f, r, _cand(f, r))[:3] + ["--json", f / ".." / f.name / r.name], 2,
         ("is the same file as the REF",)),
    Case("json-named-html", lambda f, r: CMP(f, r, _cand(f, r))[:3] + ["--json", f / "x.html"], 2,
         ("the HTML report goes beside the JSON",)),
    Case("json-and-junit-same", lambda f, r: CMP(f, r, _cand(f, r), "--junit", f / "o.json"), 2, ("same file",)),
    Case("json-is-a-folder", lambda f, r: CMP(f, r, _cand(f, r))[:3] + ["--json", f], 2, ("not a regular file",)),
    Case("report-over-candidate", lambda f, r: ["report", r, _cand(f, r), "-o", f / "cand.h5"], 2, ("same file",)),
    # -- options and tolerance files --
    Case("rows-negative", lambda f, r: CMP(f, r, _cand(f, r), "--rows", "-1"), 2, ("MAX_ROWS",)),
    Case("rows-huge", lambda f, r: CMP(f, r, _cand(f, r), "--rows", str(10**9)), 2, ("MAX_ROWS",)),
    Case("unknown-stage", lambda f, r: CMP(f, r, _cand(f, r), "--stage", "dit/blok"), 2, ("unknown stage",)),
    Case("candidate-dtype-unknown", lambda f, r: CMP(f, r, _cand(f, r), "--candidate-dtype", "float8"), 2,
         ("invalid choice",)),
    Case("different-runs", lambda f, r: CMP(f, r, write_trace(f / "c.h5", mini_stages(), {"seed": 2})), 2,
         ("provenance field seed differs (1 vs 2)",)),
    Case("tolerance-table-typo", lambda f, r: CMP(f, r, _cand(f, r), "--tolerances", _tol(f, "[overide]\n")), 2,
         ("did you mean override?",)),
    Case("tolerance-field-typo", lambda f, r: CMP(f, r, _cand(f, r), "--tolerances", _tol(f, "[default]\nmultiple_ = 3\n")),
         2, ("did you mean multiple?",)),
    Case("tolerance-too-loose", lambda f, r: CMP(f, r, _cand(f, r), "--tolerances", _tol(f, "[default]\nrel_l2 = 5.0\n")),
         2, ("MAX_REL_L2",)),
    Case("tolerance-glob-matches-nothing", lambda f, r: CMP(f, r, _cand(f, r), "--tolerances", _tol(
        f, '[[override]]\nstage = "cfm/*/stepp_*/x_next"\nmultiple = 8\n')), 2, ("matches no stage of the schema",)),
    Case("tolerance-fifo", lambda f, r: CMP(f, r, _cand(f, r), "--tolerances", _fifo(f, "t.toml")), 2, ("is a FIFO",)),
]


def _plain_h5(f):
    with h5py.File(f / "plain.h5", "w") as h:
        h["x"] = np.zeros(3)
    return f / "plain.h5"


def _old_h5(f):
    return _h5(f, "old.h5", lambda h: h.attrs.__setitem__("format_version", 1))


def _hardlink(src, dst):
    os.link(src, dst)
    return dst


def _symlink(src, dst):
    dst.symlink_to(src)
    return dst


def _nan_ref(f, name="nan-ref.h5"):
    value = mel()
    value[0, :3, 0] = np.nan
    return write_trace(f / name, mini_stages() | {"cfm/seg_00/mel_out": value})


def _complex_ref(f, name="cx.h5"):
    return write_trace(f / name, {"cfm/seg_00/mel_out": (mel() + 1j * mel()[:, ::-1]).astype(np.complex64)})


def _bool_ref(f, name="b.h5", flip=False):
    mask = np.zeros((1, 80, 8), bool)
    mask[0, 5, 5] = flip
    return write_trace(f / name, {"frontend/mel/out": mask})


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(tmp_path, case):
    reference = write_trace(tmp_path / "ref.h5", mini_stages())
    case.run(tmp_path, reference)


def test_corpus_is_large_enough():
    from tests.test_hostile_commands import CASES as MORE

    assert len(CASES) + len(MORE) >= 60
