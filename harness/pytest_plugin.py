"""pytest plugin: parity of a port's trace against a reference trace, one pytest item per stage group.

Registered through the `pytest11` entry point, so installing indextts-parity is enough. Two ways in:

1. Command line, no test code at all:
       pytest --parity-ref reference.h5 --parity-cand my_port.h5 [--parity-forced F] [--parity-stage dit]
   A port that dumps its own tensors (safetensors, npz, a folder of .npy) adds --parity-map MAP.toml.
   This adds one item per stage group, as each stage declares it (the inputs, each length-regulator half,
   the CFM set-up, each ODE step, the final mel, ...).
2. A few lines of test code, with the `parity` fixture:
       import pytest
       from harness.pytest_plugin import stage_groups
       REF, CAND = "reference.h5", "my_port.h5"
       @pytest.mark.parametrize("group", stage_groups(REF))
       def test_parity(parity, group):
           parity(REF, CAND).check(group)
A failing item's message is the verdict line of the first failing stage of its group. A group of which
the candidate provides no stage is skipped with the reason, never passed. Bad options and unreadable
files are usage errors (one line), not failures.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

from harness import stages
from harness.compare import Comparison, StageResult, compare_traces, open_traces
from harness.console import failure_detail, verdict_line
from harness.errors import UserError
from harness.precision import CHOICES
from harness.trace import Trace


def group_of(path: str) -> str:
    """The report group a stage path belongs to, as its declaration says (`cfm/seg_00/step_03`, ...)."""
    spec = stages.find_spec(path)
    return spec.group_of(path) if spec is not None else path.split("/", 1)[0]


#: bad input met while a test module was imported (`stage_groups`): raised as one usage error after collection
_COLLECTION_ERRORS: list[str] = []


def _usage_error(exc: UserError):
    """Bad input met inside a test: end the session as a usage error, in one line."""
    pytest.exit(f"indextts-parity: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


def stage_groups(reference: str | Path, stage: str | None = None) -> list[str]:
    """The stage groups a reference trace holds, in pipeline order (for `parametrize`).

    An unreadable reference gives no groups here (so the module imports) and one usage error once
    collection ends, never a collection error with a traceback."""
    try:
        select = stages.selector(stage)
        with Trace(reference) as ref:
            groups = [group_of(s.path) for s in ref.stages() if select(s.path)]
    except UserError as exc:
        _COLLECTION_ERRORS.append(f"indextts-parity: {exc}")
        return []
    return list(dict.fromkeys(groups))


@dataclass(frozen=True)
class ParityResult:
    comparison: Comparison

    def group(self, name: str) -> list[StageResult]:
        return [r for r in self.comparison.results if group_of(r.path) == name]

    def check(self, name: str) -> None:
        __tracebackhide__ = True
        if not self.comparison.compared:  # nothing compared is never a pass, nor a skip
            pytest.fail(verdict_line(self.comparison), pytrace=False)
        results = self.group(name)
        if not results:
            pytest.fail(f"no stage of group {name!r} in the reference trace", pytrace=False)
        compared = [r for r in results if r.status != "missing"]
        if not compared:
            pytest.skip(f"the candidate provides none of the {len(results)} stage(s) of group {name}")
        bad = [r for r in compared if r.failed]
        if bad:
            more = f" (+{len(bad) - 1} more failing stage(s) in this group)" if len(bad) > 1 else ""
            first = self.comparison.first_divergence
            where = " [first divergence of the run]" if first in bad else ""
            pytest.fail(f"{bad[0].label}{where}: {failure_detail(bad[0])}{more}", pytrace=False)


@lru_cache(maxsize=8)
def _compare(reference: str, candidate: str, forced: str | None, stage: str | None,
             map_path: str | None = None, profile: str | None = None) -> ParityResult:
    from harness.foreign import as_traces

    p = lambda x: Path(x) if x else None  # noqa: E731
    cand, forced_trace = as_traces(Path(reference), Path(candidate), p(forced), p(map_path))
    with open_traces(reference, cand, forced_trace) as traces:
        return ParityResult(compare_traces(traces, stage=stage, profile=profile))


@pytest.fixture
def parity():
    """`parity(ref, cand, forced=None, stage=None, map=None, candidate_dtype=None)` -> ParityResult."""

    def run(reference, candidate, forced=None, stage=None, map=None, candidate_dtype=None) -> ParityResult:
        s = lambda p: str(p) if p else None  # noqa: E731
        try:
            return _compare(s(reference), s(candidate), s(forced), stage, s(map), candidate_dtype)
        except UserError as exc:
            _usage_error(exc)

    return run


def pytest_addoption(parser) -> None:
    g = parser.getgroup("indextts-parity", "IndexTTS2 parity of a trace against a reference trace")
    g.addoption("--parity-ref", help="reference trace (from `harness capture`, with its noise floors)")
    g.addoption("--parity-cand", help="candidate: a trace, or a port's dump (.safetensors, .npz, .npy folder) with --parity-map")
    g.addoption("--parity-forced", help="the candidate's teacher-forced trace, if it has one")
    g.addoption("--parity-stage", help="only stages matching this selection (e.g. dit)")
    g.addoption("--parity-map", help="TOML map of a foreign candidate's tensor names and layouts onto our stages")
    g.addoption("--parity-candidate-dtype", choices=CHOICES, default=None,
                help="precision profile of a float16/bfloat16/int8 port (see `harness compare --help`)")


class ParityItem(pytest.Item):
    def __init__(self, *, group: str, **kw):
        super().__init__(**kw)
        self.group = group

    def runtest(self) -> None:
        _from_options(self.config.option).check(self.group)

    def repr_failure(self, excinfo, style=None):
        return str(excinfo.value)

    def reportinfo(self):
        return self.config.option.parity_cand, None, f"parity {self.group}"


class NothingComparedItem(pytest.Item):
    """The one item of a run that compared nothing: it fails with the verdict line (never a pass or a skip)."""

    def runtest(self) -> None:
        pytest.fail(verdict_line(_from_options(self.config.option).comparison), pytrace=False)

    def repr_failure(self, excinfo, style=None):
        return str(excinfo.value)

    def reportinfo(self):
        return self.config.option.parity_cand, None, "parity: nothing compared"


class ParityCollector(pytest.Collector):
    def collect(self):
        o = self.config.option
        if not _from_options(o).comparison.compared:
            yield NothingComparedItem.from_parent(self, name="nothing-compared")
            return
        for group in stage_groups(o.parity_ref, o.parity_stage):
            yield ParityItem.from_parent(self, name=group, group=group)


def _from_options(o) -> ParityResult:
    return _compare(o.parity_ref, o.parity_cand, o.parity_forced, o.parity_stage, o.parity_map,
                    o.parity_candidate_dtype)


_DEPENDENT = ("parity_forced", "parity_stage", "parity_map", "parity_candidate_dtype")


def pytest_configure(config) -> None:
    """Every --parity-* option is checked, and every file read, before collection: a problem is one usage
    error (pytest's exit code 4), never an INTERNALERROR and never a run of failed items."""
    o = config.option
    if not (getattr(o, "parity_ref", None) or getattr(o, "parity_cand", None)):
        given = [f"--{name.replace('_', '-')}" for name in _DEPENDENT if getattr(o, name, None)]
        if given:
            raise pytest.UsageError(f"indextts-parity: {given[0]} needs --parity-ref and --parity-cand")
        return
    if not (o.parity_ref and o.parity_cand):
        raise pytest.UsageError("indextts-parity: --parity-ref and --parity-cand go together")
    try:
        _from_options(o)
    except UserError as exc:
        raise pytest.UsageError(f"indextts-parity: {exc}") from None


def pytest_collection_modifyitems(session, config, items) -> None:
    if _COLLECTION_ERRORS:
        raise pytest.UsageError(_COLLECTION_ERRORS[0])
    if config.option.parity_ref and config.option.parity_cand:
        items.extend(ParityCollector.from_parent(session, name="parity").collect())
