"""The WaveNet stack of the DiT's final layer: gated dilated convolutions conditioned on time.

Upstream's WN uses weight-normalised SConv1d layers, which pad with *reflection* (not zeros) so that
the output keeps the input length; a port that zero-pads differs at the first and last frames.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.stages.cfm import CfmConfig
from reimpl.params import Params

W = "cfm.estimator.wavenet"


def reflect_conv(p: Params, prefix: str, x: torch.Tensor, dilation: int = 1) -> torch.Tensor:
    """A stride-1 convolution, reflect-padded to keep the length (the longer pad on the left)."""
    weight = p[f"{prefix}.conv.conv.weight"]
    span = (weight.shape[-1] - 1) * dilation
    left, right = span - span // 2, span // 2
    if span:
        x = F.pad(x, (left, right), mode="reflect")
    return F.conv1d(x, weight, p[f"{prefix}.conv.conv.bias"], dilation=dilation)


def run_wavenet(p: Params, cfg: CfmConfig, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor,
                at: str, tap) -> torch.Tensor:
    """x [B, H, T], mask [B, 1, T], g [B, H, 1] (the time condition) -> the masked sum of skips."""
    hidden = cfg.wavenet_hidden
    cond = reflect_conv(p, f"{W}.cond_layer", g)
    out = torch.zeros_like(x)
    for i in range(cfg.wavenet_layers):
        h = reflect_conv(p, f"{W}.in_layers.{i}", x, dilation=cfg.wavenet_dilation**i)
        a = h + cond[:, 2 * hidden * i : 2 * hidden * (i + 1)]
        acts = torch.tanh(a[:, :hidden]) * torch.sigmoid(a[:, hidden:])
        res_skip = tap(f"{at}/wavenet/layer_{i}", reflect_conv(p, f"{W}.res_skip_layers.{i}", acts))
        if i < cfg.wavenet_layers - 1:
            x = (x + res_skip[:, :hidden]) * mask
            out = out + res_skip[:, hidden:]
        else:
            out = out + res_skip
    return tap(f"{at}/wavenet/out", out * mask)
