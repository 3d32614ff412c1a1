"""indextts-onnx 0.3.0's own numpy front end against upstream on the fixture, through its map.

Its CAMPPlus export (torch's ONNX exporter, minutes on two busy cores) is left out here (`--no-style`);
`python ports/run_indextts_onnx_frontend.py` runs it too. The figures asserted are the verdicts the README
reports, measured on the fixture, with margins: whatever the verdicts are, they are not tuned.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("indextts_onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="the [onnx] extra and indextts-onnx are not installed (make setup installs them)")


def test_the_ports_front_end_against_upstream(tiny_short_run, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "ports" / "run_indextts_onnx_frontend.py"), "--no-style"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)  # reports go to tmp_path/reports
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    front = json.loads((tmp_path / "reports" / "compare-indextts_onnx-frontend.json").read_text())
    by = {s["path"]: s for s in front["stages"]}
    # a 22050 Hz file: its native-rate load and its identity resample equal upstream's
    assert by["frontend/wav"]["status"] == by["frontend/wav_22k"]["status"] == "pass"
    # its 16 kHz audio is librosa's soxr, not torchaudio's sinc: it is upstream's emotion-path audio exactly
    wav16 = by["frontend/wav_16k"]
    assert front["first_divergence"] == "frontend/wav_16k" and wav16["status"] == "fail"
    assert wav16["hints"][0]["kind"] == "equals_stage" and "frontend/emo_wav_16k" in wav16["hints"][0]["message"]
    assert 30 < float(wav16["audio"]["snr_db"]) < 40 and wav16["audio"]["delay"] == 0  # measured 34.0 dB
    # its mel lacks upstream's +1e-9 under the root: off in quiet bins only, far below a bug's size but
    # 60x upstream's own float32 noise (measured rel-L2 6.2e-5 against a floor of 1.0e-6)
    mel = by["frontend/mel/out"]
    assert mel["status"] == "fail" and 1e-5 < float(mel["propagated"]["rel_l2"]) < 1e-3
    style = json.loads((tmp_path / "reports" / "compare-indextts_onnx-style.json").read_text())
    fb = {s["path"]: s for s in style["stages"]}["style/fbank/centered"]
    # a librosa mel spectrogram, not Kaldi's fbank: a different feature (measured rel-L2 0.47, cosine 0.93)
    assert style["first_divergence"] == "style/fbank/centered" and 0.3 < float(fb["propagated"]["rel_l2"]) < 0.7


def test_the_ports_semantic_features_on_an_odd_frame_count(tmp_path):
    """Its numpy SeamlessM4T features on the odd-count recording (its w2v-bert and codec exports, minutes, are
    `ports/run_indextts_onnx.py --part semantic`'s): the same reference as the odd-frame fault case
    (test_faults.py), so the session captures it once. Measured: the padded half of the last stacked frame is 0
    where upstream's is 1.0, and its mask keeps that frame (upstream's masks it)."""
    speaker = ROOT / "fixtures" / "speaker_odd.wav"
    proc = subprocess.run([sys.executable, str(ROOT / "ports" / "run_indextts_onnx.py"), "--part", "semantic",
                           "--no-export", "--steps", "3", "--seed", "1", "--speaker", str(speaker)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((tmp_path / "reports" / "compare-indextts_onnx_semantic-tiny-speaker_odd-features.json").read_text())
    by = {s["path"]: s for s in data["stages"]}
    features, mask = by["semantic/features"], by["semantic/attention_mask"]
    assert data["first_divergence"] == "semantic/features" and features["status"] == "fail"
    frames = 222  # 443 fbank frames, stacked in pairs: the last pair half padding
    hint = features["hints"][0]
    assert hint["kind"] == "confined" and f"frames {frames - 1} (1 of {frames})" in hint["message"]
    assert mask["status"] == "fail" and f"the first at [0, {frames - 1}] (reference 0, candidate 1)" in mask["problem"]


@pytest.mark.parametrize("runner", ["run_indextts_onnx", "run_indextts_onnx_frontend"])
def test_a_port_runner_answers_a_missing_recording_in_one_line(tmp_path, runner):
    proc = subprocess.run([sys.executable, str(ROOT / "ports" / f"{runner}.py"), "--speaker", str(tmp_path / "none.wav")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"{runner}: error: speaker recording not found: {tmp_path / 'none.wav'}"]
