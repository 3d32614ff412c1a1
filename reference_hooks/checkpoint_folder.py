"""A user's checkpoint folder (`--checkpoints DIR`) read into our parts' weights, of either kind it may be.

- IndexTTS2's official layout (config.yaml there): every part, from the folder and its Hugging Face cache
  (reference_hooks/official_reader.py), each part's names checked against the modules of the config it matches.
- The older, partial kind: s2mel's from `s2mel.safetensors` or `s2mel.npz` (flat `<module>.<param>` names, read
  without unpickling), else upstream's `s2mel.pth` through torch with `weights_only=True`; the vocoder from
  `bigvgan_generator.pt` (the hub's file, `weights_only=True`) and CAMPPlus from `campplus_cn_common.bin`
  (infer_v2.py:203 downloads it from funasr/campplus) where the folder holds them. The parts such a folder lacks
  are seeded by the caller (harness/commands/models.weights_for), and its record lists them.
"""
from __future__ import annotations

from pathlib import Path

from harness import weights as W
from harness.configs import PipelineConfig
from reference_hooks import official_reader
from reference_hooks.vocoder import load_generator_pt
from reference_hooks.weights import load_campplus_bin, load_s2mel_pth


def read(folder: Path, hf_cache: Path | None, known: dict[str, PipelineConfig]) -> tuple[dict, dict]:
    """(every part's weights the folder holds, a record of where they came from; the digest is the caller's)."""
    folder = Path(folder)
    if official_reader.is_official(folder):
        from reference_hooks.driver import weight_names

        config, out, record = official_reader.read(folder, hf_cache, known)
        official_reader.check_names(config, out, weight_names)
        return out, record
    for name in ("s2mel.safetensors", "s2mel.npz"):
        if (folder / name).is_file():
            out = W.split_s2mel(W.load_flat(folder / name))
            break
    else:
        out = load_s2mel_pth(folder / "s2mel.pth")
    if (folder / "bigvgan_generator.pt").is_file():
        out["vocoder"] = load_generator_pt(folder / "bigvgan_generator.pt")
    if (folder / "campplus_cn_common.bin").is_file():
        out["style"] = load_campplus_bin(folder / "campplus_cn_common.bin")
    return out, {"kind": "real", "path": str(folder)}


def config_of(folder: Path, hf_cache: Path | None, known: dict[str, PipelineConfig]) -> PipelineConfig | None:
    """The embedded config an official layout's config files describe (None for a folder of the older kind)."""
    return official_reader.layout_config(folder, hf_cache, known) if official_reader.is_official(folder) else None
