"""The hooks of the semantic part: forward hooks on transformers' w2v-bert and upstream's codec, and the three
wrapped callables hooks cannot see (the extractor's fbank method, the relative-key position bias function, the
quantizer's `decode_latents`). All registered through `hooked()` and undone in its `finally`.

`where["at"]` is the pass being run (`semantic` for the speaker, `semantic/emo` for the emotion prompt): the
same modules serve both. Internals are recorded for the first w2v layer and the first ConvNeXt block only
(harness/stages/semantic.py declares no others).
"""
from __future__ import annotations

import numpy as np
import torch

from harness.stages.semantic import B0, CODEC, ENC, L0
from reference_hooks.recorder import Recorder

#: (stage under the layer, module attribute path, "in" for the module's input / "out" for its output)
_LAYER0 = (
    ("ffn1/norm", "ffn1_layer_norm", "out"), ("ffn1/out", "ffn1", "out"), ("ffn1/residual", "self_attn_layer_norm", "in"),
    ("attn/norm", "self_attn_layer_norm", "out"), ("attn/q", "self_attn.linear_q", "out"),
    ("attn/k", "self_attn.linear_k", "out"), ("attn/v", "self_attn.linear_v", "out"),
    ("attn/context", "self_attn.linear_out", "in"), ("attn/out", "self_attn", "out"),
    ("attn/residual", "conv_module", "in"), ("conv/norm", "conv_module.layer_norm", "out"),
    ("conv/masked", "conv_module.pointwise_conv1", "in"), ("conv/pointwise1", "conv_module.pointwise_conv1", "out"),
    ("conv/glu", "conv_module.glu", "out"), ("conv/depthwise", "conv_module.depthwise_conv", "out"),
    ("conv/depthwise_norm", "conv_module.depthwise_layer_norm", "out"), ("conv/act", "conv_module.activation", "out"),
    ("conv/pointwise2", "conv_module.pointwise_conv2", "out"), ("conv/out", "conv_module", "out"),
    ("conv/residual", "ffn2_layer_norm", "in"), ("ffn2/norm", "ffn2_layer_norm", "out"), ("ffn2/out", "ffn2", "out"),
    ("ffn2/residual", "final_layer_norm", "in"),
)
_BLOCK0 = (("dwconv", "dwconv"), ("norm", "norm"), ("pwconv1", "pwconv1"), ("act", "act"), ("pwconv2", "pwconv2"))


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def _module(root, dotted: str):
    for name in dotted.split("."):
        root = getattr(root, name)
    return root


def attach(hooks, up, recorder: Recorder, where: dict) -> None:
    def out_of(stage: str, pick=_first, passed: bool = True):
        def hook(_m, _args, output):
            recorder(f"{where['at']}/{stage}" if passed else stage, pick(output))
        return hook

    def in_of(stage: str, passed: bool = True):
        def hook(_m, args):
            recorder(f"{where['at']}/{stage}" if passed else stage, args[0])
        return hook

    _extractor(hooks, up.extract_features, recorder, where)
    model = up.semantic_model
    _position_bias(hooks, model.encoder.layers[0].self_attn, recorder, where)
    hooks.forward(model.feature_projection.layer_norm, out_of("w2v/projection_norm"))
    hooks.forward(model.feature_projection, out_of("w2v/projection"))
    hooks.pre(model.encoder.layers[0], in_of("w2v/encoder_in"))
    for stage, attr, side in _LAYER0:
        module = _module(model.encoder.layers[0], attr)
        if side == "in":
            hooks.pre(module, in_of(f"{L0}/{stage}"))
        else:
            hooks.forward(module, out_of(f"{L0}/{stage}"))
    for i, layer in enumerate(model.encoder.layers):
        hooks.forward(layer, out_of(f"w2v/layer_{i:02d}/out"))

    codec = up.semantic_codec
    backbone = codec.encoder[0]
    hooks.pre(backbone, in_of(ENC + "/in", passed=False))
    hooks.forward(backbone.embed, out_of(ENC + "/embed", passed=False))
    hooks.forward(backbone.norm, out_of(ENC + "/norm", passed=False))
    for stage, attr in _BLOCK0:
        hooks.forward(getattr(backbone.convnext[0], attr), out_of(f"{B0}/{stage}", passed=False))
    for i, block in enumerate(backbone.convnext):
        hooks.forward(block, out_of(f"{ENC}/block_{i:02d}/out", passed=False))
    hooks.forward(backbone.final_layer_norm, out_of(ENC + "/final_norm", passed=False))
    hooks.forward(codec.encoder[1], out_of(ENC + "/out", passed=False))
    vq = codec.quantizer.quantizers[0]
    hooks.forward(vq.in_project, out_of(CODEC + "/z_e", passed=False))
    _codes(hooks, vq, recorder)
    hooks.pre(vq.out_project, in_of(CODEC + "/z_q", passed=False))
    hooks.forward(vq.out_project, out_of(CODEC + "/quantized", passed=False))


def _extractor(hooks, extractor, recorder: Recorder, where: dict) -> None:
    """`_extract_fbank_features` (the log-mel frames before the per-bin normalisation) wrapped on the instance."""
    original = extractor._extract_fbank_features

    def fbank(waveform):
        value = original(waveform)
        recorder(f"{where['at']}/fbank", torch.from_numpy(np.asarray(value))[None])
        return value

    hooks.patch(extractor, "_extract_fbank_features", fbank)


def _position_bias(hooks, attention, recorder: Recorder, where: dict) -> None:
    """transformers' module-level `_apply_relative_key_position_encoding`, wrapped: the first layer's bias."""
    from transformers.models.wav2vec2_bert import modeling_wav2vec2_bert as mw

    original = mw._apply_relative_key_position_encoding

    def apply(module, query, key):
        query_out, bias = original(module, query, key)
        if module is attention:
            recorder(f"{where['at']}/{L0}/attn/pos_bias", bias)
        return query_out, bias

    hooks.patch(mw, "_apply_relative_key_position_encoding", apply)


def _codes(hooks, vq, recorder: Recorder) -> None:
    """`decode_latents` wrapped: the codes it picks, and the margin between the nearest and the second-nearest
    codeword by upstream's own `latent2dist` (derived), checked to pick the same codes."""
    original = vq.decode_latents

    def decode_latents(latents):
        z_q, indices = original(latents)
        recorder(CODEC + "/codes", indices)
        if recorder.wants(CODEC + "/margin"):
            neg_dist, chosen, _ = vq.latent2dist(latents)
            top2 = neg_dist.topk(2, dim=-1).values
            recorder(CODEC + "/margin", top2[..., 0] - top2[..., 1])
            recorder.check(CODEC + "/margin", chosen, indices, "the codes quantize chose")
        return z_q, indices

    hooks.patch(vq, "decode_latents", decode_latents)
