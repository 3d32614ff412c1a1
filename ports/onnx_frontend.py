"""indextts-onnx 0.3.0's own speaker front end, run on a reference trace's speaker recording.

Its front end is numpy and librosa (`indextts_onnx/audio.py`): `load_and_cut`, `resample`,
`mel_spectrogram`, `fbank`; its style encoder is upstream's CAMPPlus exported to ONNX by the package's own
`export_campplus` and run by its own `IndexTTSInfer._run_campplus` in ONNX Runtime. This adapter calls them
exactly as `IndexTTSInfer._prepare_reference` does (infer.py:113-141) on the file the reference recorded
(its provenance's `speaker`), with the reference's CAMPPlus checkpoint, and writes what they return under
the names that method gives them (`audio`, `audio_16k`, `audio_22k`, `ref_mel`, `fb`, `style`) for
`harness compare --map ports/indextts_onnx_frontend.map.toml`. Nothing is tuned; the package's export is
run in float32 (its default quantisation to int8 is not applied).
"""
from __future__ import annotations

import contextlib
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

from harness import stages
from harness.configs import PipelineConfig
from harness.files import atomic
from harness.trace import Trace

MAP = Path(__file__).with_name("indextts_onnx_frontend.map.toml")


def _campplus_session(config: PipelineConfig, weights: dict, folder: Path):
    """upstream's CAMPPlus with the reference's weights, exported by the package's own code, in ONNX Runtime."""
    import onnxruntime as ort
    import torch
    from indextts_onnx.export.export_misc import export_campplus

    from reference_hooks import driver

    model = driver.build_parts(config, weights, torch.float32, parts=(stages.part("style"),))["style"]
    with contextlib.redirect_stdout(sys.stderr):  # the exporter narrates; stdout is for the verdict
        export_campplus(types.SimpleNamespace(campplus_model=model), str(folder))
    return ort.InferenceSession(str(folder / "campplus.onnx"), providers=["CPUExecutionProvider"])


def front_end(speaker: Path) -> dict[str, np.ndarray]:
    """The port's numpy front end on `speaker` (infer.py:118-139): its own tensors under its own names."""
    from indextts_onnx.audio import fbank, load_and_cut, mel_spectrogram, resample

    audio, sr = load_and_cut(str(speaker), max_seconds=15.0)  # infer.py:118
    audio_16k = resample(audio, sr, 16000)  # :119
    audio_22k = resample(audio, sr, 22050)  # :120
    ref_mel = mel_spectrogram(audio_22k, sr=22050)[np.newaxis, ...]  # :125-126
    fb = fbank(audio_16k, sr=16000, n_mels=80)  # :139
    return {"audio": audio, "audio_16k": audio_16k, "audio_22k": audio_22k, "ref_mel": ref_mel, "fb": fb}


def style(fb: np.ndarray, config: PipelineConfig, weights: dict) -> np.ndarray:
    """The port's CAMPPlus call (infer.py:140, :108-111) on its ONNX export of the reference's CAMPPlus.
    The export (torch's ONNX exporter) takes minutes on two busy cores."""
    from indextts_onnx.infer import IndexTTSInfer

    port = IndexTTSInfer.__new__(IndexTTSInfer)  # no model folder: only its CAMPPlus call is used
    with tempfile.TemporaryDirectory() as tmp:
        port.campplus = _campplus_session(config, weights, Path(tmp))
        return port._run_campplus(fb)


def run_port(reference: Path, weights: dict | None, out: Path) -> Path:
    """Run the port on the reference's recording (and, given weights, its CAMPPlus) and write its tensors as
    `out` (.npz)."""
    with Trace(reference) as ref:
        config = PipelineConfig.from_dict(ref.provenance["config_json"])
        speaker = Path(ref.provenance["speaker"])
    tensors = front_end(speaker)
    if weights is not None:
        tensors["style"] = style(tensors["fb"], config, weights)
    with atomic(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, **tensors)
    return out
