"""The terminal rendering of a comparison: a verdict line, then the stage table in pipeline order."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from harness.compare import Comparison, StageResult
from harness.metrics import Metrics


def verdict_line(c: Comparison) -> str:
    n = len(c.results)
    if not n:
        return "no stages compared (the selection matched nothing in the reference trace)"
    if c.passed:
        return f"PASS: all {n} stages within tolerance ({c.tolerance.describe()})"
    first = c.first_failure
    return (f"FAIL: {len(c.failures)} of {n} stages out of tolerance; first: {first.label} "
            f"{_failure_detail(first, c)}")


def _failure_detail(r: StageResult, c: Comparison) -> str:
    if r.propagated is None:
        return f"({r.status}: {r.problem})"
    m = r.propagated
    extra = f"; {r.problem}" if r.problem else ""
    return (f"(rel-L2 {_g(m.rel_l2)}, max|err| {_g(m.max_abs)} at {list(m.max_abs_index)}; "
            f"allowed {c.tolerance.describe()}{extra})")


def _g(x: float) -> str:
    return f"{x:.2e}" if x == x else "nan"


def render(c: Comparison, console: Console | None = None, max_rows: int | None = None) -> None:
    console = console or Console(highlight=False)
    console.print(verdict_line(c))
    for w in c.warnings:
        console.print(f"warning: {w}")
    table = Table(show_lines=False, header_style="bold", pad_edge=False, box=None)
    for col, just in (("#", "right"), ("stage", "left"), ("layout", "left"), ("ref mean", "right"),
                      ("ref std", "right"), ("cand mean", "right"), ("max|err|", "right"),
                      ("rel-L2", "right"), ("local rel-L2", "right"), ("cosine", "right"), ("", "left")):
        table.add_column(col, justify=just, no_wrap=True)
    rows = c.results if max_rows is None else c.results[:max_rows]
    for i, r in enumerate(rows):
        table.add_row(*_row(i, r))
    console.print(table)
    if max_rows is not None and len(c.results) > max_rows:
        console.print(f"... {len(c.results) - max_rows} more stages (see the JSON summary)")
    console.print(verdict_line(c))


def _row(i: int, r: StageResult) -> list[str]:
    status = {"pass": "[green]pass[/]", "fail": "[bold red]FAIL[/]"}.get(r.status, f"[yellow]{r.status}[/]")
    label = r.label + (" [dim](derived)[/]" if r.derived else "")
    if r.propagated is None:
        return [str(i), label, r.layout, "", "", "", "", "", "", "", f"{status} {r.problem}"]
    m: Metrics = r.propagated
    local = _g(r.local.rel_l2) if r.local else "-"
    note = " ".join(x for x in (r.problem, r.transform) if x)
    return [str(i), label, r.layout, f"{m.ref_mean:+.4f}", f"{m.ref_std:.4f}", f"{m.cand_mean:+.4f}",
            _g(m.max_abs), _g(m.rel_l2), local, f"{m.cosine:.7f}", f"{status} {note}".rstrip()]
