"""Checkpoints by upstream parameter name: the seeded default, safetensors files and real s2mel.pth.

Both sides load the same flat `{upstream name: array}` mapping, so a parameter read under the wrong
name or layout shows up as a divergence rather than being hidden by a shared loader object.
The seeded generator draws each tensor from a generator keyed by (seed, name), so a tensor's values
do not depend on which other parameters exist or in what order they are listed.
"""
from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from harness.errors import UserError


#: bump when `generate` changes, so cached seeded checkpoints are made again
GENERATOR_VERSION = 2


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def generate(shapes: dict[str, tuple[int, ...]], seed: int, keep: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Random float32 parameters with scales that keep activations near unit size.

    `keep` holds buffers computed by the model itself (time-embedding frequencies, positions),
    which are stored as they are rather than drawn.
    """
    keep = keep or {}
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        if name in keep:
            out[name] = np.asarray(keep[name])
            continue
        g = _rng(seed, name)
        leaf = name.rsplit(".", 1)[-1]
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        if leaf == "weight_g":
            value = g.uniform(0.7, 1.3, size=shape)
        elif len(shape) == 1 and leaf == "weight":  # norm gains: RMSNorm, GroupNorm
            value = 1.0 + 0.1 * g.standard_normal(shape)
        elif len(shape) == 1:  # biases, norm offsets
            value = 0.05 * g.standard_normal(shape)
        elif "embed" in name or leaf in ("mask_token",):
            value = 0.5 * g.standard_normal(shape)
        else:
            value = g.standard_normal(shape) / np.sqrt(max(fan_in, 1))
            if name.endswith("project_layer.weight"):
                # Adaptive norms: a trained DiT keeps them near identity. At full random scale the flow
                # is chaotic (float32 noise grows from 1e-7 to 1e-3 over 25 steps on `tiny` and swamps
                # any comparison); at 0.2 the final mel's float32 floor stays near 2e-6.
                value *= 0.2
        out[name] = value.astype(np.float32)
    return out


def digest(weights: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(weights):
        h.update(name.encode())
        h.update(np.ascontiguousarray(weights[name]).tobytes())
    return h.hexdigest()[:16]


def save(weights: dict[str, np.ndarray], path: Path) -> None:
    """Write a safetensors file atomically (temporary name, then rename)."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(tmp))
    os.replace(tmp, path)


def load(path: str | Path) -> dict[str, np.ndarray]:
    """A safetensors file, or a directory holding real IndexTTS2 checkpoints (s2mel.pth)."""
    path = Path(path)
    if path.is_dir():
        return load_s2mel_pth(path / "s2mel.pth")
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    try:
        from safetensors.numpy import load_file

        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise UserError(f"{path}: not a readable safetensors checkpoint ({exc})") from None


def load_s2mel_pth(path: Path) -> dict[str, np.ndarray]:
    """Upstream's s2mel.pth: `state['net'][module][param]`, flattened to `module.param`."""
    if not path.exists():
        raise UserError(f"--checkpoints: {path} not found (expected IndexTTS2's s2mel.pth there)")
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(f"{path}: cannot be loaded by torch ({exc})") from None
    out: dict[str, np.ndarray] = {}
    for module, params in state.get("net", {}).items():
        for name, tensor in params.items():
            name = name[len("module.") :] if name.startswith("module.") else name
            out[f"{module}.{name}"] = tensor.detach().float().numpy()
    if not out:
        raise UserError(f"{path}: no 'net' parameters in this checkpoint")
    return out
