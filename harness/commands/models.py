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

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness import cache, floors
from harness import weights as W
from harness.configs import CONFIGS, PipelineConfig
from harness.console import progress
from harness.detail import for_config
from harness.errors import UserError
from harness.files import atomic, publish
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


def seeded_paths(config: PipelineConfig, seed: int, parts) -> dict[str, Path]:
    """Where each part's seeded checkpoint lives in the cache (made or not), by everything that decides its values."""
    from reference_hooks.weights import GENERATOR_VERSION

    return {part: cache.folder("weights") /
            f"{config.name}-{part}-{config.arch_digest(part)}-seed{seed}-g{GENERATOR_VERSION}.safetensors"
            for part in parts}


def seeded_weights(config: PipelineConfig, seed: int, reference_src: Path | None = None, log=progress,
                   parts: tuple[str, ...] | list[str] | None = None) -> tuple[dict, dict]:
    """Every part's (or these parts') seeded checkpoint (generated from upstream's parameter names on first use)
    and its record."""
    from reference_hooks import driver

    load_upstream(reference_src)  # parameter names and shapes come from the upstream being compared
    out, files, digests = {}, {}, {}
    for part, path in seeded_paths(config, seed, parts or driver.SEEDED).items():
        with cache.making(path):
            if not path.exists():
                log(f"generating seeded weights ({config.name}, {part}) -> {path}")
                W.save(driver.seeded_weights(config, part, seed), path)
        cache.touch(path)
        out[part], digests[part] = _loaded(path)
        files[part] = str(path)
    return out, {"kind": f"seeded ({seed})", "files": files, "digest": key(dict(sorted(digests.items())))}


#: seeded checkpoints already read in this process, by file: (its mtime, its weights, their digest); a test
#: session reads the same few files hundreds of times
_LOADED: dict[Path, tuple[int, dict, str]] = {}


def _loaded(path: Path) -> tuple[dict, str]:
    stamp = path.stat().st_mtime_ns
    hit = _LOADED.get(path)
    if hit is None or hit[0] != stamp:
        weights = W.load(path)
        hit = _LOADED[path] = (stamp, weights, W.digest(weights))
    return hit[1], hit[2]


def real_weights(checkpoints: Path, hf_cache: Path | None = None) -> tuple[dict, dict]:
    """Real weights from a checkpoint folder, official or partial (reference_hooks/checkpoint_folder.py)."""
    from reference_hooks import checkpoint_folder

    out, record = checkpoint_folder.read(Path(checkpoints), hf_cache, CONFIGS)
    return out, {**record, "digest": _digest(out)}


def export_official(config: PipelineConfig, seed: int, out: Path) -> tuple[dict, Path, Path]:
    """The seeded weights of a config and seed as IndexTTS2's official layout in `out`: the layout written once into
    the user's cache (reference_hooks/official_layout.py, the writer the class check runs the class on), copied file
    by file, then read back as `--checkpoints` reads it. Returns (that record, model_dir, the hub cache)."""
    from reference_hooks import official_layout

    cached = official_layout.ensure(config, seed, log=progress)
    for rel in [*cached.manifest()["files"], official_layout.MANIFEST]:
        with atomic(Path(out) / rel) as tmp:
            shutil.copyfile(cached.root / rel, tmp)  # streamed: a real-size gpt.pth is gigabytes
    layout = official_layout.Layout(Path(out))
    _, record = real_weights(layout.model_dir, layout.hf_home / "hub")
    return record, layout.model_dir, layout.hf_home / "hub"


def checkpoint_config(checkpoints: Path, hf_cache: Path | None = None) -> PipelineConfig | None:
    """The embedded config an official layout's config files describe (None for a folder of the older kind)."""
    from reference_hooks import checkpoint_folder

    return checkpoint_folder.config_of(Path(checkpoints), hf_cache, CONFIGS)


def _digest(weights: dict[str, dict]) -> str:
    return key({part: W.digest(w) for part, w in sorted(weights.items())})


def reference_weights(reference: Path) -> dict[str, dict]:
    """The weights a reference trace was captured with, from its provenance: its real checkpoint folder, its
    seeded files while the cache holds them, else made again from its config and seed (and refused unless
    they have the digest the trace recorded)."""
    with Trace(reference) as ref:
        ckpt = ref.provenance.get("checkpoint") or {}
        config_json, seed = ref.provenance.get("config_json"), ref.provenance.get("seed")
    if not isinstance(ckpt, dict):
        raise UserError(f"{reference}: its provenance's checkpoint is not a record; capture it again")
    if ckpt.get("kind") == "real":
        return real_weights(Path(ckpt["path"]), ckpt.get("hf_cache"))[0]
    if ckpt.get("files") and all(Path(p).is_file() for p in ckpt["files"].values()):
        return {part: W.load(path) for part, path in ckpt["files"].items()}
    if str(ckpt.get("kind", "")).startswith("seeded") and isinstance(config_json, dict) and isinstance(seed, int):
        # the seeded weights were evicted from the cache: made again from the config and seed
        weights, made = seeded_weights(PipelineConfig.from_dict(config_json), seed)
        if made["digest"] != ckpt.get("digest"):
            raise UserError(f"{reference}: its seeded weights cannot be made again (digest {made['digest']} vs "
                            f"{ckpt.get('digest')}); capture it again with `harness capture`")
        return weights
    raise UserError(f"{reference} names no checkpoint; capture it again with `harness capture`")


def weights_for(config: PipelineConfig, seed: int, checkpoints: Path | None, reference_src: Path | None = None,
                hf_cache: Path | None = None) -> tuple[dict, dict]:
    if not checkpoints:
        return seeded_weights(config, seed, reference_src)
    from reference_hooks import driver

    out, record = real_weights(checkpoints, hf_cache)
    missing = [part for part in driver.SEEDED if part not in out]  # e.g. no bigvgan_generator.pt in the folder
    if missing:
        seeded, seeded_record = seeded_weights(config, seed, reference_src, parts=missing)
        out.update(seeded)
        record = {**record, "seeded_parts": seeded_record["files"], "digest": _digest(out)}
    return out, record


def check_speaker(config: PipelineConfig, speaker: Path, reference_src: Path | None = None) -> None:
    """A speaker recording upstream cannot turn into a style vector is bad input, said in one line before
    anything runs (reference_hooks/inputs.py says what upstream would do with it)."""
    from reference_hooks.inputs import check

    load_upstream(reference_src)
    check(speaker, config.frontend, config.style)


def source_for(seed: int, speaker: Path | None, text: str = DEFAULT_TEXT, emo: Path | None = None):
    from reference_hooks.inputs import FIXTURE_WAV, Source

    return Source(seed=seed, speaker=Path(speaker) if speaker is not None else FIXTURE_WAV, text=text,
                  emo=Path(emo) if emo is not None else None)


def check_emotion(emo: Path | None) -> None:
    """An emotion recording upstream's emotion path cannot load is bad input, in one line, before anything runs."""
    if emo is not None:
        from reference_hooks.inputs import check_emotion as check

        check(Path(emo))


def _check_derived(trace: Path, strict: bool, log) -> None:
    """Warn (or, strict, refuse) when a recomputed stage differs from the upstream value that follows it."""

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


@contextlib.contextmanager
def upstream_rejects(location: str | None):
    """Where the user handed upstream something (real checkpoints, a clone) and upstream's own code raises,
    that is bad input: exit 2 quoting upstream's message in one line. (Our glue's errors stay internal.)"""
    try:
        yield
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AssertionError, SyntaxError) as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        if location and frames and frames[-1].filename.startswith(str(location)):
            where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"
            text = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise UserError(f"upstream rejects this input ({where}): {type(exc).__name__}: {text}") from None
        raise


def check_text(config: PipelineConfig, weights: dict, text: str) -> None:
    """Bad text is one line (exit 2) before anything runs: upstream makes no segment of it, or too many."""
    from reference_hooks import gpt
    from reference_hooks.gpt_weights import tokenizer_bytes

    gpt.check_text(config.gpt, tokenizer_bytes(weights["gpt"]), text)


def capture(config: PipelineConfig, weights: dict, checkpoint: dict, out: Path, *, seed: int = 0,
            reference_src: Path | None = None, detail: str = "default", with_floors: bool = True,
            dtype: str = "float32", strict: bool = False, precisions: tuple[str, ...] = (), log=progress,
            speaker: Path | None = None, text: str = DEFAULT_TEXT, emo: Path | None = None) -> Path:
    """Capture upstream into `out`; with floors, run it again in float64 and ours in float64 teacher-forced,
    store every stage's floors in the trace, then publish it. `precisions` (float16, bfloat16): also run
    upstream under CPU autocast in each (as upstream runs its own fp16 mode) and store that run's error
    against float64 as the measured floors of that precision profile (harness/precision.py)."""
    import torch

    from reference_hooks import driver

    upstream = load_upstream(reference_src)
    check_text(config, weights, text)
    source = source_for(seed, speaker, text, emo)
    policy = for_config(detail, config)
    torch_dtype = torch.float64 if dtype == "float64" else torch.float32
    prov = driver.provenance(config, upstream, source, torch_dtype, checkpoint, policy)
    user_given = checkpoint.get("kind") == "real" or reference_src is not None
    with upstream_rejects(upstream.location if user_given else None):
        given = _float32_inputs(config, weights, source, out, prov, policy) if dtype == "float64" else None
        tmp = driver.capture(config, weights, source, out, prov, dtype=torch_dtype, detail=policy, given=given,
                             publish=False)
    _check_derived(tmp, strict, log)
    if not with_floors or dtype == "float64":
        return publish(tmp, out)
    from reimpl.driver import replay

    try:
        with tempfile.TemporaryDirectory(dir=out.parent) as scratch, Trace(tmp) as ref32:
            ref64, oracle = Path(scratch) / "reference64.h5", Path(scratch) / "oracle64.h5"
            log(f"noise floors: upstream in float64 ({config.name}, {config.cfm.steps} steps)")
            driver.capture(config, weights, source, ref64, prov | {"dtype": "float64"}, dtype=torch.float64,
                           detail=policy, given=driver.given_from(ref32, torch.float64))
            log("noise floors: our reimplementation in float64, teacher-forced")
            replay(ref32, weights, oracle, teacher_forced=True, dtype=torch.float64)
            with Trace(ref64) as r64, Trace(oracle) as o64:
                values = floors.compute(ref32, r64, o64)
            for name in precisions:
                log(f"noise floors: upstream under {name} autocast (the {name} precision profile)")
                reduced = Path(scratch) / f"reference-{name}.h5"
                driver.capture(config, weights, source, reduced, prov | {"autocast": name}, dtype=torch.float32,
                               detail=policy, given=driver.given_from(ref32, torch.float32),
                               autocast=getattr(torch, name))
                with Trace(ref64) as r64, Trace(reduced) as rd:
                    for stage, prop in floors.compute_reduced(ref32, r64, rd, name).items():
                        values.setdefault(stage, {})[f"{name}_prop"] = prop
        floors.attach(tmp, values, prov, "float64 upstream (propagated) and float64 reimpl teacher-forced (local)")
    except BaseException as exc:  # interrupted while computing floors: the partial must read as incomplete
        _mark_incomplete(tmp, f"{type(exc).__name__} while computing noise floors")
        raise
    return publish(tmp, out)


def _float32_inputs(config, weights, source, out: Path, prov: dict, policy) -> dict:
    """The recorded inputs and draws of a float32 run, widened: a float64 capture starts where the float32 one
    does (the recording's mel is computed in float32, as upstream computes it), as the floors' float64 run."""
    import torch

    from reference_hooks import driver

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        ref32 = driver.capture(config, weights, source, Path(scratch) / "reference32.h5", prov | {"dtype": "float32"},
                               dtype=torch.float32, detail=policy)
        with Trace(ref32) as t:
            return driver.given_from(t, torch.float64)


def _mark_incomplete(path: Path, reason: str) -> None:
    import h5py

    try:
        with h5py.File(path, "r+") as f:
            f.attrs["complete"] = False
            prov = json.loads(f.attrs.get("provenance", "{}"))
            f.attrs["provenance"] = json.dumps(prov | {"interrupted": reason}, sort_keys=True, default=str)
    except (OSError, ValueError):
        pass


def ensure(config: PipelineConfig, seed: int = 0, checkpoints: Path | None = None, reference_src: Path | None = None,
           faults: tuple[str, ...] = (), detail: str = "default", log=progress, replays: bool = True,
           speaker: Path | None = None, text: str = DEFAULT_TEXT, part: str | None = None,
           emo: Path | None = None, hf_cache: Path | None = None) -> DefaultRun:
    """The embedded default (or another --speaker recording or --text): capture the reference (with floors) and
    replay it, reusing whatever is cached.

    `replays=False` stops after the capture (all another port's comparison needs); `part` replays only that
    part, fed the reference's boundary stages (what a bug inside one part needs to be found)."""
    import torch

    upstream = load_upstream(reference_src)
    source = source_for(seed, speaker, text, emo)
    check_speaker(config, source.speaker, reference_src)
    check_emotion(source.emo)
    weights, ckpt = weights_for(config, seed, checkpoints, reference_src, hf_cache)
    code = source_digest("reference_hooks", "reimpl", *TRACE_CODE)
    # the checkpoint's kind too: an official layout exported from seeded weights holds the same tensors, and its
    # trace's provenance says where they were read
    ident = key(config.to_dict(), seed, ckpt["digest"], ckpt.get("kind"), ckpt.get("path"), upstream.as_dict(), detail,
                code, torch.get_num_threads(), source.digest())
    folder = cache.folder("runs") / f"{config.name}-{ident}"
    reference = folder / "reference.h5"
    with cache.making(reference):
        if not reference.exists():
            log(f"capturing upstream ({config.name}, {config.cfm.steps} steps, detail {detail}) -> {reference}")
            capture(config, weights, ckpt, reference, seed=seed, reference_src=reference_src, detail=detail,
                    log=log, speaker=source.speaker, text=source.text, emo=source.emo)
    cache.touch(folder)
    if replays:
        tag = key(sorted(faults)) + (f"-{part}" if part else "")
        free, forced = folder / f"reimpl-{tag}.h5", folder / f"reimpl-forced-{tag}.h5"
        replay_pair(reference, weights, free, forced, faults, log, part=part)
    cache.enforce()  # the budget: least recently used entries go, never one used in the last hour
    return DefaultRun(reference, free, forced) if replays else DefaultRun(reference, None, None)


def replay_pair(reference: Path, weights: dict, free: Path, forced: Path, faults=(), log=progress,
                part: str | None = None) -> None:
    from reimpl.driver import replay

    with Trace(reference) as ref:
        for path, teacher in ((free, False), (forced, True)):
            with cache.making(path):
                if not path.exists():
                    mode = "teacher-forced" if teacher else "free-running"
                    log(f"replaying reimpl ({mode}{', faults ' + ','.join(faults) if faults else ''}) -> {path}")
                    replay(ref, weights, path, teacher_forced=teacher, faults=tuple(faults), part=part)


def replay(reference: Path, weights: dict, out: Path, *, teacher_forced: bool, faults=(), part: str | None = None):
    from reimpl.driver import replay as run

    with Trace(reference) as ref:
        return run(ref, weights, out, teacher_forced=teacher_forced, faults=tuple(faults), part=part)
