"""The DiT's transformer: adaptive RMSNorm, attention with interleaved RoPE, SwiGLU, UViT skips.

Facts of upstream's gpt-fast based Transformer that a port must match:
- AdaptiveLayerNorm is `weight * RMSNorm(x) + bias`, (weight, bias) = split(Linear(t1)); there is
  no SiLU and no `1 +` here (unlike the FinalLayer). RMSNorm runs in float32 and has its own gain.
- RoPE rotates interleaved pairs (x0, x1), (x2, x3), ... in float32.
- UViT skips: blocks i < depth // 2 push their output; blocks i > depth // 2 pop (last in, first
  out) and merge with Linear(concat(x, skip)); the middle block does neither.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from reimpl import faults
from reimpl.params import Params, linear

T = "cfm.estimator.transformer"


def rms_norm(x: torch.Tensor, gain: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    xf = x.float()
    normed = xf * torch.rsqrt((xf * xf).mean(dim=-1, keepdim=True) + eps)
    return normed.type_as(x) * gain


def adaptive_norm(p: Params, prefix: str, x: torch.Tensor, t1: torch.Tensor) -> torch.Tensor:
    """weight * RMSNorm(x) + bias, with (weight, bias) projected from the time embedding t1 [B, 1, D]."""
    weight, bias = linear(p, f"{prefix}.project_layer", t1).split(x.shape[-1], dim=-1)
    return weight * rms_norm(x, p[f"{prefix}.norm.weight"]) + bias


def rope_table(positions: int, head_dim: int, dtype: torch.dtype, base: float = 10000.0) -> torch.Tensor:
    """cos/sin of every position and frequency: [T, head_dim/2, 2].

    Built in float32 and only then cast to the model dtype, as upstream does; the unit complex
    numbers come from `torch.polar`, which rounds differently from torch.cos/torch.sin in float32.
    """
    freqs = 1.0 / (base ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    angles = torch.outer(torch.arange(positions), freqs)
    rotation = torch.polar(torch.ones_like(angles), angles)
    return torch.stack([rotation.real, rotation.imag], dim=-1).to(dtype)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of x [B, T, H, Dh] by the angles of their position, in float32."""
    if faults.active("cfm.transformer.rope_halves"):
        return _rope_rotate_half(x, table)
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    cos, sin = table[None, :, None, :, 0], table[None, :, None, :, 1]
    real = pairs[..., 0] * cos - pairs[..., 1] * sin
    imag = pairs[..., 1] * cos + pairs[..., 0] * sin
    return torch.stack([real, imag], dim=-1).flatten(3).type_as(x)


def _rope_rotate_half(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The port's bug: the LLaMA/NeoX convention, pairing dimension i with i + Dh/2."""
    xf = x.float()
    first, second = xf.chunk(2, dim=-1)
    cos, sin = table[None, :, None, :, 0], table[None, :, None, :, 1]
    return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1).type_as(x)


def attention(p: Params, prefix: str, x: torch.Tensor, table: torch.Tensor, mask: torch.Tensor, heads: int) -> torch.Tensor:
    b, t, d = x.shape
    q, k, v = linear(p, f"{prefix}.wqkv", x).split(d, dim=-1)
    q, k, v = (z.view(b, t, heads, d // heads) for z in (q, k, v))
    q, k = apply_rope(q, table), apply_rope(k, table)
    y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    return linear(p, f"{prefix}.wo", y.transpose(1, 2).reshape(b, t, d))


def feed_forward(p: Params, prefix: str, x: torch.Tensor) -> torch.Tensor:
    return linear(p, f"{prefix}.w2", F.silu(linear(p, f"{prefix}.w1", x)) * linear(p, f"{prefix}.w3", x))


def skip_merge(p: Params, prefix: str, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    if faults.active("cfm.transformer.uvit_skip_add"):
        return x + skip  # the port's bug: a ResNet-style sum where upstream concatenates and projects
    return linear(p, f"{prefix}.skip_in_linear", torch.cat([x, skip], dim=-1))


def run_transformer(p: Params, depth: int, heads: int, x: torch.Tensor, t1: torch.Tensor, mask: torch.Tensor,
                    at: str, tap) -> torch.Tensor:
    """x [B, T, D] with t1 [B, 1, D] -> the adaptive final norm of the last block's output; `at` is the DiT prefix."""
    table = rope_table(x.shape[1], x.shape[-1] // heads, x.dtype)
    pushed: list[torch.Tensor] = []
    for i in range(depth):
        prefix, here = f"{T}.layers.{i}", f"{at}/block_{i:02d}"
        if i > depth // 2:
            x = tap(f"{here}/skip_in", skip_merge(p, prefix, x, pushed.pop()))
        normed = tap(f"{here}/attn_norm", adaptive_norm(p, f"{prefix}.attention_norm", x, t1))
        h = x + tap(f"{here}/attn_out", attention(p, f"{prefix}.attention", normed, table, mask, heads))
        normed = tap(f"{here}/ffn_norm", adaptive_norm(p, f"{prefix}.ffn_norm", h, t1))
        x = tap(f"{here}/out", h + tap(f"{here}/ffn_out", feed_forward(p, f"{prefix}.feed_forward", normed)))
        if i < depth // 2:
            pushed.append(x)
    return tap(f"{at}/final_norm", adaptive_norm(p, f"{T}.norm", x, t1))


def key_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """[B, 1, T, T] boolean: every query may attend to the valid keys of its sequence."""
    valid = torch.arange(t)[None, :] < lengths[:, None]
    return valid[:, None, None, :].expand(-1, 1, t, -1)

