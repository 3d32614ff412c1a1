"""The terminal rendering of a comparison: the verdict line first, then the stage table."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from harness import coverage, diagnosis
from harness.compare import Comparison, StageResult
from harness.metrics import Metrics
from harness.precision import FALLBACK_UNITS, UNIT_ROUNDOFF, suggestion
from harness.trace import Floor


def _g(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.1e}" if x == x else "nan"


def _pick(r: StageResult) -> tuple[str, Metrics | None, Floor | None, float | None]:
    """The error that decided the stage: local where there is one, else propagated."""
    if r.local is not None and r.status != "propagated":
        return "local", r.local, r.local_floor, r.local_allowed
    return "propagated", r.propagated, r.propagated_floor, r.propagated_allowed


def verdict_line(c: Comparison) -> str:
    """One line that says it first: pass, or the first divergence with its size, floor and hint."""
    n = len(c.results)
    if not n:
        return (f"NOTHING COMPARED: the selection {c.selection or '(all)'} matches no stage of the reference trace "
                "(`harness stages REF` lists what it holds)")
    if not c.compared:
        return (f"NOTHING COMPARED: the candidate provides none of the {n} selected reference stages"
                + coverage.why_nothing(c.coverage))
    return _with_notes(c, _verdict(c, n))


def _verdict(c: Comparison, n: int) -> str:
    if c.incomplete and not c.failures:
        return (f"NOT A PASS: the {' and '.join(c.incomplete)} trace{'s were' if len(c.incomplete) > 1 else ' was'} "
                f"interrupted (incomplete); the {len(c.compared)} stages compared are within tolerance, the rest of "
                "the run is unknown")
    if c.passed:
        basis = "local and propagated" if c.has_local else "propagated"
        missing = sum(r.status == "missing" for r in c.results)
        scope = f"all {n} stages" if not missing else f"all {n - missing} compared stages ({missing} not provided)"
        if c.rule == "fallback":
            rel = c.tolerances.default.rel_l2
            if c.profile:
                rel = max(rel, FALLBACK_UNITS * UNIT_ROUNDOFF[c.profile["dtype"]])
            return (f"PASS: {scope} within the fallback rule rel-L2 <= {rel:g} ({basis} "
                    "error; the reference has no noise floors: capture it with `harness capture` to get them)")
        return f"PASS: {scope} within tolerance ({basis} error vs the reference's own noise floor)"
    r = c.first_divergence
    return f"first divergence: {r.label} - {failure_detail(r)}"


def _with_notes(c: Comparison, text: str) -> str:
    """The clauses every verdict carries when they apply: a small share compared, the precision profile."""
    short = coverage.shortfall(c.coverage)
    if short:
        text += f" - {short}"
    if c.profile:
        text += f" [{c.profile['description']}]"
    elif c.detected_precision:
        text += f" - note: {suggestion(c.detected_precision)}"
    return text


def failure_detail(r: StageResult) -> str:
    """What, how much, against what floor, and the best hint: the shape of every failure message."""
    if r.status in ("error", "missing"):
        text = f"{r.status}: {r.problem}"
    elif _pick(r)[1] is None:  # nothing to measure (byte strings, no overlap): the problem says it all
        text = r.problem or r.status
    else:
        kind, err, floor, allowed = _pick(r)
        shape = r.problem.startswith("shape ")  # a different shape: say so first, the metrics are the overlap's
        text = f"{r.problem}; " if shape else ""
        text += f"{kind} rel-L2 {_g(err.rel_l2)}"
        text += f" vs floor {_g(floor.rel_l2)}" if floor is not None else " (no noise floor: fallback rule)"
        text += f", max|err| {_g(err.max_abs)} at {list(err.max_abs_index)}"
        if allowed is not None and err.rmse > allowed:
            text += f", RMSE {_g(err.rmse)} > allowed {_g(allowed)}"
        if kind == "propagated" and r.local is None:
            text += " (no teacher-forced run: propagated error decides)"
        if r.problem and not shape:
            text += f"; {r.problem}"
    if r.audio is not None:
        text += f"; {r.audio.summary()}"
    if r.diagnosed:
        text += f"; {diagnosis.first_line(r.hints)}"
    return text


def render(c: Comparison, console: Console | None = None, max_rows: int | None = None) -> None:
    """The verdict, the warnings, the stage table and the verdict again.

    Plain text with columns sized to their contents, so no stage name or number is ever cut whatever the
    terminal's width; a stage's note (problem, transform, hint) goes on its own line below its row.
    """
    console = console or Console(highlight=False, soft_wrap=True)
    say = lambda text, style="": console.print(escape(text), style=style or None, soft_wrap=True)  # noqa: E731
    say(verdict_line(c))
    for a in c.advice:
        say(f"advice: {a}")
    for w in c.warnings:
        say(f"warning: {w}")
    # stages a (foreign) candidate does not provide are counted, not listed one by one
    shown = [(i, r) for i, r in enumerate(c.results) if r.status != "missing"]
    rows = shown if max_rows is None else _around_first(shown, c.first_divergence, max_rows)
    first = c.first_divergence
    width = max([len(_label(r)) for _, r in rows] + [5])
    digits = max(len(str(len(c.results))), 1)
    say(f"{'#':>{digits}}  {'stage':<{width}}  {'local':>8}  {'floor':>8}  {'propagated':>10}  {'floor':>8}  "
        f"{'max|err|':>8}  {'cosine':>9}", "bold")
    previous = None
    for i, r in rows:
        if previous is not None and i != previous + 1:
            say(f"{'...':>{digits}}")
        previous = i
        line, note = _row(i, r, r is first, width, digits)
        say(line, _STYLE.get(r.status, "bold red"))
        if note:
            say(f"{'':>{digits}}  {note}", "dim")
    if len(shown) < len(c.results):
        say(f"{len(c.results) - len(shown)} reference stages the candidate does not provide are not listed "
            "(status 'missing' in the JSON summary)")
    if len(rows) < len(shown):
        say(f"{len(shown) - len(rows)} more rows in the JSON summary (--rows N shows N rows around the first "
            "divergence)")
    say(f"{len(c.results)} stages: {sum(r.status == 'pass' for r in c.results)} pass, "
        f"{sum(r.status == 'fail' for r in c.results)} fail, "
        f"{sum(r.status == 'propagated' for r in c.results)} inherit error, "
        f"{sum(r.status in ('error', 'missing') for r in c.results)} not comparable. " + _basis(c))
    say(verdict_line(c))
    if first is not None:
        zoom = first.path.rsplit("/", 1)[0]
        say(f"Note: zoom in with `harness compare ... --stage {zoom}`; the JSON summary has every metric.")


_STYLE = {"pass": "", "fail": "bold red", "propagated": "yellow"}


def _around_first(shown: list, first: StageResult | None, n: int) -> list:
    """At most n rows: those around the first divergence (or the first n when there is none)."""
    if n <= 0 or not shown:
        return []
    at = next((k for k, (_, r) in enumerate(shown) if r is first), 0)
    start = max(0, min(at - n // 2, len(shown) - n))
    return shown[start : start + n]


def _basis(c: Comparison) -> str:
    if c.rule == "fallback":
        return (f"No noise floors in the reference: {c.tolerances.default.describe(with_floor=False)}; "
                "`harness capture` stores floors.")
    return "Errors are relative L2 against the float32 reference; floor = its own error against float64."


def _label(r: StageResult) -> str:
    return r.label + (" (derived)" if r.derived else "")


def _row(i: int, r: StageResult, is_first: bool, width: int, digits: int) -> tuple[str, str]:
    status = {"pass": "pass", "fail": "FAIL", "propagated": "inherits"}.get(r.status, r.status)
    if is_first:
        status += " <- first divergence"
    err = r.propagated or r.local
    cells = [_g(r.local.rel_l2) if r.local else "-", _g(r.local_floor.rel_l2) if r.local_floor else "-",
             _g(r.propagated.rel_l2) if r.propagated else "-",
             _g(r.propagated_floor.rel_l2) if r.propagated_floor else "-", _g(err.max_abs) if err else "-"]
    cosine = f"{err.cosine:.6f}" if err and err.cosine == err.cosine else "-"
    line = (f"{i:>{digits}}  {_label(r):<{width}}  {cells[0]:>8}  {cells[1]:>8}  {cells[2]:>10}  {cells[3]:>8}  "
            f"{cells[4]:>8}  {cosine:>9}  {status}")
    audio = r.audio.summary() if r.audio is not None else ""
    note = "; ".join(x for x in (r.problem, r.transform, audio, diagnosis.first_line(r.hints) if r.diagnosed else "")
                     if x)
    return line, note


def progress(message: str) -> None:
    """Progress and notes go to stderr, so stdout starts with the verdict."""
    import sys

    print(message, file=sys.stderr, flush=True)
