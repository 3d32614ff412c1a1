"""Codes from the GPT, two ways, and the latent pass over them.

Free-running (`generate_free`): transformers' beam-search sampling (beams.py) with the recorded noise raced
by our own probabilities, so a sampler bug changes the draws as it would in a port fed the same random
stream. The per-token stages exist only once the final sequence is known: they are recorded after the
search, for the row the final sequence came from at each step (record-only: nothing is fed back), and the
final sequence's rows and codes after all of them.
Teacher-forced (`generate_forced`): the reference's codes fed one at a time through the KV path, every
per-token stage fed the reference's value. Its rows run num_beams copies side by side, as upstream does: only
with the same matmul shapes are the logits bit-identical (one row lands about 1e-6 off, at the float32 floor).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from harness.stages.gpt import GptConfig
from reimpl.gpt import gpt2
from reimpl.gpt.beams import BeamSearch
from reimpl.gpt.conditioning import text_embeddings
from reimpl.gpt.sampler import process
from reimpl.params import Params

Noise = Callable[[int], "torch.Tensor | None"]  # token -> the recorded Exp(1) draws of that step, if any


def fake_prompt_ids(cfg: GptConfig, prompt_length: int) -> torch.Tensor:
    """prepare_gpt_inputs' input ids: ones for the prompt rows, then start_mel_token (the penalty sees them)."""
    ids = torch.ones(1, prompt_length + 1, dtype=torch.int64)
    ids[:, -1] = cfg.start_mel_token
    return ids


def key_mask(rows: int, padding: int, keys: int) -> torch.Tensor | None:
    """[rows, keys] False at the prompt's padding rows; None when there are none (transformers then does not
    materialise a mask)."""
    if not padding:
        return None
    valid = torch.ones(rows, keys, dtype=torch.bool)
    valid[:, :padding] = False
    return valid


def prefill(p: Params, cfg: GptConfig, prompt: torch.Tensor, padding: int, start: torch.Tensor, rows: int, tap,
            at: str):
    """The first forward: [prompt | start code] on `rows` identical rows -> (last logits [R, V], the cache)."""
    x = torch.cat([prompt, start], dim=1).repeat_interleave(rows, 0)
    cache: gpt2.Cache = []
    hidden = gpt2.body(p, cfg, x, cache, tap, f"{at}/prefill", key_mask(rows, padding, x.shape[1]))
    return gpt2.mel_logits(p, hidden)[:, -1, :], cache


def next_logits(p: Params, cfg: GptConfig, x: torch.Tensor, cache: gpt2.Cache, padding: int) -> torch.Tensor:
    """One code per row through the KV path -> logits [R, V]."""
    valid = key_mask(x.shape[0], padding, cache[0][0].shape[-2] + 1)
    return gpt2.mel_logits(p, gpt2.body(p, cfg, x, cache, valid=valid))[:, -1, :]


def start_input(p: Params, cfg: GptConfig, position: int) -> torch.Tensor:
    return gpt2.embed_codes(p, torch.tensor([cfg.start_mel_token]), position)


def generate_free(p: Params, cfg: GptConfig, prompt: torch.Tensor, padding: int, noise_of: Noise, tap,
                  at: str) -> torch.Tensor:
    """Beam-search sampling replaying the recorded noise; returns the final sequence's codes [1, n]."""
    ids = fake_prompt_ids(cfg, prompt.shape[1])
    search = BeamSearch(ids, cfg, ids.shape[1] + cfg.max_tokens)
    positions = [gpt2.mel_position(0)]
    inputs = [start_input(p, cfg, positions[0]).repeat(cfg.num_beams, 1, 1)]
    logits, cache = prefill(p, cfg, prompt, padding, inputs[0][:1], cfg.num_beams, tap, at)
    step_logits = [logits]
    while True:
        noise = noise_of(len(search.steps))
        if noise is None:  # our search went on past upstream's last draw: its best running beam is the answer
            break
        rows = search.step(process(logits, search.row_sequences, cfg, ids.shape[1]), noise)
        if search.done:
            break
        gpt2.reorder(cache, rows)
        positions.append(gpt2.mel_position(len(search.steps)))
        inputs.append(gpt2.embed_codes(p, search.row_sequences[:, -1], positions[-1]))
        logits = next_logits(p, cfg, inputs[-1], cache, padding)
        step_logits.append(logits)
    codes, rows = search.result(finished=search.done)
    for t, row in enumerate(rows):
        step, tp = search.steps[t], f"{at}/token_{t:04d}"
        one = slice(row, row + 1)
        tap(f"{tp}/position", torch.tensor([positions[t]]))
        tap(f"{tp}/input", inputs[t][one])
        tap(f"{tp}/logits", step_logits[t][one])
        tap(f"{tp}/penalized", step.processed.penalized[one])
        tap(f"{tp}/scaled", step.processed.scaled[one])
        tap(f"{tp}/kept", step.processed.kept[one])
        tap(f"{tp}/noise", step.noise)
        tap(f"{tp}/candidates", step.candidates)
        tap(f"{tp}/beams", step.next_rows)
    for t, row in enumerate(rows):  # what the search decided in the end: known only now, so recorded last
        tap(f"{at}/token_{t:04d}/row", torch.tensor([row]))
        tap(f"{at}/token_{t:04d}/code", codes[:, t])
    return codes


def generate_forced(p: Params, cfg: GptConfig, prompt: torch.Tensor, padding: int, codes: torch.Tensor,
                    rows_of: list[int], noise_of: Noise, tap, at: str) -> None:
    """Teacher forcing: the reference's codes [1, n] fed one at a time through the KV path, every stage fed the
    reference's value; the sampler's decisions (candidates, beams, code) are not taught.

    num_beams identical rows run side by side, and at step t the logits are read from the row the final
    sequence came from upstream (`rows_of[t]`), whose new cache entry then replaces every row's: a matmul
    rounds a row by its position in the batch, so only the same row of the same shape is bit-identical."""
    rows = cfg.num_beams
    ids = fake_prompt_ids(cfg, prompt.shape[1])
    cache: gpt2.Cache = []
    for t in range(codes.shape[1]):
        tp = f"{at}/token_{t:04d}"
        position = int(tap(f"{tp}/position", torch.tensor([gpt2.mel_position(t)]))[0])
        fed = codes[0, t - 1 : t] if t else torch.tensor([cfg.start_mel_token])
        x = tap(f"{tp}/input", gpt2.embed_codes(p, fed, position)).expand(rows, -1, -1).contiguous()
        if t == 0:
            logits, cache = prefill(p, cfg, prompt, padding, x[:1], rows, tap, at)
        else:
            logits = next_logits(p, cfg, x, cache, padding)
        row = rows_of[t] if t < len(rows_of) else 0
        gpt2.reorder(cache, torch.full((rows,), row))
        row_logits = tap(f"{tp}/logits", logits[row : row + 1])
        history = torch.cat([ids, codes[:, :t]], dim=1)
        process(row_logits, history, cfg, ids.shape[1], tap=lambda name, value, tp=tp: tap(f"{tp}/{name}", value))
        noise = noise_of(t)
        if noise is not None:
            tap(f"{tp}/noise", noise)


def cut_at_stop(cfg: GptConfig, codes: torch.Tensor) -> torch.Tensor:
    """infer_v2.py:638-648 for B = 1: the codes before the first stop code."""
    hit = (codes[0] == cfg.stop_mel_token).nonzero()
    return codes[:, : int(hit[0, 0])] if hit.numel() else codes


def latent_pass(p: Params, cfg: GptConfig, conds: torch.Tensor, ids: torch.Tensor, codes: torch.Tensor, tap,
                at: str) -> torch.Tensor:
    """UnifiedVoice.forward (model_v2.py:589-662): [conds | text 0..1 | codes 8192..8193] through the body in one
    pass; final_norm(ln_f) at the code rows, the last two dropped -> [1, n, 1280]."""
    text = F.pad(F.pad(ids[0], (0, 1), value=cfg.stop_text_token), (1, 0), value=cfg.start_text_token)
    mel = F.pad(F.pad(codes[0], (0, 1), value=cfg.stop_mel_token), (1, 0), value=cfg.start_mel_token)
    mel_emb = F.embedding(mel, p["mel_embedding.weight"]) + p["mel_pos_embedding.emb.weight"][: mel.shape[0]]
    x = tap(f"{at}/latent/in", torch.cat([conds, text_embeddings(p, text)[None], mel_emb[None]], dim=1))
    hidden = gpt2.body(p, cfg, x, None, tap, f"{at}/latent")
    enc = gpt2.layer_norm(p, "final_norm", hidden[:, conds.shape[1] :])
    return tap(f"{at}/latent/out", enc[:, -mel.shape[0] :][:, :-2])
