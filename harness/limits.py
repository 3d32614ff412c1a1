"""Every limit the harness puts on what it reads and what it is asked, in one place, each with its name.

Why limits at all: a trace, a dump or a map may come from anywhere (a port's CI artefact, a bug report).
A 200-byte npz may declare a terabyte array, an HDF5 dataset may claim a shape no disk holds, a map file
may be a FIFO that never ends. The harness checks what a file *declares* against these limits before
reading it, so hostile or broken input is one line and exit 2, never an exhausted machine.

Every error a limit raises names the limit (`limit_error`), and the two that a real-size run can
legitimately reach are environment variables.
"""
from __future__ import annotations

import os

from harness.errors import UserError

GIB = 1 << 30
ENV_TENSOR_GB = "INDEXTTS_PARITY_MAX_TENSOR_GB"


def _env_gb(name: str, default: float) -> int:
    text = os.environ.get(name, "")
    try:
        value = float(text) if text else default
    except ValueError:
        raise UserError(f"${name} = {text!r} is not a number of GiB") from None
    if not 0 < value <= 1 << 20:
        raise UserError(f"${name} = {text!r} must be between 0 and {1 << 20} (GiB)")
    return int(value * GIB)


def max_tensor_bytes() -> int:
    """The largest single tensor read into memory (a full-size stage is a few MB; the whole-run audio tens)."""
    return _env_gb(ENV_TENSOR_GB, 4.0)


#: tensors (datasets, npz members, safetensors entries) in one file; a full-detail real-size trace holds ~5000
MAX_TENSORS = 200_000
#: axes of one tensor
MAX_NDIM = 16
#: a map or tolerance file (TOML text)
MAX_TEXT_BYTES = 16 << 20
#: a safetensors JSON header (the safetensors library's own limit)
MAX_HEADER_BYTES = 100 << 20
#: [[tensor]] entries in a map, [[override]] entries in a tolerance file
MAX_ENTRIES = 10_000
#: command-line numbers
MAX_STEPS = 1000
MAX_SEED = 2**32 - 1
MAX_ROWS = 1_000_000
#: tolerance-file numbers (a rule looser than these passes anything and is no rule)
MAX_MULTIPLE = 1e6
MAX_ULPS = 1e6
MAX_REL_L2 = 1.0
MAX_ATOL = 1e6


def limit_error(what: str, value, limit, name: str, unit: str = "") -> UserError:
    """The one shape of a limit's error: what, how big, the limit and its name."""
    return UserError(f"{what} is {_size(value, unit)}, over the limit of {_size(limit, unit)} ({name})")


def check(what: str, value, limit, name: str, unit: str = "") -> None:
    if value > limit:
        raise limit_error(what, value, limit, name, unit)


def _size(value, unit: str) -> str:
    if unit != "bytes":
        return f"{value:g}{unit and ' ' + unit}" if isinstance(value, float) else f"{value}{unit and ' ' + unit}"
    for suffix, size in (("TiB", 1 << 40), ("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f} {suffix}"
    return f"{value} bytes"


def tensor_bytes(what: str, shape, itemsize: int) -> int:
    """Bytes a declared shape needs; over the limit (or an impossible shape) is bad input, before any read."""
    shape = tuple(shape)
    check(f"{what}: its number of axes", len(shape), MAX_NDIM, "MAX_NDIM")
    if any((not isinstance(n, int)) or n < 0 for n in shape):
        raise UserError(f"{what}: declares an impossible shape {shape}")
    n = 1
    for d in shape:
        n *= d
    size = n * int(itemsize)
    if size > max_tensor_bytes():
        raise UserError(f"{what}: declares shape {shape} ({_size(size, 'bytes')}), over the per-tensor limit of "
                        f"{_size(max_tensor_bytes(), 'bytes')} (${ENV_TENSOR_GB} raises it)")
    return size
