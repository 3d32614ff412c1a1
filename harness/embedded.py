"""The embedded default: seeded checkpoint, reference capture and our replays, built once and cached.

`harness compare` with no traces lands here. Nothing needs a network or a real checkpoint. Each
artefact is keyed by everything that decides its content (config, seed, steps, checkpoint, upstream
source and version, and the source code of the side that made it), so a change in any of them makes
a fresh one and a re-run with none is instant.
"""
from __future__ import annotations

import hashlib
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness.configs import S2MelConfig

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "reports" / "cache"


@dataclass(frozen=True)
class DefaultRun:
    reference: Path  # upstream, float32, hooked
    reference64: Path  # upstream again in float64: the propagated noise floor
    oracle64: Path | None  # reimpl in float64, teacher-forced from the float32 reference: the local floor
    free: Path | None  # reimpl, float32, free-running (with the faults asked for)
    forced: Path | None  # reimpl, float32, teacher-forced (with the faults asked for)

    def roles(self) -> dict[str, Path]:
        """The paths by their role in a comparison (see harness.compare.open_traces)."""
        return dict(reference=self.reference, candidate=self.free, forced=self.forced,
                    reference64=self.reference64, oracle64=self.oracle64)


#: the harness files whose change changes what a trace holds
_TRACE_CODE = ("harness/trace.py", "harness/schema.py", "harness/configs.py", "harness/weights.py")


def _source_digest(*parts: str) -> str:
    """A hash of the source that made an artefact: a package folder or single files."""
    h = hashlib.sha256()
    for part in parts:
        target = ROOT / part
        for f in sorted(target.rglob("*.py")) if target.is_dir() else [target]:
            h.update(f.relative_to(ROOT).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _quiet_upstream() -> None:
    """Upstream prints a tqdm bar per CFM call and warns about the old weight_norm API; neither is ours."""
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore", message=".*weight_norm.*", category=FutureWarning)


def default_weights(cfg: S2MelConfig, seed: int, cache: Path = CACHE) -> tuple[dict, dict]:
    """The seeded checkpoint of a config: generated from upstream's parameter names on first use."""
    from harness import weights as W
    from reference_hooks.model import build_model

    path = cache / "weights" / f"{cfg.name}-{cfg.arch_digest()}-seed{seed}-g{W.GENERATOR_VERSION}.safetensors"
    if not path.exists():
        model = build_model(cfg)
        state = model.models.state_dict()
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        buffers = {k: v.numpy() for k, v in state.items() if k.endswith(("freqs", "input_pos"))}
        W.save(W.generate(shapes, seed, buffers), path)
    weights = W.load(path)
    return weights, {"path": str(path), "digest": W.digest(weights), "kind": f"seeded ({seed})"}


def real_weights(checkpoints: Path) -> tuple[dict, dict]:
    from harness import weights as W

    weights = W.load(checkpoints)
    return weights, {"path": str(checkpoints), "digest": W.digest(weights), "kind": "real"}


def _progress(message: str) -> None:
    """Progress goes to stderr, so stdout starts with the verdict."""
    print(message, file=sys.stderr, flush=True)


def ensure(cfg: S2MelConfig, seed: int = 0, checkpoints: Path | None = None, reference_src: Path | None = None,
           faults: tuple[str, ...] = (), cache: Path = CACHE, log=_progress, replays: bool = True) -> DefaultRun:
    """Capture the reference (float32 and float64) and replay it, reusing whatever is already cached.

    `replays=False` stops after the two captures (all another port's comparison needs)."""
    _quiet_upstream()
    import torch

    from harness.trace import Trace
    from reference_hooks import driver
    from reference_hooks.inputs import make_inputs
    from reference_hooks.upstream import load_upstream
    from reimpl.replay import replay

    source = load_upstream(reference_src)
    weights, ckpt = real_weights(checkpoints) if checkpoints else default_weights(cfg, seed, cache)
    key_ref = _key(cfg.to_dict(), seed, ckpt["digest"], source.as_dict(), _source_digest("reference_hooks", *_TRACE_CODE))
    folder = cache / f"{cfg.name}-{key_ref}"
    inputs = None
    for name, dtype in (("reference.h5", torch.float32), ("reference64.h5", torch.float64)):
        path = folder / name
        if not path.exists():
            log(f"capturing upstream ({cfg.name}, {cfg.steps} steps, {str(dtype)[6:]}) -> {_rel(path)}")
            inputs = inputs or make_inputs(cfg, seed)
            prov = driver.provenance(cfg, source, seed, dtype, ckpt["digest"]) | {"checkpoint": ckpt}
            driver.capture(cfg, weights, inputs, path, prov, seed, dtype=dtype)
    if not replays:
        return DefaultRun(folder / "reference.h5", folder / "reference64.h5", None, None, None)
    code = _source_digest("reimpl", *_TRACE_CODE)
    oracle = folder / f"oracle64-{code}.h5"
    tag = _key(code, sorted(faults))
    free, forced = folder / f"reimpl-{tag}.h5", folder / f"reimpl-forced-{tag}.h5"
    with Trace(folder / "reference.h5") as ref:
        for path, teacher, dtype, with_faults in ((oracle, True, torch.float64, ()), (free, False, torch.float32, faults),
                                                  (forced, True, torch.float32, faults)):
            if not path.exists():
                mode = "teacher-forced" if teacher else "free-running"
                log(f"replaying reimpl ({mode}, {str(dtype)[6:]}{', faults ' + ','.join(with_faults) if with_faults else ''})"
                    f" -> {_rel(path)}")
                replay(ref, weights, path, teacher_forced=teacher, dtype=dtype, faults=with_faults)
    return DefaultRun(folder / "reference.h5", folder / "reference64.h5", oracle, free, forced)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _key(*parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
