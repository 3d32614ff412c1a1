"""The conditioning conformer (speaker and emotion): conv2d2 subsampling, then conformer blocks.

Upstream facts a port must match (indextts/gpt/conformer_encoder.py, conformer/*.py):
- Conv2dSubsampling2: the [B, T, 1024] features are one image channel; Conv2d(1, D, 3, stride 2) + ReLU
  gives [B, D, T', 511]; time-major flattening (D x 511 per frame) -> Linear -> [B, T', D], then
  multiplied by sqrt(D) (RelPositionalEncoding scales x; it does NOT add the table). The frame mask
  keeps every second frame starting at frame 2 (`mask[:, :, 2::2]`).
- The "lengths" upstream passes are `spk_cond_emb.shape[-1]` = 1024 (the feature width, not the frame
  count, infer_v2.py:614): every frame is valid as long as T <= 1024 frames (20 s; audio is cut at 15 s).
- Blocks (pre-norm, no macaron, ff_scale 1): x += RelPosAttn(LN(x)); x += ConvModule(LN(x));
  x += FF(LN(x)) with SiLU; then LN_final. After the last block `after_norm`.
- Rel-pos attention WITHOUT rel_shift: scores = ((q + u) k^T + (q + v) p^T) / sqrt(d_k) with
  p = linear_pos(pe[:T']) (no bias): the "relative" term only sees the key's absolute position.
  Masked positions get -inf before the softmax and 0 after it.
- ConvModule: pointwise Conv1d(D, 2D) -> GLU over channels -> depthwise Conv1d(k 15, pad 7) ->
  LayerNorm over channels -> SiLU -> pointwise Conv1d(D, D); padded frames zeroed before and after.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from reimpl import faults
from reimpl.params import Params, linear


def layer_norm(p: Params, name: str, x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], eps)


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, 1, T] True where a frame is inside its length."""
    return (torch.arange(frames)[None, :] < lengths[:, None]).unsqueeze(1)


def subsample(p: Params, name: str, x: torch.Tensor, mask: torch.Tensor):
    """Conv2dSubsampling2 -> (x * sqrt(D) [B, T', D], positions pe[:T'] [1, T', D], mask [B, 1, T'])."""
    image = x.unsqueeze(1)
    y = F.relu(F.conv2d(image, p[f"{name}.embed.conv.0.weight"], p[f"{name}.embed.conv.0.bias"], stride=2))
    b, d, t, f = y.shape
    y = linear(p, f"{name}.embed.out.0", y.transpose(1, 2).contiguous().view(b, t, d * f))
    y = y * math.sqrt(d)
    positions = p[f"{name}.embed.pos_enc.pe"][:, :t].to(y.dtype)
    return y, positions, mask[:, :, 2::2]


def _legacy_rel_shift(scores: torch.Tensor) -> torch.Tensor:
    """Transformer-XL's shift of the position scores (the port's bug: upstream removed it)."""
    b, h, t1, t2 = scores.shape
    padded = torch.cat([scores.new_zeros(b, h, t1, 1), scores], dim=-1).view(b, h, t2 + 1, t1)
    return padded[:, :, 1:].reshape(b, h, t1, t2)


def rel_pos_attention(p: Params, name: str, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor,
                      heads: int) -> torch.Tensor:
    b, t, d = x.shape
    dk = d // heads

    def split(z: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, H, T, dk]
        return z.view(z.shape[0], -1, heads, dk).transpose(1, 2)

    q = linear(p, f"{name}.linear_q", x).view(b, -1, heads, dk)  # kept [B, T, H, dk] to add the biases
    k = split(linear(p, f"{name}.linear_k", x))
    v = split(linear(p, f"{name}.linear_v", x))
    pos = split(F.linear(positions, p[f"{name}.linear_pos.weight"]))
    q_u = (q + p[f"{name}.pos_bias_u"]).transpose(1, 2)
    q_v = (q + p[f"{name}.pos_bias_v"]).transpose(1, 2)
    content = torch.matmul(q_u, k.transpose(-2, -1))
    position = torch.matmul(q_v, pos.transpose(-2, -1))
    if faults.active("gpt.conformer.rel_shift"):
        position = _legacy_rel_shift(position)
    scores = (content + position) / math.sqrt(dk)
    blocked = mask.unsqueeze(1).eq(0)  # [B, 1, 1, T]
    scores = scores.masked_fill(blocked, -float("inf"))
    weights = torch.softmax(scores, dim=-1).masked_fill(blocked, 0.0)
    out = torch.matmul(weights, v).transpose(1, 2).contiguous().view(b, -1, heads * dk)
    return linear(p, f"{name}.linear_out", out)


def conv_module(p: Params, name: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    y = x.transpose(1, 2).masked_fill(~mask, 0.0)  # B D T
    y = F.conv1d(y, p[f"{name}.pointwise_conv1.weight"], p[f"{name}.pointwise_conv1.bias"])
    y = F.glu(y, dim=1)
    depthwise = p[f"{name}.depthwise_conv.weight"]
    y = F.conv1d(y, depthwise, p[f"{name}.depthwise_conv.bias"], padding=(depthwise.shape[-1] - 1) // 2, groups=y.shape[1])
    y = F.silu(layer_norm(p, f"{name}.norm", y.transpose(1, 2))).transpose(1, 2)
    y = F.conv1d(y, p[f"{name}.pointwise_conv2.weight"], p[f"{name}.pointwise_conv2.bias"])
    return y.masked_fill(~mask, 0.0).transpose(1, 2)


def feed_forward(p: Params, name: str, x: torch.Tensor) -> torch.Tensor:
    return linear(p, f"{name}.w_2", F.silu(linear(p, f"{name}.w_1", x)))


def conformer_block(p: Params, name: str, x, positions, mask, heads: int, tap, path: str) -> torch.Tensor:
    normed = layer_norm(p, f"{name}.norm_mha", x)
    attn = tap(f"{path}/attn", rel_pos_attention(p, f"{name}.self_attn", normed, positions, mask, heads))
    x = x + attn
    conv = tap(f"{path}/conv", conv_module(p, f"{name}.conv_module", layer_norm(p, f"{name}.norm_conv", x), mask))
    x = x + conv
    x = x + feed_forward(p, f"{name}.feed_forward", layer_norm(p, f"{name}.norm_ff", x))
    return tap(f"{path}/out", layer_norm(p, f"{name}.norm_final", x))


def conformer_encoder(p: Params, name: str, x: torch.Tensor, lengths: torch.Tensor, heads: int, n_blocks: int, tap, path: str):
    """[B, T, 1024] -> ([B, T', D], frame mask [B, 1, T'])."""
    mask = frame_mask(lengths, x.shape[1])
    x, positions, mask = subsample(p, name, x, mask)
    x = tap(f"{path}/subsampling", x)
    for i in range(n_blocks):
        x = conformer_block(p, f"{name}.encoders.{i}", x, positions, mask, heads, tap, f"{path}/block_{i:02d}")
    return tap(f"{path}/encoder_out", layer_norm(p, f"{name}.after_norm", x)), mask
