"""BigVGAN v2 generator: one segment's mel [B, 80, T] -> wave [B, 256 T] in [-1, 1].

Facts a port must match:
- Every conv is weight-normalised in the checkpoint (`weight_g`, `weight_v`; the norm over every axis but
  the first: per output channel for Conv1d, per *input* channel for ConvTranspose1d, whose weight is
  [in, out, k]); infer_v2 folds them once before running (`remove_weight_norm`, infer_v2.py:214).
- conv_pre: Conv1d(80 -> C, k 7, pad 3).
- Per upsampling stage i (rates 4 4 2 2 2 2, kernels 8 8 4 4 4 4): ConvTranspose1d(C/2^i -> C/2^(i+1), k,
  stride u, padding (k - u) / 2), exactly u x the length; then three AMP blocks (kernels 3, 7, 11) on that
  same input, their outputs added in order and divided by 3. AMP block k of stage i is `resblocks[3 i + k]`.
- An AMP block: per dilation d (1, 3, 5), x += conv2(act2(conv1(act1(x)))), conv1 dilated (pad (k d - d)/2),
  conv2 undilated; its six activations interleave: layer l uses activations 2 l and 2 l + 1.
- After the last stage: the anti-aliased activation, conv_post Conv1d(C -> 1, k 7, pad 3, no bias), and a
  clamp to [-1, 1] (`use_tanh_at_final: false`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.stages.vocoder import VocoderConfig
from reimpl import faults
from reimpl.params import Params, fold_weight_norms
from reimpl.vocoder.activations import anti_aliased_snake

P = "bigvgan"


def fold_weights(raw: Params) -> Params:
    """Upstream names in, `x.weight_g` + `x.weight_v` folded into `x.weight` (dim 0 for every layer: for a
    ConvTranspose1d that is its input channel, as upstream's weight_norm normalises it)."""
    if faults.active("vocoder.bigvgan.weight_norm_unfolded"):
        return fold_weight_norms(raw, fold=lambda _g, v: v)  # the port's bug: the stored direction as the weight
    return fold_weight_norms(raw)


def _conv(p: Params, name: str, x: torch.Tensor, padding: int, dilation: int = 1) -> torch.Tensor:
    return F.conv1d(x, p[f"{P}.{name}.weight"], p.get(f"{P}.{name}.bias"), padding=padding, dilation=dilation)


def _same(kernel: int, dilation: int) -> int:
    return (kernel * dilation - dilation) // 2


def upsample(p: Params, index: int, rate: int, kernel: int, x: torch.Tensor) -> torch.Tensor:
    if faults.active("vocoder.bigvgan.convtranspose_padding"):
        padding = kernel // 2  # the port's bug: "same"-style padding, u samples short and shifted by u/2
    else:
        padding = (kernel - rate) // 2
    name = f"{P}.ups.{index}.0"
    return F.conv_transpose1d(x, p[name + ".weight"], p[name + ".bias"], stride=rate, padding=padding)


def amp_block(p: Params, index: int, kernel: int, dilations: tuple[int, ...], x: torch.Tensor, tap,
              at: str | None) -> torch.Tensor:
    """`resblocks[index]` on x; `at` is its stage prefix when it is recorded in detail, else None."""
    block = f"{P}.resblocks.{index}"
    for layer, d in enumerate(dilations):
        here = f"{at}/layer_{layer}" if at else None
        record = tap if at else _unrecorded
        y = anti_aliased_snake(p, f"{block}.activations.{2 * layer}", x, tap, here and here + "/act1")
        y = record(f"{here}/conv1", _conv(p, f"resblocks.{index}.convs1.{layer}", y, _same(kernel, d), d))
        y = anti_aliased_snake(p, f"{block}.activations.{2 * layer + 1}", y, tap, here and here + "/act2")
        y = record(f"{here}/conv2", _conv(p, f"resblocks.{index}.convs2.{layer}", y, _same(kernel, 1)))
        x = record(f"{here}/out", y + x)
    return x


def _unrecorded(_path: str, value: torch.Tensor) -> torch.Tensor:
    return value


def generator(p: Params, cfg: VocoderConfig, mel: torch.Tensor, at: str, tap) -> torch.Tensor:
    """One segment: mel [B, 80, T] -> the clamped wave [B, S]; `at` is the segment's prefix (`vocoder/seg_00`)."""
    x = tap(f"{at}/conv_pre", _conv(p, "conv_pre", mel, padding=3))
    kernels, dilations = cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes
    detailed = cfg.detailed_resblocks
    for i, (rate, kernel) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
        x = tap(f"{at}/up_{i:02d}", upsample(p, i, rate, kernel, x))
        total = None
        for k, (size, dil) in enumerate(zip(kernels, dilations)):
            index = i * len(kernels) + k
            y = amp_block(p, index, size, dil, x, tap, f"{at}/resblock_{index:02d}" if index in detailed else None)
            total = y if total is None else total + y  # in block order, as upstream adds them
        x = tap(f"{at}/amp_{i:02d}", total if faults.active("vocoder.bigvgan.amp_sum") else total / len(kernels))
    x = tap(f"{at}/act_post", anti_aliased_snake(p, f"{P}.activation_post", x, tap, None))
    x = tap(f"{at}/conv_post", _conv(p, "conv_post", x, padding=3))
    if faults.active("vocoder.bigvgan.tanh_final"):
        x = torch.tanh(x)  # the port's bug: BigVGAN v1's ending
    else:
        x = torch.clamp(x, -1.0, 1.0)
    return tap(f"{at}/wav", x[:, 0])
