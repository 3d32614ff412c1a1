"""Unusual and broken speaker recordings, through the CLI: upstream's behaviour captured faithfully where it
runs, one clear line and exit 2 where it cannot make a style vector, never a traceback.

Files are made with soundfile (the library librosa decodes with) from the fixture.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.trace import Trace

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "speaker.wav"


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=1800)


def _speech() -> tuple[np.ndarray, int]:
    import soundfile

    return soundfile.read(FIXTURE, dtype="float64")


def _wav(path: Path, data, rate: int, subtype: str = "PCM_16") -> Path:
    import soundfile

    soundfile.write(path, data, rate, subtype=subtype)
    return path


def _not_audio(tmp: Path) -> Path:
    (tmp / "x.wav").write_text("this is not a RIFF file\n" * 20)
    return tmp / "x.wav"


def _empty(tmp: Path) -> Path:
    (tmp / "x.wav").write_bytes(b"")
    return tmp / "x.wav"


def _no_samples(tmp: Path) -> Path:
    return _wav(tmp / "x.wav", np.zeros(0), 22050)


def _shorter_than_a_frame(tmp: Path) -> Path:
    speech, rate = _speech()
    return _wav(tmp / "x.wav", speech[5000:5300], rate)  # 300 samples: less than the mel's 384-sample reflect pad


def _one_fbank_frame(tmp: Path) -> Path:
    speech, rate = _speech()
    return _wav(tmp / "x.wav", speech[5000:5600], rate)  # 436 samples at 16 kHz: upstream's style is NaN


def _nan(tmp: Path) -> Path:
    speech, rate = _speech()
    speech = speech.copy()
    speech[1000] = np.nan
    return _wav(tmp / "x.wav", speech, rate, subtype="FLOAT")


@pytest.mark.parametrize(("make", "needle"), [
    (_not_audio, "not readable as audio"), (_empty, "not readable as audio"), (_no_samples, "no audio samples"),
    (_shorter_than_a_frame, "too short"), (_one_fbank_frame, "NaN style"), (_nan, "non-finite"),
], ids=["not-audio", "empty", "no-samples", "shorter-than-a-frame", "one-fbank-frame", "nan-sample"])
def test_a_recording_upstream_cannot_use_is_one_line_and_exit_2(tmp_path, make, needle):
    path = make(tmp_path)
    proc = harness("capture", "--speaker", str(path), "--steps", "1", "--max-tokens", "2", "--no-floors", "-o",
                   str(tmp_path / "t.h5"))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and needle in lines[0] and str(path) in lines[0]
    assert not (tmp_path / "t.h5").exists() and not list(tmp_path.glob("t.h5.*"))


def test_a_missing_recording_is_one_line_and_exit_2(tmp_path):
    proc = harness("compare", "--speaker", str(tmp_path / "none.wav"), "--steps", "1")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "no such file" in proc.stderr


def _capture(tmp_path: Path, path: Path) -> Path:
    out = tmp_path / "t.h5"
    proc = harness("capture", "--speaker", str(path), "--steps", "1", "--max-tokens", "2", "--no-floors", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_silence_is_captured_as_upstream_computes_it(tmp_path):
    out = _capture(tmp_path, _wav(tmp_path / "silence.wav", np.zeros(2 * 22050), 22050))
    with Trace(out) as t:
        # the magnitude's floor sqrt(1e-9) times the Slaney band sums stays under the clamp: ln(1e-5) everywhere
        mel, fbank = t.read("frontend/mel/out"), t.read("style/fbank/log")
        assert np.ptp(mel) == 0 and abs(mel.flat[0] - np.log(1e-5)) < 1e-5
        # Kaldi's log floor: ln of float32's eps in every band and frame
        assert np.ptp(fbank) == 0 and abs(fbank.flat[0] - np.log(np.finfo(np.float32).eps)) < 1e-5
        # minus its mean over time: float32's mean of a constant is off by an ulp, so a constant of -9.5e-7
        centred = t.read("style/fbank/centered")
        assert np.ptp(centred) == 0 and abs(centred.flat[0]) < 1e-5
        style = t.read("style/style")
        assert np.isfinite(style).all() and style.std() > 0  # CAMPPlus's biases alone


def test_a_recording_longer_than_15_s_is_cut_as_upstream_cuts_it(tmp_path):
    speech, rate = _speech()
    long = np.tile(speech, math.ceil(20 * rate / len(speech)))[: 20 * rate]
    out = _capture(tmp_path, _wav(tmp_path / "long.wav", long, rate))
    with Trace(out) as t:
        assert t.info("inputs/speaker_wav").shape == (1, 20 * rate)  # the file as it is
        assert t.info("frontend/wav").shape == (1, 15 * 22050)  # infer_v2.py:316-321
        assert t.info("frontend/emo_wav_16k").shape == (1, 15 * 16000)  # :391, cut at 16 kHz
        assert t.info("frontend/mel/out").shape == (1, 80, 15 * 22050 // 256)
