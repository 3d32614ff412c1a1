"""The inputs part on the reference side: the text, the speaker recording, its mel by upstream's own mel
function, and the seeded stand-ins of the parts still to come (content features, style vector, the semantic
features the GPT conditions on).

Mirrors indextts2-inference 2.1.1 `infer_v2.py:242-252` (mel_fn: upstream `mel_spectrogram` with
config.yaml's `s2mel.preprocess_params`, center False) and `infer_v2.py:360` (`ref_mel = mel_fn(audio_22k)`).
The recording is read at the mel rate; it is not resampled yet (the front end is still to come).
Declared in `harness/stages/inputs.py`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.errors import UserError
from harness.stages.inputs import DEFAULT_TEXT, InputsConfig
from reference_hooks.recorder import Recorder
from reference_hooks.upstream import import_module

FIXTURE_WAV = Path(__file__).resolve().parent.parent / "fixtures" / "speaker.wav"


@dataclass(frozen=True)
class Source:
    """What the inputs are made from: the recording, the seed of the stand-ins, the text to speak."""

    seed: int = 0
    speaker: Path = FIXTURE_WAV
    text: str = DEFAULT_TEXT

    def digest(self) -> str:
        h = hashlib.sha256(self.speaker.read_bytes() if self.speaker.exists() else b"")
        h.update(f"{self.seed}/".encode())
        h.update(self.text.encode("utf-8"))
        return h.hexdigest()[:16]


def read_wav(path: Path, sr: int) -> np.ndarray:
    """A mono 16-bit PCM file at the mel sample rate, scaled to [-1, 1)."""
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


def upstream_mel(wav: torch.Tensor, config: InputsConfig) -> torch.Tensor:
    """infer_v2's `mel_fn` (infer_v2.py:242-252): upstream's `mel_spectrogram` with the config's STFT settings."""
    audio = import_module("s2mel.modules.audio")
    return audio.mel_spectrogram(wav, n_fft=config.n_fft, num_mels=config.n_mels, sampling_rate=config.sr,
                                 hop_size=config.hop_length, win_size=config.win_length, fmin=config.fmin,
                                 fmax=config.fmax, center=False)


def run(source: Source, config: InputsConfig, given: dict, recorder: Recorder) -> dict[str, torch.Tensor]:
    """The recording and its mel, then the seeded stand-ins (drawn in a fixed order from the seed).

    Given recorded inputs (a float64 run for noise floors replays the float32 run's), they are passed on.
    """
    if given:
        return {path: recorder(path, value) for path, value in given.items()}
    codepoints = torch.tensor([[ord(ch) for ch in source.text]], dtype=torch.int32).reshape(1, len(source.text))
    out = {"inputs/text": recorder("inputs/text", codepoints, note="Unicode code points")}
    wav = torch.from_numpy(read_wav(source.speaker, config.sr))
    out["inputs/speaker_wav"] = recorder("inputs/speaker_wav", wav, sample_rate=config.sr,
                                         note="read at the mel rate; not resampled (the front end is to come)")
    mel = upstream_mel(wav, config).float()
    out["inputs/prompt_mel"] = recorder("inputs/prompt_mel", mel)
    # semantic features run at 50 Hz, mel frames at 22050/256 Hz: about 1.72 frames per content frame
    n_prompt = max(1, int(mel.shape[-1] / 1.72))
    g = np.random.default_rng(source.seed)
    stand_ins = {"inputs/prompt_content": g.standard_normal((1, n_prompt, config.content_channels))}
    stand_ins["inputs/style"] = g.standard_normal((1, config.style_dim))
    # w2v-bert features of the recording (normalised layer 17: about unit scale), one frame per 20 ms; the
    # emotion reference is the same recording loaded again through librosa at 16 kHz (infer_v2.py:385-402),
    # which differs a little from the speaker's 16 kHz audio: a small perturbation of the same features
    frames = max(4, int(wav.shape[-1] / config.sr * config.semantic_rate))
    spk = g.standard_normal((1, frames, config.semantic_channels))
    stand_ins["inputs/spk_cond"] = spk
    stand_ins["inputs/emo_cond"] = spk + 0.03 * g.standard_normal(spk.shape)
    for path, value in stand_ins.items():
        out[path] = recorder(path, torch.from_numpy(value.astype(np.float32)), note="seeded stand-in")
    return out
