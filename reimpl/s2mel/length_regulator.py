"""The length regulator: content features at the code rate -> a condition at the mel frame rate.

Upstream (InterpolateRegulator, continuous input): Linear(C_in -> C) on the features, nearest
interpolation to the mel length, four blocks of Conv1d(k3) -> GroupNorm(1 group) -> Mish, a final
1x1 Conv1d, and the sequence mask.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.stages.s2mel import S2MelConfig
from reimpl import faults
from reimpl.params import Params, conv1d, linear

P = "length_regulator"


def _norm(p: Params, index: int, x: torch.Tensor) -> torch.Tensor:
    w, b = p[f"{P}.model.{index}.weight"], p[f"{P}.model.{index}.bias"]
    if faults.active("s2mel.length_regulator.layer_norm"):
        # the port's bug: normalise each frame over channels only
        return F.layer_norm(x.transpose(1, 2), (x.shape[1],), w, b, eps=1e-5).transpose(1, 2)
    # one group: statistics over channels and time together, then a per-channel affine
    return F.group_norm(x, 1, w, b, eps=1e-5)


def _conv_blocks(p: Params, cfg: S2MelConfig, x: torch.Tensor, at: str, tap) -> torch.Tensor:
    for k in range(len(cfg.lr_sampling_ratios)):
        x = tap(f"{at}/block_{k}/conv", conv1d(p, f"{P}.model.{3 * k}", x, padding=1))
        x = tap(f"{at}/block_{k}/norm", _norm(p, 3 * k + 1, x))
        x = tap(f"{at}/block_{k}/out", F.mish(x))
    return x


def run_length_regulator(p: Params, cfg: S2MelConfig, content: torch.Tensor, ylen: int, at: str, tap) -> torch.Tensor:
    """content [B, T_codes, C_in] -> condition [B, ylen, C]; `at` is the half's stage prefix."""
    content = tap(f"{at}/in", content)
    x = tap(f"{at}/proj", linear(p, f"{P}.content_in_proj", content))
    x = x.transpose(1, 2)  # B C T
    if faults.active("s2mel.length_regulator.conv_before_interp"):
        x = _conv_blocks(p, cfg, x, at, tap)
        x = tap(f"{at}/interp", F.interpolate(x, size=ylen, mode="nearest"))
    else:
        x = tap(f"{at}/interp", F.interpolate(x, size=ylen, mode="nearest"))
        x = _conv_blocks(p, cfg, x, at, tap)
    n_blocks = len(cfg.lr_sampling_ratios)
    x = tap(f"{at}/out_conv", conv1d(p, f"{P}.model.{3 * n_blocks}", x))
    # sequence_mask(ylens): every frame of x is valid for B = 1 (x may hold another length where a teacher-forced
    # run gave it the reference's interpolation)
    mask = (torch.arange(x.shape[-1]) < ylen).to(x.dtype)[None, :, None]
    return tap(f"{at}/out", x.transpose(1, 2) * mask)
