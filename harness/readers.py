"""Reading a port's tensor dumps (safetensors, npz, a folder of .npy) without trusting what they say.

Every reader parses the file's own declarations first (the npy header, the zip directory, the safetensors
JSON header), checks them against the file's real size and the limits (harness/limits.py), and only then
reads, one tensor at a time. Nothing is ever unpickled: an npy that holds Python objects is refused. So a
200-byte file that declares a terabyte array, a header longer than its file, or a pickle is one line and
exit 2 before any allocation.
"""
from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import limits
from harness.errors import UserError
from harness.files import input_file

#: safetensors dtype names -> numpy (BF16 is read as its bits and widened exactly, see `_widen_bf16`)
_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
              "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?", "C64": "<c8",
              "C128": "<c16"}
#: numpy kinds a tensor may have: bool, integers, floats, complex, byte and unicode strings
_KINDS = "biufcSU"


@dataclass(frozen=True)
class Entry:
    """One tensor a file declares: its shape, its dtype as stored, and how to read it."""

    shape: tuple[int, ...]
    dtype: str  # the dtype the port wrote (e.g. bfloat16, float16), said in the trace
    read: Callable[[], np.ndarray]


def open_tensors(path: Path, what: str = "candidate") -> dict[str, Entry]:
    """The tensors of a port's dump (or a checkpoint) by name, declarations checked, data not yet read."""
    path = input_file(path, what, folder_ok=True)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        limits.check(f"{path}: the number of .npy files", len(files), limits.MAX_TENSORS, "MAX_TENSORS")
        return {f.stem: _npy_file(input_file(f, "tensor file")) for f in files}
    if path.suffix == ".npz":
        return _npz(path)
    if path.suffix == ".safetensors":
        return _safetensors(path)
    if path.suffix == ".npy":
        return {path.stem: _npy_file(path)}
    raise UserError(f"{path}: a candidate is a .h5 trace, a .safetensors file, an .npz, a .npy, or a folder of .npy "
                    "files")


def _check_dtype(dtype: np.dtype, where: str) -> np.dtype:
    if dtype.hasobject:
        raise UserError(f"{where}: holds Python objects (a pickle); refusing to unpickle (save plain arrays)")
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise UserError(f"{where}: dtype {dtype} is not a plain number, bool or string array")
    return dtype


def _npy_header(f, where: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(shape, dtype, fortran order) from an npy header, never unpickling anything."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=10_000)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=10_000)
        else:
            raise ValueError(f"npy format version {version}")
    except (ValueError, OSError, SyntaxError, EOFError, TypeError, struct.error) as exc:
        raise UserError(f"{where}: not a readable .npy ({_first_line(exc)})") from None
    return tuple(shape), _check_dtype(np.dtype(dtype), where), bool(fortran)


def _npy_file(path: Path) -> Entry:
    size = path.stat().st_size
    with open(path, "rb") as f:
        shape, dtype, fortran = _npy_header(f, str(path))
        offset = f.tell()
    nbytes = limits.tensor_bytes(str(path), shape, dtype.itemsize)
    if offset + nbytes > size:
        raise UserError(f"{path}: declares {shape} {dtype} ({nbytes} bytes) but holds {size - offset}; truncated")

    def read() -> np.ndarray:
        if not nbytes:
            return np.zeros(shape, dtype)
        flat = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(nbytes // dtype.itemsize,))
        return flat.reshape(shape, order="F" if fortran else "C")

    return Entry(shape, dtype.name, read)


def _npz(path: Path) -> dict[str, Entry]:
    try:
        z = zipfile.ZipFile(path)
        members = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npz ({_first_line(exc)})") from None
    limits.check(f"{path}: the number of arrays", len(members), limits.MAX_TENSORS, "MAX_TENSORS")
    out = {}
    for info in members:
        if not info.filename.endswith(".npy"):
            continue
        where = f"{path}:{info.filename}"
        try:
            with z.open(info) as f:
                shape, dtype, fortran = _npy_header(f, where)
                offset = f.tell()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise UserError(f"{where}: cannot be read ({_first_line(exc)})") from None
        nbytes = limits.tensor_bytes(where, shape, dtype.itemsize)
        if info.file_size != offset + nbytes:
            raise UserError(f"{where}: declares {shape} {dtype} ({nbytes} bytes) but the archive holds "
                            f"{max(info.file_size - offset, 0)}")
        out[info.filename[: -len(".npy")]] = Entry(shape, dtype.name, _npz_reader(z, info, where, shape, dtype,
                                                                                    fortran, offset, nbytes))
    return out


def _npz_reader(z, info, where, shape, dtype, fortran, offset, nbytes):
    def read() -> np.ndarray:
        try:
            with z.open(info) as f:
                f.read(offset)
                data = f.read(nbytes)  # at most what the header declared, however the member inflates
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise UserError(f"{where}: cannot be read ({_first_line(exc)})") from None
        if len(data) != nbytes:
            raise UserError(f"{where}: holds {len(data)} of the {nbytes} bytes it declares; truncated")
        return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")

    return read


def _safetensors(path: Path) -> dict[str, Entry]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise UserError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        (n,) = struct.unpack("<Q", head)
        limits.check(f"{path}: its JSON header", n, limits.MAX_HEADER_BYTES, "MAX_HEADER_BYTES", "bytes")
        if 8 + n > size:
            raise UserError(f"{path}: declares a {n}-byte header in a {size}-byte file; not a safetensors file")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"{path}: its header is not JSON ({_first_line(exc)})") from None
    if not isinstance(header, dict):
        raise UserError(f"{path}: its header is not a JSON object")
    header.pop("__metadata__", None)
    limits.check(f"{path}: the number of tensors", len(header), limits.MAX_TENSORS, "MAX_TENSORS")
    start = 8 + n
    return {name: _st_entry(path, name, decl, start, size) for name, decl in header.items()}


def _st_entry(path: Path, name: str, decl, start: int, size: int) -> Entry:
    where = f"{path}:{name}"
    if not isinstance(decl, dict) or set(decl) - {"dtype", "shape", "data_offsets"}:
        raise UserError(f"{where}: not a tensor declaration (dtype, shape, data_offsets)")
    kind, shape, offsets = decl.get("dtype"), decl.get("shape"), decl.get("data_offsets")
    if kind not in _ST_DTYPES:
        raise UserError(f"{where}: dtype {kind!r} is not one the harness reads ({', '.join(_ST_DTYPES)})")
    if not isinstance(shape, list) or not (isinstance(offsets, list) and len(offsets) == 2
                                           and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        raise UserError(f"{where}: shape and data_offsets must be lists of integers")
    if any(isinstance(d, bool) for d in shape):
        raise UserError(f"{where}: declares an impossible shape {shape}")
    dtype = np.dtype(_ST_DTYPES[kind])
    nbytes = limits.tensor_bytes(where, shape, dtype.itemsize)
    begin, end = offsets
    if not 0 <= begin <= end or end - begin != nbytes or start + end > size:
        raise UserError(f"{where}: data_offsets {offsets} do not fit {shape} {kind} ({nbytes} bytes) in a "
                        f"{size}-byte file")
    shape = tuple(shape)

    def read() -> np.ndarray:
        count = nbytes // dtype.itemsize
        data = np.memmap(path, dtype=dtype, mode="r", offset=start + begin, shape=(count,)).reshape(shape) if nbytes \
            else np.zeros(shape, dtype)
        return _widen_bf16(data) if kind == "BF16" else data

    return Entry(shape, "bfloat16" if kind == "BF16" else dtype.name, read)


def _widen_bf16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bits -> float32, exactly (bfloat16 is the top half of a float32)."""
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return text
