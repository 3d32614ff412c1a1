"""The DiT velocity estimator: time embeddings, the input merge, the transformer, the long skip, the
WaveNet final stage and the FinalLayer (reimpl/cfm/final_layer.py)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harness.stages.cfm import CfmConfig
from reimpl.cfm.final_layer import final_layer
from reimpl.cfm.transformer import key_mask, run_transformer
from reimpl.cfm.wavenet import run_wavenet
from reimpl.params import Params, conv1d, linear

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


def estimator(p: Params, cfg: CfmConfig, x: torch.Tensor, prompt_x: torch.Tensor, t: torch.Tensor,
              style: torch.Tensor, mu: torch.Tensor, at: str, tap) -> torch.Tensor:
    """One batched DiT call: x, prompt_x [B, 80, T]; t [B]; style [B, 192]; mu [B, T, C] -> velocity [B, 80, T].

    `at` is the DiT's stage prefix of this step (`cfm/seg_00/step_03/dit`).
    """
    b, _, n = x.shape
    x = tap(f"{at}/in/x", x)
    prompt_x = tap(f"{at}/in/prompt_x", prompt_x)
    t = tap(f"{at}/in/t", t)
    style = tap(f"{at}/in/style", style)
    mu = tap(f"{at}/in/mu", mu)
    t1 = tap(f"{at}/t_embed", timestep_embedding(p, f"{E}.t_embedder", t))
    cond = tap(f"{at}/cond_proj", linear(p, f"{E}.cond_projection", mu))
    x_t = x.transpose(1, 2)
    x_in = torch.cat([x_t, prompt_x.transpose(1, 2), cond, style[:, None, :].expand(-1, n, -1)], dim=-1)
    x_in = tap(f"{at}/x_in", x_in)
    h = tap(f"{at}/merge", linear(p, f"{E}.cond_x_merge_linear", x_in))
    lengths = torch.full((1,), n)
    h = run_transformer(p, cfg.depth, cfg.num_heads, h, t1[:, None, :], key_mask(lengths, n), at, tap)
    h = tap(f"{at}/long_skip", linear(p, f"{E}.skip_linear", torch.cat([h, x_t], dim=-1)))
    w = tap(f"{at}/conv1", linear(p, f"{E}.conv1", h))
    t2 = tap(f"{at}/t_embed2", timestep_embedding(p, f"{E}.t_embedder2", t))
    frame_mask = (torch.arange(n)[None, :] < lengths[:, None]).to(w.dtype)[:, None, :]
    w = run_wavenet(p, cfg, w.transpose(1, 2), frame_mask, t2[:, :, None], at, tap)
    w = w.transpose(1, 2) + tap(f"{at}/res_proj", linear(p, f"{E}.res_projection", h))
    out = final_layer(p, w, t1, at, tap)
    return tap(f"{at}/velocity", conv1d(p, f"{E}.conv2", out.transpose(1, 2)))
