"""The report's pipeline diagram: the parts in pipeline order, each coloured by what its stages did, and the
first divergent stage marked on its part.

A porter reads the page from the top: before any number, the diagram says which part of the whole pipeline
went wrong first and which parts only inherited it. It is plain HTML and CSS (no script, no image), drawn
from the comparison's results and the part declarations alone.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

from harness import stages
from harness.compare import Comparison

#: a part's state, worst first: a stage of its own fails; it only inherits error; some stages could not be
#: compared; every compared stage passes; nothing of it was compared
STATES = ("fail", "propagated", "error", "pass", "absent")
CSS = """
.pipeline{display:flex;flex-wrap:wrap;align-items:stretch;gap:0;margin:8px 0 4px}
.pipeline .part{border:2px solid #999;border-radius:6px;padding:6px 10px;min-width:92px;text-align:center;background:#f3f3f3}
.pipeline .arrow{align-self:center;padding:0 6px;color:#888;font-size:18px}
.pipeline .part .name{font-weight:700}.pipeline .part .count{font-size:11px;color:#444}
.pipeline .part.fail{background:#fdecea;border-color:#e0867d}.pipeline .part.propagated{background:#fff6e0;border-color:#e0b45a}
.pipeline .part.error{background:#eee;border-color:#777;border-style:dashed}
.pipeline .part.pass{background:#e7f6ea;border-color:#7cc48a}
.pipeline .part.absent{color:#999;border-style:dotted}.pipeline .part.first{outline:3px solid #c62828;outline-offset:2px}
.pipeline .part .at{font:11px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#c62828;max-width:220px;
  word-break:break-all}
"""


@dataclass(frozen=True)
class PartState:
    """What one part's stages did in a comparison."""

    name: str
    state: str  # one of STATES
    counts: dict[str, int]
    first: str = ""  # the first divergent stage's label, when it lies in this part


def part_states(c: Comparison) -> list[PartState]:
    """Every declared part in pipeline order with its state; the first divergence named on its part."""
    first = c.first_divergence
    out = []
    for part in stages.PARTS:
        mine = [r for r in c.results if r.path.split("/", 1)[0] == part.name]
        counts = {s: sum(r.status == s for r in mine) for s in ("pass", "fail", "propagated", "error", "missing")}
        counts["error"] += counts.pop("missing")
        state = next((s for s in STATES[:-1] if counts.get(s)), "absent")
        at = first.label if any(r is first for r in mine) else ""
        out.append(PartState(part.name, state, counts, at))
    return out


def _box(p: PartState) -> str:
    shown = [f"{n} {word}" for n, word in ((p.counts["pass"], "pass"), (p.counts["fail"], "fail"),
                                           (p.counts["propagated"], "inherit"), (p.counts["error"], "not comparable"))
             if n]
    count = ", ".join(shown) if shown else "not compared"
    at = f'<div class="at">first divergence:<br>{html.escape(p.first)}</div>' if p.first else ""
    cls = f"part {p.state}" + (" first" if p.first else "")
    return (f'<div class="{cls}" data-part="{p.name}" data-state="{p.state}"><div class="name">{p.name}</div>'
            f'<div class="count">{count}</div>{at}</div>')


def render(c: Comparison) -> str:
    """The diagram as one HTML fragment."""
    boxes = [_box(p) for p in part_states(c)]
    return '<div class="pipeline" id="pipeline">' + '<div class="arrow">&rarr;</div>'.join(boxes) + "</div>"
