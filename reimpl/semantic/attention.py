"""w2v-bert 2.0's self-attention with relative-key position bias (transformers 5.17.0 `Wav2Vec2BertSelfAttention`,
`position_embeddings_type="relative_key"`, run through SDPA as a model built from a config runs it).

The bias of query i and key j is q_i . E[clamp(j - i, -64, 8) + 64] / sqrt(Dh) (E: `distance_embedding`), added
as SDPA's float mask to q.k / sqrt(Dh); padded keys get the dtype's lowest finite value (not -inf).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.stages.semantic import SemanticConfig
from reimpl.faults import active
from reimpl.params import Params, linear


def relative_key_bias(p: Params, name: str, q: torch.Tensor, config: SemanticConfig) -> torch.Tensor:
    """q [B, H, T, Dh] -> bias [B, H, T, T]."""
    t, dh = q.shape[2], q.shape[3]
    left, right = config.left_max_position_embeddings, config.right_max_position_embeddings
    pos = torch.arange(t)
    distance = pos[None, :] - pos[:, None]  # key - query
    if active("semantic.attention.distance_sign"):
        distance = -distance
    table = p[f"{name}.distance_embedding.weight"][distance.clamp(-left, right) + left].to(q.dtype)  # [T, T, Dh]
    return torch.einsum("bhqd,qkd->bhqk", q, table) * dh**-0.5


def self_attention(p: Params, name: str, x: torch.Tensor, valid: torch.Tensor, config: SemanticConfig, show,
                   path: str) -> torch.Tensor:
    """x [B, T, C] -> linear_out(attention) [B, T, C]; `show` records the internals (or not)."""
    b, t, d = x.shape
    heads = config.num_attention_heads
    dh = d // heads

    def project(which: str, stage: str) -> torch.Tensor:
        y = show(f"{path}/{stage}", linear(p, f"{name}.linear_{which}", x))
        return y.view(b, t, heads, dh).transpose(1, 2)

    q, k, v = project("q", "q"), project("k", "k"), project("v", "v")
    bias = show(f"{path}/pos_bias", relative_key_bias(p, name, q, config))
    if not bool(valid.all()) and not active("semantic.attention.mask_ignored"):
        bias = torch.where(valid[:, None, None, :], bias, torch.finfo(bias.dtype).min)
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=dh**-0.5)
    context = show(f"{path}/context", context.transpose(1, 2).reshape(b, t, d))
    return linear(p, f"{name}.linear_out", context)
