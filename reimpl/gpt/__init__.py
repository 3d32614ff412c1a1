"""Our GPT part: text ids, the emotion vector and speaker latents, per segment the codes (beam-search sampling
replaying the recorded noise, or the reference's codes teacher-forced) and the latent. Declared in
`harness/stages/gpt.py`; the modules: text (tokenizer and segments), conformer, perceiver, conditioning,
emotion_vector (the emotion-vector mode's matrix rows), gpt2 (the body, its KV cache and positions), sampler
(the logits processors, the race), beams (the beam state), generate (the two decoding loops and the latent
pass)."""
from __future__ import annotations

import torch

from harness.stages.gpt import GptConfig
from reimpl.gpt import emotion_vector
from reimpl.gpt.conditioning import conditioning_rows, generation_prompt, merged_emotion_vector, speaker_latents
from reimpl.gpt.generate import cut_at_stop, generate_forced, generate_free, latent_pass
from reimpl.gpt.text import load_sentencepiece, text_to_segment_ids
from reimpl.params import Params

TOKENIZER = "bpe.model"


def recorded(tap, path: str) -> torch.Tensor | None:
    """The reference's value of a stage when the tap teacher-forces (None when it runs free)."""
    source = getattr(tap, "forced_from", None)
    return torch.from_numpy(source.read(path)) if source is not None and path in source else None


def _recorded_tokens(tap, at: str) -> tuple[torch.Tensor, list[int]] | None:
    """Teacher-forcing: the reference's per-token codes of a segment (stop code included, [1, n]) and the beam
    row each came from; None when the tap runs free."""
    codes, rows, t = [], [], 0
    while (code := recorded(tap, f"{at}/token_{t:04d}/code")) is not None:
        codes.append(code.reshape(1, 1))
        row = recorded(tap, f"{at}/token_{t:04d}/row")
        rows.append(int(row.reshape(-1)[0]) if row is not None else 0)
        t += 1
    return (torch.cat(codes, dim=1), rows) if codes else None


def run(params: Params, config: GptConfig, given: dict[str, torch.Tensor], tap) -> dict[str, torch.Tensor]:
    mix = emotion_vector.matrix_mix(params, config, given, tap) if config.emo_vector else None
    text = "".join(map(chr, given["inputs/text"].reshape(-1).tolist()))
    model = load_sentencepiece(params[TOKENIZER].numpy().tobytes())
    all_ids, segments = text_to_segment_ids(model, text, config.max_text_tokens_per_segment)
    tap("gpt/text_ids", torch.tensor([all_ids], dtype=torch.int64))
    segment_ids = [tap(f"gpt/seg_{k:02d}/text_ids", torch.tensor([ids], dtype=torch.int64))
                   for k, ids in enumerate(segments)]
    dtype = params["mel_head.weight"].dtype
    out = {}
    with torch.inference_mode():
        spk, emo = given["semantic/spk_cond"].to(dtype), given["semantic/emo/cond"].to(dtype)
        emovec = merged_emotion_vector(params, config, spk, emo, tap)
        if mix is not None:
            emovec = emotion_vector.conditioned(*mix, emovec, tap)
        latents = speaker_latents(params, config, spk, tap)
        for k, ids in enumerate(segment_ids):
            at = f"gpt/seg_{k:02d}"
            conds = tap(f"{at}/conds", conditioning_rows(params, latents, emovec))
            prompt, padding = generation_prompt(params, config, conds, ids)
            prompt = tap(f"{at}/prompt", prompt)

            def noise_of(t: int, at=at) -> torch.Tensor | None:
                return given.get(f"{at}/token_{t:04d}/noise")

            forced = _recorded_tokens(tap, at)
            if forced is not None:
                codes, rows = forced
                generate_forced(params, config, prompt, padding, codes, rows, noise_of, tap, at)
            else:
                codes = generate_free(params, config, prompt, padding, noise_of, tap, at)
            codes = tap(f"{at}/codes", cut_at_stop(config, codes))
            out[f"{at}/codes"] = codes
            out[f"{at}/latent/out"] = latent_pass(params, config, conds, ids, codes, tap, at)
    return out
