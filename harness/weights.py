"""Checkpoint files by upstream parameter name, one safetensors file per part: read, written, hashed.

Torch-free: the harness records and compares checkpoint digests without importing a model. Seeded
weights are generated on the reference side (reference_hooks/weights.py, from upstream's own modules).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from harness.errors import UserError
from harness.files import atomic


def digest(weights: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(weights):
        h.update(name.encode())
        h.update(np.ascontiguousarray(weights[name]).tobytes())
    return h.hexdigest()[:16]


def save(weights: dict[str, np.ndarray], path: Path) -> None:
    """Write a safetensors file atomically (unique temporary name, then rename)."""
    from safetensors.numpy import save_file

    with atomic(path) as tmp:
        # np.require keeps 0-d tensors 0-d (ascontiguousarray would make them [1]): BN step counters are 0-d
        save_file({k: np.require(v, requirements="C") for k, v in weights.items()}, str(tmp))


#: which part owns each module of upstream's s2mel checkpoint (`state['net'][module]`)
S2MEL_OWNERS = {"length_regulator": "s2mel", "gpt_layer": "s2mel", "cfm": "cfm"}


def load_flat(path: Path) -> dict[str, np.ndarray]:
    """A flat checkpoint (safetensors or npz: plain arrays only, never a pickle) by parameter name."""
    from harness.readers import open_tensors

    return {name: np.array(entry.read(), dtype=np.float32) for name, entry in open_tensors(path, "checkpoint").items()}


def split_s2mel(flat: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """`<module>.<param>` names of upstream's s2mel checkpoint, split into our parts' weights."""
    parts: dict[str, dict[str, np.ndarray]] = {"s2mel": {}, "cfm": {}}
    for name, value in flat.items():
        module = name.split(".", 1)[0]
        if module in S2MEL_OWNERS:
            parts[S2MEL_OWNERS[module]][name.replace(f"{module}.module.", f"{module}.", 1)] = value
    if not parts["cfm"]:
        raise UserError("the checkpoint holds no cfm.* parameters (names are <module>.<param>, as in s2mel.pth's net)")
    return parts


def load(path: str | Path) -> dict[str, np.ndarray]:
    """A safetensors checkpoint, its header checked before any tensor is read (harness/readers.py)."""
    from harness.readers import open_tensors

    path = Path(path)
    if path.suffix != ".safetensors":
        raise UserError(f"{path}: a checkpoint here is a .safetensors file")
    return {name: np.array(entry.read()) for name, entry in open_tensors(path, "checkpoint").items()}
