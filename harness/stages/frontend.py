"""The `frontend` part: the speaker recording as upstream loads it, its 22.05 and 16 kHz audio, and its mel.

infer_v2.py:350 loads the recording with `librosa.load(path)`: librosa's default `sr` is 22050, so every
recording is mixed to mono and resampled to 22050 Hz by soxr ('soxr_hq') before anything else, then cut
to 15 s. :351 `Resample(sr, 22050)` is therefore always the identity; :352 `Resample(22050, 16000)` is
torchaudio's windowed sinc. :360 the mel of s2mel/modules/audio.py (reflect pad, magnitude with its
epsilon, librosa's Slaney mel basis, log clamp). :391 the emotion path loads the recording again with
`librosa.load(path, sr=16000)` (soxr, not torchaudio). Homes: `reference_hooks/frontend.py` (upstream's own
functions, torchaudio's and librosa's, tapped), `reimpl/frontend/` (ours: load, resample, mel).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from harness.stages.spec import AUDIO, INTERNAL, FaultSpec, Part, PartConfig, StageSpec


@dataclass(frozen=True)
class FrontendConfig(PartConfig):
    """infer_v2's hard-wired loading (15 s, 22050 and 16000 Hz), librosa.load's defaults, torchaudio
    Resample's defaults, and config.yaml `s2mel.preprocess_params` (the mel). The same in every config:
    the front end has no width to shrink."""

    load_sr: int = 22050  # librosa.load's default sr: infer_v2.py:313 passes none
    max_audio_seconds: float = 15.0  # infer_v2.py:350 and :391
    sr_16k: int = 16000  # infer_v2.py:352
    emo_load_sr: int = 16000  # infer_v2.py:391
    soxr_quality: str = "soxr_hq"  # librosa.load's default res_type
    resample_lowpass_width: int = 6  # torchaudio Resample defaults (sinc_interp_hann)
    resample_rolloff: float = 0.99
    sr: int = 22050  # the mel (preprocess_params)
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    fmin: int = 0
    fmax: int | None = None  # "None" in the yaml; any other value becomes 8000 (infer_v2.py:249)
    clip: float = 1e-5  # clamp before the natural log
    magnitude_eps: float = 1e-9  # sqrt(|STFT|^2 + 1e-9)

    def loaded_samples(self, samples: int, rate: int) -> int:
        """How many samples `librosa.load` + the 15 s cut leave of a recording (at `load_sr`)."""
        n = samples if rate == self.load_sr else math.ceil(samples * self.load_sr / rate)
        return min(n, int(self.max_audio_seconds * self.load_sr))

    def samples_16k(self, samples: int, rate: int) -> int:
        """The speaker's 16 kHz audio length: torchaudio's Resample gives ceil(n * 16000 / 22050)."""
        n = self.loaded_samples(samples, rate)
        return n if self.sr_16k == self.load_sr else math.ceil(n * self.sr_16k / self.load_sr)


MEL = "frontend/mel"

STAGES = (
    StageSpec("frontend/wav", "B S", kind=AUDIO,
              doc="librosa.load(path): mono, resampled to 22050 Hz by soxr_hq, cut to 15 s (infer_v2.py:350)"),
    StageSpec("frontend/wav_22k", "B S", kind=AUDIO,
              doc="torchaudio Resample(sr, 22050): the identity, sr being 22050 already (:351)"),
    StageSpec("frontend/wav_16k", "B S", kind=AUDIO, doc="torchaudio windowed-sinc Resample(22050, 16000) (:352)"),
    StageSpec(MEL + "/padded", "B S", kind=AUDIO, detail=INTERNAL,
              doc="reflect pad of (n_fft - hop) / 2 samples each side: what torch.stft is handed"),
    StageSpec(MEL + "/magnitude", "B F T", detail=INTERNAL,
              doc="sqrt(|STFT|^2 + 1e-9): periodic Hann, center=False, F = n_fft / 2 + 1"),
    StageSpec(MEL + "/filtered", "B C T", detail=INTERNAL, doc="librosa's Slaney mel basis @ magnitude"),
    StageSpec(MEL + "/out", "B C T", doc="ln(clamp(x, 1e-5)): the speaker mel ref_mel (:360)"),
    StageSpec("frontend/emo_wav_16k", "B S", kind=AUDIO,
              doc="librosa.load(emo_audio_prompt, sr=16000): soxr_hq from the file (the speaker's when no emotion "
                  "recording is given, :521-525), cut to 15 s (the emotion path, :391)"),
)

FAULTS = (
    FaultSpec("frontend.resample.poly",
              "22050 -> 16000 with scipy's resample_poly (Kaiser FIR) instead of torchaudio's windowed-sinc Resample",
              "frontend/wav_16k", "band"),
    FaultSpec("frontend.resample.soxr",
              "the speaker's 16 kHz audio from librosa/soxr (as the emotion path loads it) instead of torchaudio's Resample",
              "frontend/wav_16k", "equals_stage"),
    FaultSpec("frontend.mel.power", "the power spectrum |X|^2 where upstream takes the magnitude sqrt(|X|^2 + 1e-9)",
              MEL + "/magnitude", "elementwise"),
    FaultSpec("frontend.mel.log10", "log10 where upstream takes the natural log", MEL + "/out", "affine"),
    FaultSpec("frontend.mel.htk_no_norm",
              "the mel basis of torchaudio's melscale_fbanks defaults (HTK scale, no area norm) instead of librosa's "
              "Slaney scale and norm", MEL + "/filtered"),
    FaultSpec("frontend.mel.no_slaney_norm", "Slaney mel scale without the area normalisation (librosa norm=None)",
              MEL + "/filtered", "channel_affine"),
)

PART = Part(
    name="frontend",
    doc="the speaker recording loaded as upstream loads it, resampled to 22.05 and 16 kHz, its mel, the emotion load",
    stages=STAGES,
    consumes=("inputs/speaker_wav", "inputs/speaker_rate", "inputs/emo_wav", "inputs/emo_rate"),
    produces=("frontend/wav_22k", "frontend/wav_16k", MEL + "/out", "frontend/emo_wav_16k"),
    config=FrontendConfig,
    faults=FAULTS,
)
