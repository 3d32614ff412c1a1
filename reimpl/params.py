"""Parameters by upstream name, as plain tensors, with weight normalisation folded in.

Upstream stores weight-normalised layers as `weight_g` (per output channel gain) and `weight_v`
(direction); the effective weight is g * v / |v| with the norm over every axis but the first.
Folding once at load time keeps the model code free of that detail.
"""
from __future__ import annotations

import numpy as np
import torch

Params = dict[str, torch.Tensor]


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    norm = v.flatten(1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
    return g * v / norm


def load_params(weights: dict[str, np.ndarray | torch.Tensor], dtype: torch.dtype = torch.float32) -> Params:
    """Upstream names in, upstream names out (`x.weight_g` + `x.weight_v` become `x.weight`)."""
    raw = {k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()}
    out: Params = {}
    for name, value in raw.items():
        if name.endswith(".weight_v"):
            continue
        if name.endswith(".weight_g"):
            base = name[: -len("_g")]
            out[base] = fold_weight_norm(value.double(), raw[base + "_v"].double())
        else:
            out[name] = value
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in out.items()}


def linear(p: Params, prefix: str, x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.linear(x, p[prefix + ".weight"], p.get(prefix + ".bias"))


def conv1d(p: Params, prefix: str, x: torch.Tensor, padding: int = 0) -> torch.Tensor:
    return torch.nn.functional.conv1d(x, p[prefix + ".weight"], p.get(prefix + ".bias"), padding=padding)
