"""Forward hooks on upstream's DiT estimator: every stage of one step, both CFG halves in one call.

The estimator's inputs and output are hooked around the module; what `solve_euler` computes inline
after it (the CFG mix and the Euler update) is recomputed here with upstream's arithmetic
(`flow_matching.py` solve_euler: dphi_dt = (1 + r) * dphi_dt - r * cfg_dphi_dt; x = x + dt * dphi_dt;
x[:, :, :prompt_len] = 0), stored as derived, and checked against the next call's input.
"""
from __future__ import annotations

from reference_hooks.recorder import Recorder


def hook_estimator(hooks, est, rec: Recorder, pos) -> None:
    def dit(name: str):
        def hook(_m, _args, output):
            rec(f"{pos.at}/step_{pos.step:02d}/dit/{name}", output)
        return hook

    def block(index: int, name: str):
        def hook(_m, _args, output):
            rec(f"{pos.at}/step_{pos.step:02d}/dit/block_{index:02d}/{name}", output)
        return hook

    def inputs(_m, args):
        x, prompt_x, _x_lens, t, style, mu = args[:6]
        b = x.shape[0] // 2
        if pos.step == 0:
            rec(f"{pos.at}/mu", mu[:b])
            rec(f"{pos.at}/prompt_x", prompt_x[:b])
            rec(f"{pos.at}/x_init", x[:b])
        elif pos.last_x_next is not None:
            prev = f"{pos.at}/step_{pos.step - 1:02d}/x_next"
            rec.check(prev, pos.last_x_next, x[:b], f"{pos.at}/step_{pos.step:02d}/dit/in/x (cond)")
        for name, value in (("x", x), ("prompt_x", prompt_x), ("t", t), ("style", style), ("mu", mu)):
            rec(f"{pos.at}/step_{pos.step:02d}/dit/in/{name}", value)

    def outputs(_m, args, velocity):
        x = args[0]
        b = x.shape[0] // 2
        here = f"{pos.at}/step_{pos.step:02d}"
        rec(f"{here}/dit/velocity", velocity)
        v_cond, v_uncond = velocity.chunk(2, dim=0)
        rec(f"{here}/v_cond", v_cond)
        rec(f"{here}/v_uncond", v_uncond)
        r = pos.cfg_rate
        v_cfg = (1.0 + r) * v_cond - r * v_uncond
        dt = pos.t_span[pos.step + 1] - pos.t_span[pos.step]
        x_next = x[:b] + dt * v_cfg
        x_next[:, :, : pos.prompt_len] = 0
        rec(f"{here}/v_cfg", v_cfg)
        rec(f"{here}/x_next", x_next)
        pos.last_x_next = x_next
        rec.flush()
        pos.step += 1

    hooks.pre(est, inputs)
    hooks.forward(est, outputs)
    hooks.forward(est.t_embedder, dit("t_embed"))
    hooks.forward(est.cond_projection, dit("cond_proj"))
    hooks.pre(est.cond_x_merge_linear, lambda m, args: dit("x_in")(m, args, args[0]))
    hooks.forward(est.cond_x_merge_linear, dit("merge"))
    for i, layer in enumerate(est.transformer.layers):
        if hasattr(layer, "skip_in_linear"):
            hooks.forward(layer.skip_in_linear, block(i, "skip_in"))
        hooks.forward(layer.attention_norm, block(i, "attn_norm"))
        hooks.forward(layer.attention, block(i, "attn_out"))
        hooks.forward(layer.ffn_norm, block(i, "ffn_norm"))
        hooks.forward(layer.feed_forward, block(i, "ffn_out"))
        hooks.forward(layer, block(i, "out"))
    hooks.forward(est.transformer.norm, dit("final_norm"))
    hooks.forward(est.skip_linear, dit("long_skip"))
    hooks.forward(est.conv1, dit("conv1"))
    hooks.forward(est.t_embedder2, dit("t_embed2"))
    for i, layer in enumerate(est.wavenet.res_skip_layers):
        hooks.forward(layer, dit(f"wavenet/layer_{i}"))
    hooks.forward(est.wavenet, dit("wavenet/out"))
    hooks.forward(est.res_projection, dit("res_proj"))
    fl = est.final_layer

    def modulation(_m, _args, output):
        shift, scale = output.chunk(2, dim=1)
        rec(f"{pos.at}/step_{pos.step:02d}/dit/final_layer/shift", shift)
        rec(f"{pos.at}/step_{pos.step:02d}/dit/final_layer/scale", scale)

    hooks.pre(fl, lambda m, args: dit("final_layer/in")(m, args, args[0]))
    hooks.forward(fl.adaLN_modulation[0], dit("final_layer/silu"))
    hooks.forward(fl.adaLN_modulation, modulation)
    hooks.forward(fl.norm_final, dit("final_layer/norm"))
    hooks.pre(fl.linear, lambda m, args: dit("final_layer/modulated")(m, args, args[0]))
    hooks.forward(fl.linear, dit("final_layer/out"))
