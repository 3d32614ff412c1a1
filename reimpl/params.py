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
    """g * v / |v|, the norm over every axis but the first.

    Computed by `torch._weight_norm`, the op upstream's weight_norm hook runs before every forward,
    in the dtype the model runs in: the folded weight is then bit-identical to upstream's (a plain
    `g * v / v.norm(...)` reduces in another order and differs in the last bit).
    """
    return torch._weight_norm(v, g, 0)


def load_params(weights: dict[str, np.ndarray | torch.Tensor], dtype: torch.dtype = torch.float32) -> Params:
    """Upstream names in, upstream names out (`x.weight_g` + `x.weight_v` become `x.weight`).

    Floating tensors are cast to `dtype` before folding, as upstream casts the model before it runs.
    """
    return fold_weight_norms({k: _as_tensor(v, dtype) for k, v in weights.items()})


def fold_weight_norms(raw: Params, fold=None) -> Params:
    """Every `x.weight_g` + `x.weight_v` pair made one `x.weight` by `fold(g, v)` (default: weight norm's own
    formula, `fold_weight_norm`); every other tensor kept as it is."""
    fold = fold or fold_weight_norm
    out: Params = {}
    for name, value in raw.items():
        if name.endswith(".weight_v"):
            continue
        if name.endswith(".weight_g"):
            base = name[: -len("_g")]
            out[base] = fold(value, raw[base + "_v"])
        else:
            out[name] = value
    return out


def _as_tensor(value: np.ndarray | torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(value))
    return t.to(dtype) if t.is_floating_point() else t


def linear(p: Params, prefix: str, x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.linear(x, p[prefix + ".weight"], p.get(prefix + ".bias"))


def conv1d(p: Params, prefix: str, x: torch.Tensor, padding: int = 0) -> torch.Tensor:
    return torch.nn.functional.conv1d(x, p[prefix + ".weight"], p.get(prefix + ".bias"), padding=padding)
