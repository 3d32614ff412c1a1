"""Upstream's GPT (UnifiedVoice v2 + transformers 5.17.0 generate), built from our config, hooked, run as
infer_v2 runs it.

Mirrors indextts2-inference 2.1.1: `infer_v2.py:136-153` (UnifiedVoice(**cfg.gpt), weights loaded, eval,
`post_init_gpt2_config(kv_cache=True)`), `infer_v2.py:545-552` (TextTokenizer: tokenize, split_segments,
ids), and per segment `infer_v2.py:568-569` (ids as int32 [1, L]), `:598-604` (merge_emovec with the
lengths infer_v2 passes: the features' LAST axis, 1024), `:606-624` (inference_speech with infer_v2's
sampling arguments; max_generate_length = our token cap), `:638-648` (cut at the first stop code) and
`:652-665` (the latent pass). The emotion reference is the speaker (infer_v2.py:516-520: no emotion prompt,
alpha 1.0); emo_vector (spk_matrix / emo_matrix rows by cosine or `random.randint`) and use_emo_text (Qwen)
are not run. The text normaliser (NeMo) is optional in TextTokenizer and not used here; the class always runs
it (`attach` checks that it left the text unchanged). Declared in
`harness/stages/gpt.py`; hooks in `reference_hooks/gpt_hooks.py`, draws in `reference_hooks/gpt_draws.py`.
"""
from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.errors import UserError
from harness.stages.gpt import GptConfig
from reference_hooks.gpt_draws import Draws
from reference_hooks.gpt_hooks import Where, install
from reference_hooks.gpt_weights import TOKENIZER, meta_module, seeded, tokenizer_bytes
from reference_hooks.recorder import Recorder, hooked
from reference_hooks.upstream import import_module

__all__ = ["Built", "attach", "build", "run", "seeded", "segment_ids"]


@dataclass
class Built:
    model: torch.nn.Module  # UnifiedVoice after post_init_gpt2_config
    tokenizer: bytes  # the sentencepiece model file's bytes


def build(config: GptConfig, weights: dict[str, np.ndarray], dtype: torch.dtype) -> Built:
    """UnifiedVoice on the meta device, our tensors assigned (no library init runs, real size builds in
    seconds), cast, eval, and `post_init_gpt2_config(use_deepspeed=False, kv_cache=True, half=False)`."""
    model = meta_module(config)
    state = {k: torch.from_numpy(np.asarray(v)) for k, v in weights.items() if k != TOKENIZER}
    own = model.state_dict()
    missing, wrong = sorted(set(own) - set(state)), sorted(k for k in own if k in state and state[k].shape != own[k].shape)
    if missing or wrong:
        raise UserError(f"checkpoint does not fit upstream's UnifiedVoice: missing {missing[:3]} wrong shape {wrong[:3]}")
    model.load_state_dict({k: state[k] for k in own}, strict=True, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"UnifiedVoice tensors not loaded: {left[:3]}")
    model = model.to(dtype).eval()
    model.post_init_gpt2_config(use_deepspeed=False, kv_cache=True, half=False)
    return Built(model, tokenizer_bytes(weights))


def unbuilt_tokenizer(model_bytes: bytes, folder: Path):
    """Upstream's TextTokenizer over the model bytes (it reads a file), without the optional normaliser."""
    path = folder / "bpe.model"
    path.write_bytes(model_bytes)
    return import_module("utils.front").TextTokenizer(str(path), None)


def segment_ids(tokenizer, text: str, config: GptConfig) -> tuple[list[int], list[list[int]]]:
    """infer_v2.py:545-552 and :568: the whole text's ids and each segment's."""
    pieces = tokenizer.tokenize(text)
    segments = tokenizer.split_segments(pieces, config.max_text_tokens_per_segment, quick_streaming_tokens=0)
    return tokenizer.convert_tokens_to_ids(pieces), [tokenizer.convert_tokens_to_ids(s) for s in segments]


def text_of(codepoints: torch.Tensor) -> str:
    return "".join(map(chr, codepoints.reshape(-1).tolist()))


def check_text(config: GptConfig, model_bytes: bytes, text: str) -> int:
    """The number of segments upstream makes of `text`; bad input (nothing to speak, too many segments) is a
    UserError: upstream's infer_v2 concatenates no audio for a text without a segment and fails."""
    if not text.strip():
        raise UserError("--text is empty: upstream makes no segment of it (infer_v2.py:546) and has nothing to speak")
    with tempfile.TemporaryDirectory() as tmp:
        _, segments = segment_ids(unbuilt_tokenizer(model_bytes, Path(tmp)), text, config)
    if not segments:
        raise UserError(f"--text {text!r} makes no text tokens, so no segment (infer_v2.py:546): nothing to speak")
    if len(segments) > config.max_segments:
        raise UserError(f"--text makes {len(segments)} segments of at most {config.max_text_tokens_per_segment} tokens; "
                        f"this config runs at most {config.max_segments} (each runs the GPT, s2mel and the CFM)")
    return len(segments)


def run(built: Built, config: GptConfig, given: dict[str, torch.Tensor], recorder: Recorder) -> dict[str, torch.Tensor]:
    """Every segment's GPT steps, in infer_v2's order; the draws are upstream's unless `given` holds them."""
    model = built.model
    spk, emo = given["semantic/spk_cond"].to(_dtype(model)), given["semantic/emo/cond"].to(_dtype(model))
    text = text_of(given["inputs/text"])
    out: dict[str, torch.Tensor] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = unbuilt_tokenizer(built.tokenizer, Path(tmp))
        all_ids, segments = segment_ids(tokenizer, text, config)
    recorder("gpt/text_ids", torch.tensor([all_ids], dtype=torch.int64))
    for k, ids in enumerate(segments):
        recorder(f"gpt/seg_{k:02d}/text_ids", torch.tensor([ids], dtype=torch.int64))
    where, draws = Where(), Draws(given)
    with torch.inference_mode(), hooked() as hooks:
        if recorder.hooking:
            install(hooks, model, recorder, where, draws)
        for k, ids in enumerate(segments):
            where.segment = k
            codes, latent = _segment(model, config, ids, spk, emo, recorder, where)
            out[f"{where.prefix}/codes"], out[f"{where.prefix}/latent/out"] = codes, latent
    return out


def attach(hooks, model, tokenizer, recorder: Recorder) -> None:
    """Our stages of a UnifiedVoice and a TextTokenizer that upstream's own code calls (the unmodified IndexTTS2
    class, `tts.gpt` and `tts.tokenizer`): the ids of the text and of each segment (infer_v2.py:545-552, read
    off `tokenize` and `split_segments` as :552 and :568 convert them), and each segment's GPT stages, the
    segment counted at its `merge_emovec` call (:598), which opens it; every multinomial draw is recorded; the cut
    codes are read off the latent pass's call (:654-668).
    The class normalises the text first (utils/front.py:490-491, its NeMo normaliser) where our glue does not:
    a text the normaliser changes is a MISMATCH in `recorder.checks`."""
    where, draws, segments = Where(), Draws({}), itertools.count()
    install(hooks, model, recorder, where, draws)
    merge = model.merge_emovec

    def merge_emovec(*args, **kwargs):
        where.segment = next(segments)
        return merge(*args, **kwargs)

    hooks.patch(model, "merge_emovec", merge_emovec)

    def cut_codes(_m, args) -> None:  # a pre-hook returning a value would replace the arguments
        recorder(f"{where.prefix}/codes", args[3])

    # the codes cut at the first stop code (:638-650, inline in infer_v2) are the latent pass's 4th argument (:654)
    hooks.pre(model, cut_codes)
    _wrap_text(hooks, tokenizer, recorder)


def _wrap_text(hooks, tokenizer, recorder: Recorder) -> None:
    tokenize, split = tokenizer.tokenize, tokenizer.split_segments
    normalize = tokenizer.normalizer.normalize if tokenizer.normalizer is not None else None

    def normalized(text, *args, **kwargs):
        out = normalize(text, *args, **kwargs)
        recorder.checks["gpt/text_ids"] = ("ok: the class's normaliser left the text as it is" if out == text else
                                           f"MISMATCH: the class's normaliser made {text!r} {out!r}")
        return out

    def tokenized(text):
        pieces = tokenize(text)
        recorder("gpt/text_ids", torch.tensor([tokenizer.convert_tokens_to_ids(pieces)], dtype=torch.int64))
        return pieces

    def segmented(*args, **kwargs):
        out = split(*args, **kwargs)
        for k, piece_list in enumerate(out):
            ids = tokenizer.convert_tokens_to_ids(piece_list)
            recorder(f"gpt/seg_{k:02d}/text_ids", torch.tensor([ids], dtype=torch.int64))
        return out

    if normalize is not None:
        hooks.patch(tokenizer.normalizer, "normalize", normalized)
    hooks.patch(tokenizer, "tokenize", tokenized)
    hooks.patch(tokenizer, "split_segments", segmented)


def _segment(model, config: GptConfig, ids: list[int], spk, emo, recorder: Recorder, where: Where):
    text_tokens = torch.tensor(ids, dtype=torch.int32).unsqueeze(0)  # infer_v2.py:568-569
    spk_len, emo_len = torch.tensor([spk.shape[-1]]), torch.tensor([emo.shape[-1]])  # the LAST axis, as upstream
    emovec = model.merge_emovec(spk, emo, spk_len, emo_len, alpha=config.emo_alpha)  # :598-604
    codes, speech_conditioning_latent = model.inference_speech(  # :606-624
        spk, text_tokens, emo, cond_lengths=spk_len, emo_cond_lengths=emo_len, emo_vec=emovec, do_sample=True,
        top_p=config.top_p, top_k=config.top_k, temperature=config.temperature, num_return_sequences=1,
        length_penalty=config.length_penalty, num_beams=config.num_beams, repetition_penalty=config.repetition_penalty,
        max_generate_length=config.max_tokens)
    code_lens = []  # :638-648
    for code in codes:
        hit = (code == model.stop_mel_token).nonzero(as_tuple=False)
        code_lens.append(int(hit[0][0]) if hit.numel() else len(code))
    codes = recorder(f"{where.prefix}/codes", codes[:, : max(code_lens)])
    use_speed = torch.zeros(spk.size(0)).long()
    latent = model(speech_conditioning_latent, text_tokens, torch.tensor([text_tokens.shape[-1]]), codes,  # :652-665
                   torch.tensor([codes.shape[-1]]), emo, cond_mel_lengths=spk_len, emo_cond_mel_lengths=emo_len,
                   emo_vec=emovec, use_speed=use_speed)
    return codes, latent


def _dtype(model) -> torch.dtype:
    return next(model.parameters()).dtype
