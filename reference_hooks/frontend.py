"""Upstream's speaker front end, run on its own functions with taps: librosa's loading, torchaudio's Resample,
upstream's `mel_spectrogram`.

Mirrors indextts2-inference 2.1.1 `IndexTTS2._get_speaker_conditioning` and `_get_emotion_conditioning`:
- infer_v2.py:350 `audio, sr = self._load_and_cut_audio(spk_audio_prompt, 15)`, i.e. :311-322:
  `librosa.load(path)` then `torch.tensor(audio).unsqueeze(0)` cut to `int(15 * sr)` samples. The
  inputs part decoded the file as `librosa.load` does (its soundfile reader); here librosa's own
  `to_mono` and `resample` (with `librosa.load`'s own defaults, read from its signature) finish the load;
- :351-352 `torchaudio.transforms.Resample(sr, 22050)(audio)`, `Resample(sr, 16000)(audio)`;
- :360 `ref_mel = self.mel_fn(audio_22k.float())` with :242-252's `mel_fn_args`;
- :391 `self._load_and_cut_audio(emo_audio_prompt, 15, sr=16000)`: with no emotion prompt, `infer` uses the
  speaker's recording (:520-524), loaded again at 16 kHz by soxr.
`mel_spectrogram` is a plain function, so no forward hook sees inside it: while it runs, the module's
`torch` name is a proxy that records what it hands `torch.stft` (the padded audio) and `torch.matmul`
(the magnitude; the result is the filtered mel), undone by `hooked()`.

A float64 run (the noise floor) takes torchaudio's documented `dtype=torch.float64` for Resample (its
kernel is then computed and kept in float64), pre-fills the mel function's module-level caches (keyed by
rate and device, not dtype) with librosa's float64 basis and a float64 Hann window for the run, and leaves
out the `.float()` of :360. `attach` puts the same taps on the unmodified IndexTTS2 class
(tests/test_glue_equals_class.py). Declared in `harness/stages/frontend.py`.
"""
from __future__ import annotations

import inspect
import sys

import numpy as np
import torch

from harness.stages.frontend import MEL, FrontendConfig
from reference_hooks.recorder import Recorder, hooked
from reference_hooks.upstream import import_module, load_torchaudio

WAV, RATE = "inputs/speaker_wav", "inputs/speaker_rate"


class _TorchProxy:
    """Stands in for the `torch` module inside one upstream module; only the given names are replaced."""

    def __init__(self, real, **overrides):
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self._real, name)


def patch_in(hooks, owner, dotted: str, replacement) -> None:
    """Make `owner.a.b.c` (`dotted` = "a.b.c") resolve to `replacement` until `hooked()` ends: `owner.a` is
    patched with a proxy of `a` whose `b` is a proxy of `a.b`, ...; every other attribute passes through.
    Only lookups through `owner` see it (a function upstream calls by its module's global name)."""
    head, *rest = dotted.split(".")

    def proxied(obj, path):
        name, *more = path
        return _TorchProxy(obj, **{name: proxied(getattr(obj, name), more) if more else replacement})

    hooks.patch(owner, head, proxied(getattr(owner, head), rest) if rest else replacement)


def load_and_cut(recording: np.ndarray, native_sr: int, max_seconds: float, sr: int | None = None
                 ) -> tuple[torch.Tensor, int]:
    """infer_v2.py:311-322 on a decoded recording [C, S]: the rest of `librosa.load` (librosa/core/audio.py:
    188-195: to_mono, then resample to `sr`, librosa.load's default when None), a [1, S] tensor, the cut."""
    import librosa

    defaults = inspect.signature(librosa.load).parameters
    y = recording[0] if recording.shape[0] == 1 else recording  # soundfile's always_2d=False: mono is 1-D
    y = librosa.to_mono(y)
    sr = sr or defaults["sr"].default
    y = librosa.resample(y, orig_sr=native_sr, target_sr=sr, res_type=defaults["res_type"].default)
    audio = torch.tensor(y).unsqueeze(0)
    max_audio_samples = int(max_seconds * sr)
    if audio.shape[1] > max_audio_samples:
        audio = audio[:, :max_audio_samples]
    return audio, sr


def _mel_taps(hooks, audio_mod, recorder: Recorder, sample_rate: int) -> None:
    real = audio_mod.torch

    def stft(y, *args, **kwargs):
        recorder(MEL + "/padded", y, sample_rate=sample_rate)
        return real.stft(y, *args, **kwargs)

    def matmul(basis, magnitude):
        recorder(MEL + "/magnitude", magnitude)
        return recorder(MEL + "/filtered", real.matmul(basis, magnitude))

    hooks.patch(audio_mod, "torch", _TorchProxy(real, stft=stft, matmul=matmul))


def _float64_caches(hooks, audio_mod, config: FrontendConfig) -> None:
    """Upstream's caches hold what its first call computes, in float32; a float64 run gets float64 ones
    (the same librosa basis and torch window, computed in float64), for this run only."""
    basis = audio_mod.librosa_mel_fn(sr=config.sr, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin,
                                     fmax=config.fmax, dtype=np.float64)
    hooks.patch(audio_mod, "mel_basis", {f"{config.sr}_{config.fmax}_cpu": torch.from_numpy(basis)})
    hooks.patch(audio_mod, "hann_window", {f"{config.sr}_cpu": torch.hann_window(config.win_length,
                                                                                 dtype=torch.float64)})


def mel_fn(audio_mod, config: FrontendConfig, wav: torch.Tensor) -> torch.Tensor:
    """infer_v2.py:242-252: `mel_spectrogram` with config.yaml's preprocess_params, center False."""
    fmax = None if config.fmax is None else 8000  # :249: any fmax other than "None" becomes 8000
    return audio_mod.mel_spectrogram(wav, n_fft=config.n_fft, win_size=config.win_length, hop_size=config.hop_length,
                                     num_mels=config.n_mels, sampling_rate=config.sr, fmin=config.fmin, fmax=fmax,
                                     center=False)


def run(model, config: FrontendConfig, given: dict[str, torch.Tensor], recorder: Recorder) -> dict[str, torch.Tensor]:
    """The speaker's audio at 22.05 and 16 kHz, its mel, and the emotion path's 16 kHz load."""
    ta = load_torchaudio()
    audio_mod = import_module("s2mel.modules.audio")
    recording, native_sr = given[WAV].numpy(), int(given[RATE].reshape(-1)[0])
    f64 = given[WAV].dtype == torch.float64
    kw = {"dtype": torch.float64} if f64 else {}
    out = {}
    with torch.inference_mode(), hooked() as hooks:
        audio, sr = load_and_cut(recording, native_sr, config.max_audio_seconds)  # :350
        audio = recorder("frontend/wav", audio, sample_rate=sr)
        audio_22k = ta.transforms.Resample(sr, 22050, **kw)(audio)  # :351
        out["frontend/wav_22k"] = recorder("frontend/wav_22k", audio_22k, sample_rate=22050)
        audio_16k = ta.transforms.Resample(sr, 16000, **kw)(audio)  # :352
        out["frontend/wav_16k"] = recorder("frontend/wav_16k", audio_16k, sample_rate=16000)
        if recorder.hooking:
            _mel_taps(hooks, audio_mod, recorder, config.sr)
        if f64:
            _float64_caches(hooks, audio_mod, config)
        ref_mel = mel_fn(audio_mod, config, audio_22k if f64 else audio_22k.float())  # :360
        out[MEL + "/out"] = recorder(MEL + "/out", ref_mel)
        # :521-525: emo_audio_prompt is the speaker's recording unless an emotion recording is given
        emo_recording, emo_sr = ((given["inputs/emo_wav"].numpy(), int(given["inputs/emo_rate"].reshape(-1)[0]))
                                 if "inputs/emo_wav" in given else (recording, native_sr))
        emo, _ = load_and_cut(emo_recording, emo_sr, config.max_audio_seconds, sr=config.emo_load_sr)  # :391
        out["frontend/emo_wav_16k"] = recorder("frontend/emo_wav_16k", emo, sample_rate=config.emo_load_sr)
    return out


def attach(hooks, tts, recorder: Recorder, config: FrontendConfig) -> None:
    """Our stages of the front end that the unmodified IndexTTS2 class runs, observed where the class calls it:
    - its `_load_and_cut_audio` method, wrapped on the instance: its output is frontend/wav for the speaker
      (:350, no `sr`) and frontend/emo_wav_16k for the emotion path (:391, `sr=16000`); librosa.load's own
      steps inside it (the decode at the file's rate, to_mono, soxr) are not observable there;
    - `torchaudio.transforms.Resample` as infer_v2's module reaches it (:351-352): each module it builds is
      hooked, named by its target rate;
    - `self.mel_fn` (:360), wrapped on the instance (its output), with `_mel_taps` inside `mel_spectrogram`
      while it runs."""
    infer_v2 = sys.modules[type(tts).__module__]
    load, mel_fn = tts._load_and_cut_audio, tts.mel_fn
    signature = inspect.signature(load)
    audio_mod = sys.modules[infer_v2.mel_spectrogram.__module__]
    resample = infer_v2.torchaudio.transforms.Resample
    by_rate = {22050: "frontend/wav_22k", config.sr_16k: "frontend/wav_16k"}  # :351's 22050 is hard-wired

    def load_and_cut(*args, **kwargs):
        sr = signature.bind(*args, **kwargs).arguments.get("sr")
        if sr not in (None, config.emo_load_sr):
            raise RuntimeError(f"_load_and_cut_audio called with sr={sr}: not a call of infer_v2.py:350 or :391")
        audio, rate = load(*args, **kwargs)
        recorder("frontend/wav" if sr is None else "frontend/emo_wav_16k", audio, sample_rate=rate)
        return audio, rate

    def observed_resample(*args, **kwargs):
        module = resample(*args, **kwargs)
        stage, rate = by_rate[module.new_freq], module.new_freq
        hooks.forward(module, lambda _m, _a, out: recorder(stage, out, sample_rate=rate))
        return module

    def observed_mel(x):
        with hooked() as inner:
            _mel_taps(inner, audio_mod, recorder, config.sr)
            return recorder(MEL + "/out", mel_fn(x))

    hooks.patch(tts, "_load_and_cut_audio", load_and_cut)
    patch_in(hooks, infer_v2, "torchaudio.transforms.Resample", observed_resample)
    hooks.patch(tts, "mel_fn", observed_mel)
