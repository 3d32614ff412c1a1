"""The target half's content: the GPT's latent through gpt_layer, plus the semantic codec's embedding of the codes.

Upstream facts a port must match (infer_v2.py:678-682, commons.py:400-402, the codec's quantizer
factorized_vector_quantize.py:96-127 and residual_vq.py:144-152):
- gpt_layer = Linear(1280, 256) -> Linear(256, 128) -> Linear(128, 1024), no activation between them.
- vq2emb(codes): the codebook row of each code (8-dimensional, NOT l2-normalised: the normalisation is only
  for the distance when quantizing), then out_project, a weight-normalised Conv1d(8, 1024, 1) with bias.
- S_infer = vq2emb(codes) transposed to [B, T, 1024] + gpt_layer(latent); target length (codes x 1.72).long()
  in float32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from reimpl.params import Params, conv1d, linear

QUANTIZER = "semantic_codec.quantizer.quantizers.0"


def gpt_layer(p: Params, latent: torch.Tensor) -> torch.Tensor:
    """latent [B, T, 1280] -> [B, T, 1024]."""
    return linear(p, "gpt_layer.2", linear(p, "gpt_layer.1", linear(p, "gpt_layer.0", latent)))


def vq2emb(p: Params, codes: torch.Tensor) -> torch.Tensor:
    """codes [B, T] -> the codec's embedding [B, T, C] (B T C, as infer_v2 transposes it)."""
    rows = F.embedding(codes, p[f"{QUANTIZER}.codebook.weight"]).transpose(1, 2)
    return conv1d(p, f"{QUANTIZER}.out_project", rows).transpose(1, 2)
