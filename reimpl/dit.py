"""The DiT velocity estimator: time embeddings, the input merge, the transformer, the long skip,
the WaveNet final stage and the FinalLayer.

FinalLayer facts a port must match: (shift, scale) = Linear(SiLU(t1)).chunk(2) in that order, a
LayerNorm without affine (eps 1e-6), `x * (1 + scale) + shift`, then a weight-normalised Linear.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harness.configs import S2MelConfig
from harness.schema import dit_path
from reimpl import faults
from reimpl.params import Params, conv1d, linear
from reimpl.transformer import key_mask, run_transformer
from reimpl.wavenet import run_wavenet

E = "cfm.estimator"


def timestep_embedding(p: Params, prefix: str, t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """Sinusoid of 1000 t at 128 frequencies, cos then sin, through Linear-SiLU-Linear."""
    freqs = p.get(f"{prefix}.freqs")  # the checkpoint's buffer, as upstream reads it
    if freqs is None:
        half = dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    freqs = freqs.to(p[f"{prefix}.mlp.0.weight"].dtype)
    args = 1000 * t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return linear(p, f"{prefix}.mlp.2", F.silu(linear(p, f"{prefix}.mlp.0", emb)))


def final_layer(p: Params, x: torch.Tensor, t1: torch.Tensor, step: int, tap) -> torch.Tensor:
    prefix = f"{E}.final_layer"
    c = t1 if faults.active("final_layer.no_silu") else F.silu(t1)
    first, second = linear(p, f"{prefix}.adaLN_modulation.1", c).chunk(2, dim=1)
    shift, scale = (second, first) if faults.active("final_layer.scale_shift_swapped") else (first, second)
    shift = tap(dit_path(step, "final_layer/shift"), shift)
    scale = tap(dit_path(step, "final_layer/scale"), scale)
    normed = tap(dit_path(step, "final_layer/norm"), F.layer_norm(x, (x.shape[-1],), eps=1e-6))
    if faults.active("final_layer.no_one_plus"):
        modulated = normed * scale[:, None] + shift[:, None]
    else:
        modulated = normed * (1 + scale[:, None]) + shift[:, None]
    modulated = tap(dit_path(step, "final_layer/modulated"), modulated)
    return tap(dit_path(step, "final_layer/out"), linear(p, f"{prefix}.linear", modulated))


def estimator(p: Params, cfg: S2MelConfig, x: torch.Tensor, prompt_x: torch.Tensor, t: torch.Tensor,
              style: torch.Tensor, mu: torch.Tensor, step: int, tap) -> torch.Tensor:
    """One batched DiT call: x, prompt_x [B, 80, T]; t [B]; style [B, 192]; mu [B, T, C] -> velocity [B, 80, T]."""
    b, _, n = x.shape
    x = tap(dit_path(step, "in/x"), x)
    prompt_x = tap(dit_path(step, "in/prompt_x"), prompt_x)
    t = tap(dit_path(step, "in/t"), t)
    style = tap(dit_path(step, "in/style"), style)
    mu = tap(dit_path(step, "in/mu"), mu)
    t1 = tap(dit_path(step, "t_embed"), timestep_embedding(p, f"{E}.t_embedder", t))
    cond = tap(dit_path(step, "cond_proj"), linear(p, f"{E}.cond_projection", mu))
    x_t = x.transpose(1, 2)
    x_in = torch.cat([x_t, prompt_x.transpose(1, 2), cond, style[:, None, :].expand(-1, n, -1)], dim=-1)
    x_in = tap(dit_path(step, "x_in"), x_in)
    h = tap(dit_path(step, "merge"), linear(p, f"{E}.cond_x_merge_linear", x_in))
    lengths = torch.full((1,), n)
    h = run_transformer(p, cfg.depth, cfg.num_heads, h, t1[:, None, :], key_mask(lengths, n), step, tap)
    h = tap(dit_path(step, "long_skip"), linear(p, f"{E}.skip_linear", torch.cat([h, x_t], dim=-1)))
    w = tap(dit_path(step, "conv1"), linear(p, f"{E}.conv1", h))
    t2 = tap(dit_path(step, "t_embed2"), timestep_embedding(p, f"{E}.t_embedder2", t))
    frame_mask = (torch.arange(n)[None, :] < lengths[:, None]).to(w.dtype)[:, None, :]
    w = run_wavenet(p, cfg, w.transpose(1, 2), frame_mask, t2[:, :, None], step, tap)
    w = w.transpose(1, 2) + tap(dit_path(step, "res_proj"), linear(p, f"{E}.res_projection", h))
    out = final_layer(p, w, t1, step, tap)
    return tap(dit_path(step, "velocity"), conv1d(p, f"{E}.conv2", out.transpose(1, 2)))
