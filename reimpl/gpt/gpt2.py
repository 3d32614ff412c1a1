"""The GPT-2 body of UnifiedVoice with its KV cache, its heads, and the mel positions of its two passes.

Upstream facts a port must match (model_v2.py, transformers 5.17.0 GPT2Model):
- GPT-2's own position table is replaced by zeros (`null_position_embeddings`) and its token table deleted:
  every input comes as an embedding with IndexTTS's learned positions already added.
- Blocks: x += Attn(LN_1(x)); x += MLP(LN_2(x)); eps 1e-5; Conv1D layers store W as [in, out] and compute
  addmm(b, x, W); the MLP is 4x wide with gelu_new (the tanh approximation, written out); attention is
  scaled by head_dim^-0.5, causal, through scaled_dot_product_attention (transformers' default `sdpa`).
- After the blocks GPT-2's ln_f, THEN UnifiedVoice's final_norm (a second LayerNorm), then mel_head.
- Generation (GPT2InferenceModel, model_v2.py:115-134): the prefill embeds [conds | text | start code] with
  the start code at mel position 0; each later step embeds ONE code at mel position
  `attention_mask.shape[1] - mel_len` = t + 1 for the code fed to produce token t: positions 0, 2, 3, ...
  The latent pass (one forward over everything) numbers the codes 0, 1, 2, ...
- Beam rows: the prefill runs on num_beams identical rows; after every step the cache rows are reordered by
  the chosen source beams (index_select on the batch axis).
- A prompt whose text lost ids (0 and 1 are dropped, model_v2.py:688) is LEFT-padded with zero rows that the
  attention mask hides (model_v2.py:706-714); transformers then materialises a causal-and-padding mask for
  SDPA (masking_utils.sdpa_mask) instead of `is_causal`, at the prefill and at every step.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harness.stages.gpt import GptConfig
from reimpl import faults
from reimpl.params import Params

Cache = list[tuple[torch.Tensor, torch.Tensor]]


def layer_norm(p: Params, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], 1e-5)


def conv1d_layer(p: Params, name: str, x: torch.Tensor) -> torch.Tensor:
    """GPT-2's Conv1D: a linear layer whose weight is stored [in, out]."""
    w = p[name + ".weight"]
    return torch.addmm(p[name + ".bias"], x.reshape(-1, x.shape[-1]), w).view(*x.shape[:-1], w.shape[1])


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in this order of operations."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def padded_mask(valid: torch.Tensor, q_len: int, kv_len: int) -> torch.Tensor:
    """transformers' sdpa mask when the prompt is left-padded (masking_utils.sdpa_mask): [R, 1, q, kv] bool,
    causal (a key at or before the query's position) and not a padding row."""
    q_index = torch.arange(q_len) + (kv_len - q_len)
    kv_index = torch.arange(kv_len)
    return (kv_index[None, None, None, :] <= q_index[None, None, :, None]) & valid[:, None, None, :kv_len]


def attention(p: Params, name: str, x: torch.Tensor, heads: int, cache: Cache | None, layer: int,
              valid: torch.Tensor | None = None) -> torch.Tensor:
    b, t, c = x.shape
    q, k, v = conv1d_layer(p, f"{name}.c_attn", x).split(c, dim=2)
    q, k, v = (z.view(b, t, heads, c // heads).transpose(1, 2) for z in (q, k, v))
    if cache is not None:
        if layer < len(cache):
            k = torch.cat([cache[layer][0], k], dim=-2)
            v = torch.cat([cache[layer][1], v], dim=-2)
            cache[layer] = (k, v)
        else:
            cache.append((k, v))
    if valid is not None:  # padding rows in the prompt: the mask is materialised, not is_causal
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=padded_mask(valid, t, k.shape[-2]),
                                           scale=(c // heads) ** -0.5, is_causal=False)
    else:  # a block longer than one row is the first pass over the sequence: causal; one new row sees the cache
        y = F.scaled_dot_product_attention(q, k, v, scale=(c // heads) ** -0.5, is_causal=t > 1)
    return conv1d_layer(p, f"{name}.c_proj", y.transpose(1, 2).contiguous().reshape(b, t, c))


def block(p: Params, i: int, x: torch.Tensor, heads: int, cache: Cache | None,
          valid: torch.Tensor | None = None) -> torch.Tensor:
    name = f"gpt.h.{i}"
    x = attention(p, f"{name}.attn", layer_norm(p, f"{name}.ln_1", x), heads, cache, i, valid) + x
    h = conv1d_layer(p, f"{name}.mlp.c_fc", layer_norm(p, f"{name}.ln_2", x))
    return x + conv1d_layer(p, f"{name}.mlp.c_proj", gelu_tanh(h))


def body(p: Params, cfg: GptConfig, x: torch.Tensor, cache: Cache | None = None, tap=None, at: str = "",
         valid: torch.Tensor | None = None) -> torch.Tensor:
    """[R, T, C] embeddings -> ln_f output [R, T, C]; appends to `cache` when one is given.

    `valid` [R, keys so far]: False at the prompt's padding rows (None: there are none). With a tap, each
    block's output is recorded as `{at}/layer_N` for row 0 (the prefill's rows are identical) and a
    teacher-forced value replaces every row.
    """
    for i in range(cfg.layers):
        x = block(p, i, x, cfg.heads, cache, valid)
        if tap is not None:
            row = x[:1]
            forced = tap(f"{at}/layer_{i}", row)
            if forced is not row:
                x = forced.expand_as(x).contiguous()
    return layer_norm(p, "gpt.ln_f", x)


def mel_logits(p: Params, hidden: torch.Tensor) -> torch.Tensor:
    """final_norm, then mel_head (upstream's lm_head = Sequential(final_norm, mel_head))."""
    return F.linear(layer_norm(p, "final_norm", hidden), p["mel_head.weight"], p["mel_head.bias"])


def reorder(cache: Cache, rows: torch.Tensor) -> None:
    for i, (k, v) in enumerate(cache):
        cache[i] = (k.index_select(0, rows), v.index_select(0, rows))


def mel_position(token: int) -> int:
    """The mel position of the code fed to produce token `token` on the KV-cache path."""
    if token == 0:
        return 0  # the start code, in the prefill
    if faults.active("gpt.gpt2.one_shot_positions"):
        return token  # the port's bug: 1, 2, 3, ... as one forward over the whole sequence numbers them
    return token + 1  # attention_mask.shape[1] - mel_len


def embed_codes(p: Params, codes: torch.Tensor, position: int) -> torch.Tensor:
    """codes [R] -> [R, 1, C]: mel_embedding(code) + mel_pos_embedding[position]."""
    return F.embedding(codes[:, None], p["mel_embedding.weight"]) + p["mel_pos_embedding.emb.weight"][position][None, None]
