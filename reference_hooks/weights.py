"""Checkpoints by upstream parameter name: seeded per part, or read from real IndexTTS2 checkpoints.

Both sides load the same flat `{upstream name: array}` mapping per part, so a parameter read under the
wrong name or layout shows up as a divergence rather than being hidden by a shared loader object. The
seeded generator draws each tensor from a generator keyed by (seed, name), so a tensor's values do not
depend on which other parameters exist or in what order they are listed; names and shapes come from
upstream's own modules.
"""
from __future__ import annotations

import re
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch

from harness.errors import UserError
from harness.files import input_file

#: bump when `generate` changes, so cached seeded checkpoints are made again
GENERATOR_VERSION = 4


def rng_for(seed: int, name: str) -> np.random.Generator:
    """The generator of one parameter: keyed by (seed, name), so it does not depend on the other parameters."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def generate(shapes: dict[str, tuple[int, ...]], seed: int, keep: dict[str, np.ndarray] | None = None
             ) -> dict[str, np.ndarray]:
    """Random float32 parameters, every one away from its identity initialisation, activations near unit size.

    Norm gains are 1 + 0.1 N(0, 1) and biases 0.05 N(0, 1) (a port that drops an affine or a bias shows it),
    weight-norm gains uniform in [0.7, 1.3], variances uniform in [0.5, 1.5] (batch-norm statistics),
    matrices N(0, 1/fan_in). `keep` holds buffers computed by the model itself (time-embedding frequencies,
    positions), stored as they are rather than drawn.
    """
    keep = keep or {}
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        if name in keep:
            out[name] = np.asarray(keep[name])
            continue
        g = rng_for(seed, name)
        leaf = name.rsplit(".", 1)[-1]
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        if leaf == "weight_g":
            value = g.uniform(0.7, 1.3, size=shape)
        elif leaf in ("running_var", "var"):  # variances (batch-norm statistics, feature statistics) stay > 0
            value = g.uniform(0.5, 1.5, size=shape)
        elif len(shape) == 1 and leaf == "weight":  # norm gains: RMSNorm, GroupNorm
            value = 1.0 + 0.1 * g.standard_normal(shape)
        elif len(shape) == 1:  # biases, norm offsets
            value = 0.05 * g.standard_normal(shape)
        elif "embed" in name or leaf in ("mask_token",):
            value = 0.5 * g.standard_normal(shape)
        else:
            value = g.standard_normal(shape) / np.sqrt(max(fan_in, 1))
            if name.endswith("project_layer.weight"):
                # Adaptive norms: a trained DiT keeps them near identity. At full random scale the flow is
                # chaotic (float32 noise grows from 1e-7 to 1e-3 over 25 steps on `tiny` and swamps any
                # comparison); at 0.2 the final mel's float32 floor stays near 2e-6.
                value *= 0.2
        out[name] = value.astype(np.float32)
    return out


def seeded_from(module: torch.nn.Module, prefix: str, seed: int, keep_suffixes: tuple[str, ...] = (),
                generator=generate) -> dict:
    """Seeded weights named as upstream names them (`prefix.` + the module's own names); `generator` is
    `generate` unless a part needs its own rule (CAMPPlus's batch-norm statistics)."""
    state = module.state_dict()
    shapes = {f"{prefix}.{k}": tuple(v.shape) for k, v in state.items()}
    keep = {f"{prefix}.{k}": v.numpy() for k, v in state.items() if k.endswith(keep_suffixes)} if keep_suffixes else {}
    return generator(shapes, seed, keep)


def load_into(module: torch.nn.Module, weights: dict[str, np.ndarray], prefix: str, dtype: torch.dtype) -> None:
    """Load `prefix.*` into an upstream module; every parameter and buffer must be present with its shape.

    (Upstream's own `load_checkpoint2` skips keys whose shape differs with only a warning; we count.)
    """
    own = module.state_dict()
    state = {k[len(prefix) + 1 :]: torch.from_numpy(np.asarray(v)) for k, v in weights.items()
             if k.startswith(prefix + ".")}
    missing = sorted(set(own) - set(state))
    wrong = sorted(k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or wrong:
        detail = (f"missing {missing[:3]}" if missing else "") + (f" wrong shape {wrong[:3]}" if wrong else "")
        raise UserError(f"checkpoint does not fit upstream's {prefix}: {detail.strip()}")
    module.load_state_dict({k: state[k] for k in own}, strict=True)
    module.to(dtype)


def as_array(tensor: torch.Tensor) -> np.ndarray:
    """A checkpoint's tensor as our weights hold it: floats in float32 (a half-precision release is widened), other
    dtypes (positions, counters) as they are."""
    tensor = tensor.detach()
    return (tensor.float() if tensor.is_floating_point() else tensor).numpy()


def load_s2mel_pth(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Upstream's s2mel.pth (`state['net'][module][param]`), as our parts' weights: s2mel and cfm.

    Loaded with `weights_only=True`: a checkpoint that needs arbitrary unpickling is refused, never run.
    """
    if not path.exists():
        raise UserError(f"--checkpoints: {path} not found (expected IndexTTS2's s2mel.pth, or s2mel.safetensors, there)")
    input_file(path, "--checkpoints")  # a regular file: a FIFO or device would block or feed torch.load forever
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr; the verdict is below
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an unpickling error names what the file would have run
        if "Weights only load failed" not in str(exc):
            raise UserError(f"{path}: not a readable torch checkpoint ({str(exc).splitlines()[0][:160]})") from None
        what = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        why = f"it would run {what.group(1)}" if what else "it holds objects beyond tensors"
        raise UserError(f"{path}: refused: a checkpoint is read with torch.load(weights_only=True) and this one needs "
                        f"arbitrary unpickling ({why}); convert it to safetensors (s2mel.safetensors)") from None
    parts: dict[str, dict[str, np.ndarray]] = {"s2mel": {}, "cfm": {}}
    owner = {"length_regulator": "s2mel", "gpt_layer": "s2mel", "cfm": "cfm"}
    for module, params in (state.get("net", {}) if isinstance(state, dict) else {}).items():
        if module not in owner:
            continue
        for name, tensor in params.items():
            name = name[len("module.") :] if name.startswith("module.") else name
            parts[owner[module]][f"{module}.{name}"] = as_array(tensor)
    if not parts["cfm"]:
        raise UserError(f"{path}: no 'net' parameters of the CFM in this checkpoint")
    return parts


def load_torch(path: Path, what: str = "--checkpoints") -> object:
    """A user's torch file, a regular file loaded with `weights_only=True`: one that needs arbitrary unpickling is
    refused in one line, never run."""
    input_file(path, what)  # a FIFO or device would block or feed torch.load forever
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an unpickling error names what the file would have run
        raise UserError(f"{path}: cannot be loaded safely by torch (weights_only=True): "
                        f"{str(exc).splitlines()[0][:200]}") from None


def load_campplus_bin(path: Path) -> dict[str, np.ndarray]:
    """funasr's campplus_cn_common.bin (a plain state dict, infer_v2.py:205) as the style part's weights,
    named `campplus.*`; loaded with `weights_only=True`."""
    state = load_torch(path)
    if not isinstance(state, dict) or not state:
        raise UserError(f"{path}: not a CAMPPlus state dict")
    return {f"campplus.{k}": as_array(v) for k, v in state.items() if isinstance(v, torch.Tensor)}
