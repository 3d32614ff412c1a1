"""IndexTTS2's official checkpoint layout read into our parts' weights: what `--checkpoints DIR` loads.

DIR is `model_dir` as `IndexTTS2(model_dir=...)` reads it (indextts2-inference 2.1.1, infer_v2.py:123-252):
config.yaml names gpt.pth, s2mel.pth, the w2v-bert statistics and bpe.model; four models come from a Hugging Face
hub cache, found offline the way upstream's `hf_hub_download` would find them (huggingface_hub's
`try_to_load_from_cache`, in `--hf-cache` or else the library's default cache, which HF_HOME and HF_HUB_CACHE set).
Each file becomes a part's weights under the names the part's checkpoint uses (driver.SEEDED):
- style: funasr/campplus `campplus_cn_common.bin` -> `campplus.*`;
- semantic: facebook/w2v-bert-2.0 `model.safetensors` -> `semantic.model.*`, amphion/MaskGCT
  `semantic_codec/model.safetensors` -> `semantic.codec.*`, the statistics -> `semantic.stats.mean|var`;
- gpt: gpt.pth (a state dict, or one under "model" as utils/checkpoint.py:23 takes it), bpe.model, and the
  emotion-vector matrices feat1.pt (`spk_matrix`) and feat2.pt (`emo_matrix`);
- s2mel: s2mel.pth's `length_regulator` and `gpt_layer`, and the codec's quantizer -> `semantic_codec.quantizer.*`
  (one codec serves both parts upstream, infer_v2.py:359 and :679);
- cfm: s2mel.pth's `cfm`; vocoder: the BigVGAN repository's `bigvgan_generator.pt`.
Torch files load with `weights_only=True`, safetensors without code. Upstream's `load_checkpoint2` skips a key whose
shape differs with a warning; here every part's names must be exactly the ones the module of the matched config
has (`check_names`), and the count read per part is recorded.
The config of the run is the embedded config whose config.yaml sections (gpt, s2mel, semantic_codec: what
official_layout.config_dict writes), w2v-bert config.json and BigVGAN config.json the folder's equal: `full` for the
official release. A folder that matches none is refused in one line naming the first difference.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import yaml

from harness import weights as W
from harness.configs import PipelineConfig
from harness.errors import UserError
from harness.files import input_file, read_text
from reference_hooks import gpt_weights
from reference_hooks.official_layout import FILES, config_dict
from reference_hooks.vocoder import load_generator_pt
from reference_hooks.weights import as_array, load_campplus_bin, load_s2mel_pth, load_torch

#: what the class takes from the hub (infer_v2.py:165, :175, :203, :212): (repository, file)
W2V = ("facebook/w2v-bert-2.0", "model.safetensors")
W2V_CONFIG = ("facebook/w2v-bert-2.0", "config.json")
CODEC = ("amphion/MaskGCT", "semantic_codec/model.safetensors")
CAMPPLUS = ("funasr/campplus", "campplus_cn_common.bin")
BIGVGAN, BIGVGAN_CONFIG = "bigvgan_generator.pt", "config.json"  # in the repository config.yaml's vocoder.name names
#: config.yaml's sections that decide the architecture (the rest names files and training data)
ARCH_SECTIONS = ("gpt", "s2mel", "semantic_codec")


def is_official(folder: Path) -> bool:
    """A folder in the official layout holds config.yaml (a folder of s2mel.pth alone is the older, partial kind)."""
    return (Path(folder) / "config.yaml").is_file()


def _safetensors(path: Path) -> dict[str, np.ndarray]:
    """A hub safetensors file through the project's reader (its header checked before any tensor is read), floats
    widened to float32 as every other checkpoint here."""
    return {k: v.astype(np.float32) if np.issubdtype(v.dtype, np.floating) else v for k, v in W.load(path).items()}


def _yaml(path: Path) -> dict:
    text = read_text(path, "--checkpoints")  # a regular file of a bounded size (MAX_TEXT_BYTES), read whole
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable YAML file ({str(exc).splitlines()[0][:160]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not an IndexTTS2 config.yaml (no mapping at the top)")
    return data


def _json(path: Path) -> dict:
    text = read_text(path, "--checkpoints")
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable JSON file ({exc})") from None


class Hub:
    """Files of the hub cache, found as upstream's offline lookup finds them; a missing one is one line."""

    def __init__(self, cache: Path | None):
        from huggingface_hub import constants

        self.cache = Path(cache) if cache is not None else Path(constants.HF_HUB_CACHE)

    def file(self, repo: str, name: str) -> Path:
        from huggingface_hub import try_to_load_from_cache

        try:
            hit = try_to_load_from_cache(repo, name, cache_dir=str(self.cache))
        except ValueError as exc:  # huggingface_hub's HFValidationError: not a repository id
            raise UserError(f"--checkpoints: {repo!r} is not a Hugging Face repository id ({exc})") from None
        if not isinstance(hit, str):
            raise UserError(f"--checkpoints: {repo}/{name} is not in the Hugging Face cache {self.cache} (upstream "
                            f"downloads it; give the cache with --hf-cache, or fetch it: huggingface-cli download {repo})")
        return Path(hit)


def _differs(ours, theirs, where: str) -> str | None:
    """The first place where `theirs` (read from a file) differs from `ours` (what a config writes)."""
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return where
        for key, value in ours.items():
            found = _differs(value, theirs.get(key), f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(ours, (list, tuple)) and isinstance(theirs, (list, tuple)):
        if len(ours) != len(theirs):
            return where
        return next((f for f in (_differs(a, b, f"{where}[{i}]") for i, (a, b) in enumerate(zip(ours, theirs))) if f),
                    None)
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return None if ours is theirs else where
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        return None if float(ours) == float(theirs) else where
    return None if ours == theirs else where


def matching_config(cfg: dict, w2v: dict, bigvgan: dict, known: dict[str, PipelineConfig]) -> PipelineConfig:
    """The embedded config whose architecture the layout's three config files describe."""
    first = None
    for config in known.values():
        written = config_dict(config)
        found = next((f for f in (_differs(written[s], cfg.get(s), f"config.yaml {s}") for s in ARCH_SECTIONS) if f),
                     None)
        found = found or _differs(list(config.gpt.emo_num), cfg.get("emo_num"), "config.yaml emo_num")
        found = found or _differs(config.semantic.w2v_config(), w2v, "w2v-bert config.json")
        found = found or _differs(config.vocoder.upstream_h(), bigvgan, "BigVGAN config.json")
        if found is None:
            return config
        first = first or (config.name, found)
    raise UserError(f"--checkpoints: the layout's architecture is none of the embedded configs "
                    f"({', '.join(known)}); e.g. {first[1]} differs from {first[0]}'s")


def _section(folder: Path, cfg: dict, name: str) -> dict:
    """A config.yaml section that must be a mapping when present (bad input, in one line, when it is not)."""
    value = cfg.get(name) or {}
    if not isinstance(value, dict):
        raise UserError(f"{folder / 'config.yaml'}: its {name} section is {type(value).__name__}, not a mapping")
    return value


def _vocoder_repo(folder: Path, cfg: dict) -> str:
    repo = _section(folder, cfg, "vocoder").get("name")
    if not isinstance(repo, str) or not repo:
        raise UserError(f"{folder / 'config.yaml'}: no vocoder.name (the BigVGAN repository infer_v2.py:211 loads)")
    return repo


def _configs(folder: Path, hub: Hub, known: dict[str, PipelineConfig]) -> tuple[dict, str, PipelineConfig]:
    """(config.yaml, the BigVGAN repository it names, the embedded config the three config files describe)."""
    cfg = _yaml(folder / "config.yaml")
    repo = _vocoder_repo(folder, cfg)
    return cfg, repo, matching_config(cfg, _json(hub.file(*W2V_CONFIG)), _json(hub.file(repo, BIGVGAN_CONFIG)), known)


def layout_config(folder: Path, hf_cache: Path | None, known: dict[str, PipelineConfig]) -> PipelineConfig:
    """The embedded config of the layout, from its three config files alone (no weights are read)."""
    return _configs(Path(folder), Hub(hf_cache), known)[2]


def read(folder: Path, hf_cache: Path | None, known: dict[str, PipelineConfig]
         ) -> tuple[PipelineConfig, dict[str, dict[str, np.ndarray]], dict]:
    """(the matched config, every part's weights, a record: where each file came from and how many tensors)."""
    folder, hub = Path(folder), Hub(hf_cache)
    cfg, vocoder_repo, config = _configs(folder, hub, known)
    named = {key: folder / str(cfg.get(key, FILES[key]))  # the files config.yaml names, where the class reads them
             for key in ("gpt_checkpoint", "s2mel_checkpoint", "w2v_stat", gpt_weights.SPK_MATRIX, gpt_weights.EMO_MATRIX)}
    files = {"config.yaml": folder / "config.yaml", "gpt.pth": named["gpt_checkpoint"],
             "s2mel.pth": named["s2mel_checkpoint"], "bpe.model": folder / str(_section(folder, cfg, "dataset").get(
                 "bpe_model", "bpe.model")), "w2v-bert": hub.file(*W2V), "codec": hub.file(*CODEC),
             "campplus": hub.file(*CAMPPLUS), "bigvgan": hub.file(vocoder_repo, BIGVGAN)}
    gpt_state = load_torch(files["gpt.pth"])
    gpt_state = gpt_state.get("model", gpt_state) if isinstance(gpt_state, dict) else gpt_state
    if not isinstance(gpt_state, dict) or not all(isinstance(v, torch.Tensor) for v in gpt_state.values()):
        raise UserError(f"{files['gpt.pth']}: not a state dict of tensors")
    input_file(files["bpe.model"], "--checkpoints")
    gpt = {k: as_array(v) for k, v in gpt_state.items()}
    gpt[gpt_weights.TOKENIZER] = np.frombuffer(files["bpe.model"].read_bytes(), dtype=np.uint8).copy()
    for name in (gpt_weights.SPK_MATRIX, gpt_weights.EMO_MATRIX):  # feat1.pt, feat2.pt (infer_v2.py:231-240)
        matrix = load_torch(named[name])
        if not isinstance(matrix, torch.Tensor) or matrix.ndim != 2:
            raise UserError(f"{named[name]}: not the {name} (a 2-D tensor)")
        gpt[name] = as_array(matrix)
    s2mel_cfm = load_s2mel_pth(files["s2mel.pth"])
    codec = _safetensors(files["codec"])
    stats = load_torch(named["w2v_stat"])
    if not isinstance(stats, dict) or not {"mean", "var"} <= set(stats):
        raise UserError(f"{named['w2v_stat']}: not the w2v-bert statistics ({{'mean', 'var'}})")
    semantic = {**{f"semantic.model.{k}": v for k, v in _safetensors(files["w2v-bert"]).items()},
                **{f"semantic.codec.{k}": v for k, v in codec.items()},
                **{f"semantic.stats.{k}": as_array(stats[k]) for k in ("mean", "var")}}
    s2mel = {**s2mel_cfm["s2mel"], **{f"semantic_codec.{k}": v for k, v in codec.items() if k.startswith("quantizer.")}}
    weights = {"style": load_campplus_bin(files["campplus"]), "semantic": semantic, "gpt": gpt, "s2mel": s2mel,
               "cfm": s2mel_cfm["cfm"], "vocoder": load_generator_pt(files["bigvgan"])}
    record = {"kind": "real", "layout": "official", "path": str(folder.resolve()), "hf_cache": str(hub.cache.resolve()),
              "config": config.name, "files": {k: str(Path(p).resolve()) for k, p in files.items()},
              "tensors": {part: len(w) for part, w in weights.items()}}
    return config, weights, record


def check_names(config: PipelineConfig, weights: dict[str, dict[str, np.ndarray]], expected) -> None:
    """Every part's names exactly the module's (`expected(config, part)` -> its names): a key upstream would skip
    with a warning, or one it never reads, is refused, naming the part and a few names."""
    for part, got in weights.items():
        want = set(expected(config, part))
        missing, extra = sorted(want - set(got)), sorted(set(got) - want)
        if missing or extra:
            raise UserError(f"--checkpoints: the {part} part's weights do not fit the {config.name} architecture: "
                            f"{len(want)} expected, {len(got)} read" + (f"; missing {missing[:3]}" if missing else "")
                            + (f"; not used {extra[:3]}" if extra else ""))
