"""Conditional flow matching inference: Euler steps from noise to mel with batched CFG.

Upstream facts a port must match: t runs 0 -> 1 over `steps` Euler steps of torch.linspace; t is
*accumulated* (t = t + dt) rather than read from the schedule, which differs from the schedule in the
last float32 bits; prompt_x is zeros with the prompt mel in its first frames; the noisy x is zeroed over
the prompt frames before the loop and after every step; the unconditional half zeroes prompt_x, style
and mu only; v = (1 + r) v_cond - r v_uncond.
"""
from __future__ import annotations

import torch

from harness.stages.cfm import CfmConfig
from reimpl import faults
from reimpl.cfm.dit import estimator
from reimpl.params import Params


def build_prompt_x(prompt_mel: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    n_prompt = prompt_mel.shape[-1]
    if faults.active("cfm.solver.prompt_x_whole_mel"):
        # the port's bug: the speaker mel repeated over every frame instead of zeros after the prompt
        reps = -(-like.shape[-1] // n_prompt)
        return prompt_mel.repeat(1, 1, reps)[..., : like.shape[-1]].to(like.dtype).clone()
    prompt_x = torch.zeros_like(like)
    prompt_x[..., :n_prompt] = prompt_mel
    return prompt_x


def time_schedule(steps: int, dtype: torch.dtype) -> torch.Tensor:
    """linspace(0, 1, steps + 1): float32 as upstream's CFM.inference makes it, whatever the model dtype.

    A float64 run gets a float64 schedule, as the float64 reference capture does (reference_hooks/cfm.py):
    that run is the noise-floor oracle, so it must not carry upstream's float32 rounding of dt and t.
    """
    return torch.linspace(0, 1, steps + 1, dtype=torch.float64 if dtype == torch.float64 else torch.float32)


def cfg_mix(v_cond: torch.Tensor, v_uncond: torch.Tensor, rate: float) -> torch.Tensor:
    if faults.active("cfm.solver.cfg_formula"):
        return v_uncond + rate * (v_cond - v_uncond)  # the usual CFG convention, not IndexTTS2's
    return (1.0 + rate) * v_cond - rate * v_uncond


def run_cfm(p: Params, cfg: CfmConfig, mu: torch.Tensor, prompt_mel: torch.Tensor, style: torch.Tensor,
            noise: torch.Tensor, at: str, tap) -> torch.Tensor:
    """mu [B, T, C], prompt_mel [B, 80, Tp], style [B, 192], noise [B, 80, T] -> mel [B, 80, T].

    `at` is the segment's stage prefix (`cfm/seg_00`); `noise` is the recorded draw, before the temperature.
    """
    n_prompt = prompt_mel.shape[-1]
    t_span = tap(f"{at}/t_span", time_schedule(cfg.steps, noise.dtype))
    mu = tap(f"{at}/mu", mu)
    prompt_x = tap(f"{at}/prompt_x", build_prompt_x(prompt_mel, noise))
    x = noise * cfg.temperature
    x[..., :n_prompt] = 0
    x = tap(f"{at}/x_init", x)
    t = t_span[0]
    batch = x.shape[0]
    uncond_style = style if faults.active("cfm.solver.uncond_keeps_style") else torch.zeros_like(style)
    for step in range(cfg.steps):
        here = f"{at}/step_{step:02d}"
        dt = t_span[step + 1] - t_span[step]
        v = estimator(
            p, cfg, torch.cat([x, x]), torch.cat([prompt_x, torch.zeros_like(prompt_x)]),
            t.repeat(2 * batch), torch.cat([style, uncond_style]), torch.cat([mu, torch.zeros_like(mu)]),
            f"{here}/dit", tap,
        )
        v_cond = tap(f"{here}/v_cond", v[:batch])
        v_uncond = tap(f"{here}/v_uncond", v[batch:])
        v_cfg = tap(f"{here}/v_cfg", cfg_mix(v_cond, v_uncond, cfg.cfg_rate))
        x = x - dt * v_cfg if faults.active("cfm.solver.euler_backward") else x + dt * v_cfg
        x[..., :n_prompt] = 0
        x = tap(f"{here}/x_next", x)
        t = t + dt
    return tap(f"{at}/mel_out", x)
