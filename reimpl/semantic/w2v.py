"""Our w2v-bert 2.0 (transformers 5.17.0 `Wav2Vec2BertModel`, eval) up to the layer IndexTTS2 reads, and the
normalisation by the statistics that ship in upstream's wheel (infer_v2.py:263-271, maskgct_utils.py:12).

- feature projection: LayerNorm(160) -> Linear(160, 1024); masked frames then set to zero (hidden_states[0]).
- each conformer layer: x + 0.5 FFN1(LN x); x + MHSA(LN x); x + Conv(x); x + 0.5 FFN2(LN x); LayerNorm.
  FFN: Linear -> swish -> Linear. Conv module: LN, padded frames zeroed, 1x1 conv to 2C, GLU over channels,
  a **causal** depthwise conv (k - 1 zeros on the left only), LN, swish, 1x1 conv; no biases.
- hidden_states[n] is the output of layers[n - 1]; upstream runs every layer and reads [17]. We run every
  layer too, so a port reading the wrong one is compared against the layer it read.
- spk_cond = (h - mean) / std, std = sqrt(var) taken once in float32 at load (a float64 run keeps it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.stages.semantic import SemanticConfig
from reimpl.faults import active
from reimpl.params import Params, linear
from reimpl.semantic.attention import self_attention

W = "semantic.model"


def _quiet(_path: str, value: torch.Tensor) -> torch.Tensor:
    return value


def layer_norm(p: Params, name: str, x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), p[f"{name}.weight"], p[f"{name}.bias"], eps)


def feed_forward(p: Params, name: str, x: torch.Tensor) -> torch.Tensor:
    return linear(p, f"{name}.output_dense", F.silu(linear(p, f"{name}.intermediate_dense", x)))


def conv_module(p: Params, name: str, x: torch.Tensor, valid: torch.Tensor, config: SemanticConfig, show,
                path: str) -> torch.Tensor:
    """x [B, T, C] -> [B, T, C]; the depthwise conv sees only the past."""
    eps = config.layer_norm_eps
    h = show(f"{path}/norm", layer_norm(p, f"{name}.layer_norm", x, eps))
    h = show(f"{path}/masked", h.masked_fill(~valid[..., None], 0.0).transpose(1, 2))
    h = show(f"{path}/pointwise1", F.conv1d(h, p[f"{name}.pointwise_conv1.weight"]))
    h = show(f"{path}/glu", F.glu(h, dim=1))
    k = config.conv_depthwise_kernel_size
    pad = ((k - 1) // 2, (k - 1) // 2) if active("semantic.w2v.conv_same_padding") else (k - 1, 0)
    h = show(f"{path}/depthwise", F.conv1d(F.pad(h, pad), p[f"{name}.depthwise_conv.weight"], groups=h.shape[1]))
    h = show(f"{path}/depthwise_norm", layer_norm(p, f"{name}.depthwise_layer_norm", h.transpose(1, 2), eps))
    h = show(f"{path}/act", F.silu(h.transpose(1, 2)))
    h = show(f"{path}/pointwise2", F.conv1d(h, p[f"{name}.pointwise_conv2.weight"]))
    return h.transpose(1, 2)


def conformer_layer(p: Params, i: int, x: torch.Tensor, valid: torch.Tensor, config: SemanticConfig, tap,
                    prefix: str) -> torch.Tensor:
    """One layer; its internals are stages for the first layer only (where a layer-level bug shows first)."""
    name = f"{W}.encoder.layers.{i}"
    path = f"{prefix}/w2v/layer_{i:02d}"
    show = tap if i == 0 else _quiet
    eps = config.layer_norm_eps
    half = 1.0 if active("semantic.w2v.ffn_no_half") else 0.5

    h = show(f"{path}/ffn1/norm", layer_norm(p, f"{name}.ffn1_layer_norm", x, eps))
    h = show(f"{path}/ffn1/out", feed_forward(p, f"{name}.ffn1", h))
    x = show(f"{path}/ffn1/residual", h * half + x)

    h = show(f"{path}/attn/norm", layer_norm(p, f"{name}.self_attn_layer_norm", x, eps))
    h = show(f"{path}/attn/out", self_attention(p, f"{name}.self_attn", h, valid, config, show, f"{path}/attn"))
    x = show(f"{path}/attn/residual", h + x)

    h = show(f"{path}/conv/out", conv_module(p, f"{name}.conv_module", x, valid, config, show, f"{path}/conv"))
    x = show(f"{path}/conv/residual", x + h)

    h = show(f"{path}/ffn2/norm", layer_norm(p, f"{name}.ffn2_layer_norm", x, eps))
    h = show(f"{path}/ffn2/out", feed_forward(p, f"{name}.ffn2", h))
    x = show(f"{path}/ffn2/residual", h * half + x)
    return tap(f"{path}/out", layer_norm(p, f"{name}.final_layer_norm", x, eps))


def hidden(p: Params, config: SemanticConfig, feats: torch.Tensor, mask: torch.Tensor, tap, prefix: str
           ) -> torch.Tensor:
    """features [B, T, 160], mask [B, T] -> hidden_states[hidden_layer] [B, T, 1024]."""
    eps = config.layer_norm_eps
    read = config.hidden_layer + active("semantic.w2v.hidden_18") - active("semantic.w2v.hidden_16")
    valid = mask.bool()
    weight = p[f"{W}.feature_projection.projection.weight"]
    x = tap(f"{prefix}/w2v/projection_norm",
            layer_norm(p, f"{W}.feature_projection.layer_norm", feats.to(weight.dtype), eps))
    x = tap(f"{prefix}/w2v/projection", linear(p, f"{W}.feature_projection.projection", x))
    x = tap(f"{prefix}/w2v/encoder_in", x.masked_fill(~valid[..., None], 0.0))
    states = [x]
    for i in range(config.num_hidden_layers):
        x = conformer_layer(p, i, x, valid, config, tap, prefix)
        states.append(x)
    return tap(f"{prefix}/w2v/hidden", states[read])


def normalise(p: Params, h: torch.Tensor, tap, path: str) -> torch.Tensor:
    """(h - mean) / std with std = sqrt(var) taken in float32, as upstream takes it once at load."""
    mean, var = p["semantic.stats.mean"].float(), p["semantic.stats.var"].float()
    scale = var if active("semantic.w2v.divide_by_var") else torch.sqrt(var)
    return tap(path, (h - mean.to(h.dtype)) / scale.to(h.dtype))
