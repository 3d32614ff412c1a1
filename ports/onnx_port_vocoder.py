"""indextts-onnx 0.3.0's vocoder and output: its ONNX BigVGAN, its clip, its join and its int16, on a reference trace.

What runs is the package's own code:
- its ONNX export of upstream's BigVGAN built with the reference's checkpoint (the reference side's own builder,
  weight norm removed as upstream removes it), made by its own `export_bigvgan.export_bigvgan` (which first
  pre-expands the anti-aliasing filters, `_prepare_bigvgan_for_onnx`), float32;
- its session call `IndexTTSInfer._run_bigvgan` (infer.py:327-329) per text segment, on the reference's mel
  handed to the vocoder (`vocoder/seg_NN/bigvgan_in`: the CFM's output without the prompt frames, which its
  `_s2mel_inference` cuts as upstream does, infer.py:325);
- its own loop after that (infer.py:403-413): squeeze, `np.clip(-1, 1)`, 200 ms of zeros between segments,
  `np.concatenate`; then its `audio.save_wav` conversion to int16 (`np.clip(audio * 32767, ...).astype(int16)`,
  audio.py:158-161), what it writes to the file.
Every tensor is kept under the name its code gives it; `indextts_onnx_vocoder.map.toml` maps them onto our stages.
"""
from __future__ import annotations

import contextlib
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

from harness import stages
from harness.files import atomic
from harness.trace import Trace
from ports.exporter import torchscript_exporter

MAP = Path(__file__).with_name("indextts_onnx_vocoder.map.toml")
BIGVGAN_IN = "vocoder/seg_{seg}/bigvgan_in"


def export(ref: Trace, weights: dict, folder: Path) -> Path:
    import torch
    from indextts_onnx.export.export_bigvgan import export_bigvgan

    from harness.configs import PipelineConfig
    from reference_hooks import driver

    config = PipelineConfig.from_dict(ref.provenance["config_json"])
    bigvgan = driver.build_parts(config, weights, torch.float32, parts=(stages.part("vocoder"),))["vocoder"]
    with torchscript_exporter(), contextlib.redirect_stdout(sys.stderr):  # the exporter narrates
        export_bigvgan(types.SimpleNamespace(bigvgan=bigvgan), str(folder))  # reads .bigvgan
    return folder / "bigvgan.onnx"


def _bare_port(session):
    """The package's `IndexTTSInfer` with no model folder, holding only its BigVGAN session."""
    from indextts_onnx.infer import IndexTTSInfer

    port = IndexTTSInfer.__new__(IndexTTSInfer)
    port.bigvgan = session
    return port


def _joined(wavs: list[np.ndarray]) -> np.ndarray:
    """Its join (infer.py:365-367, 405-408): 200 ms of zeros at its 22050 Hz after every segment but the last."""
    sampling_rate, interval_silence_ms = 22050, 200
    silence = np.zeros(int(sampling_rate * interval_silence_ms / 1000), dtype=np.float32)
    pieces = [p for k, wav in enumerate(wavs) for p in ((wav, silence) if k < len(wavs) - 1 else (wav,))]
    return np.concatenate(pieces)


def _int16(full_wav: np.ndarray) -> np.ndarray:
    """What its save_wav writes (audio.py:158-161), read back from the file as stored: [1, S] int16."""
    import soundfile
    from indextts_onnx.audio import save_wav

    with tempfile.TemporaryDirectory() as tmp:
        save_wav(str(Path(tmp) / "out.wav"), full_wav, sr=22050)
        return soundfile.read(str(Path(tmp) / "out.wav"), dtype="int16")[0][None, :]


def run(ref: Trace, graph: Path) -> dict[str, np.ndarray]:
    """Each segment through its `_run_bigvgan`, then its own clip, silence and join (infer.py:399-413), and the int16
    its save_wav writes (audio.py:158-161)."""
    import onnxruntime as ort

    port = _bare_port(ort.InferenceSession(str(graph), ort.SessionOptions(), providers=["CPUExecutionProvider"]))
    tensors, wavs = {}, []
    for seg in stages.segments_in([s.path for s in ref.stages()], BIGVGAN_IN):
        mel = ref.read(stages.seg_path(BIGVGAN_IN, seg))
        tensors[f"mel_{seg}"] = mel
        wav = np.clip(port._run_bigvgan(mel).squeeze(), -1.0, 1.0)  # (1, 1, samples); infer.py:403-404
        tensors[f"wav_{seg}"] = wav[None, :]
        wavs.append(wav)
    tensors["full_wav"] = _joined(wavs)[None, :]  # infer.py:408
    tensors["audio_int16"] = _int16(tensors["full_wav"][0])
    return tensors


def forced(ref: Trace) -> dict[str, np.ndarray]:
    """Its teacher-forced values: a step of its own code fed the reference's input to that very step, for the steps
    whose input upstream records: its join of the reference's segment waves, its int16 conversion of the
    reference's joined wave (a difference there is the conversion's own: exact, no float noise enters). Its BigVGAN
    exposes no internals, so its waves have no local value: they are judged free-running."""
    out = {}
    segments = stages.segments_in([s.path for s in ref.stages()], "vocoder/seg_{seg}/wav")
    out["full_wav"] = _joined([ref.read(stages.seg_path("vocoder/seg_{seg}/wav", seg))[0] for seg in segments])[None, :]
    out["audio_int16"] = _int16(ref.read("vocoder/wav")[0])
    return out


def forced_path(out: Path) -> Path:
    return out.with_name(out.stem + "-forced.npz")


def run_port(reference: Path, weights: dict, out: Path) -> Path:
    """Export, run, and write the port's tensors as `out` (.npz) for `harness compare --map`, and its
    teacher-forced ones beside it (`forced_path`, for `--forced`)."""
    with Trace(reference) as ref, tempfile.TemporaryDirectory() as tmp:
        tensors = run(ref, export(ref, weights, Path(tmp)))
        teacher = forced(ref)
    for path, values in ((out, tensors), (forced_path(out), teacher)):
        with atomic(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **values)
    return out
