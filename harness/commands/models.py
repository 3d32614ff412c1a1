"""The one place where harness commands reach the model packages (`reference_hooks`, `reimpl`, torch).

Every import of a model package by a command goes through a function here, lazily, so the comparison core
stays torch-free and `harness compare REF CAND` runs without torch. Everything here is cached under the
user's cache folder (harness/paths.py), keyed by everything that decides its content, so a change in any
of them makes a fresh artefact and a re-run with none is instant:
- seeded weights, one safetensors file per part;
- the reference trace (float32, hooked) with its noise floors (computed once from a float64 upstream run
  and a float64 teacher-forced run of ours, then the float64 traces are discarded);
- our replays, free-running and teacher-forced, with the faults asked for.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness import floors
from harness import weights as W
from harness.configs import PipelineConfig
from harness.console import progress
from harness.detail import for_config
from harness.files import publish
from harness.paths import cache_dir
from harness.stages.inputs import DEFAULT_TEXT
from harness.trace import Trace

ROOT = Path(__file__).resolve().parents[2]
#: harness files whose change changes what a trace holds
TRACE_CODE = ("harness/trace.py", "harness/stages", "harness/configs.py", "harness/detail.py", "harness/floors.py",
              "harness/pipeline.py")


@dataclass(frozen=True)
class DefaultRun:
    reference: Path  # upstream, float32, hooked, with its noise floors
    free: Path | None  # reimpl, float32, free-running (with the faults asked for)
    forced: Path | None  # reimpl, float32, teacher-forced (with the faults asked for)

    def roles(self) -> dict[str, Path]:
        """The paths by their role in a comparison (see harness.compare.open_traces)."""
        return dict(reference=self.reference, candidate=self.free, forced=self.forced)


def quiet_upstream() -> None:
    """Upstream prints a tqdm bar per CFM call and warns about the old weight_norm API; transformers warns that
    GPT2Config's default bos/eos ids (50256) are outside IndexTTS's vocabulary (they are never used: generate
    is given its own). None of it is ours."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", message=".*weight_norm.*", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)


def source_digest(*parts: str) -> str:
    """A hash of the source that made an artefact: package folders or single files."""
    h = hashlib.sha256()
    for part in parts:
        target = ROOT / part
        for f in sorted(target.rglob("*.py")) if target.is_dir() else [target]:
            h.update(f.relative_to(ROOT).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def load_upstream(reference_src: Path | None = None):
    from reference_hooks.upstream import load_upstream as load

    quiet_upstream()
    return load(reference_src)


def seeded_weights(config: PipelineConfig, seed: int, reference_src: Path | None = None, log=progress
                   ) -> tuple[dict, dict]:
    """Every part's seeded checkpoint (generated from upstream's parameter names on first use) and its record."""
    from reference_hooks import driver
    from reference_hooks.weights import GENERATOR_VERSION

    load_upstream(reference_src)  # parameter names and shapes come from the upstream being compared
    out, files = {}, {}
    for part in driver.SEEDED:
        path = (cache_dir() / "weights" /
                f"{config.name}-{part}-{config.arch_digest(part)}-seed{seed}-g{GENERATOR_VERSION}.safetensors")
        if not path.exists():
            log(f"generating seeded weights ({config.name}, {part}) -> {path}")
            W.save(driver.seeded_weights(config, part, seed), path)
        out[part], files[part] = W.load(path), str(path)
    return out, {"kind": f"seeded ({seed})", "files": files, "digest": _digest(out)}


def real_weights(checkpoints: Path) -> tuple[dict, dict]:
    from reference_hooks.weights import load_s2mel_pth

    out = load_s2mel_pth(Path(checkpoints) / "s2mel.pth")
    return out, {"kind": "real", "path": str(checkpoints), "digest": _digest(out)}


def _digest(weights: dict[str, dict]) -> str:
    return key({part: W.digest(w) for part, w in sorted(weights.items())})


def weights_for(config: PipelineConfig, seed: int, checkpoints: Path | None, reference_src: Path | None = None
                ) -> tuple[dict, dict]:
    return real_weights(checkpoints) if checkpoints else seeded_weights(config, seed, reference_src)


def _check_derived(trace: Path, strict: bool, log) -> None:
    """Warn (or, strict, refuse) when a recomputed stage differs from the upstream value that follows it."""
    from harness.errors import UserError

    with Trace(trace) as t:
        bad = {p: m for p, m in (t.provenance.get("derived_checks") or {}).items() if not str(m).startswith("ok")}
    if not bad:
        return
    path, msg = next(iter(bad.items()))
    text = (f"{len(bad)} recomputed stage(s) do not match upstream, e.g. {path}: {msg} "
            "(is the reference a modified clone?); they are marked unverified")
    if strict:
        raise UserError(f"--strict: {text}; the trace is kept at {trace}")
    log(f"warning: {text}")


def check_text(config: PipelineConfig, weights: dict, text: str) -> None:
    """Bad text is one line (exit 2) before anything runs: upstream makes no segment of it, or too many."""
    from reference_hooks import gpt
    from reference_hooks.gpt_weights import tokenizer_bytes

    gpt.check_text(config.gpt, tokenizer_bytes(weights["gpt"]), text)


def capture(config: PipelineConfig, weights: dict, checkpoint: dict, out: Path, *, seed: int = 0,
            reference_src: Path | None = None, detail: str = "default", with_floors: bool = True,
            dtype: str = "float32", strict: bool = False, text: str = DEFAULT_TEXT, log=progress) -> Path:
    """Capture upstream into `out`; with floors, run it again in float64 and ours in float64 teacher-forced,
    store every stage's floors in the trace, then publish it."""
    import torch

    from reference_hooks import driver
    from reference_hooks.inputs import Source

    upstream = load_upstream(reference_src)
    check_text(config, weights, text)
    source = Source(seed=seed, text=text)
    policy = for_config(detail, config)
    torch_dtype = torch.float64 if dtype == "float64" else torch.float32
    prov = driver.provenance(config, upstream, source, torch_dtype, checkpoint, policy)
    tmp = driver.capture(config, weights, source, out, prov, dtype=torch_dtype, detail=policy, publish=False)
    _check_derived(tmp, strict, log)
    if not with_floors or dtype == "float64":
        return publish(tmp, out)
    from reimpl.driver import replay

    with tempfile.TemporaryDirectory(dir=out.parent) as scratch, Trace(tmp) as ref32:
        ref64, oracle = Path(scratch) / "reference64.h5", Path(scratch) / "oracle64.h5"
        log(f"noise floors: upstream in float64 ({config.name}, {config.cfm.steps} steps)")
        driver.capture(config, weights, source, ref64, prov | {"dtype": "float64"}, dtype=torch.float64,
                       detail=policy, given=driver.given_from(ref32, torch.float64))
        log("noise floors: our reimplementation in float64, teacher-forced")
        replay(ref32, weights, oracle, teacher_forced=True, dtype=torch.float64)
        with Trace(ref64) as r64, Trace(oracle) as o64:
            values = floors.compute(ref32, r64, o64)
    floors.attach(tmp, values, prov, "float64 upstream (propagated) and float64 reimpl teacher-forced (local)")
    return publish(tmp, out)


def ensure(config: PipelineConfig, seed: int = 0, checkpoints: Path | None = None, reference_src: Path | None = None,
           faults: tuple[str, ...] = (), detail: str = "default", log=progress, replays: bool = True,
           text: str = DEFAULT_TEXT) -> DefaultRun:
    """The embedded default: capture the reference (with floors) and replay it, reusing whatever is cached.

    `replays=False` stops after the capture (all another port's comparison needs)."""
    import torch

    upstream = load_upstream(reference_src)
    weights, ckpt = weights_for(config, seed, checkpoints, reference_src)
    code = source_digest("reference_hooks", "reimpl", *TRACE_CODE)
    ident = key(config.to_dict(), seed, ckpt["digest"], upstream.as_dict(), detail, code, torch.get_num_threads(), text)
    folder = cache_dir() / "runs" / f"{config.name}-{ident}"
    reference = folder / "reference.h5"
    if not reference.exists():
        log(f"capturing upstream ({config.name}, {config.cfm.steps} steps, detail {detail}) -> {reference}")
        capture(config, weights, ckpt, reference, seed=seed, reference_src=reference_src, detail=detail, text=text,
                log=log)
    if not replays:
        return DefaultRun(reference, None, None)
    tag = key(sorted(faults))
    free, forced = folder / f"reimpl-{tag}.h5", folder / f"reimpl-forced-{tag}.h5"
    replay_pair(reference, weights, free, forced, faults, log)
    return DefaultRun(reference, free, forced)


def replay_pair(reference: Path, weights: dict, free: Path, forced: Path, faults=(), log=progress,
                part: str | None = None) -> None:
    from reimpl.driver import replay

    with Trace(reference) as ref:
        for path, teacher in ((free, False), (forced, True)):
            if not path.exists():
                mode = "teacher-forced" if teacher else "free-running"
                log(f"replaying reimpl ({mode}{', faults ' + ','.join(faults) if faults else ''}) -> {path}")
                replay(ref, weights, path, teacher_forced=teacher, faults=tuple(faults), part=part)


def replay(reference: Path, weights: dict, out: Path, *, teacher_forced: bool, faults=(), part: str | None = None):
    from reimpl.driver import replay as run

    with Trace(reference) as ref:
        return run(ref, weights, out, teacher_forced=teacher_forced, faults=tuple(faults), part=part)
