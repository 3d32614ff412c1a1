"""The emotion-vector mode: one weight per emotion mixes rows of an emotion matrix into what the GPT is conditioned on.

Upstream facts a port must match (infer_v2.py:497-541, :598-607; config.yaml emo_num, feat1.pt, feat2.pt):
- Given a vector, the emotion recording is dropped: the emotion features are the speaker's, and merge_emovec
  mixes at alpha 1.0 whatever alpha was given (so it returns the speaker's own emotion vector).
- The user's alpha instead scales the weights: clamped to [0, 1] and, unless it is 1, each weight is
  int(w * alpha * 10000) / 10000 in Python floats (truncated to 4 decimals, not rounded); float32 after.
- spk_matrix and emo_matrix are split into blocks by emo_num (8 emotions). Per emotion one row: the block's
  spk_matrix row whose cosine with the speaker's CAMPPlus style is largest (argmax, first on ties), or with
  use_random a uniform draw in the block (Python's random.randint, recorded and replayed here).
- emovec_mat = sum over emotions of weight x emo_matrix[block][row] [1, 1280]; the GPT is conditioned on
  emovec_mat + (1 - sum(weights)) x merge_emovec's output (the speaker's share is what the weights leave).
"""
from __future__ import annotations

import torch

from harness.stages.gpt import EMO_VECTOR, GptConfig
from reimpl.faults import active
from reimpl.params import Params

SPK_MATRIX, EMO_MATRIX = "spk_matrix", "emo_matrix"


def scaled_weights(cfg: GptConfig) -> torch.Tensor:
    """The weights after alpha, as float32."""
    scale = max(0.0, min(1.0, cfg.emo_alpha))
    if active("gpt.emotion_vector.weights_rounded"):
        values = [round(w * scale, 4) for w in cfg.emo_vector]
    else:
        values = [w if scale == 1.0 else int(w * scale * 10000) / 10000 for w in cfg.emo_vector]
    return torch.tensor(values, dtype=torch.float32)


def _blocks(p: Params, name: str, cfg: GptConfig) -> tuple[torch.Tensor, ...]:
    return torch.split(p[name].float(), list(cfg.emo_num))


def nearest_rows(p: Params, cfg: GptConfig, style: torch.Tensor) -> list[int]:
    """Per block of spk_matrix, the row most cosine-similar to the style [1, 192]."""
    query = style.float().reshape(-1)
    rows = []
    for block in _blocks(p, SPK_MATRIX, cfg):
        if active("gpt.emotion_vector.first_row"):
            rows.append(0)
            continue
        cosine = (block @ query) / (block.norm(dim=1) * query.norm()).clamp_min(1e-8)
        rows.append(int(torch.argmax(cosine)))
    return rows


def rows_of(p: Params, cfg: GptConfig, given: dict[str, torch.Tensor], tap) -> list[int]:
    if cfg.emo_random:
        drawn = given.get(EMO_VECTOR + "/random_rows")
        if drawn is None:
            raise RuntimeError("use_random's rows are drawn by upstream: replay them from the reference trace")
        return [int(i) for i in tap(EMO_VECTOR + "/random_rows", drawn.reshape(1, -1)).reshape(-1)]
    return nearest_rows(p, cfg, given["style/style"])


def matrix_mix(p: Params, cfg: GptConfig, given: dict[str, torch.Tensor], tap) -> tuple[torch.Tensor, torch.Tensor]:
    """(the scaled weights [8], emovec_mat [1, C])."""
    weights = scaled_weights(cfg)
    rows = tap(EMO_VECTOR + "/rows", torch.tensor([rows_of(p, cfg, given, tap)])).reshape(-1).tolist()
    picked = torch.stack([block[r] for r, block in zip(rows, _blocks(p, EMO_MATRIX, cfg))])
    return weights, (weights.unsqueeze(1) * picked).sum(0, keepdim=True)


def conditioned(weights: torch.Tensor, emovec_mat: torch.Tensor, emovec: torch.Tensor, tap) -> torch.Tensor:
    """emovec_mat + (1 - sum(weights)) x merge_emovec's output, in the merged vector's dtype."""
    if active("gpt.emotion_vector.no_speaker_share"):
        return tap(EMO_VECTOR + "/emovec", emovec_mat + emovec)
    return tap(EMO_VECTOR + "/emovec", emovec_mat + (1 - weights.sum()) * emovec)
