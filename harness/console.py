"""The terminal rendering of a comparison: the verdict line first, then the stage table."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.compare import Comparison, StageResult
from harness.metrics import Metrics


def _g(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.1e}" if x == x else "nan"


def _pick(r: StageResult) -> tuple[str, Metrics | None, Metrics | None, float | None]:
    """The error that decided the stage: local where there is one, else propagated."""
    if r.local is not None and r.status != "propagated":
        return "local", r.local, r.local_floor, r.local_allowed
    return "propagated", r.propagated, r.propagated_floor, r.propagated_allowed


def verdict_line(c: Comparison) -> str:
    """One line that says it first: pass, or the first divergence with its size, floor and hint."""
    n = len(c.results)
    if not n:
        return "no stages compared: the selection matched nothing in the reference trace"
    if c.passed:
        basis = "local and propagated" if c.has_local else "propagated"
        missing = sum(r.status == "missing" for r in c.results)
        scope = f"all {n} stages" if not missing else f"all {n - missing} compared stages ({missing} not provided)"
        return f"PASS: {scope} within tolerance ({basis} error vs the reference's own noise floor)"
    r = c.first_divergence
    return f"first divergence: {r.label} - {failure_detail(r)}"


def failure_detail(r: StageResult) -> str:
    """What, how much, against what floor, and the best hint: the shape of every failure message."""
    if r.status in ("error", "missing"):
        text = f"{r.status}: {r.problem}"
    else:
        kind, err, floor, allowed = _pick(r)
        text = f"{kind} rel-L2 {_g(err.rel_l2)}"
        text += f" vs floor {_g(floor.rel_l2)}" if floor is not None else " (no float64 floor)"
        text += f", max|err| {_g(err.max_abs)} at {list(err.max_abs_index)}"
        if allowed is not None:
            text += f", RMSE {_g(err.rmse)} > allowed {_g(allowed)}"
        if kind == "propagated" and r.local is None:
            text += " (no teacher-forced run: propagated error decides)"
        if r.problem:
            text += f"; {r.problem}"
    if r.hints:
        text += f"; hint: {r.hints[0].message}"
    return text


def render(c: Comparison, console: Console | None = None, max_rows: int | None = None) -> None:
    console = console or Console(highlight=False, width=200)
    console.print(escape(verdict_line(c)), soft_wrap=True)
    for w in c.warnings:
        console.print(f"warning: {escape(w)}", soft_wrap=True)
    table = Table(header_style="bold", pad_edge=False, box=None)
    for col, just in (("#", "right"), ("stage", "left"), ("local", "right"), ("floor", "right"),
                      ("propagated", "right"), ("floor", "right"), ("max|err|", "right"),
                      ("cosine", "right"), ("", "left")):
        table.add_column(col, justify=just, no_wrap=True)
    # stages a (foreign) candidate does not provide are counted, not listed one by one
    shown = [(i, r) for i, r in enumerate(c.results) if r.status != "missing"]
    rows = shown if max_rows is None else shown[:max_rows]
    first = c.first_divergence
    for i, r in rows:
        table.add_row(*_row(i, r, r is first))
    console.print(table)
    if len(shown) < len(c.results):
        console.print(f"{len(c.results) - len(shown)} reference stages the candidate does not provide are not listed "
                      "(status 'missing' in the JSON summary)")
    if max_rows is not None and len(shown) > max_rows:
        console.print(f"... {len(shown) - max_rows} more stages (see the JSON summary)")
    console.print(f"{len(c.results)} stages: {sum(r.status == 'pass' for r in c.results)} pass, "
                  f"{sum(r.status == 'fail' for r in c.results)} fail, "
                  f"{sum(r.status == 'propagated' for r in c.results)} inherit error, "
                  f"{sum(r.status in ('error', 'missing') for r in c.results)} not comparable. "
                  "Errors are relative L2 against the float64 run; floor = the float32 reference's own.")
    console.print(escape(verdict_line(c)), soft_wrap=True)
    if first is not None:
        zoom = first.path.rsplit("/", 1)[0]
        console.print(f"Note: zoom in with `harness compare ... --stage {zoom}`; the JSON summary has every metric.")


def _row(i: int, r: StageResult, is_first: bool) -> list[str]:
    status = {"pass": "[green]pass[/]", "fail": "[bold red]FAIL[/]", "propagated": "[yellow]inherits[/]"}.get(
        r.status, f"[bold red]{r.status}[/]")
    if is_first:
        status += " [bold red]<- first divergence[/]"
    label = escape(r.label) + (" [dim](derived)[/]" if r.derived else "")
    note = " ".join(escape(x) for x in (r.problem, r.transform, r.hints[0].message if r.hints else "") if x)
    err = r.propagated or r.local
    return [
        str(i), label,
        _g(r.local.rel_l2) if r.local else "-", _g(r.local_floor.rel_l2) if r.local_floor else "-",
        _g(r.propagated.rel_l2) if r.propagated else "-",
        _g(r.propagated_floor.rel_l2) if r.propagated_floor else "-",
        _g(err.max_abs) if err else "-", f"{err.cosine:.6f}" if err else "-",
        f"{status} {note}".rstrip(),
    ]
