"""The DiT's FinalLayer: an adaptive LayerNorm modulation by the time embedding, then a Linear.

Facts a port must match: (shift, scale) = Linear(SiLU(t1)).chunk(2) in that order, a LayerNorm without
affine (eps 1e-6), `x * (1 + scale) + shift`, then a weight-normalised Linear.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from reimpl import faults
from reimpl.params import Params, linear

PREFIX = "cfm.estimator.final_layer"


def final_layer(p: Params, x: torch.Tensor, t1: torch.Tensor, at: str, tap) -> torch.Tensor:
    """x [B, T, H] modulated by t1 [B, H]; `at` is the DiT's stage prefix of this step."""
    x = tap(f"{at}/final_layer/in", x)
    c = tap(f"{at}/final_layer/silu", t1 if faults.active("cfm.final_layer.no_silu") else F.silu(t1))
    first, second = linear(p, f"{PREFIX}.adaLN_modulation.1", c).chunk(2, dim=1)
    swapped = faults.active("cfm.final_layer.scale_shift_swapped")
    shift, scale = (second, first) if swapped else (first, second)
    shift = tap(f"{at}/final_layer/shift", shift)
    scale = tap(f"{at}/final_layer/scale", scale)
    normed = tap(f"{at}/final_layer/norm", F.layer_norm(x, (x.shape[-1],), eps=1e-6))
    if faults.active("cfm.final_layer.no_one_plus"):
        modulated = normed * scale[:, None] + shift[:, None]
    else:
        modulated = normed * (1 + scale[:, None]) + shift[:, None]
    modulated = tap(f"{at}/final_layer/modulated", modulated)
    return tap(f"{at}/final_layer/out", linear(p, f"{PREFIX}.linear", modulated))
