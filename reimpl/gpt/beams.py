"""The beam state of transformers' beam-search sampling (one text, B = 1), as 5.17.0 keeps it.

Upstream facts a port must match (transformers generation/utils.py `_beam_search`, 3216-3370 and 3480-3700):
- num_beams running sequences start as copies of the prompt ids; their scores start [0, -1e9, -1e9], so the
  first step draws from beam 0 only.
- Each step the processed scores of every row plus its running score are flattened (beams x V) and K =
  2 x beams candidates are drawn from their softmax. A candidate keeps its summed score; it "hits" when its
  code is the stop code (8193) or the sequence reaches max_length.
- The next running beams are the top num_beams of (score - 1e9 x hits); the KV cache rows are reordered to
  their source rows.
- Only the first num_beams candidates IN DRAW ORDER may finish (score / length^length_penalty; 0 -> 1);
  the finished set keeps the best num_beams old and new. With early_stopping False the search goes on while
  the best running score could still beat the worst finished one, and stops when every candidate hits.
- The answer is the best finished sequence, cut to its generated length; a step's source row (its beam
  index) says which row's logits produced each of its codes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from harness.stages.gpt import GptConfig
from reimpl import faults
from reimpl.gpt.sampler import Processed, candidates_per_step, exponential_race

NEG = -1.0e9


@dataclass
class Step:
    """What one step saw and decided, every row; reduced to the final sequence's row at the end."""

    processed: Processed
    noise: torch.Tensor  # [1, beams x V] the recorded Exp(1) draws
    candidates: torch.Tensor  # [1, K] flat indices into beams x V
    next_rows: torch.Tensor  # [1, N] source rows of the next running beams


@dataclass
class BeamSearch:
    prompt: torch.Tensor  # [1, L0] the fake ids: ones, then start_mel_token
    config: GptConfig
    max_length: int
    steps: list[Step] = field(default_factory=list)

    def __post_init__(self):
        n, l0 = self.config.num_beams, self.prompt.shape[1]
        self.prompt_length = self.cur_len = l0
        self.running = torch.full((1, n, self.max_length), self.config.stop_mel_token, dtype=torch.int64)
        self.running[:, :, :l0] = self.prompt
        self.running_scores = torch.zeros(1, n)
        self.running_scores[:, 1:] = NEG
        self.running_rows = torch.full((1, n, self.max_length - l0), -1, dtype=torch.int32)
        self.finished = self.running.clone()
        self.finished_scores = torch.full((1, n), NEG)
        self.finished_rows = self.running_rows.clone()
        self.is_finished = torch.zeros(1, n, dtype=torch.bool)
        self.can_improve = torch.ones(1, 1, dtype=torch.bool)
        self.done = False

    @property
    def row_sequences(self) -> torch.Tensor:
        """[N, cur_len]: the running sequences, one per cache row (what the repetition penalty sees)."""
        return self.running[0, :, : self.cur_len]

    def step(self, processed: Processed, noise: torch.Tensor) -> torch.Tensor:
        """The rows' processed scores and the step's recorded noise -> cache rows for the next step."""
        n, k = self.config.num_beams, candidates_per_step(self.config)
        scores = processed.scores
        vocab = scores.shape[-1]
        summed = (scores.view(1, n, vocab) + self.running_scores[:, :, None]).reshape(1, n * vocab)
        drawn_from = summed
        if faults.active("gpt.beams.no_beam_scores"):
            drawn_from = scores.reshape(1, n * vocab)  # the port's bug: the running beam scores not added
        candidates = exponential_race(torch.softmax(drawn_from, dim=-1), noise, k)
        cand_scores = torch.gather(summed, 1, candidates)
        source, code = candidates // vocab, candidates % vocab
        cand_seq = self.running[0, source[0]].unsqueeze(0).clone()
        cand_rows = self.running_rows[0, source[0]].unsqueeze(0).clone()
        cand_seq[:, :, self.cur_len] = code
        cand_rows[:, :, self.cur_len - self.prompt_length] = source.to(torch.int32)
        hits = (code == self.config.stop_mel_token) | (self.cur_len + 1 >= self.max_length)
        self._next_running(cand_seq, cand_scores, cand_rows, hits)
        self._update_finished(cand_seq, cand_scores, cand_rows, hits)
        next_rows = self.running_rows[0, :, self.cur_len - self.prompt_length].to(torch.int64)
        self.steps.append(Step(processed, noise, candidates, next_rows[None]))
        self.cur_len += 1
        self._update_stopping(hits)
        return next_rows

    def _next_running(self, cand_seq, cand_scores, cand_rows, hits) -> None:
        running_scores = cand_scores + hits.to(torch.float32) * NEG
        keep = torch.topk(running_scores, k=self.config.num_beams)[1]
        self.running = cand_seq[:, keep[0]]
        self.running_scores = torch.gather(running_scores, 1, keep)
        self.running_rows = cand_rows[:, keep[0]]

    def _update_finished(self, cand_seq, cand_scores, cand_rows, hits) -> None:
        n = self.config.num_beams
        first_n = torch.arange(cand_scores.shape[1]) < n  # only the first num_beams candidates may finish
        just_finished = hits & first_n[None, :]
        final = cand_scores / ((self.cur_len + 1 - self.prompt_length) ** self.config.length_penalty)
        final = final + (~self.can_improve).to(torch.float32) * NEG  # early_stopping False: no "full" term
        final = final + (~just_finished) * NEG
        merged = torch.cat((self.finished_scores, final), dim=1)
        best = torch.topk(merged, k=n)[1][0]
        self.finished = torch.cat((self.finished, cand_seq), dim=1)[:, best]
        self.finished_scores = merged[:, best]
        self.finished_rows = torch.cat((self.finished_rows, cand_rows), dim=1)[:, best]
        self.is_finished = torch.cat((self.is_finished, just_finished), dim=1)[:, best]

    def _update_stopping(self, hits: torch.Tensor) -> None:
        length = self.cur_len - self.prompt_length  # early_stopping False: the current length
        best_running = self.running_scores[:, :1] / (length ** self.config.length_penalty)
        worst_finished = torch.where(self.is_finished, torch.min(self.finished_scores, dim=1, keepdim=True)[0], NEG)
        self.can_improve = self.can_improve & torch.any(best_running > worst_finished, dim=-1, keepdim=True)
        self.done = not bool(torch.any(self.can_improve) & ~torch.all(hits))

    def result(self, finished: bool = True) -> tuple[torch.Tensor, list[int]]:
        """(the best finished sequence's codes [1, n], the source row of each of its steps); `finished=False`:
        the best running sequence (a search cut short)."""
        seqs, rows = (self.finished, self.finished_rows) if finished else (self.running, self.running_rows)
        rows = rows[0, 0]
        generated = int((rows + 1 != 0).sum())
        codes = seqs[:, 0, self.prompt_length : self.prompt_length + generated]
        return codes, rows[:generated].to(torch.int64).tolist()
