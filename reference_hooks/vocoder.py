"""Upstream's BigVGAN, built from our config, hooked, run per segment as infer_v2 runs it; then its join and int16.

Mirrors indextts2-inference 2.1.1: `infer_v2.py:210-215` (`_load_vocoder`: `BigVGAN.from_pretrained` builds
`BigVGAN(h)` from the hub's config.json and loads `bigvgan_generator.pt`, weight-normalised convs as
`weight_g` / `weight_v` plus the filter buffers; then `remove_weight_norm()` and `eval()`), without the hub:
`BigVGAN(AttrDict(h))`, our checkpoint loaded, the same two calls. A float64 run (noise floors) is cast
before the fold, so the folded weights are float64 too (infer_v2 folds in float32: the same in float32).
The glue mirrors `infer_v2.py:697-720` and `:746` line by line (cited below). What BigVGAN computes inline
(the averaged AMP output, the residual sums) is recorded as the input of the module that reads it next.
`attach` and `attach_output` put the same hooks on the unmodified IndexTTS2 class
(tests/test_glue_equals_class.py). Declared in `harness/stages/vocoder.py`.
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness import stages
from harness.errors import UserError
from harness.stages.vocoder import SEG, VocoderConfig
from reference_hooks.frontend import _TorchProxy
from reference_hooks.recorder import Recorder, hooked
from reference_hooks.upstream import import_module
from reference_hooks.weights import as_array, load_into, load_torch

MEL_OUT = "cfm/seg_{seg}/mel_out"
PREFIX = "bigvgan"


def unbuilt_module(config: VocoderConfig) -> torch.nn.Module:
    """`BigVGAN(h)` as from_pretrained builds it (weight norm on, float32): names, shapes and filter buffers.

    `h` is a fresh AttrDict: BigVGAN writes `h["use_cuda_kernel"]` into it (bigvgan.py:253)."""
    env = import_module("s2mel.modules.bigvgan.env")
    return import_module("s2mel.modules.bigvgan.bigvgan").BigVGAN(env.AttrDict(config.upstream_h()),
                                                                 use_cuda_kernel=False)


def build(config: VocoderConfig, weights: dict[str, np.ndarray], dtype: torch.dtype) -> torch.nn.Module:
    model = unbuilt_module(config)
    if f"{PREFIX}.conv_pre.weight_g" not in weights:
        # a checkpoint stored folded: from_pretrained's fallback (bigvgan.py:446-449) folds first, then loads
        model.remove_weight_norm()
        load_into(model, weights, PREFIX, dtype)
        return model.eval()
    load_into(model, weights, PREFIX, dtype)
    model.remove_weight_norm()  # infer_v2.py:214
    return model.eval()  # infer_v2.py:215


def load_generator_pt(path: Path) -> dict[str, np.ndarray]:
    """The hub's `bigvgan_generator.pt` (`torch.load(...)["generator"]`, bigvgan.py:441-444) as this part's
    weights, read with `weights_only=True`: a file that needs arbitrary unpickling is refused, never run."""
    state = load_torch(path)
    generator = state.get("generator") if isinstance(state, dict) else None
    if not isinstance(generator, dict) or not generator:
        raise UserError(f"{path}: no 'generator' state dict (expected BigVGAN's bigvgan_generator.pt)")
    return {f"{PREFIX}.{k}": as_array(v) for k, v in generator.items()}


#: conv_post's weight-norm gain (its single output channel's norm): sets the output level, see seeded_levels
POST_GAIN = 0.17


def seeded_levels(weights: dict[str, np.ndarray], config: VocoderConfig) -> dict[str, np.ndarray]:
    """The generic seeded draws (reference_hooks/weights.py) brought to a trained vocoder's levels.

    - SnakeBeta's log alpha and log beta: drawn as 1-D tensors (0.05 N), scaled to 0.2 N, so exp() lies in
      about [0.55, 1.8]: small, yet a port that forgets the exp or swaps the two moves the first activation
      by tens of percent.
    - conv_pre's gains x 0.25 (the log-mel input sits near -5 with std 2.5) and every AMP block's convs2
      gains x 0.3 (at unit gain each residual branch adds at full size and the signal grows ~1.5x per
      stage): every stage then stays near unit size.
    - conv_post: its taps centred per input channel (SnakeBeta adds a positive mean, sin^2 / beta, that
      random taps turn into a DC offset; a trained vocoder emits none) and its gain fixed at POST_GAIN, so
      the wave peaks near 1 and the clamp cuts a few samples.
    The kaiser-sinc filters are the model's own buffers, kept as computed. These rules are part of the
    generator: a change here must bump reference_hooks.weights.GENERATOR_VERSION (cached checkpoints).
    """
    out = dict(weights)
    for name, value in weights.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("alpha", "beta"):
            out[name] = value * np.float32(4.0)
        elif name == f"{PREFIX}.conv_pre.weight_g":
            out[name] = value * np.float32(0.25)
        elif ".convs2." in name and leaf == "weight_g":
            out[name] = value * np.float32(0.3)
        elif name == f"{PREFIX}.conv_post.weight_g":
            out[name] = np.full_like(value, POST_GAIN)
        elif name == f"{PREFIX}.conv_post.weight_v":
            out[name] = value - value.mean(axis=-1, keepdims=True)
    return out


@dataclass
class Position:
    at: str = ""  # the segment's stage prefix
    pending: bool = False  # the class ran BigVGAN and has not clamped its output yet (attach_output)


def _hook_activation(hooks, act, rec: Recorder, pos: Position, name: str) -> None:
    """Activation1d: upsample -> act (SnakeBeta) -> downsample (alias_free_activation/torch/act.py)."""
    for module, stage in ((act.upsample, "up"), (act.act, "snake"), (act.downsample, "down")):
        hooks.forward(module, lambda _m, _a, out, s=stage: rec(f"{pos.at}/{name}/{s}", out))


def _hook_resblock(hooks, block, index: int, rec: Recorder, pos: Position) -> None:
    """AMPBlock1.forward pairs activations[::2] with convs1 and activations[1::2] with convs2; each layer's
    residual sum is the next layer's input, the last one the block's output."""
    n = len(block.convs1)
    for layer in range(n):
        at = f"resblock_{index:02d}/layer_{layer}"
        _hook_activation(hooks, block.activations[2 * layer], rec, pos, at + "/act1")
        hooks.forward(block.convs1[layer], lambda _m, _a, out, s=at: rec(f"{pos.at}/{s}/conv1", out))
        _hook_activation(hooks, block.activations[2 * layer + 1], rec, pos, at + "/act2")
        hooks.forward(block.convs2[layer], lambda _m, _a, out, s=at: rec(f"{pos.at}/{s}/conv2", out))
        if layer < n - 1:
            hooks.pre(block.activations[2 * (layer + 1)], lambda _m, args, s=at: rec(f"{pos.at}/{s}/out", args[0]))
        else:
            hooks.forward(block, lambda _m, _a, out, s=at: rec(f"{pos.at}/{s}/out", out))


def hook_bigvgan(hooks, model, config: VocoderConfig, rec: Recorder, pos: Position) -> None:
    """Every stage of BigVGAN.forward (bigvgan.py:330-356). Upstream adds the AMP outputs in place
    (`xs += ...`, :344) after the first block's hook has fired: the recorder copies at once."""
    hooks.forward(model.conv_pre, lambda _m, _a, out: rec(f"{pos.at}/conv_pre", out))
    n_up = len(model.ups)
    for i in range(n_up):
        hooks.forward(model.ups[i][0], lambda _m, _a, out, i=i: rec(f"{pos.at}/up_{i:02d}", out))
        # x = xs / num_kernels (:345) is inline: it is the input of the next upsampler or of activation_post
        after = model.ups[i + 1][0] if i + 1 < n_up else model.activation_post
        hooks.pre(after, lambda _m, args, i=i: rec(f"{pos.at}/amp_{i:02d}", args[0]))
    for index in config.detailed_resblocks:
        _hook_resblock(hooks, model.resblocks[index], index, rec, pos)
    hooks.forward(model.activation_post, lambda _m, _a, out: rec(f"{pos.at}/act_post", out))
    hooks.forward(model.conv_post, lambda _m, _a, out: rec(f"{pos.at}/conv_post", out))


def attach(hooks, model, recorder: Recorder, config: VocoderConfig) -> Position:
    """Our stages of a BigVGAN that upstream's own code calls (the unmodified IndexTTS2 class): each call
    (`infer_v2.py:701`) is the next text segment, its input (`vc_target.float()`, the very tensor in float32)
    that segment's bigvgan_in. Returns the position the hooks follow, for `attach_output`."""
    pos, calls = Position(), itertools.count()

    def enter(_m, args):
        pos.at, pos.pending = stages.seg_path(SEG, next(calls)), True
        recorder(f"{pos.at}/bigvgan_in", args[0])

    hooks.pre(model, enter)
    hook_bigvgan(hooks, model, config, recorder, pos)
    return pos


def attach_output(hooks, tts, recorder: Recorder, config: VocoderConfig, pos: Position) -> None:
    """What the class does with BigVGAN's output, seen in infer_v2's module namespace: the first
    `torch.clamp` after each BigVGAN call (`:706`, the only clamp there) is the segment's wave, and
    `torch.cat` of the list that `insert_interval_silence` (wrapped on the instance) returned (`:719-720`)
    the joined wave. The int16 conversion (`:746`) is inline tensor arithmetic: what `infer` returns is its
    observable result (class_check records it)."""
    infer_v2 = sys.modules[type(tts).__module__]
    real_torch, insert = infer_v2.torch, tts.insert_interval_silence
    joined: list[list] = []

    def insert_interval_silence(*args, **kwargs):
        joined.append(insert(*args, **kwargs))
        return joined[-1]

    def clamp(*args, **kwargs):
        out = real_torch.clamp(*args, **kwargs)
        if pos.pending:
            pos.pending = False
            recorder(f"{pos.at}/wav", out, sample_rate=config.sample_rate)
        return out

    def cat(tensors, *args, **kwargs):
        out = real_torch.cat(tensors, *args, **kwargs)
        if any(tensors is j for j in joined):
            recorder("vocoder/wav", out, sample_rate=config.sample_rate)
        return out

    hooks.patch(tts, "insert_interval_silence", insert_interval_silence)
    hooks.patch(infer_v2, "torch", _TorchProxy(real_torch, clamp=clamp, cat=cat))


def join(wavs: list[torch.Tensor], config: VocoderConfig) -> torch.Tensor:
    """infer_v2.py:719-720: `insert_interval_silence` (:288-309: zeros [channels, int(sr x ms / 1000.0)],
    float32, after every segment but the last), then `torch.cat(wavs, dim=1)`."""
    silence = torch.zeros(wavs[0].size(0), config.silence_samples)
    pieces = [piece for k, wav in enumerate(wavs) for piece in ((wav, silence) if k < len(wavs) - 1 else (wav,))]
    return torch.cat(pieces, dim=1)


def run(model, config: VocoderConfig, given: dict[str, torch.Tensor], recorder: Recorder) -> dict[str, torch.Tensor]:
    out = {}
    ref_frames = given["frontend/mel/out"].size(-1)  # ref_mel.size(-1), ref_mel from infer_v2.py:360
    dtype = next(model.parameters()).dtype
    pos = Position()
    wavs = []
    with torch.inference_mode(), hooked() as hooks:
        if recorder.hooking:
            hook_bigvgan(hooks, model, config, recorder, pos)
        for seg in stages.segments_in(given, MEL_OUT):
            pos.at = at = stages.seg_path(SEG, seg)
            vc_target = given[stages.seg_path(MEL_OUT, seg)][:, :, ref_frames:]  # infer_v2.py:697
            out[f"{at}/bigvgan_in"] = recorder(f"{at}/bigvgan_in", vc_target)
            # infer_v2.py:701 feeds vc_target.float(); a float64 run (noise floors) feeds its own dtype
            wav = model(vc_target.to(dtype)).squeeze().unsqueeze(0)  # infer_v2.py:701
            wav = wav.squeeze(1)  # infer_v2.py:704
            wav = torch.clamp(wav, -1.0, 1.0)  # infer_v2.py:706
            out[f"{at}/wav"] = recorder(f"{at}/wav", wav, sample_rate=config.sample_rate)
            wavs.append(wav.cpu())  # infer_v2.py:709
        if wavs:
            wav = join(wavs, config)  # infer_v2.py:719-720
            out["vocoder/wav"] = recorder("vocoder/wav", wav, sample_rate=config.sample_rate)
            wav_data = (wav.float() * 32767).clamp(-32767, 32767).to(torch.int16)  # infer_v2.py:746
            out["vocoder/int16"] = recorder("vocoder/int16", wav_data)  # before :747's .numpy().T ([S, 1])
    return out
