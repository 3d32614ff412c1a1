"""Upstream's CFM with its DiT, built from our config, hooked, run per segment as infer_v2 runs it.

Mirrors indextts2-inference 2.1.1: `s2mel/modules/commons.py:398` (MyModel builds `CFM(args)` from
config.yaml's `s2mel` section), `infer_v2.py:193` (`setup_caches`), `infer_v2.py:687-696` (the condition
is cat([prompt_condition, cond], 1); `cfm.inference(cat_condition, x_lens, ref_mel, style, None, 25,
inference_cfg_rate=0.7)`). The noise `CFM.inference` draws with `torch.randn` is recorded (or, when the
run is given a recorded draw, injected in its place); the schedule it builds with `torch.linspace` is
recorded. What upstream computes inline, the CFG mix and the Euler update (`flow_matching.py` solve_euler),
is recomputed from hooked tensors as derived stages and checked against the next step's input.
A float64 run (for noise floors) calls `solve_euler` with a float64 schedule instead. `attach` puts the same
hooks on a CFM that the unmodified IndexTTS2 class calls (tests/test_glue_equals_class.py). Declared in
`harness/stages/cfm.py`.
"""
from __future__ import annotations

import inspect
import itertools
from dataclasses import dataclass

import numpy as np
import torch
from munch import Munch

from harness import stages
from harness.stages.cfm import SEG, CfmConfig
from reference_hooks.cfm_hooks import hook_estimator
from reference_hooks.recorder import Recorder, hooked
from reference_hooks.upstream import import_module
from reference_hooks.weights import load_into

PROMPT_OUT = "s2mel/length_regulator/prompt/out"
TARGET_OUT = "s2mel/seg_{seg}/length_regulator/target/out"


def upstream_args(config: CfmConfig) -> Munch:
    """The parts of config.yaml's `s2mel` section that `CFM(args)` reads, with our sizes put in."""
    return Munch.fromDict({
        "dit_type": "DiT", "reg_loss_type": "l1", "style_encoder": {"dim": config.style_dim},
        "DiT": {
            "hidden_dim": config.hidden_dim, "num_heads": config.num_heads, "depth": config.depth,
            "class_dropout_prob": config.class_dropout_prob, "block_size": config.block_size,
            "in_channels": config.in_channels, "style_condition": True, "final_layer_type": "wavenet",
            "target": "mel", "content_dim": config.content_dim, "content_codebook_size": config.content_codebook_size,
            "content_type": "discrete", "f0_condition": False, "n_f0_bins": 512, "content_codebooks": 1,
            "is_causal": False, "long_skip_connection": True, "zero_prompt_speech_token": False,
            "time_as_token": False, "style_as_token": False, "uvit_skip_connection": True,
            "add_resblock_in_transformer": False,
        },
        "wavenet": {
            "hidden_dim": config.wavenet_hidden, "num_layers": config.wavenet_layers,
            "kernel_size": config.wavenet_kernel, "dilation_rate": config.wavenet_dilation,
            "p_dropout": config.wavenet_p_dropout, "style_condition": True,
        },
    })


def build(config: CfmConfig, weights: dict[str, np.ndarray], dtype: torch.dtype) -> torch.nn.Module:
    """`CFM(args)` as MyModel builds it, weights loaded, cast, and its caches set up as infer_v2 does."""
    cfm = import_module("s2mel.modules.flow_matching").CFM(upstream_args(config))
    load_into(cfm, weights, "cfm", dtype)
    cfm.estimator.setup_caches(max_batch_size=1, max_seq_length=8192)  # infer_v2.py:193
    return cfm.eval()


def unbuilt_module(config: CfmConfig) -> torch.nn.Module:
    """The module alone (float32, random init): its parameter names and shapes, for seeded weights."""
    return import_module("s2mel.modules.flow_matching").CFM(upstream_args(config))


@dataclass
class Position:
    """Where a segment's run is, so a hook knows the stage path of what it sees."""

    at: str
    cfg_rate: float
    prompt_len: int
    step: int = 0
    t_span: torch.Tensor | None = None
    last_x_next: torch.Tensor | None = None


def _draws(recorder: Recorder, hooks, pos: Position, given_noise: torch.Tensor | None) -> None:
    """Record (or inject) the noise `CFM.inference` draws and record the schedule it builds."""
    real_randn, real_linspace = torch.randn, torch.linspace
    calls = []

    def randn(*args, **kw):
        calls.append(args)
        if given_noise is not None:
            shape = tuple(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else tuple(args)
            if shape != tuple(given_noise.shape) or len(calls) > 1:
                raise RuntimeError(f"upstream drew noise {shape} (call {len(calls)}); the recorded draw is "
                                   f"{tuple(given_noise.shape)}")
            z = given_noise.clone()
        else:
            z = real_randn(*args, **kw)
        recorder(f"{pos.at}/noise", z)
        return z

    def linspace(*args, **kw):
        pos.t_span = real_linspace(*args, **kw)
        recorder(f"{pos.at}/t_span", pos.t_span)
        return pos.t_span

    hooks.patch(torch, "randn", randn)
    hooks.patch(torch, "linspace", linspace)


def install(hooks, model: torch.nn.Module, recorder: Recorder, pos: Position, noise: torch.Tensor | None = None) -> None:
    """Our stages of one `CFM.inference` call: the estimator's hooks, the draw recorded (or `noise` injected)."""
    hook_estimator(hooks, model.estimator, recorder, pos)
    _draws(recorder, hooks, pos, noise)


def finish(recorder: Recorder, pos: Position, mel: torch.Tensor) -> torch.Tensor:
    """Record a segment's output and check the last derived update against it."""
    recorder(f"{pos.at}/mel_out", mel)
    if pos.last_x_next is not None:
        recorder.check(f"{pos.at}/step_{pos.step - 1:02d}/x_next", pos.last_x_next, mel, f"{pos.at}/mel_out")
    return mel


def attach(hooks, model: torch.nn.Module, recorder: Recorder) -> None:
    """Our stages of a CFM that upstream's own code calls (the unmodified IndexTTS2 class): each call of its
    `inference` method (`infer_v2.py:688-696`) is the next text segment, hooked as `_run_segment` hooks ours."""
    real, segments = model.inference, itertools.count()
    signature = inspect.signature(real)

    def inference(*args, **kwargs):
        call = signature.bind(*args, **kwargs)
        call.apply_defaults()
        pos = Position(at=stages.seg_path(SEG, next(segments)), cfg_rate=call.arguments["inference_cfg_rate"],
                       prompt_len=call.arguments["prompt"].size(-1))
        with hooked() as inner:
            install(inner, model, recorder, pos)
            return finish(recorder, pos, real(*args, **kwargs))

    hooks.patch(model, "inference", inference)


def _run_segment(model, config: CfmConfig, mu, prompt_mel, style, noise, pos: Position, recorder: Recorder):
    x_lens = torch.LongTensor([mu.size(1)])
    with hooked() as hooks:
        if recorder.hooking:
            hook_estimator(hooks, model.estimator, recorder, pos)
        if mu.dtype == torch.float64:
            # the noise-floor run: CFM.inference's two lines with a float64 schedule (its float32 linspace
            # would carry float32 rounding into the oracle), the recorded noise given
            recorder(f"{pos.at}/noise", noise)
            pos.t_span = recorder(f"{pos.at}/t_span", torch.linspace(0, 1, config.steps + 1, dtype=torch.float64))
            return model.solve_euler(noise.to(mu.dtype) * config.temperature, x_lens, prompt_mel, mu, style, None,
                                     pos.t_span, config.cfg_rate)
        if recorder.hooking or noise is not None:
            _draws(recorder, hooks, pos, noise)
        return model.inference(mu, x_lens, prompt_mel, style, None, config.steps, temperature=config.temperature,
                               inference_cfg_rate=config.cfg_rate)


def run(model: torch.nn.Module, config: CfmConfig, given: dict[str, torch.Tensor], recorder: Recorder
        ) -> dict[str, torch.Tensor]:
    """Every segment's CFM, in order; the noise is drawn by upstream unless the run is given it."""
    out = {}
    prompt_mel, style = given["frontend/mel/out"], given["style/style"]  # ref_mel (:360) and style (:366)
    with torch.inference_mode():
        for seg in stages.segments_in(given, TARGET_OUT):
            at = stages.seg_path(SEG, seg)
            mu = torch.cat([given[PROMPT_OUT], given[stages.seg_path(TARGET_OUT, seg)]], dim=1)  # infer_v2:687
            pos = Position(at=at, cfg_rate=config.cfg_rate, prompt_len=prompt_mel.shape[-1])
            mel = _run_segment(model, config, mu, prompt_mel, style, given.get(f"{at}/noise"), pos, recorder)
            out[f"{at}/mel_out"] = finish(recorder, pos, mel)
    return out
