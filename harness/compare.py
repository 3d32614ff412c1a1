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

import numpy as np

from harness import audio_metrics, coverage, diagnosis, floors, runs, shapes, stages
from harness import metrics as M
from harness.align import aligned, halves
from harness.judge import Judged, incompatible, judge
from harness.neighbours import case_for
from harness.precision import Detector, Profile, suggestion
from harness.tolerance import DEFAULT, FALLBACK_RULE, FLOOR_RULE, Rule, Tolerances
from harness.trace import Floor, StageInfo, Trace

PASS, FAIL, PROPAGATED, MISSING, ERROR = "pass", "fail", "propagated", "missing", "error"
MAX_DIAGNOSED = 8  # failing stages that get hints, beyond the first divergence (hints read other stages; each
# costs about a second on a 1024-wide stage: 24 made hints most of a failing compare's time)


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
    diagnosed: bool = False  # the hint families were tried on it (the first divergence and the next few failures)
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
    advice: tuple[str, ...] = ()  # where to look next (e.g. which earlier stages a partial dump should add)
    profile: dict | None = None  # the precision profile the candidate was judged by (harness/precision.py)
    detected_precision: str = ""  # without a profile: the reduced precision the candidate looks like
    coverage: dict = field(default_factory=dict)  # what the selection and the map promised, what was compared
    incomplete: tuple[str, ...] = ()  # roles whose trace was interrupted: such a comparison is never a pass

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
        return bool(self.compared) and not self.failures and not self.incomplete

    @property
    def has_local(self) -> bool:
        return any(r.local is not None for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def compare_traces(traces: TraceSet, *, stage: str | None = None, tolerances: Tolerances = DEFAULT,
                   profile: str | None = None) -> Comparison:
    select = stages.selector(stage)
    ref = traces.reference
    runs.check_same_run({role: t.provenance for role, t in traces.roles().items()},
                        {role: str(t.path) for role, t in traces.roles().items()})
    detector = Detector()
    plain: set[tuple[str, str]] = set()
    warnings = [f"{role} trace {t.path} is incomplete (the run was interrupted)"
                for role, t in traces.roles().items() if not t.complete]
    with_floors = floors.valid(ref)
    judged_by = _profile(ref, profile, with_floors)
    if ref.has_floors and not with_floors:
        warnings.append(f"{ref.path} holds noise floors of another run (its provenance changed); they are ignored")
    results: list[StageResult] = []
    for info in ref.stages():
        if select(info.path):
            for r in _compare_stage(traces, info, tolerances, with_floors, judged_by, detector):
                results.append(r)
                if r.is_root_candidate and _plain(traces, info, r.half, ref.read(info.path, dict(halves(info))[r.half])):
                    plain.add((r.path, r.half))
    results, unverified = _mark_unverified(ref, results)
    if unverified:
        warnings.append(f"{unverified} recomputed stage(s) of the reference do not match the upstream values that "
                        "follow them (a modified reference?); they are marked unverified")
    results = _diagnose_plain(traces, results, plain)
    missing = [r for r in results if r.status == MISSING]
    if missing:
        warnings.append(f"{len(missing)} reference stage(s) absent from the candidate, e.g. {missing[0].label}")
    extra = [s.path for s in traces.candidate.stages() if s.path not in ref and select(s.path)]
    if extra:
        warnings.append(f"{len(extra)} candidate stage(s) absent from the reference, e.g. {extra[0]}")
    results = tuple(results)
    detected = "" if judged_by else detector.detected()
    if detected:
        warnings.append(suggestion(detected))
    return Comparison(
        traces={role: str(t.path) for role, t in traces.roles().items()},
        provenance={role: t.provenance for role, t in traces.roles().items()},
        selection=stage, tolerances=tolerances, results=results, warnings=tuple(warnings),
        rule=FLOOR_RULE if with_floors else FALLBACK_RULE, profile=judged_by.to_json() if judged_by else None,
        detected_precision=detected, coverage=coverage.of(results, traces.candidate.provenance),
        incomplete=tuple(role for role, t in traces.roles().items() if not t.complete), advice=_advice(results),
    )


ADVISED = 6  # earlier stages named when a partial dump's first divergence is its first stage of a part


def _advice(results: list[StageResult]) -> tuple[str, ...]:
    """When the first divergence is the first stage a port provides in its part, name the earlier stages of
    that part it could dump to localise the bug further (nearest first)."""
    first = next((r for r in results if r.is_root_candidate), None)
    if first is None:
        return ()
    part = first.path.split("/", 1)[0]
    at = results.index(first)
    earlier = [r for r in results[:at] if r.path.split("/", 1)[0] == part]
    if not earlier or any(r.status != MISSING for r in earlier):
        return ()
    names = list(dict.fromkeys(r.path for r in reversed(earlier)))[:ADVISED]
    more = len({r.path for r in earlier}) - len(names)
    return (f"{first.label} is the first stage of {part} the candidate provides: dump earlier stages of {part} "
            f"to localise the bug further, nearest first: {', '.join(names)}"
            + (f" (and {more} more; `harness stages REF --stage {part}` lists them)" if more > 0 else ""),)


def _profile(ref: Trace, dtype: str | None, with_floors: bool) -> Profile | None:
    """The precision profile asked for: measured where the reference holds (valid) floors of that dtype."""
    if not dtype:
        return None
    return Profile(dtype, measured=with_floors and any(dtype in s.precision_floors for s in ref.stages()))


def _judge_side(trace: Trace, info: StageInfo, half: str, ref, rule: Rule, floor: Floor | None,
                detector: Detector | None, free_running: bool = False) -> tuple[Judged | None, str, str]:
    """(verdict or None where nothing could be measured, transform said, problem) of one candidate trace.

    A shape or axis that differs from the reference's is a divergence here, judged on the overlap. Free-running,
    integers of a float stage (int16 audio) may differ from the reference as much as its own float64 run does
    (harness/judge.py); teacher-forced, they are exact."""
    cand, transform, problem = aligned(trace, info, half, ref.shape)
    if cand is None:
        raw = shapes.read_half(trace, info, half)
        if raw is None:
            return None, transform, problem
        clash = incompatible(ref, raw)  # what the values are, before how many there are
        if clash:
            return Judged(False, None, None, clash), transform, clash
        ref_part, cand_part, problem = shapes.overlap(raw, trace.info(info.path).layout, ref, info.layout)
        if ref_part is None:
            return Judged(False, None, None, problem), transform, problem
        j = judge(ref_part, cand_part, rule, floor, info.kind == stages.EXACT, free_running)
        within = "; the overlap is within tolerance" if j.ok else ""
        return Judged(False, j.metrics, j.allowed, problem + within), transform, problem + within
    if detector is not None:
        detector.see(ref, cand, trace.info(info.path).dtype)
    j = judge(ref, cand, rule, floor, info.kind == stages.EXACT, free_running)
    return j, transform, j.note


def _heard(ref: np.ndarray, candidate: Trace, info: StageInfo) -> audio_metrics.AudioMetrics | None:
    """An audio stage's measures as heard (level, delay, spectrum), where the candidate holds real samples."""
    cand = candidate.read(info.path)
    if ref.dtype.kind not in "fiu" or cand.dtype.kind not in "fiu" or cand.size == 0:
        return None
    return audio_metrics.compute(ref, cand, info.sample_rate)


def _plain(ts: TraceSet, info: StageInfo, half: str, ref) -> bool:
    """Real, finite numbers on both sides (floats, integers such as int16 audio, booleans such as a sampler's
    kept set): what the diagnosis hints are written for."""
    if ref.dtype.kind not in "fiub" or not np.isfinite(ref).all():
        return False
    for trace in (ts.candidate, ts.forced):
        if trace is not None and info.path in trace:
            cand = shapes.read_half(trace, info, half)
            if cand is not None and (cand.dtype.kind not in "fiub" or not np.isfinite(cand).all()):
                return False
    return True


def _diagnose_plain(ts: TraceSet, results: list[StageResult], plain: set) -> list[StageResult]:
    """Hints for the stages whose values the hint tests can read; the others keep their problem line."""
    at = [i for i, r in enumerate(results) if (r.path, r.half) in plain]
    out = list(results)
    for i, r in zip(at, _diagnose(ts, [results[i] for i in at])):
        out[i] = r
    return out


def _compare_stage(ts: TraceSet, info: StageInfo, tol: Tolerances, with_floors: bool, profile: Profile | None,
                   detector: Detector) -> list[StageResult]:
    rule = tol.rule_for(info.path)
    out = []
    for half, index in halves(info):
        base = dict(path=info.path, half=half, layout=info.layout, derived=info.derived)
        if info.path not in ts.candidate:
            out.append(StageResult(**base, status=MISSING, problem="absent from the candidate trace"))
            continue
        ref = ts.reference.read(info.path, index)
        if info.kind == stages.AUDIO:  # as heard: measured even where the lengths differ
            base["audio"] = _heard(ref, ts.candidate, info)
        prop_floor = info.propagated_floor.get(half) if with_floors else None
        local_floor = info.local_floor.get(half) if with_floors else None
        prop_rule = local_rule = rule
        if profile is not None:
            measured = info.precision_floors.get(profile.dtype, {}).get(half) if profile.measured else None
            prop_rule, prop_floor = profile.adjust(rule, prop_floor, measured)
            local_rule, local_floor = profile.adjust(rule, local_floor, None)
        prop, transform, problem = _judge_side(ts.candidate, info, half, ref, prop_rule, prop_floor, detector,
                                               free_running=True)
        if prop is None and problem.startswith("the candidate holds only"):
            out.append(StageResult(**base, status=MISSING, problem=problem))
            continue
        if prop is None:
            out.append(StageResult(**base, status=ERROR, problem=problem))
            continue
        local = None
        if ts.forced is not None and info.path in ts.forced:
            local, _, local_problem = _judge_side(ts.forced, info, half, ref, local_rule, local_floor, None)
            problem = problem or local_problem
        if (local is not None and not local.ok) or (local is None and not prop.ok):
            status = FAIL
        elif not prop.ok:
            status = PROPAGATED
        else:
            status = PASS
        lm = local.metrics if local is not None else None
        out.append(StageResult(
            **base, status=status, local=lm, local_floor=local_floor if lm else None,
            local_allowed=local.allowed if local is not None else None,
            propagated=prop.metrics, propagated_floor=prop_floor if prop.metrics else None,
            propagated_allowed=prop.allowed, problem=problem or _nonfinite_note(prop.metrics, lm), transform=transform,
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
    by_label = {r.label: r for r in results}
    for r in results:
        if r.is_root_candidate and budget > 0:
            budget -= 1
            hints = tuple(_hints_for(ts, r, _twin(r, by_label)))
            r = StageResult(**{**vars(r), "hints": hints, "diagnosed": True})
        out.append(r)
    return out


def _twin(r: StageResult, by_label: dict[str, StageResult]) -> tuple[str, float, float] | None:
    """The other CFG half of a stage: its label, error and allowed error (the error that decided it)."""
    if not r.half:
        return None
    other = by_label.get(f"{r.path} ({'uncond' if r.half == 'cond' else 'cond'})")
    if other is None or other.status in (MISSING, ERROR):
        return None
    if other.local is not None:
        return other.label, other.local.rmse, other.local_allowed
    if other.propagated is None:  # a shape problem: nothing was measured on that half
        return None
    return other.label, other.propagated.rmse, other.propagated_allowed


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


def _hints_for(ts: TraceSet, r: StageResult, twin=None) -> list[diagnosis.Hint]:
    info = ts.reference.info(r.path)
    ref, cand = diff_source(ts, r)
    if cand is None:  # a shape or layout problem: the raw tensor is what the hints examine
        source = ts.forced if ts.forced is not None and r.path in ts.forced else ts.candidate
        if r.path not in source:
            return []
        cand_info = source.info(r.path)
        index = dict(halves(cand_info)).get(r.half, ()) if cand_info.cfg == info.cfg else ()
        cand = source.read(r.path, index)
    return diagnosis.diagnose(case_for(ts.reference, info, r.half, ref, cand, r.label, twin))
