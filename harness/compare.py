"""Compare a candidate with the reference stage by stage, in pipeline order, and find the root cause.

Up to three traces take part (`TraceSet`): the float32 reference (holding its own noise floors), the
candidate free-running, and the candidate teacher-forced. For each stage this gives two errors, each
against its own noise floor (harness/floors.py, harness/tolerance.py):

- local error: the teacher-forced candidate (fed the reference's inputs to the stage) against the
  reference; its floor is the error float32 makes computing that stage alone.
- propagated error: the free-running candidate against the reference; its floor is the error float32
  accumulates up to that stage.

The first divergence is the earliest stage whose local error fails; later stages that fail only in
propagated error are its consequences. Without teacher-forced data the propagated error decides.
The result is plain data; the console, JSON, JUnit and HTML outputs only render it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from harness import audio_metrics, diagnosis, floors, stages
from harness import metrics as M
from harness.align import aligned, halves
from harness.neighbours import hint_context
from harness.tolerance import DEFAULT, FALLBACK_RULE, FLOOR_RULE, Tolerances
from harness.trace import Floor, StageInfo, Trace

PASS, FAIL, PROPAGATED, MISSING, ERROR = "pass", "fail", "propagated", "missing", "error"
MAX_DIAGNOSED = 24  # failing stages that get hints, beyond the first divergence (hints read other stages)


@dataclass(frozen=True)
class TraceSet:
    reference: Trace
    candidate: Trace
    forced: Trace | None = None

    def roles(self) -> dict[str, Trace]:
        return {k: v for k, v in vars(self).items() if v is not None}


@contextlib.contextmanager
def open_traces(reference, candidate, forced=None) -> Iterator[TraceSet]:
    """Open the traces of a comparison by path (None: not taking part); all are closed afterwards."""
    paths = dict(reference=reference, candidate=candidate, forced=forced)
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
    local_floor: Floor | None = None
    local_allowed: float | None = None
    propagated: M.Metrics | None = None
    propagated_floor: Floor | None = None
    propagated_allowed: float | None = None
    derived: bool = False
    problem: str = ""
    transform: str = ""
    hints: tuple[diagnosis.Hint, ...] = ()
    audio: audio_metrics.AudioMetrics | None = None  # audio stages: the free-running candidate, as heard

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
    rule: str = FLOOR_RULE  # "floors": the reference's noise floors decided; "fallback": rel-L2 <= 1e-4

    @property
    def first_divergence(self) -> StageResult | None:
        return next((r for r in self.results if r.is_root_candidate), None) or next(
            (r for r in self.results if r.failed), None)

    @property
    def failures(self) -> list[StageResult]:
        return [r for r in self.results if r.failed]

    @property
    def compared(self) -> list[StageResult]:
        return [r for r in self.results if r.status != MISSING]

    @property
    def passed(self) -> bool:
        return bool(self.compared) and not self.failures

    @property
    def has_local(self) -> bool:
        return any(r.local is not None for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def compare_traces(traces: TraceSet, *, stage: str | None = None, tolerances: Tolerances = DEFAULT) -> Comparison:
    select = stages.selector(stage)
    ref = traces.reference
    warnings = [f"{role} trace {t.path} is incomplete (the run was interrupted)"
                for role, t in traces.roles().items() if not t.complete]
    with_floors = floors.valid(ref)
    if ref.has_floors and not with_floors:
        warnings.append(f"{ref.path} holds noise floors of another run (its provenance changed); they are ignored")
    results: list[StageResult] = []
    for info in ref.stages():
        if select(info.path):
            results.extend(_compare_stage(traces, info, tolerances, with_floors))
    results, unverified = _mark_unverified(ref, results)
    if unverified:
        warnings.append(f"{unverified} recomputed stage(s) of the reference do not match the upstream values that "
                        "follow them (a modified reference?); they are marked unverified")
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
        rule=FLOOR_RULE if with_floors else FALLBACK_RULE,
    )


def _compare_stage(ts: TraceSet, info: StageInfo, tol: Tolerances, with_floors: bool) -> list[StageResult]:
    rule = tol.rule_for(info.path)
    out = []
    for half, index in halves(info):
        base = dict(path=info.path, half=half, layout=info.layout, derived=info.derived)
        if info.path not in ts.candidate:
            out.append(StageResult(**base, status=MISSING, problem="absent from the candidate trace"))
            continue
        ref = ts.reference.read(info.path, index)
        cand, transform, problem = aligned(ts.candidate, info, half, ref.shape)
        if problem.startswith("the candidate holds only"):
            out.append(StageResult(**base, status=MISSING, problem=problem))
            continue
        if info.kind == stages.AUDIO:  # as heard: measured even where the lengths differ
            base["audio"] = audio_metrics.compute(ref, ts.candidate.read(info.path), info.sample_rate)
        if problem:
            out.append(StageResult(**base, status=ERROR, problem=problem))
            continue
        forced = None
        if ts.forced is not None and info.path in ts.forced:
            forced = aligned(ts.forced, info, half, ref.shape)[0]
        prop_floor = info.propagated_floor.get(half) if with_floors else None
        local_floor = info.local_floor.get(half) if with_floors else None
        prop = M.compute(ref, cand)
        prop_ok = rule.passes(prop, prop_floor)
        local = M.compute(ref, forced) if forced is not None else None
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


def _mark_unverified(ref: Trace, results: list[StageResult]) -> tuple[list[StageResult], int]:
    """A derived stage whose capture-time check against upstream failed says so on every output."""
    checks = ref.provenance.get("derived_checks") or {}
    bad = {path: msg for path, msg in checks.items() if not str(msg).startswith("ok")}
    if not bad:
        return results, 0
    out = []
    for r in results:
        if r.path in bad:
            note = f"unverified: {bad[r.path]}"
            r = StageResult(**{**vars(r), "problem": f"{r.problem}; {note}" if r.problem else note})
        out.append(r)
    return out, len(bad)


def _nonfinite_note(*ms: M.Metrics | None) -> str:
    for m in ms:
        if m is not None and m.cand_nonfinite:
            return f"{m.cand_nonfinite} NaN/Inf value(s) in the candidate"
        if m is not None and m.ref_nonfinite:
            return f"{m.ref_nonfinite} NaN/Inf value(s) in the reference"
    return ""


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


def diff_source(ts: TraceSet, r: StageResult):
    """(reference, candidate) of a failing stage's half, the candidate teacher-forced where there is one
    (a stage's own bug shows cleanest where it was fed the reference's inputs); the candidate is None
    where it cannot be aligned."""
    info = ts.reference.info(r.path)
    index = dict(halves(info)).get(r.half, ())
    ref = ts.reference.read(r.path, index)
    source = ts.forced if ts.forced is not None and r.path in ts.forced else ts.candidate
    if r.path not in source:
        return ref, None
    cand, _, problem = aligned(source, info, r.half, ref.shape)
    return ref, (None if problem else cand)


def _hints_for(ts: TraceSet, r: StageResult) -> list[diagnosis.Hint]:
    info = ts.reference.info(r.path)
    ref, cand = diff_source(ts, r)
    if cand is None:  # a shape or layout problem: the raw tensor is what the hints examine
        source = ts.forced if ts.forced is not None and r.path in ts.forced else ts.candidate
        if r.path not in source:
            return []
        cand_info = source.info(r.path)
        index = dict(halves(cand_info)).get(r.half, ()) if cand_info.cfg == info.cfg else ()
        cand = source.read(r.path, index)
    others, cfg_parts = hint_context(ts.reference, info, r.half, ref.shape)
    return diagnosis.diagnose(ref, cand, info.layout, others=others, cfg_parts=cfg_parts)
