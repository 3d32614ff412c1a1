"""Upstream's style encoder, run unmodified with taps: torchaudio's Kaldi fbank and upstream's CAMPPlus.

Mirrors indextts2-inference 2.1.1 `infer_v2.py:204-207` (`CAMPPlus(feat_dim=80, embedding_size=192)`, its
state dict loaded, eval) and `infer_v2.py:362-366`:
    feat = torchaudio.compliance.kaldi.fbank(audio_16k, num_mel_bins=80, dither=0, sample_frequency=16000)
    feat = feat - feat.mean(dim=0, keepdim=True)
    style = self.campplus_model(feat.unsqueeze(0))
CAMPPlus's stages come from forward hooks on its modules. Inside `kaldi.fbank` (plain functions) the
module-level helpers `_get_strided` (raw frames) and `_get_window` (DC removal, pre-emphasis, povey window,
zero padding) are wrapped, and the module's `torch` is a proxy whose `mm` records the power spectrum and
the mel energies; all undone by `hooked()`. `attach` puts the same taps on the unmodified IndexTTS2 class
(tests/test_glue_equals_class.py). Declared in `harness/stages/style.py`.
"""
from __future__ import annotations

import numpy as np
import torch

from harness.stages.style import CAMP, StyleConfig
from reference_hooks import style_weights
from reference_hooks.frontend import _TorchProxy, patch_in
from reference_hooks.recorder import Recorder, hooked
from reference_hooks.upstream import import_module, load_torchaudio
from reference_hooks.weights import load_into

PREFIX = "campplus"
WAV_16K = "frontend/wav_16k"
generate = style_weights.generate


def unbuilt_module(config: StyleConfig) -> torch.nn.Module:
    """CAMPPlus as infer_v2.py:204 builds it (random init): its parameter names and shapes."""
    return import_module("s2mel.modules.campplus.DTDNN").CAMPPlus(feat_dim=config.feat_dim,
                                                                   embedding_size=config.embedding_size)


def build(config: StyleConfig, weights: dict[str, np.ndarray], dtype: torch.dtype) -> torch.nn.Module:
    """infer_v2.py:204-207: built, every parameter and buffer loaded, in `dtype`, in eval mode."""
    model = unbuilt_module(config)
    load_into(model, weights, PREFIX, dtype)
    return model.eval()


def _stage_modules(model) -> list[tuple[str, torch.nn.Module]]:
    """(stage path, the module whose forward output is that stage), in execution order."""
    out = [(CAMP + "/head/stem", model.head.bn1)]
    blocks = [b for layer in (model.head.layer1, model.head.layer2) for b in layer]
    out += [(f"{CAMP}/head/res_block_{i}", b) for i, b in enumerate(blocks)]
    out += [(CAMP + "/head/conv2", model.head.bn2), (CAMP + "/head/out", model.head),
            (CAMP + "/tdnn", model.xvector.tdnn)]
    for b in range(3):
        block = getattr(model.xvector, f"block{b + 1}")
        out += [(f"{CAMP}/block_{b:02d}/layer_{i}", layer) for i, layer in enumerate(block)]
        out += [(f"{CAMP}/block_{b:02d}/out", block), (f"{CAMP}/transit_{b:02d}", getattr(model.xvector, f"transit{b + 1}"))]
    return out + [(CAMP + "/out_nonlinear", model.xvector.out_nonlinear), (CAMP + "/stats", model.xvector.stats),
                  (CAMP + "/dense", model.xvector.dense.linear)]


def _campplus_hooks(hooks, model, recorder: Recorder) -> None:
    def hook_for(path: str):
        def hook(_module, _inputs, output):
            # DenseLayer runs its conv on [B, C, 1] (DTDNN.py); the stage is [B, C]
            recorder(path, output.squeeze(-1) if path == CAMP + "/dense" else output)
        return hook

    for path, module in _stage_modules(model):
        hooks.forward(module, hook_for(path))


def _fbank_taps(hooks, kaldi, recorder: Recorder) -> None:
    real_torch, real_strided, real_window = kaldi.torch, kaldi._get_strided, kaldi._get_window

    def get_strided(*args, **kwargs):
        return recorder("style/fbank/strided", real_strided(*args, **kwargs)[None])[0]

    def get_window(*args, **kwargs):
        frames, energy = real_window(*args, **kwargs)
        recorder("style/fbank/windowed", frames[None])
        return frames, energy

    def mm(spectrum, banks):
        recorder("style/fbank/power", spectrum[None])
        return recorder("style/fbank/mel", real_torch.mm(spectrum, banks)[None])[0]

    hooks.patch(kaldi, "_get_strided", get_strided)
    hooks.patch(kaldi, "_get_window", get_window)
    hooks.patch(kaldi, "torch", _TorchProxy(real_torch, mm=mm))


def run(model, config: StyleConfig, given: dict[str, torch.Tensor], recorder: Recorder) -> dict[str, torch.Tensor]:
    """:362-366 with every stage recorded; returns the style [1, 192]."""
    kaldi = load_torchaudio().compliance.kaldi
    audio_16k = given[WAV_16K]
    with torch.inference_mode(), hooked() as hooks:
        if recorder.hooking:
            _fbank_taps(hooks, kaldi, recorder)
            _campplus_hooks(hooks, model, recorder)
        feat = kaldi.fbank(audio_16k, num_mel_bins=config.num_mel_bins, dither=0,
                           sample_frequency=config.sample_frequency)  # :362-364
        recorder("style/fbank/log", feat[None])
        feat = feat - feat.mean(dim=0, keepdim=True)  # :365
        recorder("style/fbank/centered", feat[None])
        style = model(feat.unsqueeze(0))  # :366
    return {"style/style": recorder("style/style", style)}


def attach(hooks, model, recorder: Recorder, caller) -> None:
    """Our stages of a CAMPPlus and a Kaldi fbank that upstream's own code calls (the unmodified IndexTTS2
    class, infer_v2.py:362-366; `caller` is the module that calls them, infer_v2):
    - `torchaudio.compliance.kaldi.fbank` as `caller` reaches it, wrapped: its output is style/fbank/log, and
      while it runs `_fbank_taps` tap torchaudio's kaldi module as our capture taps it;
    - the centred fbank (:365, computed inline) is seen as CAMPPlus's input (`feat.unsqueeze(0)`, :366);
    - CAMPPlus's internals and its output, the style, by forward hooks."""
    kaldi = load_torchaudio().compliance.kaldi
    fbank = kaldi.fbank

    def observed_fbank(*args, **kwargs):
        with hooked() as inner:
            _fbank_taps(inner, kaldi, recorder)
            feat = fbank(*args, **kwargs)
        recorder("style/fbank/log", feat[None])
        return feat

    patch_in(hooks, caller, "torchaudio.compliance.kaldi.fbank", observed_fbank)
    hooks.pre(model, lambda _m, args: recorder("style/fbank/centered", args[0]))
    _campplus_hooks(hooks, model, recorder)
    hooks.forward(model, lambda _m, _a, out: recorder("style/style", out))
