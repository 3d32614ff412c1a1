"""Upstream's length regulator (`InterpolateRegulator`), built from our config, hooked, run as infer_v2 runs it.

Mirrors indextts2-inference 2.1.1: `s2mel/modules/commons.py:376-393` (MyModel builds the regulator from
config.yaml's `s2mel.length_regulator`), `infer_v2.py:361,368-370` (the prompt half: ylens = the speaker
mel's frames, n_quantizers=3, f0=None) and `infer_v2.py:682-686` (the target half: ylens =
(code_lens * 1.72).long()). Declared in `harness/stages/s2mel.py`.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

from harness import stages
from harness.stages.s2mel import PROMPT, TARGET, S2MelConfig
from reference_hooks.recorder import Recorder, hooked
from reference_hooks.upstream import import_module
from reference_hooks.weights import load_into

TARGET_IN = "inputs/seg_{seg}/target_content"
PROMPT_IN = "semantic/codec/emb"  # S_ref (infer_v2.py:359)
PROMPT_MEL = "frontend/mel/out"  # ref_mel (infer_v2.py:360)
PREFIX = "length_regulator"


def unbuilt_module(config: S2MelConfig) -> torch.nn.Module:
    """InterpolateRegulator with MyModel's arguments for our config (commons.py:376-393), random init."""
    return import_module("s2mel.modules.length_regulator").InterpolateRegulator(
        channels=config.lr_channels, sampling_ratios=list(config.lr_sampling_ratios), is_discrete=False,
        in_channels=config.lr_in_channels, vector_quantize=False, codebook_size=config.lr_codebook_size,
        n_codebooks=1, quantizer_dropout=0.0, f0_condition=False, n_f0_bins=512,
    )


def build(config: S2MelConfig, weights: dict[str, np.ndarray], dtype: torch.dtype) -> torch.nn.Module:
    """The regulator with our weights loaded, in `dtype`, in eval mode."""
    model = unbuilt_module(config)
    load_into(model, weights, PREFIX, dtype)
    return model.eval()


def _hook(hooks, lr, recorder: Recorder, where: dict) -> None:
    """Stages of one call of the regulator, under the prefix of the half being run (`where["at"]`)."""

    def content_in(_m, args, output):
        recorder(f"{where['at']}/in", args[0])
        recorder(f"{where['at']}/proj", output)

    def output(name: str, pick=lambda out: out):
        def hook(_m, _args, out):
            recorder(f"{where['at']}/{name}", pick(out))
        return hook

    def interp(_m, args):
        recorder(f"{where['at']}/interp", args[0])

    hooks.forward(lr.content_in_proj, content_in)
    layers = list(lr.model)
    hooks.pre(layers[0], interp)
    for k in range((len(layers) - 1) // 3):  # Conv1d -> GroupNorm -> Mish
        hooks.forward(layers[3 * k], output(f"block_{k}/conv"))
        hooks.forward(layers[3 * k + 1], output(f"block_{k}/norm"))
        hooks.forward(layers[3 * k + 2], output(f"block_{k}/out"))
    hooks.forward(layers[-1], output("out_conv"))
    hooks.forward(lr, output("out", pick=lambda out: out[0]))


def attach(hooks, lr: torch.nn.Module, recorder: Recorder) -> None:
    """Our stages of a regulator that upstream's own code calls (the unmodified IndexTTS2 class): its first
    call is the prompt half (`infer_v2.py:368-370`, in `_get_speaker_conditioning`), each later call the target
    half of the next text segment (`infer_v2.py:684-686`)."""
    where, calls = {"at": PROMPT}, itertools.count()

    def position(_m, _args):
        n = next(calls)
        where["at"] = PROMPT if n == 0 else stages.seg_path(TARGET, n - 1)

    hooks.pre(lr, position)
    _hook(hooks, lr, recorder, where)


def run(model: torch.nn.Module, config: S2MelConfig, given: dict[str, torch.Tensor], recorder: Recorder
        ) -> dict[str, torch.Tensor]:
    out, where = {}, {"at": PROMPT}
    with torch.inference_mode(), hooked() as hooks:
        if recorder.hooking:
            _hook(hooks, model, recorder, where)
        if PROMPT_IN in given:
            # infer_v2:361,368-370: ref_target_lengths = ref_mel.size(2); prompt_condition = lr(S_ref, ...)[0]
            frames = given[PROMPT_MEL].shape[-1]
            out[PROMPT + "/out"] = model(given[PROMPT_IN], ylens=torch.LongTensor([frames]),
                                         n_quantizers=3, f0=None)[0]
        for seg in stages.segments_in(given, TARGET_IN):
            content = given[stages.seg_path(TARGET_IN, seg)]
            where["at"] = stages.seg_path(TARGET, seg)
            # infer_v2:682-686: target_lengths = (code_lens * 1.72).long(); cond = lr(S_infer, ...)[0]
            ylens = (torch.LongTensor([content.shape[1]]) * config.code_to_frame).long()
            out[where["at"] + "/out"] = model(content, ylens=ylens, n_quantizers=3, f0=None)[0]
    return out
