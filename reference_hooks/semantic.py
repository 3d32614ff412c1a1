"""Upstream's semantic part, run unmodified with hooks: transformers' `SeamlessM4TFeatureExtractor` and
`Wav2Vec2BertModel` (pinned 5.17.0), upstream's `build_semantic_model` (the statistics and their sqrt) and
`build_semantic_codec` (RepCodec), with the glue infer_v2 runs inline mirrored line by line
(indextts2-inference 2.1.1 `infer_v2.py`): :354-357 and :263-271 (features, get_emb), :359 (quantize), :391-395
(the emotion prompt: the same features and model on its own 16 kHz audio).

Offline set-up, not a change of upstream's code (`build`): `_load_semantic` (:164-179) downloads the hub models.
The extractor is built with the hub's preprocessor settings; while `build_semantic_model` runs, `maskgct_utils`
sees a stand-in for `Wav2Vec2BertModel` whose `from_pretrained` returns the model built from our config and
weights (patched through `hooked()`, undone in `finally`), and reads the statistics from a file written from
the same weights. Methods hooks cannot see are wrapped the same way for the run: the extractor's
`_extract_fbank_features` (the fbank), transformers' module-level `_apply_relative_key_position_encoding` (the
position bias) and the quantizer's `decode_latents` (the codes, and the margin from its own `latent2dist`).
Declared in `harness/stages/semantic.py`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from harness.stages.semantic import CODEC, SemanticConfig
from reference_hooks import semantic_hooks, semantic_weights
from reference_hooks.recorder import Recorder, hooked
from reference_hooks.upstream import import_module, load_torchaudio
from reference_hooks.weights import load_into

PREFIX = "semantic"
HUB_W2V = "facebook/w2v-bert-2.0"
generate = semantic_weights.generate
KEEP = ("stats.mean", "stats.var")


class _Stats(torch.nn.Module):
    def __init__(self, mean: torch.Tensor, var: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("var", var)


class Modules(torch.nn.Module):
    """Upstream's modules of the part under one name, so that they load and seed as one checkpoint."""

    def __init__(self, model, codec, stats: _Stats):
        super().__init__()
        self.model, self.codec, self.stats = model, codec, stats


def unbuilt_module(config: SemanticConfig) -> torch.nn.Module:
    """`Wav2Vec2BertModel(Wav2Vec2BertConfig(...))`, `build_semantic_codec(cfg.semantic_codec)` (:174) and the
    shipped statistics: every name and shape of the part's checkpoint."""
    load_torchaudio()  # transformers' audio utilities import torchaudio
    from omegaconf import OmegaConf
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    maskgct = import_module("utils.maskgct_utils")
    model = Wav2Vec2BertModel(Wav2Vec2BertConfig(**config.w2v_config()))
    codec = maskgct.build_semantic_codec(OmegaConf.create(config.codec_config()))  # :174, an OmegaConf node
    stats = semantic_weights.shipped_stats(Path(maskgct.__file__).parents[1])
    return Modules(model, codec, _Stats(stats["mean"], stats["var"]))


class Upstream:
    """Stands in for `self` of IndexTTS2 where infer_v2 reads it: what `_load_semantic` sets (:164-179)."""

    def __init__(self, extract_features, semantic_model, semantic_mean, semantic_std, semantic_codec, dtype):
        self.extract_features, self.semantic_model = extract_features, semantic_model
        self.semantic_mean, self.semantic_std, self.semantic_codec = semantic_mean, semantic_std, semantic_codec
        self.dtype = dtype


def build(config: SemanticConfig, weights: dict[str, np.ndarray], dtype: torch.dtype) -> Upstream:
    load_torchaudio()
    from transformers import SeamlessM4TFeatureExtractor

    maskgct = import_module("utils.maskgct_utils")
    modules = unbuilt_module(config)
    load_into(modules, weights, PREFIX, torch.float32)
    model = modules.model.eval()

    class SeededW2V:  # stands in for transformers.Wav2Vec2BertModel inside maskgct_utils only
        @staticmethod
        def from_pretrained(name, *args, **kwargs):
            assert name == HUB_W2V, name
            return model

    with tempfile.TemporaryDirectory() as tmp, hooked() as hooks:
        stats_path = str(Path(tmp) / "wav2vec2bert_stats.pt")
        torch.save({"mean": modules.stats.mean.clone(), "var": modules.stats.var.clone()}, stats_path)
        hooks.patch(maskgct, "Wav2Vec2BertModel", SeededW2V)
        semantic_model, mean, std = maskgct.build_semantic_model(stats_path)  # :166-168
    extract_features = SeamlessM4TFeatureExtractor(**config.extractor_config())  # :165, the hub's settings
    return Upstream(extract_features, semantic_model.to(dtype).eval(), mean, std, modules.codec.to(dtype).eval(), dtype)


def _get_emb(up: Upstream, input_features, attention_mask, recorder: Recorder, prefix: str) -> torch.Tensor:
    """infer_v2.py:263-271."""
    vq_emb = up.semantic_model(input_features=input_features, attention_mask=attention_mask, output_hidden_states=True)
    feat = recorder(f"{prefix}/w2v/hidden", vq_emb.hidden_states[17])  # :270
    return (feat - up.semantic_mean) / up.semantic_std  # :271


def _condition(up: Upstream, audio_16k: torch.Tensor, recorder: Recorder, prefix: str, cond: str) -> torch.Tensor:
    """:354-357 (speaker) or :392-395 (emotion)."""
    inputs = up.extract_features(audio_16k, sampling_rate=16000, return_tensors="pt")
    input_features = recorder(f"{prefix}/features", inputs["input_features"])
    attention_mask = recorder(f"{prefix}/attention_mask", inputs["attention_mask"])
    # a float64 run only: the extractor returns float32 whatever it is given, the model runs in its dtype
    input_features = input_features.to(up.dtype)
    return recorder(f"{prefix}/{cond}", _get_emb(up, input_features, attention_mask, recorder, prefix))


def run(up: Upstream, config: SemanticConfig, given: dict[str, torch.Tensor], recorder: Recorder
        ) -> dict[str, torch.Tensor]:
    where = {"at": "semantic"}
    with torch.inference_mode(), hooked() as hooks:
        if recorder.hooking:
            semantic_hooks.attach(hooks, up, recorder, where)
        spk_cond_emb = _condition(up, given["frontend/wav_16k"], recorder, "semantic", "spk_cond")
        codes, s_ref = up.semantic_codec.quantize(spk_cond_emb)  # :359 (`_, S_ref = ...`: we keep the codes)
        recorder(CODEC + "/emb", s_ref)
        where["at"] = "semantic/emo"
        emo_cond_emb = _condition(up, given["frontend/emo_wav_16k"], recorder, "semantic/emo", "cond")
    return {"semantic/spk_cond": spk_cond_emb, CODEC + "/codes": codes, CODEC + "/emb": s_ref,
            "semantic/emo/cond": emo_cond_emb}

