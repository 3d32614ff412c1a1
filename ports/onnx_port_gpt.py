"""indextts-onnx 0.3.0's GPT (its ONNX export and its own numpy sampler), teacher-forced on a reference trace.

The package exports UnifiedVoice as three graphs: `gpt2_init` (conditioning + prompt + the first logits, the
KV cache out), `gpt2_step` (one code, the cache, an explicit `mel_len`) and `gpt2_forward` (the latent pass).
Its sampler (`sampling.top_k_top_p_sample`) is its own numpy code and draws with `np.random.choice`: its
codes can never be upstream's, so it is compared by teacher forcing. This adapter:
1. builds upstream's UnifiedVoice with the reference's checkpoint (the reference side's own builder) and
   exports it with the package's own `export_gpt2_autoregressive` and `_export_gpt2_forward`;
2. per segment, feeds the reference's text ids and semantic features to `gpt2_init`, then the reference's
   codes one at a time to `gpt2_step` with the package's own attention-mask and `mel_len` convention
   (infer.py:166-210), and runs its sampler on each step's logits with the codes generated so far (what
   survives its top-k / top-p is its `kept`; its draw is intercepted, never used);
3. runs `gpt2_forward` on the reference's codes for the latent, and its tokenizer on the reference's text.
`ports/indextts_onnx_gpt.map.toml` maps the tensors onto our stages.

Shims, because the package was written for an older torch and transformers (each applied only during the
export and undone after): torch 2.13's `torch.onnx.export` defaults to the dynamo exporter, which cannot trace
upstream's data-dependent branches (set_text_padding, prepare_gpt_inputs): `dynamo=False` is forced;
transformers 5.x's GPT2Model takes only Cache objects: the step wrapper's tuple of (k, v) pairs becomes a
DynamicCache on entry; transformers 5.x's mask code looks for packed sequences with `torch.diff`, which the
legacy exporter cannot export: `find_packed_sequence_indices` returns None (no packing, as in eager mode).
"""
from __future__ import annotations

import contextlib
import functools
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

from harness import stages
from harness.files import atomic
from harness.trace import Trace
from ports.exporter import torchscript_exporter

MAP = Path(__file__).with_name("indextts_onnx_gpt.map.toml")


@contextlib.contextmanager
def export_shims():
    import transformers.masking_utils as masking
    from transformers import DynamicCache
    from transformers.models.gpt2 import modeling_gpt2

    real_packed = masking.find_packed_sequence_indices
    real_forward = modeling_gpt2.GPT2Model.forward

    @functools.wraps(real_forward)
    def forward(self, *args, past_key_values=None, **kwargs):
        if isinstance(past_key_values, tuple):
            past_key_values = DynamicCache(ddp_cache_data=past_key_values)
        return real_forward(self, *args, past_key_values=past_key_values, **kwargs)

    masking.find_packed_sequence_indices = lambda position_ids: None
    modeling_gpt2.GPT2Model.forward = forward
    try:
        with torchscript_exporter():
            yield
    finally:
        masking.find_packed_sequence_indices = real_packed
        modeling_gpt2.GPT2Model.forward = real_forward


def config_of(ref: Trace):
    from harness.configs import PipelineConfig

    return PipelineConfig.from_dict(ref.provenance["config_json"])


def export(ref: Trace, weights: dict, folder: Path) -> Path:
    import torch
    from indextts_onnx.export import export_gpt2

    from reference_hooks import driver

    built = driver.build_parts(config_of(ref), weights, torch.float32, parts=(stages.part("gpt"),))["gpt"]
    tts = types.SimpleNamespace(gpt=built.model)
    with export_shims(), contextlib.redirect_stdout(sys.stderr):  # the exporter narrates; stdout is the verdict
        export_gpt2.export_gpt2_autoregressive(tts, str(folder))
        export_gpt2._export_gpt2_forward(tts, str(folder), "cpu", 17)
    return folder


def sampler_kept(logits: np.ndarray, generated: np.ndarray, cfg) -> np.ndarray:
    """The package's sampler on one logits row: the codes its top-k / top-p leave a probability (bool [V])."""
    from indextts_onnx import sampling

    seen = {}
    real_choice = np.random.choice

    def choice(n, p=None):
        seen["p"] = np.array(p, copy=True)
        return int(np.argmax(p))

    np.random.choice = choice
    try:
        sampling.top_k_top_p_sample(logits, top_k=cfg.top_k, top_p=cfg.top_p, temperature=cfg.temperature,
                                    repetition_penalty=cfg.repetition_penalty,
                                    generated_tokens=generated if generated.size else None)
    finally:
        np.random.choice = real_choice
    return seen["p"] > 0


def _segment(sess, ref: Trace, seg: int, cfg, tensors: dict) -> None:
    at = f"gpt/seg_{seg:02d}"
    text = ref.read(f"{at}/text_ids").astype(np.int32)
    spk, emo = ref.read("semantic/spk_cond").astype(np.float32), ref.read("semantic/emo/cond").astype(np.float32)
    codes, t = [], 0
    while f"{at}/token_{t:04d}/code" in ref:
        codes.append(int(ref.read(f"{at}/token_{t:04d}/code")[0]))
        t += 1
    # infer_v2 passes the features' last axis (1024) as their length; the package passes the frame count:
    # the same mask while there are at most 1024 frames
    feeds = {"spk_cond": spk, "text_tokens": text, "emo_cond": emo,
             "cond_lengths": np.array([spk.shape[1]], dtype=np.int64),
             "emo_cond_lengths": np.array([emo.shape[1]], dtype=np.int64)}
    out = sess["gpt2_init"].run(None, feeds)
    logits, kvs = out[0][:, -1], out[1:]
    seq_len = kvs[0].shape[2]
    mel_len = np.array(seq_len - 1, dtype=np.int64)  # the package's convention (infer.py:179)
    for t in range(len(codes)):
        if t:
            feed = {"input_ids": np.array([[codes[t - 1]]], dtype=np.int64), "mel_len": mel_len,
                    "attention_mask": np.ones((1, seq_len + 1), dtype=np.int64)}
            for i in range(len(kvs) // 2):
                feed[f"past_key_values.{i}"], feed[f"past_values.{i}"] = kvs[2 * i], kvs[2 * i + 1]
            out = sess["gpt2_step"].run(None, feed)
            logits, kvs, seq_len = out[0][:, -1], out[1:], seq_len + 1
        tensors[f"gpt.seg{seg}.step{t}.logits"] = np.array(logits, copy=True)
        tensors[f"gpt.seg{seg}.step{t}.kept"] = sampler_kept(logits[0], np.array(codes[:t]), cfg)[None]
    trimmed = ref.read(f"{at}/codes").astype(np.int64)
    names = {i.name for i in sess["gpt2_forward"].get_inputs()}
    forward = {**feeds, "mel_codes": trimmed, "text_lengths": np.array([text.shape[1]], dtype=np.int64),
               "mel_lengths": np.array([trimmed.shape[1]], dtype=np.int64)}
    tensors[f"gpt.seg{seg}.latent"] = sess["gpt2_forward"].run(None, {k: v for k, v in forward.items() if k in names})[0]


def run(ref: Trace, onnx_dir: Path, tokenizer_model: bytes) -> dict[str, np.ndarray]:
    import onnxruntime as ort
    from indextts_onnx.tokenizer import TextTokenizer

    cfg = config_of(ref).gpt
    opts = ort.SessionOptions()
    sess = {name: ort.InferenceSession(str(onnx_dir / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])
            for name in ("gpt2_init", "gpt2_step", "gpt2_forward")}
    tensors: dict[str, np.ndarray] = {}
    text = "".join(map(chr, ref.read("inputs/text").reshape(-1)))
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "bpe.model"
        model.write_bytes(tokenizer_model)
        tokenizer = TextTokenizer(str(model))
    ids = tokenizer.encode(text)
    tensors["text.ids"] = np.array([ids], dtype=np.int64)
    for k, segment in enumerate(tokenizer.split_segments(ids, cfg.max_text_tokens_per_segment)):
        tensors[f"text.seg{k}.ids"] = np.array([segment], dtype=np.int64)
    for seg in stages.segments_in([s.path for s in ref.stages()], "gpt/seg_{seg}/codes"):
        _segment(sess, ref, seg, cfg, tensors)
    return tensors


def run_port(reference: Path, weights: dict, out: Path) -> Path:
    """Export, run, and write the port's tensors as `out` (.npz) for `harness compare --map`."""
    from reference_hooks.gpt_weights import tokenizer_bytes

    with Trace(reference) as ref, tempfile.TemporaryDirectory() as tmp:
        tensors = run(ref, export(ref, weights, Path(tmp)), tokenizer_bytes(weights["gpt"]))
    with atomic(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, **tensors)
    return out
