"""Our semantic codec: `RepCodec.quantize` as infer_v2.py:359 calls it (config.yaml `semantic_codec`, one
factorised vector quantizer).

- encoder: Conv1d(1024, d, 7, pad 3) -> LayerNorm -> ConvNeXt blocks (depthwise conv 7, LayerNorm, Linear,
  exact-erf GELU, Linear, x gamma, residual) -> LayerNorm -> Linear(d, 1024). LayerNorm eps 1e-6.
- in_project: a weight-normed 1x1 conv to 8 dims (z_e). The code is the argmin over the 8192 codewords of the
  squared distance between the l2-normalised z_e and the l2-normalised codewords (a cosine lookup), written
  |e|^2 - 2 e.c + |c|^2. z_q is the raw (not normalised) codeword, passed as z_e + (z_q - z_e) (the
  straight-through sum changes the last bits), then the weight-normed out_project: S_ref [B, T, 1024].
- the margin (second-nearest minus nearest distance) is ours to show: a code that differs where the margin
  is at the noise level is a near-tie, not a bug.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.stages.semantic import CODEC, ENC, SemanticConfig
from reimpl.faults import active
from reimpl.params import Params, linear
from reimpl.semantic.w2v import layer_norm

C = "semantic.codec"
VQ = f"{C}.quantizer.quantizers.0"


def _quiet(_path: str, value: torch.Tensor) -> torch.Tensor:
    return value


def convnext_block(p: Params, name: str, x: torch.Tensor, show, path: str) -> torch.Tensor:
    """x [B, C, T] -> x + gamma * pwconv2(gelu(pwconv1(LN(dwconv(x)))))."""
    h = show(f"{path}/dwconv", F.conv1d(x, p[f"{name}.dwconv.weight"], p[f"{name}.dwconv.bias"], padding=3,
                                        groups=x.shape[1]))
    h = show(f"{path}/norm", layer_norm(p, f"{name}.norm", h.transpose(1, 2), 1e-6))
    h = show(f"{path}/pwconv1", linear(p, f"{name}.pwconv1", h))
    h = show(f"{path}/act", F.gelu(h, approximate="tanh" if active("semantic.codec.gelu_tanh") else "none"))
    h = show(f"{path}/pwconv2", linear(p, f"{name}.pwconv2", h))
    return x + (p[f"{name}.gamma"] * h).transpose(1, 2)


def encoder(p: Params, config: SemanticConfig, x: torch.Tensor, tap) -> torch.Tensor:
    """spk_cond [B, T, 1024] -> [B, T, 1024] (VocosBackbone, then a Linear)."""
    backbone = f"{C}.encoder.0"
    h = tap(f"{ENC}/in", x.transpose(1, 2))
    h = tap(f"{ENC}/embed", F.conv1d(h, p[f"{backbone}.embed.weight"], p[f"{backbone}.embed.bias"], padding=3))
    h = tap(f"{ENC}/norm", layer_norm(p, f"{backbone}.norm", h.transpose(1, 2), 1e-6)).transpose(1, 2)
    for i in range(config.vocos_num_layers):
        path = f"{ENC}/block_{i:02d}"
        h = tap(f"{path}/out", convnext_block(p, f"{backbone}.convnext.{i}", h, tap if i == 0 else _quiet, path))
    h = tap(f"{ENC}/final_norm", layer_norm(p, f"{backbone}.final_layer_norm", h.transpose(1, 2), 1e-6))
    return tap(f"{ENC}/out", linear(p, f"{C}.encoder.1", h))


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(2, dim=1, keepdim=True).clamp_min(1e-12)


def nearest_codewords(p: Params, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z_e [B, D, T] -> (codes [B, T], margin [B, T])."""
    b, d, _ = z_e.shape
    enc = z_e.transpose(1, 2).reshape(-1, d)
    book = p[f"{VQ}.codebook.weight"]
    if not active("semantic.codec.no_l2_normalize"):
        enc, book = _unit_rows(enc), _unit_rows(book)
    dist = enc.pow(2).sum(1, keepdim=True) - 2 * enc @ book.t() + book.pow(2).sum(1, keepdim=True).t()
    best = (-dist).topk(2, dim=1)
    codes = (-dist).argmax(dim=1)
    return codes.view(b, -1), (best.values[:, 0] - best.values[:, 1]).view(b, -1)


def quantize(p: Params, config: SemanticConfig, cond: torch.Tensor, tap) -> tuple[torch.Tensor, torch.Tensor]:
    """spk_cond [B, T, 1024] -> (codes [B, T], S_ref [B, T, 1024])."""
    z = encoder(p, config, cond, tap).transpose(1, 2)
    z_e = tap(f"{CODEC}/z_e", F.conv1d(z, p[f"{VQ}.in_project.weight"], p[f"{VQ}.in_project.bias"]))
    codes, margin = nearest_codewords(p, z_e)
    codes = tap(f"{CODEC}/codes", codes)
    tap(f"{CODEC}/margin", margin)
    z_q = F.embedding(codes, p[f"{VQ}.codebook.weight"]).transpose(1, 2)
    z_q = tap(f"{CODEC}/z_q", z_e + (z_q - z_e))  # the straight-through sum, kept for its rounding
    out = tap(f"{CODEC}/quantized", F.conv1d(z_q, p[f"{VQ}.out_project.weight"], p[f"{VQ}.out_project.bias"]))
    return codes, tap(f"{CODEC}/emb", out.transpose(1, 2))
