"""Forward hooks on the unmodified upstream length regulator, CFM and DiT.

One context manager registers every hook and removes them all in `finally`. Each hook copies its
tensor off the graph and hands it to the trace writer at once, so memory stays bounded by the
largest single tensor. What upstream computes inline rather than in a module (the CFG mix and the
Euler update) is recomputed from hooked tensors with the same arithmetic and stored as derived.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch

from harness import schema
from harness.trace import TraceWriter


@dataclass
class Position:
    """Where the pipeline is, so a hook knows the stage path of what it sees."""

    half: str = "prompt"
    step: int = 0
    n_steps: int = 0
    cfg_rate: float = 0.7
    prompt_len: int = 0
    t_span: torch.Tensor | None = None
    x_init: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)


class Recorder:
    def __init__(self, writer: TraceWriter, position: Position):
        self.writer = writer
        self.pos = position

    def put(self, path: str, tensor: torch.Tensor, note: str = "") -> None:
        t = tensor.detach()
        self.writer.write(path, t.cpu().numpy(), dtype=str(t.dtype).replace("torch.", ""), note=note)

    def dit(self, name: str):
        """A forward hook that stores a module's output under this step's DiT path."""

        def hook(_module, _args, output):
            self.put(schema.dit_path(self.pos.step, name), output)

        return hook

    def block(self, index: int, name: str):
        def hook(_module, _args, output):
            self.put(schema.block_path(self.pos.step, index, name), output)

        return hook

    def lr(self, name: str, use_input: bool = False):
        def hook(_module, args, output):
            self.put(schema.lr_path(self.pos.half, name), args[0] if use_input else output)

        return hook


@contextlib.contextmanager
def hooked(model, recorder: Recorder):
    """Register every stage hook on an upstream `MyModel`; all are removed on exit, whatever happens."""
    handles = []

    def fwd(module, hook):
        handles.append(module.register_forward_hook(hook))

    def pre(module, hook):
        handles.append(module.register_forward_pre_hook(hook))

    try:
        _hook_length_regulator(model.models["length_regulator"], recorder, fwd, pre)
        _hook_estimator(model.models["cfm"].estimator, recorder, fwd, pre)
        yield recorder
    finally:
        for h in handles:
            h.remove()


def _hook_length_regulator(lr, rec: Recorder, fwd, pre) -> None:
    def content_in(_m, args, output):
        rec.put(schema.lr_path(rec.pos.half, "in"), args[0])
        rec.put(schema.lr_path(rec.pos.half, "proj"), output)

    fwd(lr.content_in_proj, content_in)
    layers = list(lr.model)
    pre(layers[0], lambda m, args: rec.lr("interp", use_input=True)(m, args, None))
    n_blocks = (len(layers) - 1) // 3
    for k in range(n_blocks):
        fwd(layers[3 * k + 2], rec.lr(f"block_{k}"))  # Conv1d -> GroupNorm -> Mish
    fwd(layers[-1], rec.lr("out_conv"))
    fwd(lr, lambda m, args, output: rec.put(schema.lr_path(rec.pos.half, "out"), output[0]))


def _hook_estimator(est, rec: Recorder, fwd, pre) -> None:
    pos = rec.pos

    def inputs(_m, args):
        x, prompt_x, _x_lens, t, style, mu = args[:6]
        b = x.shape[0] // 2
        if pos.step == 0:
            rec.put("cfm/mu", mu[:b])
            rec.put("cfm/prompt_x", prompt_x[:b])
            rec.put("cfm/x_init", x[:b])
            pos.x_init = x[:b].clone()
        for name, value in (("x", x), ("prompt_x", prompt_x), ("t", t), ("style", style), ("mu", mu)):
            rec.put(schema.dit_path(pos.step, f"in/{name}"), value)

    def outputs(_m, args, velocity):
        x = args[0]
        b = x.shape[0] // 2
        rec.put(schema.dit_path(pos.step, "velocity"), velocity)
        v_cond, v_uncond = velocity.chunk(2, dim=0)
        rec.put(schema.step_path(pos.step, "v_cond"), v_cond)
        rec.put(schema.step_path(pos.step, "v_uncond"), v_uncond)
        # flow_matching.solve_euler, inline upstream: the CFG mix, the Euler step, the prompt reset
        r = pos.cfg_rate
        v_cfg = (1.0 + r) * v_cond - r * v_uncond
        dt = pos.t_span[pos.step + 1] - pos.t_span[pos.step]
        x_next = x[:b] + dt * v_cfg
        x_next[:, :, : pos.prompt_len] = 0
        rec.put(schema.step_path(pos.step, "v_cfg"), v_cfg)
        rec.put(schema.step_path(pos.step, "x_next"), x_next)
        rec.writer.flush()
        pos.step += 1

    pre(est, inputs)
    fwd(est, outputs)
    fwd(est.t_embedder, rec.dit("t_embed"))
    fwd(est.cond_projection, rec.dit("cond_proj"))
    pre(est.cond_x_merge_linear, lambda m, args: rec.dit("x_in")(m, args, args[0]))
    fwd(est.cond_x_merge_linear, rec.dit("merge"))
    for i, layer in enumerate(est.transformer.layers):
        if hasattr(layer, "skip_in_linear"):
            fwd(layer.skip_in_linear, rec.block(i, "skip_in"))
        fwd(layer.attention_norm, rec.block(i, "attn_norm"))
        fwd(layer.attention, rec.block(i, "attn_out"))
        fwd(layer.ffn_norm, rec.block(i, "ffn_norm"))
        fwd(layer.feed_forward, rec.block(i, "ffn_out"))
        fwd(layer, rec.block(i, "out"))
    fwd(est.transformer.norm, rec.dit("final_norm"))
    fwd(est.skip_linear, rec.dit("long_skip"))
    fwd(est.conv1, rec.dit("conv1"))
    fwd(est.t_embedder2, rec.dit("t_embed2"))
    for i, layer in enumerate(est.wavenet.res_skip_layers):
        fwd(layer, rec.dit(f"wavenet/layer_{i}"))
    fwd(est.wavenet, rec.dit("wavenet/out"))
    fwd(est.res_projection, rec.dit("res_proj"))
    fl = est.final_layer

    def modulation(_m, _args, output):
        shift, scale = output.chunk(2, dim=1)
        rec.put(schema.dit_path(pos.step, "final_layer/shift"), shift)
        rec.put(schema.dit_path(pos.step, "final_layer/scale"), scale)

    fwd(fl.adaLN_modulation, modulation)
    fwd(fl.norm_final, rec.dit("final_layer/norm"))
    pre(fl.linear, lambda m, args: rec.dit("final_layer/modulated")(m, args, args[0]))
    fwd(fl.linear, rec.dit("final_layer/out"))
