"""The unmodified `indextts.infer_v2.IndexTTS2`, built and run offline on an official layout of our seeded weights.

The class loads every model at once, takes four of them from the Hugging Face hub, and always builds its NeMo
text normaliser, so it runs in a process of its own, prepared before anything imports huggingface_hub or
transformers (the hub reads HF_HOME and HF_HUB_OFFLINE when it is imported). What differs from a user's run,
none of it a change to the class's code:
- HF_HOME is our hub cache folder (official_hub.py) and HF_HUB_OFFLINE=1;
- torchaudio's Python code is the bare import every reference part uses (`upstream.load_torchaudio`);
- `indextts` is a copy of the installed wheel's package in the user cache, every file checked against the
  wheel's RECORD on every start: `utils/front.py:122` writes NeMo's compiled grammars next to itself, and the
  installed package is never written to;
- nemo-text-processing and pynini come from a folder of their own (`make setup` installs them there),
  appended to sys.path after everything else (NeMo ships a top-level `tests` package).
"""
from __future__ import annotations

import base64
import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import random
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.paths import cache_dir
from reference_hooks.official_hub import REVISION
from reference_hooks.official_layout import FILES, Layout
from reference_hooks.upstream import DISTRIBUTION, UpstreamSource, import_module, load_torchaudio, load_upstream

TEXTNORM_ENV = "INDEXTTS_PARITY_TEXTNORM"
#: what the class's loaders import (the `class` extra), and its text normaliser (the textnorm folder)
CLASS_PACKAGES = ("transformers", "huggingface_hub", "omegaconf", "accelerate", "sentencepiece", "indextts", "torchaudio")
TEXTNORM_PACKAGES = ("nemo_text_processing", "pynini", "sacremoses", "editdistance", "cdifflib")


def textnorm_dir() -> Path:
    return Path(os.environ.get(TEXTNORM_ENV) or Path(sys.prefix) / "textnorm")


def missing() -> list[str]:
    """The packages the class needs that are not installed; empty when it can run. Imports nothing."""
    out = [p for p in CLASS_PACKAGES if importlib.util.find_spec(p) is None]
    folder = [str(textnorm_dir())]
    return out + [f"{p} (in {folder[0]})" for p in TEXTNORM_PACKAGES
                  if importlib.machinery.PathFinder.find_spec(p, folder) is None]


def _record_digest(path: Path) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()


def upstream_copy() -> Path:
    """The folder holding a copy of the installed `indextts` package, made once, checked on every call."""
    dist = importlib.metadata.distribution(DISTRIBUTION)
    files = sorted((f for f in dist.files or [] if f.parts[0] == "indextts" and f.hash is not None), key=str)
    if not files:
        raise RuntimeError(f"{DISTRIBUTION} has no RECORD of its files; reinstall it")
    tag = hashlib.sha256("".join(f"{f} {f.hash.value}\n" for f in files).encode()).hexdigest()[:12]
    root = cache_dir() / "class" / f"indextts-{dist.version}-{tag}"
    if not (root / "indextts").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="indextts.", suffix=".partial", dir=root))
        for f in files:
            (tmp / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dist.locate_file(f), tmp / f)
        try:
            os.rename(tmp / "indextts", root / "indextts")
        except OSError:  # another process made it first
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    bad = [str(f) for f in files if not (root / f).is_file() or _record_digest(root / f) != f.hash.value]
    if bad:
        raise RuntimeError(f"{root}: {len(bad)} file(s) differ from {DISTRIBUTION}'s RECORD, e.g. {bad[:3]}")
    return root


def prepare(layout: Layout) -> UpstreamSource:
    """The process's environment for the class; call it first, in a process that has not imported the hub."""
    if "huggingface_hub" in sys.modules or "transformers" in sys.modules:
        raise RuntimeError("the class must run in a fresh process: huggingface_hub is imported already, so it "
                           "would not read HF_HOME and HF_HUB_OFFLINE")
    os.environ.update(HF_HOME=str(layout.hf_home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                      TOKENIZERS_PARALLELISM="false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    if str(textnorm_dir()) not in sys.path:
        sys.path.append(str(textnorm_dir()))
    load_torchaudio()
    return load_upstream(upstream_copy())


def build(layout: Layout, language: str = "en"):
    """`IndexTTS2(model_dir, device="cpu", language=...)`; "en" builds only NeMo's English grammar (the class's
    default, None, also builds the Chinese one; English text takes the English branch either way)."""
    return import_module("infer_v2").IndexTTS2(model_dir=str(layout.model_dir), device="cpu", language=language)


def infer(tts, speaker: Path, text: str, max_mel_tokens: int, seed: int, max_text_tokens_per_segment: int = 120,
          emo: Path | None = None, emo_alpha: float = 1.0, emo_vector: tuple[float, ...] = (), use_random: bool = False):
    """One plain `infer(..., output_path=None)` from empty caches, every generator seeded as a user would:
    returns the class's own `(22050, int16 array [N, 1])`. `max_text_tokens_per_segment` (the class's default
    120) decides how the text is cut into segments (utils/front.py:613-621); `emo` is its emo_audio_prompt (None:
    the speaker's, alpha then 1.0 whatever is given, infer_v2.py:521-525); `emo_vector` (() for None) and
    `use_random` its emotion-vector mode (:497-541)."""
    tts._init_cache()  # the class's own reset (infer_v2.py:254): the speaker conditioning is computed again
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    return tts.infer(spk_audio_prompt=str(speaker), text=text, output_path=None, max_mel_tokens=max_mel_tokens,
                     max_text_tokens_per_segment=max_text_tokens_per_segment,
                     emo_audio_prompt=None if emo is None else str(emo), emo_alpha=emo_alpha,
                     emo_vector=list(emo_vector) if emo_vector else None, use_random=use_random)


@dataclass(frozen=True)
class LoadCheck:
    """Whether the tensors a module holds after the class loaded it equal the file they came from."""

    file: str
    loader: str
    total: int
    differing: tuple[str, ...]  # in the file, and absent from the module or not equal to it
    module_only: tuple[str, ...]  # in the module, not in the file, and not an alias of a tensor from the file
    aliases: tuple[str, ...]  # in the module, not in the file: the same storage as a tensor from the file

    def to_dict(self) -> dict:
        return {"file": self.file, "loader": self.loader, "total": self.total, "differing": list(self.differing),
                "module_only": list(self.module_only), "aliases": list(self.aliases)}


def _compare(file: str, loader: str, actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> LoadCheck:
    differing = tuple(k for k, v in expected.items()
                      if k not in actual or actual[k].shape != v.shape or not torch.equal(actual[k].cpu().to(v.dtype), v))
    loaded = {(actual[k].data_ptr(), tuple(actual[k].shape)) for k in expected if k in actual}
    extra = sorted(set(actual) - set(expected))
    aliases = tuple(k for k in extra if (actual[k].data_ptr(), tuple(actual[k].shape)) in loaded)
    return LoadCheck(file, loader, len(expected), differing, tuple(k for k in extra if k not in aliases), aliases)


def check_loaded(tts, layout: Layout) -> list[LoadCheck]:
    """Every tensor the class loaded against its file (read here with weights_only=True / safetensors).

    Upstream's s2mel loader keeps only the keys whose shapes match and warns about the rest
    (commons.py:599-607), and transformers' from_pretrained only logs missing keys: a count proves the load.
    """
    from safetensors.torch import load_file

    model = layout.model_dir
    snap = lambda repo: layout.hf_home / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / REVISION  # noqa: E731
    load = lambda path: torch.load(path, map_location="cpu", weights_only=True)  # noqa: E731
    out = [_compare("gpt.pth", "load_state_dict strict", tts.gpt.state_dict(), load(model / FILES["gpt_checkpoint"]))]
    for name, state in load(model / FILES["s2mel_checkpoint"])["net"].items():
        out.append(_compare(f"s2mel.pth net[{name}]", "load_checkpoint2: shape-filtered, strict=False",
                            tts.s2mel.models[name].state_dict(), state))
    stats = load(model / FILES["w2v_stat"])
    out.append(_compare("wav2vec2bert_stats.pt", "torch.load, std = sqrt(var)",
                        {"mean": tts.semantic_mean, "std": tts.semantic_std},
                        {"mean": stats["mean"], "std": torch.sqrt(stats["var"])}))
    out.append(_compare("feat1.pt, feat2.pt", "torch.load, split by emo_num",
                        {"spk": torch.cat(tts.spk_matrix), "emo": torch.cat(tts.emo_matrix)},
                        {"spk": load(model / FILES["spk_matrix"]), "emo": load(model / FILES["emo_matrix"])}))
    out.append(_compare("qwen0.6bemo4-merge/model.safetensors", "from_pretrained float16",
                        tts.qwen_emo.model.state_dict(), load_file(model / FILES["qwen_emo_path"] / "model.safetensors")))
    out.append(_compare("w2v-bert-2.0 model.safetensors", "from_pretrained", tts.semantic_model.state_dict(),
                        load_file(snap("facebook/w2v-bert-2.0") / "model.safetensors")))
    out.append(_compare("MaskGCT semantic_codec", "safetensors load_model strict", tts.semantic_codec.state_dict(),
                        load_file(snap("amphion/MaskGCT") / "semantic_codec" / "model.safetensors")))
    out.append(_compare("campplus_cn_common.bin", "load_state_dict strict", tts.campplus_model.state_dict(),
                        load(snap("funasr/campplus") / "campplus_cn_common.bin")))
    generator = load(snap(str(tts.cfg.vocoder.name)) / "bigvgan_generator.pt")["generator"]
    out.append(_compare("bigvgan_generator.pt (weight norm folded as remove_weight_norm folds it)",
                        "load_state_dict strict", tts.bigvgan.state_dict(), _fold_weight_norm(generator)))
    return out


def _fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights `remove_weight_norm` leaves (infer_v2.py:214): g and v folded by torch's own op, dim 0."""
    out = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            base = key[: -len("_g")]
            out[base] = torch._weight_norm(state[base + "_v"], value, 0)
        elif not key.endswith(".weight_v"):
            out[key] = value
    return out
