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


def load(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        from safetensors.numpy import load_file

        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise UserError(f"{path}: not a readable safetensors checkpoint ({str(exc).splitlines()[0][:160]})") from None
