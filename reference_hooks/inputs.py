"""The inputs part on the reference side: the text and the speaker (and emotion) recording as the file holds it.

The recording is decoded as `librosa.load` decodes it (infer_v2.py:313; librosa/core/audio.py:176 and
:201-225: `soundfile.SoundFile(path).read(frames=-1, dtype=float32)`, the same libsndfile call made here
directly, so that checking a recording does not import librosa, which takes seconds;
tests/test_frontend_style.py proves the glue equal to `librosa.load`), and kept as the file holds it:
every channel, at the file's rate. Mixing to mono and resampling are the front end's
(`reference_hooks/frontend.py`). A recording upstream cannot
turn into a style vector is refused here, in one line, before anything runs (`check`).
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

FIXTURE_WAV = Path(__file__).resolve().parent.parent / "fixtures" / "speaker.wav"


@dataclass(frozen=True)
class Source:
    """What the inputs are made from: the recordings, the seed of the noise, the text to speak."""

    seed: int = 0
    speaker: Path = FIXTURE_WAV
    text: str = DEFAULT_TEXT
    emo: Path | None = None  # the emotion recording (emo_audio_prompt); None: the speaker's, as upstream

    def digest(self) -> str:
        h = hashlib.sha256(self.speaker.read_bytes() if self.speaker.exists() else b"")
        h.update(f"{self.seed}/".encode())
        h.update(self.text.encode("utf-8"))
        if self.emo is not None:  # a run without one keeps the digest it always had
            h.update(b"/emo/" + (self.emo.read_bytes() if self.emo.exists() else b""))
        return h.hexdigest()[:16]


def read_recording(path: Path, what: str = "speaker") -> tuple[np.ndarray, int]:
    """[channels, samples] float32 at the file's own rate, as librosa's soundfile reader decodes it.

    A file libsndfile cannot read is refused: `librosa.load` would then warn and try audioread (ffmpeg or
    GStreamer), which the harness does not use. `what` names the recording in the message (speaker, emotion).
    """
    import soundfile

    if not Path(path).is_file():
        raise UserError(f"{what} recording not found: {path}")
    try:
        with soundfile.SoundFile(str(path)) as f:
            rate = f.samplerate
            y = f.read(frames=-1, dtype=np.float32, always_2d=True).T
    except (soundfile.SoundFileError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise UserError(f"{what} recording {path}: not readable as audio by libsndfile ({reason}); "
                        "upstream's librosa.load would try audioread next, which the harness does not use: "
                        "convert it to WAV or FLAC") from None
    return np.ascontiguousarray(y), int(rate)


def _loadable(path: Path, what: str, when_empty: str = "") -> tuple[np.ndarray, int]:
    """The recording, refused in one line where upstream's librosa.load would fail on it: no samples, or a
    sample that is not finite."""
    y, rate = read_recording(path, what)
    if y.shape[1] == 0:
        raise UserError(f"{what} recording {path}: no audio samples{when_empty}")
    if not np.isfinite(y).all():
        raise UserError(f"{what} recording {path}: {int((~np.isfinite(y)).sum())} non-finite sample(s); upstream's "
                        "librosa.load refuses it (ParameterError: Audio buffer is not finite everywhere)")
    return y, rate


def check_emotion(path: Path) -> None:
    """Refuse, in one line, an emotion recording upstream's emotion path cannot load (it makes w2v-bert features
    of it, no style vector: any length with samples will do)."""
    _loadable(path, "emotion")


def check(path: Path, frontend, style) -> None:
    """Refuse, in one line, a recording upstream cannot make a style vector of (and say what upstream does)."""
    y, rate = _loadable(path, "speaker", " (upstream fails in torchaudio's Resample)")
    n16 = frontend.samples_16k(y.shape[1], rate)
    if n16 < style.min_samples():
        ms = 1000.0 * y.shape[1] / rate
        raise UserError(f"speaker recording {path}: too short ({y.shape[1]} samples at {rate} Hz, {ms:.1f} ms, "
                        f"{n16} at 16 kHz); the style encoder needs at least {style.min_samples()} samples at 16 kHz "
                        f"({1000 * style.min_samples() / 16000:.0f} ms): with fewer, upstream's Kaldi fbank fails "
                        "(under one 25 ms frame) or CAMPPlus returns a NaN style without an error")


def run(source: Source, config: InputsConfig, given: dict, recorder: Recorder) -> dict[str, torch.Tensor]:
    """The text (as code points), the recording and its rate.

    Given recorded inputs (a float64 run for noise floors replays the float32 run's), they are passed on.
    """
    if given:
        return {path: recorder(path, value) for path, value in given.items()}
    codepoints = torch.tensor([[ord(ch) for ch in source.text]], dtype=torch.int32).reshape(1, len(source.text))
    out = {"inputs/text": recorder("inputs/text", codepoints, note="Unicode code points")}
    y, rate = read_recording(source.speaker)
    out["inputs/speaker_wav"] = recorder("inputs/speaker_wav", torch.from_numpy(y), sample_rate=rate,
                                         note=f"decoded from {source.speaker.name}, {y.shape[0]} channel(s)")
    out["inputs/speaker_rate"] = recorder("inputs/speaker_rate", torch.tensor([rate], dtype=torch.int64))
    if source.emo is not None:
        y, rate = read_recording(source.emo, "emotion")
        out["inputs/emo_wav"] = recorder("inputs/emo_wav", torch.from_numpy(y), sample_rate=rate,
                                         note=f"decoded from {source.emo.name}, {y.shape[0]} channel(s)")
        out["inputs/emo_rate"] = recorder("inputs/emo_rate", torch.tensor([rate], dtype=torch.int64))
    return out
