"""Property-based tests of every reader of outside input: traces, maps, npz/npy and safetensors.

Two properties each: what a well-formed writer produces reads back exactly, and anything else (random
bytes, a valid file cut or with bytes flipped, random declarations) is either read or refused as bad
input (`UserError`, exit 2) - never another exception, never a hang, never an allocation beyond what the
file declares within the limits.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harness.errors import UserError
from harness.mapfile import load_map
from harness.readers import open_tensors
from harness.trace import Trace, TraceWriter

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

dtypes = st.sampled_from(["<f4", "<f8", "<f2", "<i8", "<i4", "|u1", "|b1", "<c8", "|S3"])
arrays = dtypes.flatmap(lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)))


def _read_all(path: Path) -> dict[str, np.ndarray]:
    return {name: np.array(entry.read()) for name, entry in open_tensors(path).items()}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def _mutations():
    """A way to damage a file: cut it, flip bytes, or both."""
    return st.tuples(st.floats(0, 1), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=6))


def _damage(data: bytes, how) -> bytes:
    cut, flips = how
    out = bytearray(data[: max(0, int(len(data) * cut))] if cut < 0.95 else data)
    for where, value in flips:
        if out:
            out[min(int(where * len(out)), len(out) - 1)] = value
    return bytes(out)


def _only_user_errors(read, path: Path) -> None:
    try:
        read(path)
    except UserError:
        pass


@SETTINGS
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_.]{0,8}", fullmatch=True), arrays, min_size=1, max_size=4))
def test_npz_roundtrip(tmp_path_factory, tensors):
    path = tmp_path_factory.mktemp("npz") / "t.npz"
    np.savez(path, **tensors)
    back = _read_all(path)
    assert back.keys() == tensors.keys() and all(_same(back[k], tensors[k]) for k in tensors)


@SETTINGS
@given(arrays, st.booleans())
def test_npy_roundtrip(tmp_path_factory, array, fortran):
    path = tmp_path_factory.mktemp("npy") / "t.npy"
    np.save(path, np.array(array, order="F" if fortran else "C"))
    assert _same(_read_all(path)["t"], array)


@SETTINGS
@given(st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), arrays.filter(lambda a: a.dtype.kind != "S"),
                       min_size=1, max_size=3), _mutations())
def test_damaged_npz_is_read_or_refused(tmp_path_factory, tensors, how):
    buf = io.BytesIO()
    np.savez(buf, **tensors)
    path = tmp_path_factory.mktemp("bad") / "t.npz"
    path.write_bytes(_damage(buf.getvalue(), how))
    _only_user_errors(_read_all, path)


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from([".npz", ".npy", ".safetensors"]))
def test_random_bytes_are_refused(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("raw") / f"t{suffix}"
    path.write_bytes(data)
    _only_user_errors(_read_all, path)


@SETTINGS
@given(st.lists(st.integers(-3, 1 << 45), max_size=5), st.sampled_from(["<f4", "|O", "<V8", "|b1", "<c16"]))
def test_npz_declaring_any_shape_is_read_or_refused(tmp_path_factory, shape, descr):
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 64
    path = tmp_path_factory.mktemp("decl") / "t.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", npy)
    _only_user_errors(_read_all, path)


st_dtypes = st.sampled_from(["F32", "F64", "F16", "BF16", "I64", "I8", "U8", "BOOL", "C64", "F12", 3, None])
st_decl = st.fixed_dictionaries({"dtype": st_dtypes, "shape": st.lists(st.integers(-2, 1 << 40), max_size=4),
                                 "data_offsets": st.lists(st.integers(-5, 1 << 40), min_size=0, max_size=3)})


@SETTINGS
@given(st.dictionaries(st.text(max_size=5), st_decl | st.integers() | st.none(), max_size=4), st.binary(max_size=64),
       st.one_of(st.none(), st.integers(0, 1 << 63)))
def test_safetensors_with_any_header_is_read_or_refused(tmp_path_factory, header, data, declared):
    text = json.dumps(header).encode()
    n = len(text) if declared is None else declared
    path = tmp_path_factory.mktemp("st") / "t.safetensors"
    path.write_bytes(n.to_bytes(8, "little") + text + data)
    _only_user_errors(_read_all, path)


@SETTINGS
@given(st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                       arrays.filter(lambda a: a.dtype.kind in "fiub" and a.dtype != np.float16), min_size=1, max_size=3))
def test_safetensors_roundtrip(tmp_path_factory, tensors):
    from safetensors.numpy import save_file

    path = tmp_path_factory.mktemp("st") / "t.safetensors"
    save_file({k: np.require(v, requirements="C") for k, v in tensors.items()}, str(path))  # 0-d stays 0-d
    back = _read_all(path)
    assert all(_same(back[k], tensors[k]) for k in tensors)


# ---- maps ---------------------------------------------------------------------------------------------

toml_values = st.one_of(st.text(max_size=40), st.integers(-5, 5), st.booleans(), st.lists(st.text(max_size=12), max_size=3),
                        st.sampled_from(["cfm/seg_00/step_{step}/dit/velocity", "cfm/seg_{seg}/mel_out", "B C T", "B T C",
                                         "cond", "both", "none", "step{step}.v", "{blok}", "slice_time:1:", "squeeze:0"]))
toml_keys = st.sampled_from(["name", "stage", "layout", "half", "transforms", "count_from", "layuot", "x"])


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else str(value)


@SETTINGS
@given(st.lists(st.dictionaries(toml_keys, toml_values, max_size=7), max_size=4), st.sampled_from(["tensor", "tensors"]))
def test_any_map_is_loaded_or_refused_in_one_line(tmp_path_factory, entries, table):
    text = "".join(f"[[{table}]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in e.items()) + "\n" for e in entries)
    path = tmp_path_factory.mktemp("map") / "m.toml"
    path.write_text(text)
    try:
        for e in load_map(path):
            e.pattern()
    except UserError as exc:
        assert "\n" not in str(exc)


@SETTINGS
@given(st.binary(max_size=200))
def test_map_of_random_bytes_is_refused(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("map") / "m.toml"
    path.write_bytes(data)
    _only_user_errors(load_map, path)


# ---- traces -------------------------------------------------------------------------------------------

def _text(n: int):
    # HDF5 strings hold no NUL and are UTF-8: no lone surrogate (h5py cannot write one, so no trace holds one)
    return st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=n)


def _small_trace(path: Path) -> bytes:
    with TraceWriter(path, {"config": "tiny", "seed": 1}) as w:
        w.write("frontend/mel/out", np.arange(80 * 4, dtype=np.float32).reshape(1, 80, 4))
        w.write("cfm/seg_00/t_span", np.linspace(0, 1, 4, dtype=np.float32))
    return path.read_bytes()


def _read_trace(path: Path) -> None:
    with Trace(path) as t:
        for s in t.stages():
            t.read(s.path)


@SETTINGS
@given(_mutations())
def test_damaged_trace_is_read_or_refused(tmp_path_factory, how):
    folder = tmp_path_factory.mktemp("trace")
    data = _small_trace(folder / "good.h5")
    bad = folder / "bad.h5"
    bad.write_bytes(_damage(data, how))
    _only_user_errors(_read_trace, bad)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["format", "format_version", "complete", "provenance", "floors"]),
                       st.one_of(_text(20), st.integers(-3, 3), st.booleans(), st.just("{}")), max_size=5),
       st.dictionaries(st.sampled_from(["layout", "cfg", "order", "kind", "floor_prop_rmse", "floor_local_rel"]),
                       st.one_of(_text(10), st.integers(-3, 1 << 40), st.floats()), max_size=4))
def test_trace_with_any_attributes_is_read_or_refused(tmp_path_factory, root, stage):
    path = tmp_path_factory.mktemp("attrs") / "t.h5"
    _small_trace(path)
    with h5py.File(path, "r+") as f:
        f.attrs.update(root)
        f["frontend/mel/out"].attrs.update(stage)
    _only_user_errors(_read_trace, path)
