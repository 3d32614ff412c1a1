"""An emotion recording (`--emo-wav`, upstream's emo_audio_prompt) with its alpha (`--emo-alpha`): upstream's
emotion path loads that file instead of the speaker's, the GPT mixes its condition in at alpha, and our
reimplementation follows bit for bit. Without one, upstream takes the speaker's recording at alpha 1.0
(infer_v2.py:521-525), which every other test covers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from harness.trace import Trace

ROOT = Path(__file__).resolve().parent.parent
EMOTION = ROOT / "fixtures" / "speaker_odd.wav"  # another voice and length than fixtures/speaker.wav


def harness(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=1800)


def test_an_emotion_recording_is_compared_through_the_whole_pipeline(tmp_path):
    import soundfile

    out = tmp_path / "emo.json"
    proc = harness("compare", "--steps", "1", "--max-tokens", "2", "--emo-wav", EMOTION, "--emo-alpha", "0.6", "--rows", "0",
                   "--no-html",
                   "--json", out)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    summary = json.loads(out.read_text())
    assert summary["passed"]
    compared = {s["path"]: s["status"] for s in summary["stages"]}
    assert compared["inputs/emo_wav"] == compared["frontend/emo_wav_16k"] == compared["gpt/emovec"] == "pass"
    with Trace(summary["traces"]["reference"]) as ref:
        prov = ref.provenance
        assert prov["emo_wav"] == str(EMOTION) and prov["config_json"]["gpt"]["emo_alpha"] == 0.6
        # the file as it holds it, at its own rate
        samples, rate = soundfile.read(str(EMOTION), dtype="float32", always_2d=True)
        assert np.array_equal(ref.read("inputs/emo_wav"), samples.T) and int(ref.read("inputs/emo_rate")[0]) == rate
        # the emotion path loaded that file (at 16 kHz, its own length), not the speaker's
        expected = int(np.ceil(samples.shape[0] * 16000 / rate))
        assert abs(ref.read("frontend/emo_wav_16k").shape[-1] - expected) <= 1
        assert ref.read("frontend/emo_wav_16k").shape != ref.read("frontend/wav_16k").shape
        emo, spk = ref.read("semantic/emo/cond"), ref.read("semantic/spk_cond")
        assert emo.shape != spk.shape or not np.allclose(emo, spk)


def test_emotion_options_refused_in_one_line(tmp_path):
    """--emo-alpha without an emotion recording (upstream would ignore it), and a missing --emo-wav."""
    for args, says in ((("--emo-alpha", "0.5"), "give --emo-wav or --emo-vector too"),
                       (("--emo-wav", tmp_path / "none.wav"), "--emo-wav")):
        proc = harness("capture", "--steps", "1", "--no-floors", "-o", tmp_path / "t.h5", *args)
        assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
