"""Run upstream's s2mel glue on our inputs with every stage hooked, into one trace.

`infer_v2.IndexTTS2` cannot run offline (it downloads its models), so its glue between modules is
reproduced here, each step citing the upstream line it mirrors (indextts2-inference 2.1.1,
indextts/infer_v2.py). The modules themselves run unmodified.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import torch

from harness.configs import S2MelConfig
from harness.trace import TraceWriter
from reference_hooks.capture import Position, Recorder, hooked
from reference_hooks.inputs import S2MelInputs
from reference_hooks.model import build_model
from reference_hooks.upstream import UpstreamSource


def load_weights(model, weights: dict[str, np.ndarray], dtype: torch.dtype) -> None:
    """Load by upstream name; every parameter and buffer must be present with its shape."""
    state = {k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}
    own = model.models.state_dict()
    missing = sorted(set(own) - set(state))
    wrong = sorted(k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or wrong:
        from harness.errors import UserError

        detail = (f"missing {missing[:3]}" if missing else "") + (f" wrong shape {wrong[:3]}" if wrong else "")
        raise UserError(f"checkpoint does not fit the {dtype} model of this config: {detail.strip()}")
    model.models.load_state_dict({k: state[k] for k in own}, strict=True)
    model.to(dtype)


def write_inputs(writer: TraceWriter, inputs: S2MelInputs) -> None:
    writer.write("inputs/speaker_wav", inputs.speaker_wav, note="read at the mel rate; not resampled (no torchaudio)")
    writer.write("inputs/prompt_mel", inputs.prompt_mel)
    writer.write("inputs/prompt_content", inputs.prompt_content)
    writer.write("inputs/target_content", inputs.target_content)
    writer.write("inputs/style", inputs.style)
    writer.write("inputs/noise", inputs.noise)


def provenance(cfg: S2MelConfig, source: UpstreamSource, seed: int, dtype: torch.dtype, weights_id: str) -> dict:
    return {
        "implementation": "upstream",
        **source.as_dict(),
        "torch_version": torch.__version__,
        "config": cfg.name,
        "config_json": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "checkpoint": weights_id,
        "seed": seed,
        "dtype": str(dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "command": " ".join(sys.argv),
        "pid": os.getpid(),
    }


def capture(cfg: S2MelConfig, weights: dict[str, np.ndarray], inputs: S2MelInputs, out: Path,
            prov: dict, seed: int, dtype: torch.dtype = torch.float32, hooks: bool = True) -> Path:
    """Run the reference once and write its trace; returns the path of the finished trace."""
    model = build_model(cfg)
    load_weights(model, weights, dtype)
    lr, cfm = model.models["length_regulator"], model.models["cfm"]
    cfm.estimator.setup_caches(max_batch_size=1, max_seq_length=8192)  # infer_v2._load_s2mel
    tp, tt = inputs.prompt_frames, cfg.target_frames(inputs.target_content.shape[1])

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a)).to(dtype)

    # BASECFM.inference: t_span = linspace(0, 1, n + 1), float32 whatever the model's dtype. The
    # float64 run is the oracle for noise floors, so its schedule is float64 too: upstream's float32
    # t, accumulated as t + dt, is itself a few 1e-8 off the exact schedule, and a floor must show that.
    t_span = torch.linspace(0, 1, cfg.steps + 1, dtype=torch.float64 if dtype == torch.float64 else None)
    with TraceWriter(out, prov) as writer:
        write_inputs(writer, inputs)
        pos = Position(n_steps=cfg.steps, cfg_rate=cfg.cfg_rate, prompt_len=tp, t_span=t_span)
        recorder = Recorder(writer, pos)
        context = hooked(model, recorder) if hooks else contextlib.nullcontext()
        with torch.inference_mode(), context:
            # _get_speaker_conditioning: prompt_condition = length_regulator(S_ref, ylens=ref mel length)[0]
            pos.half = "prompt"
            prompt_cond = lr(tensor(inputs.prompt_content), ylens=torch.LongTensor([tp]), n_quantizers=3, f0=None)[0]
            # infer: cond = length_regulator(S_infer, ylens=(code_lens * 1.72).long())[0]
            pos.half = "target"
            cond = lr(tensor(inputs.target_content), ylens=torch.LongTensor([tt]), n_quantizers=3, f0=None)[0]
            # infer: cat_condition = torch.cat([prompt_condition, cond], dim=1)
            cat_condition = torch.cat([prompt_cond, cond], dim=1)
            x_lens = torch.LongTensor([cat_condition.size(1)])
            if dtype == torch.float64:
                # CFM.inference's two lines with a float64 schedule: z = recorded noise, t_span above
                mel = cfm.solve_euler(tensor(inputs.noise), x_lens, tensor(inputs.prompt_mel), cat_condition,
                                      tensor(inputs.style), None, t_span, cfg.cfg_rate)
            else:
                # CFM.inference draws z = randn([B, 80, T]) * temperature; seeded as in make_inputs
                torch.manual_seed(seed)
                mel = cfm.inference(cat_condition, x_lens, tensor(inputs.prompt_mel), tensor(inputs.style), None,
                                    cfg.steps, temperature=cfg.temperature, inference_cfg_rate=cfg.cfg_rate)
        computed = str(mel.dtype).replace("torch.", "")
        writer.write("cfm/mel_out", mel.detach().numpy(), dtype=computed)
        # infer_v2: vc_target = vc_target[:, :, ref_mel.size(-1):], then bigvgan(vc_target.float())
        writer.write("vocoder/bigvgan_in", mel[:, :, tp:].detach().numpy(), dtype=computed)
        if hooks:
            writer.update_provenance(noise_check=_noise_check(pos.x_init, inputs))
    return out


def _noise_check(x_init: torch.Tensor | None, inputs: S2MelInputs) -> str:
    """Confirm upstream drew exactly the recorded noise: x_init must equal it off the prompt frames."""
    if x_init is None:
        return "not checked: no estimator call seen"
    expected = torch.from_numpy(inputs.noise).to(x_init.dtype).clone()
    expected[..., : inputs.prompt_frames] = 0
    diff = float((x_init - expected).abs().max())
    return "ok: upstream noise equals inputs/noise" if diff == 0 else f"MISMATCH: max abs {diff:g}"
