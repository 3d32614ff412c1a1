"""The perceiver resampler: a fixed set of learned latents attends to the conformer output.

Upstream facts a port must match (indextts/gpt/perceiver.py, model_v2.py:332-355, 566-587):
- The context is first projected to the latent width (proj_context, with bias) when the widths differ.
- Depth 2. Each layer: latents += Attention(latents, context) ; latents += FeedForward(latents).
- The attention's keys and values are computed over cat(latents, context) (cross_attn_include_queries),
  queries from the latents only; to_q / to_kv / to_out have no bias; dim_head 64, heads = the conformer's
  attention_heads; scale 64^-0.5 applied to q k^T (not to q).
- The key mask is the conformer's frame mask left-padded with True for the latents
  (cond_mask_pad = ConstantPad1d((32, 0), True); 1 latent for the emotion perceiver); masked keys get
  -finfo.max (not -inf).
- FeedForward: Linear(dim, 2 * inner) -> GEGLU (first half * exact-erf GELU(second half)) -> Linear(inner,
  dim), inner = int(dim * ff_mult * 2 / 3) (ff_mult = perceiver_mult = 2).
- Output: RMSNorm = x / max(||x||, 1e-12) * sqrt(dim) * gamma.
- Speaker: 32 latents of width 1280 (model_dim). Emotion: 1 latent of width 1024, squeezed to [B, 1024].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from reimpl.params import Params

DIM_HEAD = 64


def _heads(z: torch.Tensor, heads: int) -> torch.Tensor:  # [B, N, H*d] -> [B, H, N, d]
    b, n, _ = z.shape
    return z.view(b, n, heads, -1).transpose(1, 2)


def latent_attention(p: Params, name: str, latents: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor,
                     heads: int) -> torch.Tensor:
    keys_from = torch.cat((latents, context), dim=-2)
    q = _heads(F.linear(latents, p[f"{name}.to_q.weight"]), heads)
    k, v = F.linear(keys_from, p[f"{name}.to_kv.weight"]).chunk(2, dim=-1)
    k, v = _heads(k, heads), _heads(v, heads)
    sim = torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    sim = sim.masked_fill(~key_mask[:, None, None, :], -torch.finfo(sim.dtype).max)
    out = torch.matmul(sim.softmax(dim=-1), v)
    b, h, n, d = out.shape
    return F.linear(out.transpose(1, 2).reshape(b, n, h * d), p[f"{name}.to_out.weight"])


def geglu_feed_forward(p: Params, name: str, x: torch.Tensor) -> torch.Tensor:
    value, gate = F.linear(x, p[f"{name}.0.weight"], p[f"{name}.0.bias"]).chunk(2, dim=-1)
    return F.linear(F.gelu(gate) * value, p[f"{name}.2.weight"], p[f"{name}.2.bias"])


def rms_norm(x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(1e-12)
    return x / norm * (x.shape[-1] ** 0.5) * gamma


def perceiver(p: Params, name: str, context: torch.Tensor, frame_mask: torch.Tensor, heads: int, tap, path: str,
              depth: int = 2) -> torch.Tensor:
    """context [B, T', D_ctx], frame mask [B, 1, T'] -> latents [B, N, dim]."""
    if f"{name}.proj_context.weight" in p:
        context = F.linear(context, p[f"{name}.proj_context.weight"], p[f"{name}.proj_context.bias"])
    context = tap(f"{path}/context", context)
    latents = p[f"{name}.latents"]
    latents = latents.unsqueeze(0).expand(context.shape[0], *latents.shape)
    n_latents = latents.shape[1]
    key_mask = torch.cat([torch.ones(frame_mask.shape[0], n_latents, dtype=torch.bool), frame_mask.squeeze(1)], dim=1)
    for i in range(depth):
        attn = tap(f"{path}/layer_{i}/attn", latent_attention(p, f"{name}.layers.{i}.0", latents, context, key_mask, heads))
        latents = attn + latents
        ff = tap(f"{path}/layer_{i}/ff", geglu_feed_forward(p, f"{name}.layers.{i}.1", latents))
        latents = ff + latents
    return rms_norm(latents, p[f"{name}.norm.gamma"])
