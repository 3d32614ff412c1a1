"""indextts-onnx 0.3.0's semantic part (its numpy features and its ONNX w2v-bert and codec), on a reference trace.

What runs is the package's own code:
- its numpy SeamlessM4T features (`indextts_onnx.audio.seamless_m4t_features`, called by
  `IndexTTSInfer._run_wav2vec2bert`), with the mel filters it ships (`seamless_mel_filters.npy`);
- its ONNX exports of upstream's modules built with the reference's checkpoint (the reference side's own
  builder), made by its own export functions: `export_w2v.export_wav2vec2bert` (hidden_states[17], with the
  statistics folded in) and `export_misc.export_semantic_codec` (the embedding `quantize` returns), float32;
- its session calls `IndexTTSInfer._run_wav2vec2bert` and `_run_semantic_codec` (infer.py:122-123) in ONNX
  Runtime, each session's inputs and outputs recorded under the graph's own names.
Its input is the reference's `frontend/wav_16k` (upstream's 16 kHz speaker audio), so the part is compared
alone. Its emotion condition is its speaker condition (infer.py:147, when no emotion recording is given); upstream
computes its own from the recording resampled by librosa (infer_v2.py:391-395), so that stage is compared too.

Shim: the TorchScript exporter during the export (ports/exporter.py: torch 2.13's default dynamo exporter fails
on w2v-bert's attention reshape).
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

MAP = Path(__file__).with_name("indextts_onnx_semantic.map.toml")
GRAPHS = ("wav2vec2bert", "semantic_codec")


class _Recorded:
    """Stands in for an ONNX Runtime session: runs it, and keeps its inputs and outputs under their graph names."""

    def __init__(self, session, tensors: dict[str, np.ndarray]):
        self.session, self.tensors = session, tensors

    def run(self, names, feeds: dict[str, np.ndarray]):
        out = self.session.run(names, feeds)
        for key, value in feeds.items():
            self.tensors[key] = np.array(value, copy=True)
        for meta, value in zip(self.session.get_outputs(), out):
            self.tensors[meta.name] = np.array(value, copy=True)
        return out


def export(ref: Trace, weights: dict, folder: Path) -> Path:
    import torch
    from indextts_onnx.export.export_misc import export_semantic_codec
    from indextts_onnx.export.export_w2v import export_wav2vec2bert

    from harness.configs import PipelineConfig
    from reference_hooks import driver

    config = PipelineConfig.from_dict(ref.provenance["config_json"])
    up = driver.build_parts(config, weights, torch.float32, parts=(stages.part("semantic"),))["semantic"]
    with torchscript_exporter(), contextlib.redirect_stdout(sys.stderr):  # the exporter narrates
        export_wav2vec2bert(up.semantic_model, up.semantic_mean, up.semantic_std, str(folder))
        export_semantic_codec(types.SimpleNamespace(semantic_codec=up.semantic_codec), str(folder))  # reads .semantic_codec
    return folder


def _bare_port():
    """The package's `IndexTTSInfer` with no model folder: only its semantic steps run, its mel filters then come
    from the package's own seamless_mel_filters.npy."""
    from indextts_onnx.infer import IndexTTSInfer

    port = IndexTTSInfer.__new__(IndexTTSInfer)
    port.model_dir = None
    return port


def run(ref: Trace, onnx_dir: Path) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    tensors: dict[str, np.ndarray] = {}
    port = _bare_port()
    for name in GRAPHS:
        session = ort.InferenceSession(str(onnx_dir / f"{name}.onnx"), ort.SessionOptions(),
                                       providers=["CPUExecutionProvider"])
        setattr(port, name, _Recorded(session, tensors))
    spk = port._run_wav2vec2bert(ref.read("frontend/wav_16k")[0])  # infer.py:122
    port._run_semantic_codec(spk)  # infer.py:123
    tensors["emo_cond"] = np.array(spk, copy=True)  # infer.py:147
    return tensors


def features(ref: Trace) -> dict[str, np.ndarray]:
    """Its numpy features alone (no export: seconds, not minutes), as `_run_wav2vec2bert` computes them."""
    input_features, attention_mask = _bare_port()._extract_features(ref.read("frontend/wav_16k")[0])  # infer.py:97
    return {"input_features": input_features, "attention_mask": attention_mask}


def run_port(reference: Path, weights: dict, out: Path, with_export: bool = True) -> Path:
    """Export, run, and write the port's tensors as `out` (.npz) for `harness compare --map`; without the
    export, its features alone."""
    with Trace(reference) as ref, tempfile.TemporaryDirectory() as tmp:
        tensors = run(ref, export(ref, weights, Path(tmp))) if with_export else features(ref)
    with atomic(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, **tensors)
    return out
