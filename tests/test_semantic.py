"""The semantic part's own facts: the pinned transformers, the odd-frame-count fixture, audio too short.

Bit-exactness is tests/test_reimpl_vs_upstream_modules.py's (both passes, an odd and an even frame count); the
faults are tests/test_faults.py's (those of padding and masking on fixtures/speaker_odd.wav).
"""
from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from harness.configs import TINY

ROOT = Path(__file__).resolve().parent.parent


def test_transformers_is_the_pinned_version():
    """The w2v-bert and the extractor are transformers' code: the version installed is the one pinned (5.18-5.23
    crash in generation, 5.24 drops the KV cache, and the extractor's float paths change between versions)."""
    pin = re.search(r"^transformers==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M).group(1)
    assert f'"transformers=={pin}"' in (ROOT / "pyproject.toml").read_text()
    assert importlib.metadata.version("transformers") == pin


@pytest.mark.parametrize("name, frames", [("speaker.wav", 444), ("speaker_odd.wav", 443)])
def test_fixture_frame_counts(name, frames):
    """The bundled recording gives an even count of feature frames, speaker_odd.wav an odd one (so the padded,
    masked last stacked frame is exercised): counted through the front end's 16 kHz length."""
    from reimpl.semantic.features import frame_count

    info = soundfile.info(ROOT / "fixtures" / name)
    assert frame_count(TINY.frontend.samples_16k(info.frames, info.samplerate)) == frames


def test_audio_too_short_for_two_frames_is_one_clear_line():
    """Upstream fails in numpy under 240 samples and returns NaN features (then meaningless output) under 560;
    ours refuses both with one sentence. (A recording that short never reaches the part: the style encoder's
    check refuses anything under 720 samples at 16 kHz first, exit 2.)"""
    from reimpl.semantic.features import log_mel_fbank

    assert TINY.semantic.min_samples() <= TINY.style.min_samples()
    with pytest.raises(ValueError, match="too short for the w2v-bert features: at least 560 samples"):
        log_mel_fbank(np.zeros(559, np.float32), 80, 16000)
    assert log_mel_fbank(np.zeros(560, np.float32), 80, 16000).shape == (2, 80)
