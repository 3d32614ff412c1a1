"""Compare a candidate trace with a reference trace, stage by stage, in pipeline order.

The result is plain data (`Comparison` of `StageResult`s); the console table, the JSON summary and
later reports only render it and never compute a metric of their own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness import metrics as M
from harness import schema
from harness.tolerance import DEFAULT, Tolerance
from harness.trace import StageInfo, Trace

PASS, FAIL, MISSING, ERROR = "pass", "fail", "missing", "error"


@dataclass(frozen=True)
class StageResult:
    """One stage (one CFG half of it, where it has halves) of the comparison."""

    path: str
    half: str  # "cond", "uncond", or "" for a stage without CFG halves
    layout: str
    status: str  # pass, fail, missing (absent from the candidate), error (cannot be compared)
    propagated: M.Metrics | None  # free-running candidate vs reference
    local: M.Metrics | None = None  # teacher-forced candidate vs reference, when given
    derived: bool = False
    problem: str = ""
    transform: str = ""

    @property
    def label(self) -> str:
        return f"{self.path} ({self.half})" if self.half else self.path

    @property
    def passed(self) -> bool:
        return self.status == PASS


@dataclass(frozen=True)
class Comparison:
    reference: str
    candidate: str
    forced: str | None
    reference_provenance: dict
    candidate_provenance: dict
    selection: str | None
    tolerance: Tolerance
    results: tuple[StageResult, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failures(self) -> list[StageResult]:
        return [r for r in self.results if not r.passed]

    @property
    def first_failure(self) -> StageResult | None:
        return next((r for r in self.results if not r.passed), None)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def compare_traces(ref: Trace, cand: Trace, *, forced: Trace | None = None, stage: str | None = None,
                   tolerance: Tolerance = DEFAULT) -> Comparison:
    """Compare every selected reference stage with the candidate (and its teacher-forced run)."""
    select = schema.selector(stage)
    warnings = [f"{t.path} is incomplete (the run was interrupted)" for t in (ref, cand, forced) if t and not t.complete]
    results: list[StageResult] = []
    for info in ref.stages():
        if not select(info.path):
            continue
        results.extend(_compare_stage(ref, cand, forced, info, tolerance))
    extra = [s.path for s in cand.stages() if s.path not in ref and select(s.path)]
    if extra:
        warnings.append(f"{len(extra)} candidate stage(s) absent from the reference, e.g. {extra[0]}")
    return Comparison(
        reference=str(ref.path), candidate=str(cand.path), forced=str(forced.path) if forced else None,
        reference_provenance=ref.provenance, candidate_provenance=cand.provenance, selection=stage,
        tolerance=tolerance, results=tuple(results), warnings=tuple(warnings),
    )


def _halves(info: StageInfo) -> list[tuple[str, tuple]]:
    """The CFG halves of a stage as (name, index on axis 0); a stage without halves is whole."""
    if info.cfg != schema.CFG_BOTH:
        return [("", ())]
    n = info.shape[0] // 2
    return [(schema.CFG_COND, (slice(0, n),)), (schema.CFG_UNCOND, (slice(n, 2 * n),))]


def _compare_stage(ref: Trace, cand: Trace, forced: Trace | None, info: StageInfo,
                   tol: Tolerance) -> list[StageResult]:
    out = []
    for half, index in _halves(info):
        base = dict(path=info.path, half=half, layout=info.layout, derived=info.derived)
        if info.path not in cand:
            out.append(StageResult(**base, status=MISSING, propagated=None, problem="absent from the candidate trace"))
            continue
        r = ref.read(info.path, index)
        got, transform, problem = _aligned(cand, info, index, r.shape)
        if problem:
            out.append(StageResult(**base, status=ERROR, propagated=None, problem=problem))
            continue
        prop = M.compute(r, got)
        local = None
        if forced is not None and info.path in forced:
            f, _, f_problem = _aligned(forced, info, index, r.shape)
            local = None if f_problem else M.compute(r, f)
        status = PASS if tol.passes(prop) else FAIL
        problem = _nonfinite_note(prop)
        out.append(StageResult(**base, status=status, propagated=prop, local=local, problem=problem, transform=transform))
    return out


def _aligned(trace: Trace, ref_info: StageInfo, index: tuple, want: tuple) -> tuple[np.ndarray | None, str, str]:
    """Read a candidate stage in the reference's layout; a declared permutation is applied and said."""
    info = trace.info(ref_info.path)
    if info.cfg != ref_info.cfg:
        return None, "", f"CFG arrangement {info.cfg!r}, reference has {ref_info.cfg!r}"
    data = trace.read(info.path, index)
    transform = ""
    if info.layout != ref_info.layout:
        axes_c, axes_r = info.layout.split(), ref_info.layout.split()
        if sorted(axes_c) != sorted(axes_r):
            return None, "", f"layout {info.layout!r} cannot be mapped onto the reference's {ref_info.layout!r}"
        data = np.transpose(data, [axes_c.index(a) for a in axes_r])
        transform = f"transposed {info.layout} -> {ref_info.layout}"
    if data.shape != want:
        return None, transform, f"shape {tuple(data.shape)} vs reference {tuple(want)}"
    return data, transform, ""


def _nonfinite_note(m: M.Metrics) -> str:
    if m.cand_nonfinite:
        return f"{m.cand_nonfinite} NaN/Inf value(s) in the candidate"
    if m.ref_nonfinite:
        return f"{m.ref_nonfinite} NaN/Inf value(s) in the reference"
    return ""
