"""transformers' logits processors as IndexTTS2's beam sampling runs them, and the exponential race.

Upstream facts a port must match (transformers 5.17.0 generation/utils.py `_beam_search` and
`_get_logits_processor`, logits_process.py; infer_v2.py:563-624):
- Per step and beam row: the logits cast to float32 (utils.py:3545, also in a float64 model) -> log_softmax
  -> the processors, in this order: repetition penalty (10.0) on the LOG-PROBABILITIES over every id of the
  row's sequence, including the fake prompt ids (all 1) and start_mel_token (8192): a negative score is
  multiplied by the penalty, a positive one divided; temperature (0.8, divides); top-k (30: scores below the
  30th become -inf, ties kept); top-p (0.8: ascending sort, softmax, cumsum; drop where cumsum <= 1 - top_p,
  except the last min_keep). min_keep is 2 for both (utils.py:1430: one eos id + 1, with beams).
- The running beam scores are added (beams.py), the beams x V scores flattened, and 2 x beams candidates
  drawn without replacement from their softmax: torch's CPU multinomial is an exponential race,
  topk(p / q) with q ~ Exp(1) from the generator. Given the recorded q, we race our own p.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.stages.gpt import GptConfig
from reimpl import faults


@dataclass(frozen=True)
class Processed:
    """One step's scores for every row: log-probs after the penalty, after the temperature, the survivors."""

    penalized: torch.Tensor  # [R, V] float32
    scaled: torch.Tensor  # [R, V] float32
    kept: torch.Tensor  # [R, V] bool

    @property
    def scores(self) -> torch.Tensor:
        """The processed scores the sampler sees: -inf where top-k or top-p removed a code."""
        return self.scaled.masked_fill(~self.kept, -float("inf"))


def min_keep(config: GptConfig) -> int:
    if faults.active("gpt.sampler.min_keep_one"):
        return 1  # the port's bug: the default without beams
    return 2 if config.num_beams > 1 else 1  # len(eos ids) + 1 with beams


def candidates_per_step(config: GptConfig) -> int:
    """beams_to_keep = max(2, 1 + number of eos ids) x num_beams (utils.py:3447)."""
    return max(2, 1 + 1) * config.num_beams


def repetition_penalty(scores: torch.Tensor, sequences: torch.Tensor, penalty: float) -> torch.Tensor:
    seen = torch.gather(scores, 1, sequences)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, sequences, seen)


def top_k_filter(scores: torch.Tensor, k: int, keep: int) -> torch.Tensor:
    k = min(max(k, keep), scores.shape[-1])
    kth = torch.topk(scores, k)[0][..., -1:]
    return scores.masked_fill(scores < kth, -float("inf"))


def top_p_filter(scores: torch.Tensor, top_p: float, keep: int) -> torch.Tensor:
    ascending, order = torch.sort(scores, descending=False)
    if faults.active("gpt.sampler.top_p_exclusive"):
        # the port's bug: the cumulative mass from the most probable code down; the code whose mass crosses
        # top_p is dropped with everything after it
        drop = ascending.softmax(dim=-1).flip(-1).cumsum(dim=-1).flip(-1) > top_p
    else:
        drop = ascending.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
    drop[..., -keep:] = False
    drop = drop.scatter(1, order, drop)
    return scores.masked_fill(drop, -float("inf"))


def penalize(logits: torch.Tensor, sequences: torch.Tensor, config: GptConfig, prompt_ids: int) -> torch.Tensor:
    """Raw logits [R, V] and each row's ids so far [R, L] -> log-probabilities after the penalty, float32.

    `prompt_ids` counts the fake prompt ids (ones, then start_mel_token) at the start of each row.
    """
    logits = logits.to(torch.float32)
    ids = sequences
    if faults.active("gpt.sampler.penalty_skips_prompt"):
        ids = sequences[:, prompt_ids:]  # the port's bug: only the generated codes
    if faults.active("gpt.sampler.penalty_on_logits"):
        # the port's bug: the penalty meets the raw logits, then log_softmax
        return torch.log_softmax(repetition_penalty(logits, ids, config.repetition_penalty), dim=-1)
    log_probs = torch.log_softmax(logits, dim=-1)
    return repetition_penalty(log_probs, ids, config.repetition_penalty) if ids.shape[1] else log_probs


def survivors(penalized: torch.Tensor, scaled: torch.Tensor, config: GptConfig) -> torch.Tensor:
    """Top-k, then top-p, on the scaled scores -> the codes that survive (bool)."""
    keep = min_keep(config)
    scores = penalized if faults.active("gpt.sampler.temperature_last") else scaled  # the port's bug: T after
    return torch.isfinite(top_p_filter(top_k_filter(scores, config.top_k, keep), config.top_p, keep))


def process(logits: torch.Tensor, sequences: torch.Tensor, config: GptConfig, prompt_ids: int,
            tap=lambda name, value: value) -> Processed:
    """The processors in transformers' order; `tap(name, value)` sees (and, teacher-forced, replaces) each
    intermediate: penalized, scaled, kept."""
    penalized = tap("penalized", penalize(logits, sequences, config, prompt_ids))
    scaled = tap("scaled", penalized / config.temperature)
    return Processed(penalized, scaled, tap("kept", survivors(penalized, scaled, config)))


def exponential_race(probs: torch.Tensor, noise: torch.Tensor, k: int) -> torch.Tensor:
    """torch.multinomial(probs, k) without replacement, given the Exp(1) noise it would draw."""
    return torch.topk(probs / noise.to(probs.dtype), k).indices
