"""The GPT's random draws: every `torch.multinomial` of transformers' beam sampling, recorded or injected.

With `do_sample=True` and beams, transformers draws `multinomial(softmax(scores + beam scores), 2 x beams)`
without replacement once per step (utils.py:3269). On the CPU, torch draws that as an exponential race:
q = Exp(1) from the global generator (`exponential_`), then topk(p / q). The wrapper records q (drawn again
from the generator state the call started from) and asserts at every draw that it reproduces torch's answer,
so a replay can hand an implementation the same q: it then chooses under its OWN probabilities, as a port
fed the same random stream would. Injected, the recorded q is used in place of a draw; the float64 run of the
noise floors is also handed the float32 run's candidates, so it follows the same beams whatever rounding does
to a near tie.
"""
from __future__ import annotations

import torch

NOISE = "gpt/seg_{seg:02d}/token_{token:04d}/noise"
CANDIDATES = "gpt/seg_{seg:02d}/token_{token:04d}/candidates"


class Draws:
    def __init__(self, given: dict[str, torch.Tensor]):
        self.given = given
        self.segment = -1
        self.noise: list[torch.Tensor] = []
        self.candidates: list[torch.Tensor] = []
        self.drawn = 0  # draws made by upstream (not injected), over the whole run
        self.injected = 0

    def start_segment(self, segment: int) -> None:
        self.segment, self.noise, self.candidates = segment, [], []

    def _given(self, template: str) -> torch.Tensor | None:
        return self.given.get(template.format(seg=self.segment, token=len(self.candidates)))

    def install(self, hooks, where) -> None:
        real = torch.multinomial

        def multinomial(probs, num_samples, replacement=False, *, generator=None, out=None):
            if replacement or generator is not None or out is not None or where.gen is None:
                raise RuntimeError("torch.multinomial called outside beam sampling without replacement: "
                                   "the recorder does not know this draw")
            noise, path = self._given(NOISE), self._given(CANDIDATES)
            if path is not None and noise is not None:
                result = path.clone()
                self.injected += 1
            elif noise is not None:
                result = torch.topk(probs / noise.to(probs.dtype), num_samples).indices
                self.injected += 1
            else:
                result, noise = _race(real, probs, num_samples)
                self.drawn += 1
            self.noise.append(noise)
            self.candidates.append(result)
            return result

        hooks.patch(torch, "multinomial", multinomial)


def _race(real, probs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torch's own draw, and the Exp(1) noise it consumed (drawn again from the same generator state)."""
    before = torch.get_rng_state()
    result = real(probs, k, False)
    after = torch.get_rng_state()
    torch.set_rng_state(before)
    noise = torch.empty_like(probs).exponential_(1)
    torch.set_rng_state(after)
    if not torch.equal(torch.topk(probs / noise, k).indices, result):
        raise RuntimeError("torch.multinomial is no longer topk(p / Exp(1)) with this torch: the noise it consumed "
                           "cannot be recorded; record the candidates instead")
    return result, noise
