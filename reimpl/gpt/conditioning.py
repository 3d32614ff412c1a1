"""What the GPT is conditioned on: the emotion vector, the speaker latents, and the prompt rows.

Upstream facts a port must match (model_v2.py:549-587, 730-862; infer_v2.py:598-624):
- The lengths infer_v2 passes are the features' LAST axis (`spk_cond_emb.shape[-1]` = 1024), not their frame
  count: every frame counts as long as there are at most 1024 (about 20 s; audio is cut at 15 s).
- The emotion vector: emo_layer(emovec_layer(the emotion perceiver's one latent [B, 1024])) [B, 1280];
  merge_emovec runs it on the emotion features, then on the speaker's, and returns base + alpha (emo - base)
  (with alpha 1 not bit-equal to the emotion vector: it is rounded twice).
- The speaker latents: the speaker conformer, then the perceiver's 32 latents [B, 32, 1280].
- conds = [latents + emovec, speed_emb[1], speed_emb[0]] (34 rows).
- The generation prompt: conds, then text_embedding([0, ids without 0 and 1, 1]) + text positions 0..; one
  zero row per dropped id on the left, hidden by the attention mask; the latent pass keeps every id (an <unk> 0
  or a <s> 1 changes generation and latent differently).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.stages.gpt import GptConfig
from reimpl.gpt.conformer import conformer_encoder
from reimpl.gpt.perceiver import perceiver
from reimpl.params import Params, linear


def feature_lengths(features: torch.Tensor) -> torch.Tensor:
    """What infer_v2 passes as the conditioning length: `features.shape[-1]`, the feature width."""
    return torch.tensor([features.shape[-1]])


def speaker_latents(p: Params, cfg: GptConfig, features: torch.Tensor, tap) -> torch.Tensor:
    """spk_cond_emb [B, T, 1024] -> [B, 32, 1280] (get_conditioning, conformer_perceiver)."""
    x, mask = conformer_encoder(p, "conditioning_encoder", features, feature_lengths(features), cfg.cond_heads,
                                cfg.cond_blocks, tap, "gpt/cond")
    return tap("gpt/cond/latent", perceiver(p, "perceiver_encoder", x, mask, cfg.cond_heads, tap, "gpt/cond/perceiver"))


def emotion_vector(p: Params, cfg: GptConfig, features: torch.Tensor, tap, at: str) -> torch.Tensor:
    """features [B, T, 1024] -> emo_layer(emovec_layer(latent)) [B, 1280] (get_emovec)."""
    x, mask = conformer_encoder(p, "emo_conditioning_encoder", features, feature_lengths(features), cfg.emo_heads,
                                cfg.emo_blocks, tap, at)
    latent = perceiver(p, "emo_perceiver_encoder", x, mask, cfg.emo_heads, tap, f"{at}/perceiver").squeeze(1)
    latent = tap(f"{at}/latent", latent)
    return tap(f"{at}/vec", linear(p, "emo_layer", linear(p, "emovec_layer", latent)))


def merged_emotion_vector(p: Params, cfg: GptConfig, spk: torch.Tensor, emo: torch.Tensor, tap) -> torch.Tensor:
    emo_vec = emotion_vector(p, cfg, emo, tap, "gpt/emo")
    base_vec = emotion_vector(p, cfg, spk, tap, "gpt/emo_base")
    return tap("gpt/emovec", base_vec + cfg.merge_alpha * (emo_vec - base_vec))


def conditioning_rows(p: Params, latents: torch.Tensor, emovec: torch.Tensor) -> torch.Tensor:
    speed = p["speed_emb.weight"]
    b = latents.shape[0]
    return torch.cat((latents + emovec.unsqueeze(1), speed[1].expand(b, 1, -1), speed[0].expand(b, 1, -1)), dim=1)


def text_embeddings(p: Params, ids: torch.Tensor) -> torch.Tensor:
    """ids [L] (already framed by the start and stop ids) -> [L, C] with text positions 0..L-1."""
    return F.embedding(ids, p["text_embedding.weight"]) + p["text_pos_embedding.emb.weight"][: ids.shape[0]]


def generation_prompt(p: Params, cfg: GptConfig, conds: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """([pad | conds | text] [1, P, C], the number of padding rows): the start and stop ids inside the text are
    dropped (model_v2.py:688), and as many zero rows as ids were dropped pad the prompt on the left (:706-714)."""
    row = ids[0]
    row = row[(row != cfg.stop_text_token) & (row != cfg.start_text_token)]
    row = F.pad(F.pad(row, (1, 0), value=cfg.start_text_token), (0, 1), value=cfg.stop_text_token)
    padding = ids.shape[1] + 2 - row.shape[0]
    pad = torch.zeros(padding, conds.shape[-1], dtype=conds.dtype)
    return torch.cat([pad, conds[0], text_embeddings(p, row)], dim=0).unsqueeze(0), padding
