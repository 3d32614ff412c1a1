"""IndexTTS2's official checkpoint layout, written from our seeded weights: what the unmodified class reads.

`IndexTTS2(model_dir=...)` (indextts2-inference 2.1.1, `infer_v2.py:123-252`) reads `config.yaml`, `gpt.pth`,
`s2mel.pth`, `bpe.model`, `feat1.pt`, `feat2.pt`, the w2v-bert statistics and the Qwen emotion model's folder
from `model_dir`, and takes four models from the Hugging Face hub (written by `official_hub.py` into a cache
folder that answers offline). Every tensor is ours:
- every part of the project takes the very weights our capture uses (`driver.seeded_weights`, the same config
  and seed): gpt.pth and bpe.model (the GPT part's UnifiedVoice and tokenizer; config.yaml's `gpt` section is
  that part's config), s2mel.pth's `length_regulator`, `gpt_layer` and `cfm`, the w2v statistics, the hub's
  w2v-bert and semantic codec (the semantic part's; the codec's quantizer is also the s2mel part's, seeded to be
  the same tensors), CAMPPlus and BigVGAN (`PARTS_OF`); so the layout holds exactly the embedded default's
  weights, and `--checkpoints` reads them back digest for digest (reference_hooks/official_reader.py);
  feat1.pt and feat2.pt are the GPT part's emotion-vector matrices;
- what no part computes is drawn by our generator keyed by name (`weights.generate`): the Qwen emotion model's
  stand-in.
The folder is cached in the user's cache, keyed by everything that decides its bytes, and is made again
byte for byte from the seed (torch files are saved through memory, so no temporary name enters them).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from harness.configs import TINY, PipelineConfig
from harness.files import atomic
from harness.paths import cache_dir
from reference_hooks import cfm, driver, gpt_weights
from reference_hooks.upstream import import_module, load_torchaudio
from reference_hooks.weights import GENERATOR_VERSION, generate

#: bump when what a layout holds changes, so cached layouts are made again
LAYOUT_VERSION = 5
MANIFEST = "manifest.json"

#: our pipeline at the widths the class's own code fixes: the length regulator reads the codec's 1024-wide
#: embedding (S_ref, infer_v2.py:359) and vq2emb(codes) + gpt_layer(latent), 1024 wide too (:679-681)
CLASS_CONFIG = TINY.with_(name="tiny-class", s2mel__lr_in_channels=1024)

FILES = {"gpt_checkpoint": "gpt.pth", "s2mel_checkpoint": "s2mel.pth", "w2v_stat": "wav2vec2bert_stats.pt",
         "emo_matrix": "feat2.pt", "spk_matrix": "feat1.pt", "qwen_emo_path": "qwen0.6bemo4-merge/"}

#: the part of ours whose seeded weights a module of the layout takes, and that module's prefix among the part's
#: names (add a row when a part lands in driver.SEEDED); the GPT's checkpoint and tokenizer (gpt.pth, bpe.model)
#: and the w2v statistics are written from theirs below
PARTS_OF = {"length_regulator": ("s2mel", "length_regulator"), "gpt_layer": ("s2mel", "gpt_layer"),
            "cfm": ("cfm", "cfm"), "campplus": ("style", "campplus"), "bigvgan": ("vocoder", "bigvgan"),
            "w2v_bert": ("semantic", "semantic.model"), "semantic_codec": ("semantic", "semantic.codec")}
#: buffers drawn rather than kept as computed: batch-norm statistics a loaded checkpoint brings
DRAWN_BUFFERS = ("running_mean", "running_var")

@dataclass(frozen=True)
class Layout:
    """A written layout: `model_dir` for `IndexTTS2(model_dir=...)`, `hf_home` for `HF_HOME`."""

    root: Path

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def hf_home(self) -> Path:
        return self.root / "hf_home"

    def manifest(self) -> dict:
        return json.loads((self.root / MANIFEST).read_text())


@functools.lru_cache(maxsize=3)
def seeded(config: PipelineConfig, part: str, seed: int) -> dict[str, np.ndarray]:
    """A part's seeded weights, generated once per layout written (several files take each part's): the three
    most recent parts are kept, which the order `write` goes in needs; `write` drops them when done."""
    return driver.seeded_weights(config, part, seed)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic(path) as tmp:
        tmp.write_bytes(data)


def torch_bytes(obj) -> bytes:
    """torch.save through memory: the archive is named `archive`, not after a temporary file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def as_torch(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Tensors of the arrays' own shapes (np.ascontiguousarray would make a 0-d counter 1-d)."""
    return {k: torch.from_numpy(np.array(v, order="C")) for k, v in weights.items()}


def config_dict(config: PipelineConfig) -> dict:
    """config.yaml: our parts' sections from our config (the CFM's exactly as our capture builds it)."""
    i, s = config.frontend, config.s2mel
    if i.fmax not in (None, 8000):
        raise ValueError(f"fmax {i.fmax}: infer_v2.py:249 maps every fmax but 'None' to 8000")
    s2mel = {
        "preprocess_params": {"sr": i.sr, "spect_params": {
            "n_fft": i.n_fft, "win_length": i.win_length, "hop_length": i.hop_length, "n_mels": i.n_mels,
            "fmin": i.fmin, "fmax": "None" if i.fmax is None else i.fmax}},
        **cfm.upstream_args(config.cfm).toDict(),
        "length_regulator": {  # the arguments MyModel reads (commons.py:376-393), as s2mel.unbuilt_module passes them
            "channels": s.lr_channels, "is_discrete": False, "in_channels": s.lr_in_channels,
            "content_codebook_size": s.lr_codebook_size, "sampling_ratios": list(s.lr_sampling_ratios),
            "vector_quantize": False, "n_codebooks": 1, "quantizer_dropout": 0.0, "f0_condition": False,
            "n_f0_bins": 512},
    }
    gpt = gpt_weights.upstream_kwargs(config.gpt)  # the GPT part's UnifiedVoice arguments (infer_v2.py:136)
    return {"dataset": {"bpe_model": "bpe.model"}, "gpt": gpt, "semantic_codec": config.semantic.codec_config(),
            "s2mel": s2mel, **FILES, "emo_num": list(config.gpt.emo_num),
            "vocoder": {"type": "bigvgan", "name": "nvidia/bigvgan_v2_22khz_80band_256x"}, "version": 2.0}


def module_weights(build, prefix: str, seed: int, config: PipelineConfig | None) -> dict[str, np.ndarray]:
    """Weights for the module `build()` makes, named as its state dict names them (without `prefix.`).

    Our part's seeded weights when the project has the part; otherwise our generator keyed by `prefix.name`.
    A module without buffers is built on the meta device (its names and shapes are all that is read).
    """
    with torch.device("meta"):
        module = build()
    params = {n for n, _ in module.named_parameters()}
    state = module.state_dict()
    if set(state) - params:
        module = build()  # buffers it computes itself (positions, filters) are kept as computed
        state = module.state_dict()
    part, own = PARTS_OF.get(prefix, (None, prefix))
    if part in driver.SEEDED:
        source = seeded(config, part, seed)
        out = {k[len(own) + 1 :]: v for k, v in source.items() if k.startswith(own + ".")}
    else:
        keep = {f"{prefix}.{k}": v.numpy() for k, v in state.items() if k not in params and not k.endswith(DRAWN_BUFFERS)}
        drawn = generate({f"{prefix}.{k}": tuple(v.shape) for k, v in state.items()}, seed, keep)
        out = {k[len(prefix) + 1 :]: v for k, v in drawn.items()}
    wrong = sorted(set(state) ^ set(out)) + [k for k in state if k in out and tuple(out[k].shape) != tuple(state[k].shape)]
    if wrong:
        raise ValueError(f"{prefix}: our weights do not fit the module the class builds: {wrong[:4]}")
    return {k: out[k] for k in state}


def s2mel_checkpoint(cfg, config: PipelineConfig, seed: int) -> bytes:
    """s2mel.pth as `load_checkpoint2` reads it (commons.py:569-621): {"net": {module: state dict}}."""
    my_model = import_module("s2mel.modules.commons").MyModel
    net = {name: as_torch(module_weights(lambda n=name: my_model(cfg.s2mel, use_gpt_latent=True).models[n], name,
                                         seed, config))
           for name in ("cfm", "length_regulator", "gpt_layer")}
    return torch_bytes({"net": net})


def gpt_checkpoint(cfg, config: PipelineConfig, seed: int) -> tuple[bytes, bytes]:
    """gpt.pth, a plain state dict loaded strictly (utils/checkpoint.py:22-25), of UnifiedVoice as `_load_gpt`
    builds it (infer_v2.py:136), before `post_init_gpt2_config` adds its aliases; and bpe.model, the tokenizer
    the class reads from `dataset.bpe_model` (infer_v2.py:218-223). Both are the GPT part's seeded checkpoint."""
    unified_voice = import_module("gpt.model_v2").UnifiedVoice
    with torch.device("meta"):
        state = unified_voice(**cfg.gpt, use_accel=False).state_dict()
    ours = seeded(config, "gpt", seed)
    wrong = sorted(set(state) ^ (set(ours) - set(gpt_weights.NOT_IN_GPT_PTH)))
    wrong += [k for k in state if k in ours and tuple(ours[k].shape) != tuple(state[k].shape)]
    if wrong:
        raise ValueError(f"gpt: our weights do not fit the UnifiedVoice the class builds: {wrong[:4]}")
    return torch_bytes(as_torch({k: ours[k] for k in state})), gpt_weights.tokenizer_bytes(ours)


def matrices(config: PipelineConfig, seed: int) -> dict[str, bytes]:
    """feat1.pt (speaker styles, rows x 192) and feat2.pt (emotion vectors, rows x model_dim), split by emo_num
    (infer_v2.py:231-240): the GPT part's own matrices."""
    ours = seeded(config, "gpt", seed)
    return {FILES["spk_matrix"]: torch_bytes(torch.from_numpy(np.array(ours[gpt_weights.SPK_MATRIX], order="C"))),
            FILES["emo_matrix"]: torch_bytes(torch.from_numpy(np.array(ours[gpt_weights.EMO_MATRIX], order="C")))}


def w2v_stats(config: PipelineConfig, seed: int) -> bytes:
    """{"mean", "var"} of the w2v-bert features, the semantic part's (get_emb computes (x - mean) / sqrt(var),
    maskgct_utils.py:7-13)."""
    ours = seeded(config, "semantic", seed)
    return torch_bytes({k: torch.from_numpy(np.array(ours[f"semantic.stats.{k}"], order="C")) for k in ("mean", "var")})


#: the code that decides a layout's bytes (its hash is part of the cache key; vocoder.seeded_levels, a rule of the
#: vocoder part's seeded weights, bumps weights.GENERATOR_VERSION when it changes, as its docstring says)
WRITERS = ("official_layout.py", "official_hub.py", "qwen_standin.py", "weights.py", "style_weights.py",
           "gpt_weights.py")


def layout_key(config: PipelineConfig, seed: int) -> str:
    """What decides a layout's bytes: its config files and each part's architecture (not the config's name or its
    run settings: the embedded default and the class check's config share one layout), the seed, the versions of
    what builds the modules, and the writers' code."""
    versions = {d: importlib.metadata.version(d) for d in ("indextts2-inference", "transformers", "torch", "sentencepiece")}
    code = [hashlib.sha256((Path(__file__).parent / name).read_bytes()).hexdigest() for name in WRITERS]
    files = [config_dict(config), config.semantic.w2v_config(), config.vocoder.upstream_h()]
    arch = {part: config.arch_digest(part) for part in sorted(driver.SEEDED)}
    data = [LAYOUT_VERSION, GENERATOR_VERSION, files, arch, seed, versions, code]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def locate(config: PipelineConfig = CLASS_CONFIG, seed: int = 0) -> Layout:
    """Where the layout for this config and seed lives in the user's cache (written or not)."""
    return Layout(cache_dir() / "class" / f"layout-seed{seed}-{layout_key(config, seed)}")


def ensure(config: PipelineConfig = CLASS_CONFIG, seed: int = 0, log=print) -> Layout:
    """The layout for this config and seed, written on first use (about a minute, 1 GB) and cached."""
    layout = locate(config, seed)
    if (layout.root / MANIFEST).is_file():
        return layout
    log(f"writing the official checkpoint layout from seeded weights -> {layout.root}")
    write(layout, config, seed)
    return layout


def write(layout: Layout, config: PipelineConfig, seed: int) -> None:
    """Every file, then the manifest (sha256 of each): a layout without its manifest is incomplete."""
    load_torchaudio()  # transformers' audio utilities import torchaudio (the GPT's and w2v-bert's modules)
    try:
        _write(layout, config, seed)
    finally:
        seeded.cache_clear()


def _write(layout: Layout, config: PipelineConfig, seed: int) -> None:
    from omegaconf import OmegaConf

    from reference_hooks import official_hub, qwen_standin

    text = "# tiny seeded IndexTTS2 (indextts-parity reference_hooks/official_layout.py)\n"
    text += yaml.safe_dump(config_dict(config), sort_keys=False, default_flow_style=None)
    model = layout.model_dir
    write_bytes(model / "config.yaml", text.encode())
    cfg = OmegaConf.load(model / "config.yaml")  # as `_load_config` reads it (infer_v2.py:123-131)
    torch.manual_seed(0)  # only the throw-away initialisation of modules built for their names depends on it
    gpt, bpe = gpt_checkpoint(cfg, config, seed)
    write_bytes(model / "bpe.model", bpe)
    write_bytes(model / FILES["s2mel_checkpoint"], s2mel_checkpoint(cfg, config, seed))
    write_bytes(model / FILES["gpt_checkpoint"], gpt)
    for name, data in matrices(config, seed).items():
        write_bytes(model / name, data)
    write_bytes(model / FILES["w2v_stat"], w2v_stats(config, seed))
    qwen_standin.write(model / FILES["qwen_emo_path"], seed, write_bytes)
    official_hub.write(layout.hf_home, cfg, config, seed, write_bytes)
    files = {p.relative_to(layout.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(layout.root.rglob("*")) if p.is_file() and p.name != MANIFEST}
    manifest = {"seed": seed, "config": config.name, "layout_version": LAYOUT_VERSION, "files": files}
    write_bytes(layout.root / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
