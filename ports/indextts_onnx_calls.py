"""indextts-onnx (PyPI 0.3.0, MIT) run on a reference trace's recorded inputs, call by call.

The port exports upstream's s2mel model to ONNX (length regulator, gpt_layer, DiT) and runs its CFM
Euler loop with CFG in numpy (`IndexTTSInfer._s2mel_inference`). `run_port`:

1. builds upstream's s2mel `MyModel` with the reference's checkpoint (our seeded weights);
2. exports it with the package's own `export_s2mel` (a stand-in object holds `.s2mel` and the
   `.semantic_codec.quantizer.vq2emb` its gen wrapper traces; our inputs never use that path), into a
   cache folder keyed by config, weights and versions, or a folder you give;
3. runs the exported length regulator (`s2mel_ref.onnx`) on the recorded prompt and target content
   features, for the length-regulator stages only;
4. runs the package's own `_s2mel_inference` on the RECORDED condition `cfm/mu` (split at the prompt
   length into its `prompt_condition` and the `cond` its gen session would return), the recorded
   prompt mel and style, with the recorded `inputs/noise` injected where it calls `np.random.randn`.
   Every call of its ONNX DiT session is recorded (inputs x, prompt_x, t, style, mu; output velocity);
5. writes a safetensors file of the port's own tensors, named as the port names them:
   `call_{i}.{x,prompt_x,x_lens,t,style,mu,velocity}` (its stacked CFG batch, conditional half first),
   `prompt_condition`, `cond` (length regulator, B T C) and `mel` (its return value: the generated
   frames only, B C T). `indextts_onnx_calls.map.toml` maps them onto our stages.

Why this module is not called `indextts_onnx.py`: a script run from ports/ has ports/ on sys.path,
and a module of that name would shadow the real `indextts_onnx` package.

The package's export patches upstream's `SConv1d.forward` for good (`_patch_sconv1d_for_onnx`), so a
reference captured in the same process must be captured before `export` runs.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

from harness.configs import TINY, S2MelConfig

#: tiny, at the widths the package's dummy export inputs fix: content features of width 1024
#: (`s_ref`, and the gpt_layer's output), condition `mu` of width 512 (length regulator channels and
#: the DiT's content_dim). Same fields as `ports.onnx_port.TINY_ONNX`, so both share the cached reference.
TINY_ONNX = TINY.with_(name="tiny-onnx", lr_channels=512, lr_in_channels=1024, content_dim=512)
MAP = Path(__file__).with_name("indextts_onnx_calls.map.toml")
ROOT = Path(__file__).resolve().parent.parent
EXPORT_CACHE = ROOT / "reports" / "cache" / "onnx"
PACKAGE = "indextts-onnx"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    return {d: _version(d) for d in (PACKAGE, "onnxruntime", "onnx", "onnxscript", "torch", "indextts2-inference")}


# ---------------------------------------------------------------------------------------------- export

def _stand_in(model, cfg: S2MelConfig):
    """What `export_s2mel` reads: `.s2mel`, and `.semantic_codec.quantizer.vq2emb` for the gen wrapper.

    The quantizer maps codes (B, 1, T) to (B, 1024, T) as amphion's does; its table is zeros (our runs
    feed content features, never codes), built without drawing from torch's RNG.
    """
    import torch

    class Quantizer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Embedding(8194, cfg.lr_in_channels, _weight=torch.zeros(8194, cfg.lr_in_channels))

        def vq2emb(self, codes):
            return self.table(codes[:, 0]).transpose(1, 2)

    return types.SimpleNamespace(s2mel=model, semantic_codec=types.SimpleNamespace(quantizer=Quantizer()))


def export_key(cfg: S2MelConfig, weights: dict) -> str:
    from harness import weights as W

    own = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()  # the stand-in and export glue
    blob = json.dumps([cfg.arch_digest(), W.digest(weights), versions(), own], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def export(cfg: S2MelConfig, weights: dict, folder: Path | None = None) -> Path:
    """Export upstream's model with our weights by the package's own code; returns the .onnx folder.

    With no folder, the export is cached under reports/cache/onnx/ and reused while the config's
    architecture, the weights and the versions stay the same (then nothing is patched). A folder you
    give is exported into afresh (its other files are left alone).
    """
    if folder is None:
        final = EXPORT_CACHE / f"{cfg.name}-{export_key(cfg, weights)}"
        if (final / "dit_step.onnx").exists():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=final.parent))
        try:
            _export(cfg, weights, work)
            if final.exists():  # an interrupted earlier export
                shutil.rmtree(final)
            work.replace(final)
        finally:
            if work.exists():
                shutil.rmtree(work)
        return final
    _export(cfg, weights, Path(folder))
    return Path(folder)


def _export(cfg: S2MelConfig, weights: dict, folder: Path) -> None:
    import torch
    from indextts_onnx.export.export_s2mel import export_s2mel

    from reference_hooks import driver
    from reference_hooks.model import build_model

    model = build_model(cfg)
    driver.load_weights(model, weights, torch.float32)
    model.models["cfm"].estimator.setup_caches(max_batch_size=1, max_seq_length=8192)  # as infer_v2 does
    # the exporter narrates on stdout (and torch's exporter warns); keep stdout for results
    with contextlib.redirect_stdout(sys.stderr):
        export_s2mel(_stand_in(model, cfg), str(folder))


# ------------------------------------------------------------------------------------------------- run

class _RecordedDiT:
    """Wraps the port's `dit_step` session: runs it and keeps each call's feeds and output."""

    def __init__(self, session, tensors: dict[str, np.ndarray]):
        self.session, self.tensors, self.calls = session, tensors, 0

    def run(self, output_names, feeds):
        out = self.session.run(output_names, feeds)
        for name, value in feeds.items():  # x, prompt_x, x_lens, t, style, mu (x and t are reused buffers)
            self.tensors[f"call_{self.calls}.{name}"] = np.array(value, copy=True)
        self.tensors[f"call_{self.calls}.velocity"] = np.array(out[0], copy=True)
        self.calls += 1
        return out


class _Gen:
    """Stands in for the port's `s2mel_gen` session (codes + GPT latent -> cond): returns the recorded cond."""

    def __init__(self, cond: np.ndarray):
        self.cond = cond

    def run(self, output_names, feeds):
        return [self.cond]


@contextlib.contextmanager
def _injected_noise(noise: np.ndarray, drawn: list):
    """Make the port's `np.random.randn(1, 80, T)` return the recorded noise (once, shape checked)."""
    real = np.random.randn

    def randn(*shape):
        if tuple(shape) != noise.shape:
            raise RuntimeError(f"the port drew noise of shape {shape}; the reference recorded {noise.shape}")
        drawn.append(shape)
        return noise.copy()

    np.random.randn = randn
    try:
        yield
    finally:
        np.random.randn = real


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()  # as IndexTTSInfer.__init__ sets them, with our thread count
    opts.inter_op_num_threads = threads
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(reference_trace: Path, cfg: S2MelConfig, onnx_dir: Path, threads: int = 1) -> dict[str, np.ndarray]:
    """Run the port's length regulator and CFM loop on the reference's recorded inputs."""
    from indextts_onnx.infer import IndexTTSInfer

    from harness.trace import Trace

    with Trace(reference_trace) as ref:
        rec = {p: ref.read(p) for p in ("inputs/prompt_mel", "inputs/prompt_content", "inputs/target_content",
                                        "inputs/style", "inputs/noise", "cfm/mu")}
    f32 = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in rec.items()}
    tp = f32["inputs/prompt_mel"].shape[-1]
    n_codes = f32["inputs/target_content"].shape[1]
    tensors: dict[str, np.ndarray] = {}

    # the port's reference path: s2mel_ref(s_ref, ref_target_lengths = ref mel length)
    lr = _session(onnx_dir / "s2mel_ref.onnx", threads)
    tensors["prompt_condition"] = lr.run(None, {"s_ref": f32["inputs/prompt_content"],
                                                "ref_target_lengths": np.array([tp], dtype=np.int64)})[0]
    # its gen path computes target_lengths = int(codes * 1.72) and runs the same length regulator on
    # codebook embedding + gpt_layer(latent); we have those content features already, so s2mel_ref
    tensors["cond"] = lr.run(None, {"s_ref": f32["inputs/target_content"],
                                    "ref_target_lengths": np.array([int(n_codes * 1.72)], dtype=np.int64)})[0]

    port = IndexTTSInfer.__new__(IndexTTSInfer)  # no model folder: only its CFM loop is used
    mu = f32["cfm/mu"]
    port.s2mel_gen = _Gen(np.ascontiguousarray(mu[:, tp:]))
    port.dit_step = _RecordedDiT(_session(onnx_dir / "dit_step.onnx", threads), tensors)
    drawn: list = []
    with _injected_noise(f32["inputs/noise"], drawn):
        mel = port._s2mel_inference(
            mel_codes=np.zeros((1, n_codes), dtype=np.int64),  # only its length is read (by _Gen: not at all)
            latent=np.zeros((1, n_codes, 1280), dtype=np.float32),
            prompt_condition=np.ascontiguousarray(mu[:, :tp]),
            ref_mel=f32["inputs/prompt_mel"],
            style=f32["inputs/style"],
            n_steps=cfg.steps,
            cfg_rate=cfg.cfg_rate,
        )
    if len(drawn) != 1:
        raise RuntimeError(f"the port drew noise {len(drawn)} times; the recorded noise cannot stand in for it")
    if port.dit_step.calls != cfg.steps:
        raise RuntimeError(f"the port called its DiT {port.dit_step.calls} times for {cfg.steps} steps")
    tensors["mel"] = mel
    return tensors


def run_port(reference_trace: Path, weights: dict, cfg: S2MelConfig, out_path: Path,
             onnx_dir: Path | None = None, threads: int = 1) -> Path:
    """Export, run on the reference's inputs, and write the port's tensors to `out_path` (.safetensors).

    `weights` must be the reference's checkpoint ({upstream name: array}) and `cfg` its config;
    `onnx_dir`, a folder `export` already filled (default: the cached export, made if missing).
    """
    from safetensors.numpy import save_file

    onnx_dir = export(cfg, weights) if onnx_dir is None else Path(onnx_dir)
    tensors = run(Path(reference_trace), cfg, onnx_dir, threads=threads)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    meta = {"port": f"{PACKAGE}=={_version(PACKAGE)}", "reference": str(reference_trace), "config": cfg.name,
            "steps": str(cfg.steps), "cfg_rate": str(cfg.cfg_rate), "onnx_dir": str(onnx_dir),
            "versions": json.dumps(versions(), sort_keys=True),
            "note": "recorded inputs/noise injected as np.random.randn; recorded cfm/mu fed as the condition"}
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(partial), metadata=meta)
    os.replace(partial, out_path)
    return out_path
