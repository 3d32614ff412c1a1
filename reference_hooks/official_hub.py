"""The four models the class takes from the Hugging Face hub, written as a hub cache folder that answers offline.

With `HF_HOME=<folder>` and `HF_HUB_OFFLINE=1`, `hf_hub_download` and transformers' `from_pretrained` resolve
`HF_HOME/hub/models--ORG--NAME/refs/main` to `snapshots/<revision>/` and read plain files there (no blobs, no
symlinks needed). What the class reads (indextts2-inference 2.1.1):
- `facebook/w2v-bert-2.0`: `SeamlessM4TFeatureExtractor.from_pretrained` (infer_v2.py:165) and
  `Wav2Vec2BertModel.from_pretrained` (utils/maskgct_utils.py:8): config.json, preprocessor_config.json,
  model.safetensors;
- `amphion/MaskGCT`: `semantic_codec/model.safetensors`, loaded strictly (infer_v2.py:175-176);
- `funasr/campplus`: `campplus_cn_common.bin`, a torch state dict loaded strictly into the real-size
  `CAMPPlus(80, 192)` (infer_v2.py:202-205);
- `nvidia/bigvgan_v2_22khz_80band_256x`: config.json and `bigvgan_generator.pt` = {"generator": state dict
  with weight norm} (s2mel/modules/bigvgan/bigvgan.py:384-449), weight norm removed after loading (:214).
Every model is a part of ours (`semantic`, `style`, `vocoder`): its file holds the very weights our capture uses
(`official_layout.PARTS_OF`); the codec's quantizer is the semantic part's and the s2mel part's at once (the two
parts are seeded to hold the same one). w2v-bert's config.json is our semantic config's (in tiny, the hard-wired
width 1024 with 18 layers, one more than the 17 read, and a small feed-forward); BigVGAN's is the shipped one with
our vocoder config's fields put in (128 initial channels in tiny).
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np

from reference_hooks.official_layout import as_torch, module_weights, seeded, torch_bytes
from reference_hooks.upstream import import_module

#: a fake commit id for every repository (any 40 hex digits; refs/main names it)
REVISION = hashlib.sha1(b"indextts-parity offline tiny hub").hexdigest()
#: the real hub preprocessor config's values (its padding value is 1.0, the class default 0.0)
FEATURE_EXTRACTOR = {"feature_extractor_type": "SeamlessM4TFeatureExtractor", "feature_size": 80, "num_mel_bins": 80,
                     "padding_side": "right", "padding_value": 1.0, "processor_class": "Wav2Vec2BertProcessor",
                     "return_attention_mask": True, "sampling_rate": 16000, "stride": 2}


def snapshot(hf_home: Path, repo_id: str, write_bytes) -> Path:
    """The snapshot folder of `repo_id`, with refs/main naming it."""
    org, name = repo_id.split("/")
    repo = hf_home / "hub" / f"models--{org}--{name}"
    write_bytes(repo / "refs" / "main", REVISION.encode())
    return repo / "snapshots" / REVISION


def json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def safetensors_bytes(weights: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save({k: np.array(v, order="C") for k, v in weights.items()}, metadata={"format": "pt"})


def w2v_bert(hf_home: Path, config, seed: int, write_bytes) -> None:
    """The semantic part's w2v-bert: its config (every other field the class default, the hub model's) and weights."""
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    snap = snapshot(hf_home, "facebook/w2v-bert-2.0", write_bytes)
    w2v = Wav2Vec2BertConfig(**config.semantic.w2v_config(), architectures=["Wav2Vec2BertModel"])
    data = w2v.to_dict()
    data.pop("transformers_version", None)
    write_bytes(snap / "config.json", json_bytes(data))
    write_bytes(snap / "preprocessor_config.json", json_bytes(FEATURE_EXTRACTOR))
    weights = module_weights(lambda: Wav2Vec2BertModel(w2v), "w2v_bert", seed, config)
    write_bytes(snap / "model.safetensors", safetensors_bytes(weights))


def semantic_codec(hf_home: Path, cfg, config, seed: int, write_bytes) -> None:
    """The semantic part's codec; its `quantizer` is also the s2mel part's (what vq2emb reads, infer_v2.py:679),
    which must hold the same tensors: one file holds both."""
    snap = snapshot(hf_home, "amphion/MaskGCT", write_bytes)
    build = import_module("utils.maskgct_utils").build_semantic_codec
    weights = module_weights(lambda: build(cfg.semantic_codec), "semantic_codec", seed, config)
    prefix = "semantic_codec."
    s2mel = {k[len(prefix):]: v for k, v in seeded(config, "s2mel", seed).items() if k.startswith(prefix)}
    differing = sorted(k for k, v in s2mel.items() if k not in weights or not np.array_equal(weights[k], v))
    if differing or not s2mel:
        raise ValueError(f"semantic_codec.quantizer: the s2mel part's and the semantic part's differ: {differing[:4]}")
    write_bytes(snap / "semantic_codec" / "model.safetensors", safetensors_bytes(weights))


def campplus(hf_home: Path, config, seed: int, write_bytes) -> None:
    """The style part's seeded CAMPPlus (infer_v2.py:204 builds it at its defaults, whatever the config)."""
    snap = snapshot(hf_home, "funasr/campplus", write_bytes)
    model = import_module("s2mel.modules.campplus.DTDNN").CAMPPlus
    weights = module_weights(lambda: model(feat_dim=80, embedding_size=192), "campplus", seed, config)
    write_bytes(snap / "campplus_cn_common.bin", torch_bytes(as_torch(weights)))


def bigvgan(hf_home: Path, cfg, config, seed: int, write_bytes) -> None:
    """The wheel's own config.json with our vocoder config's fields, and the vocoder part's seeded generator
    weights, with weight norm (as the hub stores them)."""
    module = import_module("s2mel.modules.bigvgan.bigvgan")
    attr_dict = import_module("s2mel.modules.bigvgan.env").AttrDict
    snap = snapshot(hf_home, cfg.vocoder.name, write_bytes)
    shipped = json.loads((Path(module.__file__).parent / "config.json").read_text())
    shipped.update(config.vocoder.upstream_h())
    write_bytes(snap / "config.json", json_bytes(shipped))
    weights = module_weights(lambda: module.BigVGAN(attr_dict(copy.deepcopy(shipped)), use_cuda_kernel=False),
                             "bigvgan", seed, config)
    write_bytes(snap / "bigvgan_generator.pt", torch_bytes({"generator": as_torch(weights)}))


def write(hf_home: Path, cfg, config, seed: int, write_bytes) -> None:
    """`cfg` is the layout's config.yaml as the class reads it, `config` our PipelineConfig."""
    w2v_bert(hf_home, config, seed, write_bytes)
    semantic_codec(hf_home, cfg, config, seed, write_bytes)
    campplus(hf_home, config, seed, write_bytes)
    bigvgan(hf_home, cfg, config, seed, write_bytes)
