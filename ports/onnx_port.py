"""The third-party `indextts-onnx` port (PyPI 0.3.0, MIT), run on a reference trace's inputs.

Its DiT and length regulator run in ONNX Runtime, exported from the upstream model by the package's
own export code; its CFM Euler loop with CFG is its own numpy code (`IndexTTSInfer._s2mel_inference`).
This adapter:
1. builds upstream's s2mel modules with the reference's checkpoint (the length regulator, `gpt_layer`, the
   semantic codec's quantizer) and exports them with `indextts_onnx.export.export_s2mel.export_s2mel`;
2. runs the exported length regulator on the recorded prompt content (`s2mel_ref`) and the package's own
   generation path (`s2mel_gen`: gpt_layer + vq2emb + length regulator) on the GPT's recorded codes and latent;
3. runs the package's numpy loop with our recorded noise injected (it draws `np.random.randn`), with
   every ONNX DiT call's inputs and output recorded;
4. writes what it saw as the port's own tensors (`indextts_onnx.npz`) for `harness compare --map`.

The package patches `SConv1d.forward` globally during export, so the reference must be captured in
another process or before this runs (`ports/run_indextts_onnx.py` does that). Its export traces the
DiT with content width 512 and content features of width 1024, so the config keeps those widths.
"""
from __future__ import annotations

import contextlib
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

from harness import stages
from harness.configs import TINY
from harness.files import atomic
from harness.pipeline import boundary_inputs
from harness.trace import Trace

#: the smallest config the package's export accepts: tiny, with its fixed widths
TINY_ONNX = TINY.with_(name="tiny-onnx", s2mel__lr_channels=512,
                       s2mel__lr_in_channels=1024, cfm__content_dim=512)
CODES, LATENT = "gpt/seg_00/codes", "gpt/seg_00/latent/out"
MAP = Path(__file__).with_name("indextts_onnx.map.toml")


class _Recorder:
    """Stands in for the ONNX DiT session: runs it, and keeps each call's inputs and output."""

    def __init__(self, session, tensors: dict[str, np.ndarray]):
        self.session, self.tensors, self.calls = session, tensors, 0

    def run(self, names, feeds: dict[str, np.ndarray]):
        out = self.session.run(names, feeds)
        i = self.calls
        for key in ("x", "prompt_x", "t", "style", "mu"):
            self.tensors[f"dit.{i}.{key}"] = np.array(feeds[key], copy=True)
        self.tensors[f"dit.{i}.velocity"] = np.array(out[0], copy=True)
        self.calls += 1
        return out


class _Kept:
    """Stands in for an ONNX session: runs it, and keeps its first output."""

    def __init__(self, session):
        self.session, self.out = session, None

    def run(self, names, feeds):
        out = self.session.run(names, feeds)
        self.out = np.array(out[0], copy=True)
        return out


def export(ref: Trace, weights: dict, folder: Path) -> Path:
    """Export the reference's model with the package's own code; returns the folder of .onnx files.

    The package reads upstream's `MyModel` (its `.models` dict) and the semantic codec: our per-part upstream
    modules, built by the reference side's own builders, are put into the same arrangement.
    """
    import torch
    from indextts_onnx.export.export_s2mel import export_s2mel

    from reference_hooks import driver

    cfg = config_of(ref)
    built = driver.build_parts(cfg, weights, torch.float32, parts=(stages.part("s2mel"), stages.part("cfm")))
    s2mel = built["s2mel"]
    model = torch.nn.Module()
    model.models = torch.nn.ModuleDict({"cfm": built["cfm"], "length_regulator": s2mel.length_regulator,
                                        "gpt_layer": s2mel.gpt_layer})
    with contextlib.redirect_stdout(sys.stderr):  # the exporter narrates; stdout is for the verdict
        export_s2mel(types.SimpleNamespace(s2mel=model, semantic_codec=s2mel.semantic_codec), str(folder))
    return folder


def config_of(ref: Trace):
    from harness.configs import PipelineConfig

    return PipelineConfig.from_dict(ref.provenance["config_json"])


def run(ref: Trace, onnx_dir: Path) -> dict[str, np.ndarray]:
    """Run the port's length regulator and CFM loop on what the reference recorded as those parts' inputs
    (harness/pipeline.py: the boundary stages each part declares it consumes, and its draws)."""
    import onnxruntime as ort
    from indextts_onnx.infer import IndexTTSInfer

    cfg = config_of(ref)
    paths = [s.path for s in ref.stages()]
    given = {p: ref.read(p).astype(np.float32) for part in ("s2mel", "cfm")
             for p in boundary_inputs(stages.part(part), paths)}
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = lambda name: ort.InferenceSession(str(onnx_dir / f"{name}.onnx"), opts,  # noqa: E731
                                                providers=["CPUExecutionProvider"])
    lr = session("s2mel_ref")
    prompt_mel = given["frontend/mel/out"]
    tp = prompt_mel.shape[-1]
    codes, latent = ref.read(CODES).astype(np.int64), ref.read(LATENT).astype(np.float32)
    tensors: dict[str, np.ndarray] = {}
    prompt_cond = lr.run(None, {"s_ref": given["semantic/codec/emb"],
                                "ref_target_lengths": np.array([tp], dtype=np.int64)})[0]
    tensors["lr.prompt.out"] = prompt_cond

    port = IndexTTSInfer.__new__(IndexTTSInfer)  # no model folder: only its s2mel path and CFM loop are used
    port.s2mel_gen = _Kept(session("s2mel_gen"))
    port.dit_step = _Recorder(session("dit_step"), tensors)
    noise = given["cfm/seg_00/noise"]
    drawn = []

    def recorded_noise(*shape):
        if tuple(shape) != noise.shape:
            raise RuntimeError(f"the port drew noise of shape {shape}, the reference recorded {noise.shape}")
        drawn.append(shape)
        return noise.copy()

    real_randn = np.random.randn
    np.random.randn = recorded_noise
    try:
        mel = port._s2mel_inference(
            mel_codes=codes, latent=latent, prompt_condition=prompt_cond, ref_mel=prompt_mel,
            style=given["style/style"],
            n_steps=cfg.cfm.steps, cfg_rate=cfg.cfm.cfg_rate,
        )
    finally:
        np.random.randn = real_randn
    if len(drawn) != 1:
        raise RuntimeError("the port did not draw its noise exactly once; cannot inject the recorded noise")
    tensors["lr.target.out"] = port.s2mel_gen.out
    tensors["mel"] = mel
    return tensors


def run_port(reference: Path, weights: dict, out: Path) -> Path:
    """Export, run, and write the port's tensors as `out` (.npz) for `harness compare --map`."""
    with Trace(reference) as ref, tempfile.TemporaryDirectory() as tmp:
        tensors = run(ref, export(ref, weights, Path(tmp)))
    with atomic(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, **tensors)
    return out
