"""Upstream's length regulator (`InterpolateRegulator`), `gpt_layer` and the semantic codec's quantizer, built
from our config, hooked, run as infer_v2 runs them.

Mirrors indextts2-inference 2.1.1: `s2mel/modules/commons.py:376-402` (MyModel builds the regulator from
config.yaml's `s2mel.length_regulator`, and `gpt_layer` = Linear(1280, 256), Linear(256, 128),
Linear(128, 1024)), `utils/maskgct/models/codec/kmeans/repcodec_model.py:127-137` (RepCodec's quantizer: one
factorized VQ, l2-normalised, the codec's hidden size and codebook), `infer_v2.py:361,368-370` (the prompt
half: ylens = the speaker mel's frames, n_quantizers=3, f0=None) and `infer_v2.py:678-686` (the target half:
gpt_layer(latent) + vq2emb(codes), ylens = (code_lens * 1.72).long(), code_lens as :638-648 count them).
Declared in `harness/stages/s2mel.py`.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

from harness import stages
from harness.errors import UserError
from harness.stages.s2mel import PROMPT, SEG, TARGET, S2MelConfig
from reference_hooks import semantic_weights
from reference_hooks.recorder import Recorder, hooked
from reference_hooks.upstream import import_module
from reference_hooks.weights import generate

PROMPT_IN = "semantic/codec/emb"  # S_ref (infer_v2.py:359)
PROMPT_MEL = "frontend/mel/out"  # ref_mel (infer_v2.py:360)
CODES, LATENT = "gpt/seg_{seg}/codes", "gpt/seg_{seg}/latent/out"
PREFIX = "length_regulator"
STOP_CODE = 8193  # gpt.stop_mel_token (config.yaml), what infer_v2.py:638-648 cuts at


class S2Mel(torch.nn.Module):
    """The modules of this part under the names upstream gives their parameters (s2mel.pth's `net.<module>`,
    the semantic codec's checkpoint under `semantic_codec.`)."""

    def __init__(self, config: S2MelConfig):
        super().__init__()
        self.length_regulator = unbuilt_module(config)
        self.gpt_layer = torch.nn.Sequential(torch.nn.Linear(config.gpt_dim, 256), torch.nn.Linear(256, 128),
                                             torch.nn.Linear(128, config.lr_in_channels))
        self.semantic_codec = torch.nn.Module()
        self.semantic_codec.quantizer = import_module(
            "utils.maskgct.models.codec.amphion_codec.quantize.residual_vq").ResidualVQ(
            input_dim=config.lr_in_channels, num_quantizers=1, codebook_size=config.codec_codebook_size,
            codebook_dim=config.codec_codebook_dim, quantizer_type="fvq", quantizer_dropout=0.0, commitment=0.15,
            codebook_loss_weight=1.0, use_l2_normlize=True)


def unbuilt_module(config: S2MelConfig) -> torch.nn.Module:
    """InterpolateRegulator with MyModel's arguments for our config (commons.py:376-393), random init."""
    return import_module("s2mel.modules.length_regulator").InterpolateRegulator(
        channels=config.lr_channels, sampling_ratios=list(config.lr_sampling_ratios), is_discrete=False,
        in_channels=config.lr_in_channels, vector_quantize=False, codebook_size=config.lr_codebook_size,
        n_codebooks=1, quantizer_dropout=0.0, f0_condition=False, n_f0_bins=512,
    )


#: upstream has one semantic codec: the semantic part quantizes the prompt with its quantizer (infer_v2.py:359) and
#: this part decodes the GPT's codes with the same one (:679). Its tensors are seeded under the semantic part's names
#: (and rules), so the two parts hold the same quantizer and one official checkpoint layout holds both
OWN_QUANTIZER, SEMANTIC_QUANTIZER = "semantic_codec.quantizer.", "semantic.codec.quantizer."


def seeded(config: S2MelConfig, seed: int) -> dict[str, np.ndarray]:
    """Seeded weights of every module of the part, by upstream name; the quantizer's as the semantic part's."""
    shapes = {k: tuple(v.shape) for k, v in S2Mel(config).state_dict().items()}
    own = generate({k: s for k, s in shapes.items() if not k.startswith(OWN_QUANTIZER)}, seed)
    shared = semantic_weights.generate({SEMANTIC_QUANTIZER + k[len(OWN_QUANTIZER):]: s for k, s in shapes.items()
                                        if k.startswith(OWN_QUANTIZER)}, seed)
    own.update({OWN_QUANTIZER + k[len(SEMANTIC_QUANTIZER):]: v for k, v in shared.items()})
    return {k: own[k] for k in shapes}


def build(config: S2MelConfig, weights: dict[str, np.ndarray], dtype: torch.dtype) -> S2Mel:
    """The part's modules with our weights loaded (every key present with its shape), in `dtype`, eval."""
    model = S2Mel(config)
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    wrong = sorted(k for k in own if k in weights and tuple(np.shape(weights[k])) != tuple(own[k].shape))
    if missing or wrong:
        raise UserError(f"checkpoint does not fit upstream's s2mel modules: missing {missing[:3]} wrong shape {wrong[:3]}")
    model.load_state_dict({k: torch.from_numpy(np.asarray(weights[k])) for k in own}, strict=True)
    return model.to(dtype).eval()


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


def attach(hooks, lr: torch.nn.Module, recorder: Recorder, gpt_layer: torch.nn.Module | None = None,
           quantizer=None) -> None:
    """Our stages of the modules that upstream's own code calls (the unmodified IndexTTS2 class): the
    regulator's first call is the prompt half (`infer_v2.py:368-370`, in `_get_speaker_conditioning`), each
    later call the target half of the next text segment (`infer_v2.py:684-686`), its input S_infer (:681).
    With `gpt_layer` and the codec's `quantizer` (`s2mel.models["gpt_layer"]`, `semantic_codec.quantizer`),
    each segment's gpt_layer(latent) (:678) and vq2emb(codes), transposed as :680 transposes it, too."""
    where, calls = {"at": PROMPT}, itertools.count()

    def position(_m, args):
        n = next(calls)
        where["at"] = PROMPT if n == 0 else stages.seg_path(TARGET, n - 1)
        if n > 0:
            recorder(stages.seg_path(SEG, n - 1) + "/s_infer", args[0])

    hooks.pre(lr, position)
    _hook(hooks, lr, recorder, where)
    if gpt_layer is not None:
        layer_calls = itertools.count()
        hooks.forward(gpt_layer, lambda _m, _a, y: recorder(stages.seg_path(SEG, next(layer_calls)) + "/gpt_layer", y))
    if quantizer is not None:
        vq2emb, vq_calls = quantizer.vq2emb, itertools.count()

        def observed(*args, **kwargs):
            out = vq2emb(*args, **kwargs)
            recorder(stages.seg_path(SEG, next(vq_calls)) + "/vq2emb", out.transpose(1, 2))
            return out

        hooks.patch(quantizer, "vq2emb", observed)


def code_length(codes: torch.Tensor) -> int:
    """infer_v2.py:638-646 for B = 1: the index of the first stop code, else the number of codes."""
    hit = (codes[0] == STOP_CODE).nonzero(as_tuple=False)
    return int(hit[0][0]) if hit.numel() else codes.shape[-1]


def run(model: S2Mel, config: S2MelConfig, given: dict[str, torch.Tensor], recorder: Recorder
        ) -> dict[str, torch.Tensor]:
    out, where = {}, {"at": PROMPT}
    lr = model.length_regulator
    with torch.inference_mode(), hooked() as hooks:
        if recorder.hooking:
            _hook(hooks, lr, recorder, where)
            hooks.forward(model.gpt_layer, lambda _m, _a, y: recorder(where["at_seg"] + "/gpt_layer", y))
        if PROMPT_IN in given:
            # infer_v2:361,368-370: ref_target_lengths = ref_mel.size(2); prompt_condition = lr(S_ref, ...)[0]
            frames = given[PROMPT_MEL].shape[-1]
            out[PROMPT + "/out"] = lr(given[PROMPT_IN], ylens=torch.LongTensor([frames]),
                                      n_quantizers=3, f0=None)[0]
        for seg in stages.segments_in(given, CODES):
            codes, latent = given[stages.seg_path(CODES, seg)], given[stages.seg_path(LATENT, seg)]
            where["at_seg"], where["at"] = stages.seg_path(SEG, seg), stages.seg_path(TARGET, seg)
            code_lens = torch.LongTensor([code_length(codes)])
            latent = model.gpt_layer(latent)  # infer_v2.py:678
            s_infer = model.semantic_codec.quantizer.vq2emb(codes.unsqueeze(1))  # :679
            s_infer = recorder(where["at_seg"] + "/vq2emb", s_infer.transpose(1, 2))  # :680
            s_infer = recorder(where["at_seg"] + "/s_infer", s_infer + latent)  # :681
            target_lengths = (code_lens * config.code_to_frame).long()  # :682
            out[where["at"] + "/out"] = lr(s_infer, ylens=target_lengths, n_quantizers=3, f0=None)[0]  # :684-686
    return out
