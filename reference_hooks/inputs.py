"""The top inputs of an s2mel run: the speaker mel, content features, style vector and noise.

Everything random is drawn here once, recorded in the trace, and read back by every replay: nothing
downstream draws again. The speaker mel comes from upstream's own mel function on a real recording.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.configs import S2MelConfig
from harness.errors import UserError
from reference_hooks.upstream import import_module

FIXTURE_WAV = Path(__file__).resolve().parent.parent / "fixtures" / "speaker.wav"


@dataclass(frozen=True)
class S2MelInputs:
    speaker_wav: np.ndarray  # [1, S] float32 at cfg.mel.sr
    prompt_mel: np.ndarray  # [1, 80, Tp]
    prompt_content: np.ndarray  # [1, Np, C_in]
    target_content: np.ndarray  # [1, Nt, C_in]
    style: np.ndarray  # [1, 192]
    noise: np.ndarray  # [1, 80, Tp + Tt], already times the temperature

    @property
    def prompt_frames(self) -> int:
        return self.prompt_mel.shape[-1]

    @property
    def total_frames(self) -> int:
        return self.noise.shape[-1]


def read_wav(path: Path, sr: int) -> np.ndarray:
    """A mono 16-bit PCM file at the mel sample rate, scaled to [-1, 1).

    Upstream resamples with torchaudio, which has no build for this torch; we take the recording at
    the mel rate instead of resampling, so the trace marks the waveform as given, not resampled.
    """
    from scipy.io import wavfile

    if not path.exists():
        raise UserError(f"speaker recording not found: {path}")
    try:
        rate, data = wavfile.read(path)
    except ValueError as exc:
        raise UserError(f"{path}: not a readable WAV file ({exc})") from None
    if rate != sr:
        raise UserError(f"{path}: sample rate {rate} Hz, the mel function wants {sr} Hz (resample it first)")
    if data.ndim > 1:
        data = data.mean(axis=1)
    scale = 32768.0 if data.dtype == np.int16 else 1.0
    return (data.astype(np.float32) / scale)[None, :]


def upstream_mel(wav: np.ndarray, cfg: S2MelConfig) -> np.ndarray:
    """infer_v2's `mel_fn`: upstream `mel_spectrogram` with the config's STFT settings."""
    import torch

    audio = import_module("s2mel.modules.audio")
    m = cfg.mel
    mel = audio.mel_spectrogram(
        torch.from_numpy(wav), n_fft=m.n_fft, num_mels=m.n_mels, sampling_rate=m.sr, hop_size=m.hop_length,
        win_size=m.win_length, fmin=m.fmin, fmax=m.fmax,
    )
    return mel.numpy().astype(np.float32)


def make_inputs(cfg: S2MelConfig, seed: int, wav_path: Path = FIXTURE_WAV) -> S2MelInputs:
    """The embedded default: the fixture recording's mel plus seeded content, style and noise."""
    import torch

    wav = read_wav(wav_path, cfg.mel.sr)
    mel = upstream_mel(wav, cfg)
    tp = mel.shape[-1]
    # infer_v2: semantic features run at 50 Hz, mel frames at 22050/256 Hz, target = codes * 1.72
    n_prompt = max(1, int(tp / cfg.code_to_frame))
    tt = cfg.target_frames(cfg.target_codes)
    g = np.random.default_rng(seed)
    prompt_content = g.standard_normal((1, n_prompt, cfg.lr_in_channels)).astype(np.float32)
    target_content = g.standard_normal((1, cfg.target_codes, cfg.lr_in_channels)).astype(np.float32)
    style = g.standard_normal((1, cfg.style_dim)).astype(np.float32)
    # upstream draws z = torch.randn([B, 80, T]) * temperature inside CFM.inference; we draw the
    # same tensor from the same torch seed so the hooked run can be checked against it.
    torch.manual_seed(seed)
    noise = (torch.randn([1, cfg.in_channels, tp + tt]) * cfg.temperature).numpy()
    return S2MelInputs(wav, mel, prompt_content, target_content, style, noise)

