"""Our frontend part: the recording loaded as upstream loads it, its 22.05 and 16 kHz audio, its mel, and the
emotion path's 16 kHz load, in the order infer_v2 computes them (:350-360, :391).
Declared in `harness/stages/frontend.py`."""
from __future__ import annotations

import torch

from harness.stages.frontend import MEL, FrontendConfig
from reimpl.frontend.load import load_and_cut
from reimpl.frontend.mel import log_mel
from reimpl.frontend.resample import resample_16k, sinc_resample


def run(params, config: FrontendConfig, given: dict[str, torch.Tensor], tap) -> dict[str, torch.Tensor]:
    recording, native_sr = given["inputs/speaker_wav"], int(given["inputs/speaker_rate"].reshape(-1)[0])
    out = {}
    with torch.inference_mode():
        sr = config.load_sr
        wav = tap("frontend/wav", load_and_cut(recording, native_sr, sr, config.max_audio_seconds, config.soxr_quality))
        out["frontend/wav_22k"] = tap("frontend/wav_22k", sinc_resample(wav, sr, config.sr, config.resample_lowpass_width,
                                                                          config.resample_rolloff))
        out["frontend/wav_16k"] = tap("frontend/wav_16k", resample_16k(wav, sr, config))
        out[MEL + "/out"] = log_mel(config, out["frontend/wav_22k"], tap)
        # infer_v2.py:521-525: without an emotion recording the emotion path loads the speaker's
        emo_recording, emo_sr = ((given["inputs/emo_wav"], int(given["inputs/emo_rate"].reshape(-1)[0]))
                                 if "inputs/emo_wav" in given else (recording, native_sr))
        emo = load_and_cut(emo_recording, emo_sr, config.emo_load_sr, config.max_audio_seconds, config.soxr_quality)
        out["frontend/emo_wav_16k"] = tap("frontend/emo_wav_16k", emo)
    return out
