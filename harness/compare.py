"""Compare a candidate with the reference stage by stage, in pipeline order, and find the root cause.

Up to five traces take part (`TraceSet`): the float32 reference, the candidate free-running, the
candidate teacher-forced, the reference again in float64, and a float64 teacher-forced oracle.
For each stage this gives two errors, each against its own noise floor:

- local error: the teacher-forced candidate (fed the reference's inputs to the stage) against the
  float64 oracle fed the same inputs; its floor is the float32 reference against that oracle.
- propagated error: the free-running candidate against the float64 reference; its floor is the
  float32 reference against the float64 reference.

The first divergence is the earliest stage whose local error fails; later stages that fail only in
propagated error are its consequences. Without teacher-forced data the propagated error decides.
The result is plain data; the console, JSON, JUnit and HTML outputs only render it.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from harness import diagnosis, schema
from harness import metrics as M
from harness.tolerance import DEFAULT, Tolerances
from harness.trace import StageInfo, Trace

PASS, FAIL, PROPAGATED, MISSING, ERROR = "pass", "fail", "propagated", "missing", "error"
MAX_DIAGNOSED = 24  # failing stages that get hints, beyond the first divergence (hints read other stages)


@dataclass(frozen=True)
class TraceSet:
    reference: Trace
    candidate: Trace
    forced: Trace | None = None
    reference64: Trace | None = None
    oracle64: Trace | None = None

    def roles(self) -> dict[str, Trace]:
        return {k: v for k, v in vars(self).items() if v is not None}


@contextlib.contextmanager
def open_traces(reference, candidate, forced=None, reference64=None, oracle64=None) -> Iterator[TraceSet]:
    """Open the traces of a comparison by path (None: not taking part); all are closed afterwards."""
    paths = dict(reference=reference, candidate=candidate, forced=forced, reference64=reference64, oracle64=oracle64)
    opened: dict[str, Trace] = {}
    try:
        for role, path in paths.items():
            if path is not None:
                opened[role] = Trace(path)
        yield TraceSet(**opened)
    finally:
        for t in opened.values():
            t.close()


@dataclass(frozen=True)
class StageResult:
    """One stage (one CFG half of it, where it has halves)."""

    path: str
    half: str  # "cond", "uncond", or "" for a stage without CFG halves
    layout: str
    status: str  # pass, fail (its own error), propagated (inherited only), missing, error
    local: M.Metrics | None = None
    local_floor: M.Metrics | None = None
    local_allowed: float | None = None
    propagated: M.Metrics | None = None
    propagated_floor: M.Metrics | None = None
    propagated_allowed: float | None = None
    derived: bool = False
    problem: str = ""
    transform: str = ""
    hints: tuple[diagnosis.Hint, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.path} ({self.half})" if self.half else self.path

    @property
    def failed(self) -> bool:
        return self.status in (FAIL, ERROR, PROPAGATED)

    @property
    def is_root_candidate(self) -> bool:
        return self.status in (FAIL, ERROR)


@dataclass(frozen=True)
class Comparison:
    traces: dict[str, str]
    provenance: dict[str, dict]
    selection: str | None
    tolerances: Tolerances
    results: tuple[StageResult, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def first_divergence(self) -> StageResult | None:
        return next((r for r in self.results if r.is_root_candidate), None) or next(
            (r for r in self.results if r.failed), None)

    @property
    def failures(self) -> list[StageResult]:
        return [r for r in self.results if r.failed]

    @property
    def passed(self) -> bool:
        return bool(self.results) and not self.failures

    @property
    def has_local(self) -> bool:
        return any(r.local is not None for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def compare_traces(traces: TraceSet, *, stage: str | None = None, tolerances: Tolerances = DEFAULT) -> Comparison:
    select = schema.selector(stage)
    ref = traces.reference
    warnings = [f"{role} trace {t.path} is incomplete (the run was interrupted)"
                for role, t in traces.roles().items() if not t.complete]
    results: list[StageResult] = []
    for info in ref.stages():
        if select(info.path):
            results.extend(_compare_stage(traces, info, tolerances))
    results = _diagnose(traces, results)
    missing = [r for r in results if r.status == MISSING]
    if missing:
        warnings.append(f"{len(missing)} reference stage(s) absent from the candidate, e.g. {missing[0].label}")
    extra = [s.path for s in traces.candidate.stages() if s.path not in ref and select(s.path)]
    if extra:
        warnings.append(f"{len(extra)} candidate stage(s) absent from the reference, e.g. {extra[0]}")
    return Comparison(
        traces={role: str(t.path) for role, t in traces.roles().items()},
        provenance={role: t.provenance for role, t in traces.roles().items()},
        selection=stage, tolerances=tolerances, results=tuple(results), warnings=tuple(warnings),
    )


def _halves(info: StageInfo) -> list[tuple[str, tuple]]:
    if info.cfg != schema.CFG_BOTH:
        return [("", ())]
    n = info.shape[0] // 2
    return [(schema.CFG_COND, (slice(0, n),)), (schema.CFG_UNCOND, (slice(n, 2 * n),))]


def _compare_stage(ts: TraceSet, info: StageInfo, tol: Tolerances) -> list[StageResult]:
    rule = tol.rule_for(info.path)
    out = []
    for half, index in _halves(info):
        base = dict(path=info.path, half=half, layout=info.layout, derived=info.derived)
        if info.path not in ts.candidate:
            out.append(StageResult(**base, status=MISSING, problem="absent from the candidate trace"))
            continue
        ref32 = ts.reference.read(info.path, index)
        cand, transform, problem = aligned(ts.candidate, info, half, ref32.shape)
        if problem.startswith("the candidate holds only"):
            out.append(StageResult(**base, status=MISSING, problem=problem))
            continue
        if problem:
            out.append(StageResult(**base, status=ERROR, problem=problem))
            continue
        ref64 = _optional(ts.reference64, info, half, ref32.shape)
        oracle = _optional(ts.oracle64, info, half, ref32.shape)
        forced = _optional(ts.forced, info, half, ref32.shape)
        prop_target = ref64 if ref64 is not None else ref32
        prop = M.compute(prop_target, cand)
        prop_floor = M.compute(ref64, ref32) if ref64 is not None else None
        local = local_floor = None
        if forced is not None:
            local_target = oracle if oracle is not None else ref32
            local = M.compute(local_target, forced)
            local_floor = M.compute(oracle, ref32) if oracle is not None else None
        prop_ok = rule.passes(prop, prop_floor)
        local_ok = rule.passes(local, local_floor) if local is not None else None
        if local_ok is False or (local_ok is None and not prop_ok):
            status = FAIL
        elif not prop_ok:
            status = PROPAGATED
        else:
            status = PASS
        out.append(StageResult(
            **base, status=status, local=local, local_floor=local_floor,
            local_allowed=rule.allowed(local, local_floor) if local is not None else None,
            propagated=prop, propagated_floor=prop_floor, propagated_allowed=rule.allowed(prop, prop_floor),
            problem=_nonfinite_note(prop, local), transform=transform,
        ))
    return out


def _optional(trace: Trace | None, info: StageInfo, half: str, shape: tuple) -> np.ndarray | None:
    if trace is None or info.path not in trace:
        return None
    data, _, problem = aligned(trace, info, half, shape)
    return None if problem else data


def aligned(trace: Trace, ref_info: StageInfo, half: str, want: tuple) -> tuple[np.ndarray | None, str, str]:
    """Read one half of a stage in the reference's layout; a declared permutation is applied and said.

    A candidate may hold a batched CFG pair (like the reference) or each half on its own.
    """
    info = trace.info(ref_info.path)
    if info.cfg == ref_info.cfg:
        index = half_index(info, half)
    elif ref_info.cfg == schema.CFG_BOTH and info.cfg in schema.HALVES:
        if info.cfg != half:
            return None, "", f"the candidate holds only the {info.cfg} half"
        index = ()
    else:
        return None, "", f"CFG arrangement {info.cfg!r}, reference has {ref_info.cfg!r}"
    data = trace.read(info.path, index)
    transform = ""
    if info.layout != ref_info.layout:
        axes_c, axes_r = info.layout.split(), ref_info.layout.split()
        if sorted(axes_c) != sorted(axes_r) or len(axes_c) != data.ndim:
            return None, "", f"layout {info.layout!r} cannot be mapped onto the reference's {ref_info.layout!r}"
        data = np.transpose(data, [axes_c.index(a) for a in axes_r])
        transform = f"transposed {info.layout} -> {ref_info.layout}"
    if data.shape != want:
        return None, transform, f"shape {tuple(data.shape)} vs reference {tuple(want)} ({ref_info.layout})"
    return data, transform, ""


def _nonfinite_note(*ms: M.Metrics | None) -> str:
    for m in ms:
        if m is not None and m.cand_nonfinite:
            return f"{m.cand_nonfinite} NaN/Inf value(s) in the candidate"
        if m is not None and m.ref_nonfinite:
            return f"{m.ref_nonfinite} NaN/Inf value(s) in the reference"
    return ""


# ---------------------------------------------------------------- diagnosis of failing stages

def _diagnose(ts: TraceSet, results: list[StageResult]) -> list[StageResult]:
    """Attach hints to the first divergence and to the first few other failing stages."""
    out, budget = [], MAX_DIAGNOSED + 1
    for r in results:
        if r.is_root_candidate and budget > 0:
            budget -= 1
            hints = tuple(_hints_for(ts, r))
            r = StageResult(**{**vars(r), "hints": hints}) if hints else r
        out.append(r)
    return out


def _hints_for(ts: TraceSet, r: StageResult) -> list[diagnosis.Hint]:
    info = ts.reference.info(r.path)
    index = half_index(info, r.half)
    ref = ts.reference.read(r.path, index)
    # the stage's own bug shows cleanest where it was fed the reference's inputs
    source = ts.forced if ts.forced is not None and r.path in ts.forced else ts.candidate
    if r.path not in source:
        return []
    cand, _, problem = aligned(source, info, r.half, ref.shape)
    if problem:  # a shape or layout problem: the raw tensor is what the hints examine
        cand_info = source.info(r.path)
        cand = source.read(r.path, half_index(cand_info, r.half) if cand_info.cfg == info.cfg else ())
    cfg_parts = None
    if r.path.endswith("/v_cfg"):
        step = r.path.rsplit("/", 1)[0]
        rate = (ts.reference.provenance.get("config_json") or {}).get("cfg_rate")
        if f"{step}/v_cond" in ts.reference and f"{step}/v_uncond" in ts.reference:
            cfg_parts = (ts.reference.read(f"{step}/v_cond"), ts.reference.read(f"{step}/v_uncond"), rate)
    return diagnosis.diagnose(ref, cand, info.layout, others=lambda: _neighbours(ts.reference, info, r.half, ref.shape),
                              cfg_parts=cfg_parts)


def half_index(info: StageInfo, half: str) -> tuple:
    for name, index in _halves(info):
        if name == half:
            return index
    return ()


def _neighbours(ref: Trace, info: StageInfo, half: str, shape: tuple) -> dict[str, np.ndarray]:
    """Reference stages a misplaced value may have come from: the same step or block, the other CFG
    half of the stage itself, the set-up of the CFM, and the inputs."""
    step = schema.step_of(info.path)
    parent = info.path.rsplit("/", 1)[0]
    out: dict[str, np.ndarray] = {}
    if info.cfg == schema.CFG_BOTH:  # the other CFG half of the stage itself comes first
        twin = schema.CFG_UNCOND if half == schema.CFG_COND else schema.CFG_COND
        out[f"{info.path} ({twin})"] = ref.read(info.path, half_index(info, twin))
    for other in ref.stages():
        if other.path == info.path:
            continue
        near = other.path.startswith(parent + "/") or other.path.rsplit("/", 1)[0] == parent or (
            step is not None and schema.step_of(other.path) == step) or other.path.startswith(("inputs/", "cfm/"))
        if not near or schema.step_of(other.path) not in (None, step):
            continue
        index = half_index(other, half) if other.cfg == schema.CFG_BOTH else ()
        expect = tuple(other.shape)
        if index:
            expect = (other.shape[0] // 2, *other.shape[1:])
        if expect != tuple(shape):
            continue
        name = f"{other.path} ({half})" if index else other.path
        out[name] = ref.read(other.path, index)
    return out
