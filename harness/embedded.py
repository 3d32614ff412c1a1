"""The embedded default: seeded checkpoint, reference capture and our replays, built once and cached.

`harness compare` with no traces lands here. Nothing needs a network or a real checkpoint. Each
artefact is keyed by everything that decides its content (config, seed, steps, checkpoint, upstream
source and version, and the source code of the side that made it), so a change in any of them makes
a fresh one and a re-run with none is instant.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness.configs import S2MelConfig

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "reports" / "cache"


@dataclass(frozen=True)
class DefaultRun:
    reference: Path
    free: Path
    forced: Path


def _source_digest(*packages: str) -> str:
    h = hashlib.sha256()
    for pkg in packages:
        for f in sorted((ROOT / pkg).rglob("*.py")):
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

    path = cache / "weights" / f"{cfg.name}-{cfg.digest()}-seed{seed}.safetensors"
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


def ensure(cfg: S2MelConfig, seed: int = 0, checkpoints: Path | None = None, reference_src: Path | None = None,
           cache: Path = CACHE, log=print) -> DefaultRun:
    """Capture the reference and replay it both ways, reusing whatever is already cached."""
    _quiet_upstream()
    import torch

    from reference_hooks import driver
    from reference_hooks.inputs import make_inputs
    from reference_hooks.upstream import load_upstream
    from reimpl.replay import replay
    from harness.trace import Trace

    source = load_upstream(reference_src)
    weights, ckpt = real_weights(checkpoints) if checkpoints else default_weights(cfg, seed, cache)
    key_ref = _key(cfg.to_dict(), seed, ckpt["digest"], source.as_dict(), _source_digest("reference_hooks", "harness"))
    ref_path = cache / f"{cfg.name}-{key_ref}" / "reference.h5"
    if not ref_path.exists():
        log(f"capturing upstream ({cfg.name}, {cfg.steps} steps) -> {ref_path.relative_to(ROOT)}")
        inputs = make_inputs(cfg, seed)
        prov = driver.provenance(cfg, source, seed, torch.float32, ckpt["digest"]) | {"checkpoint": ckpt}
        driver.capture(cfg, weights, inputs, ref_path, prov, seed)
    key_ours = _key(key_ref, _source_digest("reimpl"))
    free = ref_path.parent / f"reimpl-{key_ours}.h5"
    forced = ref_path.parent / f"reimpl-forced-{key_ours}.h5"
    with Trace(ref_path) as ref:
        for path, teacher in ((free, False), (forced, True)):
            if not path.exists():
                log(f"replaying reimpl ({'teacher-forced' if teacher else 'free-running'}) -> {path.relative_to(ROOT)}")
                replay(ref, weights, path, teacher_forced=teacher)
    return DefaultRun(ref_path, free, forced)


def _key(*parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
