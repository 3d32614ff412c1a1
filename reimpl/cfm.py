"""Conditional flow matching inference: Euler steps from noise to mel with batched CFG.

Upstream facts a port must match: t runs 0 -> 1 over `steps` Euler steps of torch.linspace;
t is *accumulated* (t = t + dt) rather than read from the schedule, which differs from the schedule
in the last float32 bits; prompt_x is zeros with the prompt mel in its first frames; the noisy x is
zeroed over the prompt frames before the loop and after every step; the unconditional half zeroes
prompt_x, style and mu only; v = (1 + r) v_cond - r v_uncond.
"""
from __future__ import annotations

import torch

from harness.configs import S2MelConfig
from harness.schema import step_path
from reimpl import faults
from reimpl.dit import estimator
from reimpl.params import Params


def build_prompt_x(prompt_mel: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    n_prompt = prompt_mel.shape[-1]
    if faults.active("cfm.prompt_x_whole_mel"):
        # the port's bug: the speaker mel repeated over every frame instead of zeros after the prompt
        reps = -(-like.shape[-1] // n_prompt)
        return prompt_mel.repeat(1, 1, reps)[..., : like.shape[-1]].to(like.dtype).clone()
    prompt_x = torch.zeros_like(like)
    prompt_x[..., :n_prompt] = prompt_mel
    return prompt_x


def time_schedule(steps: int, dtype: torch.dtype) -> torch.Tensor:
    """linspace(0, 1, steps + 1): float32 as upstream's CFM.inference makes it, whatever the model dtype.

    A float64 run gets a float64 schedule, as the float64 reference capture does
    (reference_hooks/driver.py): that run is the noise-floor oracle, so it must not carry upstream's
    float32 rounding of dt and t.
    """
    return torch.linspace(0, 1, steps + 1, dtype=torch.float64 if dtype == torch.float64 else torch.float32)


def cfg_mix(v_cond: torch.Tensor, v_uncond: torch.Tensor, rate: float) -> torch.Tensor:
    if faults.active("cfm.cfg_formula"):
        return v_uncond + rate * (v_cond - v_uncond)  # the usual CFG convention, not IndexTTS2's
    return (1.0 + rate) * v_cond - rate * v_uncond


def run_cfm(p: Params, cfg: S2MelConfig, mu: torch.Tensor, prompt_mel: torch.Tensor, style: torch.Tensor,
            noise: torch.Tensor, tap) -> torch.Tensor:
    """mu [B, T, C], prompt_mel [B, 80, Tp], style [B, 192], noise [B, 80, T] -> mel [B, 80, T]."""
    n_prompt = prompt_mel.shape[-1]
    mu = tap("cfm/mu", mu)
    prompt_x = tap("cfm/prompt_x", build_prompt_x(prompt_mel, noise))
    x = noise.clone()
    x[..., :n_prompt] = 0
    x = tap("cfm/x_init", x)
    t_span = time_schedule(cfg.steps, noise.dtype)
    t = t_span[0]
    batch = x.shape[0]
    uncond_style = style if faults.active("cfm.uncond_keeps_style") else torch.zeros_like(style)
    for step in range(cfg.steps):
        dt = t_span[step + 1] - t_span[step]
        v = estimator(
            p, cfg, torch.cat([x, x]), torch.cat([prompt_x, torch.zeros_like(prompt_x)]),
            t.repeat(2 * batch), torch.cat([style, uncond_style]), torch.cat([mu, torch.zeros_like(mu)]), step, tap,
        )
        v_cond = tap(step_path(step, "v_cond"), v[:batch])
        v_uncond = tap(step_path(step, "v_uncond"), v[batch:])
        v_cfg = tap(step_path(step, "v_cfg"), cfg_mix(v_cond, v_uncond, cfg.cfg_rate))
        x = x - dt * v_cfg if faults.active("cfm.euler_backward") else x + dt * v_cfg
        x[..., :n_prompt] = 0
        x = tap(step_path(step, "x_next"), x)
        t = t + dt
    return tap("cfm/mel_out", x)
