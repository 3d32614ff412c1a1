"""The speaker front end and the style encoder on the embedded default and on other recordings.

`harness compare --stage frontend` and `--stage style` compare every stage of each part, free-running and
teacher-forced, against upstream's own noise floors; CAMPPlus runs at upstream's real size with valid
batch-norm statistics; a recording at another rate and channel count goes through the same comparison.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import stages
from harness.configs import FULL, TINY
from harness.trace import Trace

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "speaker.wav"


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=1800)


def _declared(part: str, config) -> int:
    """How many stages the part's declarations make for this config (CAMPPlus's layers per block)."""
    n = 0
    for spec in stages.part(part).stages:
        if spec.template.endswith("block_{block}/layer_{layer}"):
            n += sum(config.style.dense_layers)
        elif "{layer}" in spec.template:
            n += sum(config.style.head_blocks)
        elif "{block}" in spec.template:
            n += len(config.style.dense_layers)
        else:
            n += 1
    return n


@pytest.mark.parametrize("part", ["frontend", "style"])
def test_a_part_passes_on_the_embedded_default(tmp_path, tiny_short_run, part):
    summary = tmp_path / "s.json"
    proc = harness("compare", "--steps", "3", "--seed", "1", "--stage", part, "--json", str(summary), "--no-html")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.startswith("PASS: all ") and "local and propagated" in proc.stdout.splitlines()[0]
    data = json.loads(summary.read_text())
    assert data["rule"] == "floors"
    assert len(data["stages"]) == _declared(part, TINY)  # every declared stage of the part was compared
    for s in data["stages"]:
        assert s["status"] == "pass" and s["local"] is not None and s["propagated"] is not None, s["label"]
    audio = [s for s in data["stages"] if s["audio"] is not None]
    assert bool(audio) == (part == "frontend")  # the front end's waveforms get audio measures
    for s in audio:
        assert s["audio"]["delay"] == 0 and s["audio"]["snr_db"] == "inf", s["label"]  # bit-exact: identical


def test_campplus_keeps_its_real_size_and_valid_batch_norm_statistics():
    from reference_hooks import driver
    from reference_hooks.upstream import load_upstream

    load_upstream()
    assert TINY.style == FULL.style  # upstream hard-wires CAMPPlus(80, 192): there is no smaller one
    weights = driver.seeded_weights(TINY, "style", seed=0)
    module = driver.SEEDED["style"][0](TINY.style)
    n_params = sum(p.numel() for p in module.parameters())
    assert n_params == 6_848_544  # upstream's CAMPPlus(feat_dim=80, embedding_size=192), counted by torch
    stats = {k: v for k, v in weights.items() if k.endswith(("running_mean", "running_var"))}
    assert len(stats) == 2 * sum(1 for k in module.state_dict() if k.endswith("running_var")) > 100
    learned = sum(v.size for k, v in weights.items() if not k.endswith(("running_mean", "running_var",
                                                                       "num_batches_tracked")))
    assert learned == n_params
    assert all((v > 0).all() for k, v in stats.items() if k.endswith("running_var"))


def _write(path: Path, data: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    import soundfile

    soundfile.write(path, data, rate, subtype=subtype)
    return path


def test_a_stereo_recording_at_44100_hz_passes(tmp_path):
    """Mixed to mono and resampled by libsoxr before anything else, as librosa.load does, on both sides."""
    import soundfile
    import soxr

    speech, rate = soundfile.read(FIXTURE, dtype="float64")
    wide = soxr.resample(speech, rate, 44100, quality="VHQ")
    path = _write(tmp_path / "stereo-44100.wav", np.stack([wide, 0.5 * np.roll(wide, 500)], axis=1), 44100)
    summary = tmp_path / "s.json"
    proc = harness("compare", "--speaker", str(path), "--steps", "1", "--max-tokens", "1", "--stage", "frontend",
                   "--json", str(summary),
                   "--no-html")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    data = json.loads(summary.read_text())
    assert data["provenance"]["reference"]["speaker"] == str(path)
    by = {s["path"]: s for s in data["stages"]}
    assert all(s["status"] == "pass" for s in data["stages"]) and len(by) == 8
    with Trace(data["traces"]["reference"]) as ref:
        assert ref.read("inputs/speaker_rate").tolist() == [44100]
        assert ref.info("inputs/speaker_wav").shape == (2, len(wide))
        n22 = math.ceil(len(wide) * 22050 / 44100)  # librosa.resample's fixed length
        assert ref.info("frontend/wav").shape == (1, n22)
        assert ref.info("frontend/wav_16k").shape == (1, math.ceil(n22 * 320 / 441))
        assert ref.info("frontend/emo_wav_16k").shape == (1, math.ceil(len(wide) * 16000 / 44100))


@pytest.mark.parametrize("kind", ["fixture", "stereo-8000"])
def test_the_reference_glue_loads_as_librosa_load_does(tmp_path, kind):
    """inputs' decode + the front end's load_and_cut = infer_v2.py:311-322 over `librosa.load` itself."""
    import librosa
    import soundfile
    import soxr
    import torch

    from harness.configs import TINY
    from reference_hooks import frontend, inputs

    path = FIXTURE
    if kind != "fixture":
        speech, rate = soundfile.read(FIXTURE, dtype="float64")
        narrow = soxr.resample(speech, rate, 8000, quality="VHQ")
        path = _write(tmp_path / "x.wav", np.stack([narrow, np.roll(narrow, 50)], axis=1), 8000)
    recording, native = inputs.read_recording(path)
    for sr in (None, 16000):
        ours, ours_sr = frontend.load_and_cut(recording, native, TINY.frontend.max_audio_seconds, sr=sr)
        theirs, theirs_sr = librosa.load(path) if sr is None else librosa.load(path, sr=sr)
        assert ours_sr == theirs_sr and torch.equal(ours, torch.tensor(theirs).unsqueeze(0)), (kind, sr)
