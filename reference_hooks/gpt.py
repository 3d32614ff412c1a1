"""Upstream's GPT (UnifiedVoice v2 + transformers 5.17.0 generate), built from our config, hooked, run as
infer_v2 runs it.

Mirrors indextts2-inference 2.1.1: `infer_v2.py:136-153` (UnifiedVoice(**cfg.gpt), weights loaded, eval,
`post_init_gpt2_config(kv_cache=True)`), `infer_v2.py:545-552` (TextTokenizer: tokenize, split_segments,
ids), and per segment `infer_v2.py:568-569` (ids as int32 [1, L]), `:598-604` (merge_emovec with the
lengths infer_v2 passes: the features' LAST axis, 1024), `:606-624` (inference_speech with infer_v2's
sampling arguments; max_generate_length = our token cap), `:638-648` (cut at the first stop code) and
`:652-665` (the latent pass). The emotion reference is the speaker (infer_v2.py:516-520: no emotion prompt,
alpha 1.0) or the emotion recording's features (:521-525). The emotion-vector mode (`emo_vector`, :497-541 and
:606-607) runs as infer does: the weights scaled by alpha, the rows of spk_matrix nearest the speaker's style by
upstream's own `find_most_similar_cosine` (or `random.randint` draws, recorded), the emo_matrix rows mixed and
added to merge_emovec's output (taken at alpha 1.0) times 1 - sum(weights). use_emo_text (Qwen) is not run.
The text normaliser (NeMo) is optional in TextTokenizer and not used here; the class always runs it (`attach`
checks that it left the text unchanged). Declared in `harness/stages/gpt.py`; hooks in
`reference_hooks/gpt_hooks.py`, draws in `reference_hooks/gpt_draws.py`.
"""
from __future__ import annotations

import itertools
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.errors import UserError
from harness.stages.gpt import EMO_VECTOR, GptConfig
from reference_hooks.gpt_draws import Draws
from reference_hooks.gpt_hooks import Where, install
from reference_hooks.gpt_weights import EMO_MATRIX, SPK_MATRIX, TOKENIZER, meta_module, seeded, tokenizer_bytes
from reference_hooks.recorder import Recorder, hooked
from reference_hooks.upstream import import_module

__all__ = ["Built", "attach", "build", "run", "seeded", "segment_ids"]


@dataclass
class Built:
    model: torch.nn.Module  # UnifiedVoice after post_init_gpt2_config
    tokenizer: bytes  # the sentencepiece model file's bytes
    spk_matrix: tuple[torch.Tensor, ...]  # feat1.pt split by emo_num (infer_v2.py:231-240), float32 as torch.load gives
    emo_matrix: tuple[torch.Tensor, ...]  # feat2.pt likewise


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
    split = {name: torch.split(torch.from_numpy(np.array(weights[name], dtype=np.float32)), list(config.emo_num))
             for name in (SPK_MATRIX, EMO_MATRIX)}
    return Built(model, tokenizer_bytes(weights), split[SPK_MATRIX], split[EMO_MATRIX])


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
    with torch.inference_mode():  # before the text, as infer_v2 runs it (:530-541, then :545)
        mix = emotion_matrix_mix(built, config, given, recorder) if config.emo_vector else None
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
            codes, latent = _segment(model, config, ids, spk, emo, recorder, where, mix)
            out[f"{where.prefix}/codes"], out[f"{where.prefix}/latent/out"] = codes, latent
    return out


def attach(hooks, model, tokenizer, recorder: Recorder, config: GptConfig | None = None) -> None:
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
    if config is not None and config.emo_vector:
        _wrap_emotion_vector(hooks, model, recorder, where, config)


def _wrap_emotion_vector(hooks, model, recorder: Recorder, where: Where, config: GptConfig) -> None:
    """The emotion-vector mode as the class runs it inline (infer_v2.py:530-541, :606-607): the rows read off
    `random.randint` (use_random, its draws recorded) or `find_most_similar_cosine` as infer_v2's namespace calls
    them, and the emovec the GPT is conditioned on off inference_speech's `emo_vec`."""
    infer_v2 = import_module("infer_v2")
    rows: list[int] = []

    def rows_done() -> None:
        if len(rows) == len(config.emo_num):
            recorder(EMO_VECTOR + "/rows", torch.tensor([rows]))

    class Random:  # stands in for the `random` module in infer_v2's namespace only
        def __getattr__(self, name):
            return getattr(random, name)

        @staticmethod
        def randint(a, b):
            value = random.randint(a, b)
            rows.append(value)
            if len(rows) == len(config.emo_num):
                recorder(EMO_VECTOR + "/random_rows", torch.tensor([rows]))
            rows_done()
            return value

    nearest = infer_v2.find_most_similar_cosine

    def find_most_similar_cosine(query, matrix):
        index = nearest(query, matrix)
        rows.append(int(index))
        rows_done()
        return index

    hooks.patch(infer_v2, "random", Random())
    hooks.patch(infer_v2, "find_most_similar_cosine", find_most_similar_cosine)
    speech = model.inference_speech

    def inference_speech(*args, **kwargs):
        if where.segment == 0:
            recorder(EMO_VECTOR + "/emovec", kwargs["emo_vec"])
        return speech(*args, **kwargs)

    hooks.patch(model, "inference_speech", inference_speech)


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


def emotion_matrix_mix(built: Built, config: GptConfig, given: dict[str, torch.Tensor], recorder: Recorder
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """infer_v2.py:509-515 and :530-541: (weight_vector, emovec_mat). The rows: `random.randint` per emotion under
    use_random (drawn from the run's seed, or the recorded draws when given), else upstream's own
    find_most_similar_cosine of the speaker's style against each block of spk_matrix."""
    weight_vector = torch.tensor(config.emo_vector_weights)  # :531
    if config.emo_random:
        drawn = given.get(EMO_VECTOR + "/random_rows")
        if drawn is None:
            rng = random.Random(torch.initial_seed())  # the run's seed (the driver seeds torch as a user run)
            drawn = torch.tensor([[rng.randint(0, x - 1) for x in config.emo_num]])  # :533
        index = [int(i) for i in recorder(EMO_VECTOR + "/random_rows", drawn.reshape(1, -1)).reshape(-1)]
    else:
        nearest = import_module("emotion").find_most_similar_cosine
        index = [int(nearest(given["style/style"], tmp)) for tmp in built.spk_matrix]  # :535
    recorder(EMO_VECTOR + "/rows", torch.tensor([index]))
    emo_matrix = torch.cat([tmp[i].unsqueeze(0) for i, tmp in zip(index, built.emo_matrix)], 0)  # :537-538
    emovec_mat = torch.sum(weight_vector.unsqueeze(1) * emo_matrix, 0).unsqueeze(0)  # :539-541
    return weight_vector, emovec_mat


def _segment(model, config: GptConfig, ids: list[int], spk, emo, recorder: Recorder, where: Where, mix=None):
    text_tokens = torch.tensor(ids, dtype=torch.int32).unsqueeze(0)  # infer_v2.py:568-569
    spk_len, emo_len = torch.tensor([spk.shape[-1]]), torch.tensor([emo.shape[-1]])  # the LAST axis, as upstream
    emovec = model.merge_emovec(spk, emo, spk_len, emo_len, alpha=config.merge_alpha)  # :598-604
    if mix is not None:  # :606-607
        weight_vector, emovec_mat = mix
        emovec = emovec_mat + (1 - torch.sum(weight_vector)) * emovec
        if where.segment == 0:
            recorder(EMO_VECTOR + "/emovec", emovec)
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
