"""Model configurations of the s2mel part (length regulator + CFM/DiT), as plain data.

Both sides build their model from one of these: `reference_hooks` turns it into the Munch tree
upstream's constructors read, `reimpl` reads the fields directly. Keeping it torch-free lets the
harness record and compare a configuration without importing a model.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from harness.errors import UserError


@dataclass(frozen=True)
class MelConfig:
    sr: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    fmin: int = 0
    fmax: int | None = None


@dataclass(frozen=True)
class S2MelConfig:
    """One s2mel architecture plus the run settings of the embedded default."""

    name: str
    # length regulator
    lr_channels: int = 512
    lr_in_channels: int = 1024
    lr_sampling_ratios: tuple[int, ...] = (1, 1, 1, 1)
    lr_codebook_size: int = 2048
    # DiT
    hidden_dim: int = 512
    num_heads: int = 8
    depth: int = 13
    in_channels: int = 80
    content_dim: int = 512
    content_codebook_size: int = 1024
    style_dim: int = 192
    block_size: int = 8192
    class_dropout_prob: float = 0.1
    # WaveNet final layer
    wavenet_hidden: int = 512
    wavenet_layers: int = 8
    wavenet_kernel: int = 5
    wavenet_dilation: int = 1
    wavenet_p_dropout: float = 0.2
    mel: MelConfig = field(default_factory=MelConfig)
    # run settings (upstream infer_v2 uses 25 steps and CFG rate 0.7)
    steps: int = 25
    cfg_rate: float = 0.7
    temperature: float = 1.0
    target_codes: int = 40
    code_to_frame: float = 1.72

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads

    @property
    def ffn_dim(self) -> int:
        """The feed-forward width the upstream gpt-fast ModelArgs derives from `dim`."""
        n_hidden = int(2 * (4 * self.hidden_dim) / 3)
        return n_hidden if n_hidden % 256 == 0 else n_hidden + 256 - n_hidden % 256

    def target_frames(self, n_codes: int) -> int:
        """infer_v2's `(code_lens * 1.72).long()`: a float32 product, truncated.

        Done in float32 as torch does it, since float64 would differ for some lengths.
        """
        return int(np.float32(n_codes) * np.float32(self.code_to_frame))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """A short hash of every architectural and run field, stored in traces to match runs."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def arch_digest(self) -> str:
        """A hash of the architecture alone: what a checkpoint must fit (run settings left out)."""
        run = {"steps", "cfg_rate", "temperature", "target_codes", "code_to_frame"}
        blob = json.dumps({k: v for k, v in self.to_dict().items() if k not in run}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_(self, **changes) -> "S2MelConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict) -> "S2MelConfig":
        data = dict(data)
        data["mel"] = MelConfig(**data.get("mel", {}))
        if "lr_sampling_ratios" in data:
            data["lr_sampling_ratios"] = tuple(data["lr_sampling_ratios"])
        return cls(**data)


#: The real IndexTTS2 s2mel architecture (checkpoints/config.yaml).
FULL = S2MelConfig(name="full")

#: The same architecture, every feature on, at a width and depth that runs in seconds on a CPU.
#: Depth 5 keeps a middle block with no UViT skip (blocks 0-1 push, 3-4 pop), as depth 13 does.
TINY = S2MelConfig(
    name="tiny",
    lr_channels=64,
    lr_in_channels=96,
    hidden_dim=64,
    num_heads=4,
    depth=5,
    content_dim=64,
    wavenet_hidden=64,  # must equal hidden_dim: FinalLayer modulates with t1 of DiT width
    wavenet_layers=3,
    target_codes=24,
)

CONFIGS: dict[str, S2MelConfig] = {c.name: c for c in (TINY, FULL)}


def get_config(name: str) -> S2MelConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise UserError(f"unknown config {name!r}; choose one of: {', '.join(CONFIGS)}") from None
