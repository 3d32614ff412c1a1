"""How parts are chained: each part is handed the boundary stages it declares it consumes, and its own
recorded random draws; what it produces is handed on. Both model sides chain their parts through this one
function, so the glue between parts exists once; only what runs inside a part differs.

A part run alone is the same call with `parts=(that part,)` and its inputs taken from a trace: the part
is then teacher-forced at its boundary.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from harness import stages
from harness.stages.spec import Part, StageSpec


def consumed(part: Part, available: Iterable[str]) -> list[str]:
    """The available stage paths this part reads (its `consumes` templates, every segment)."""
    patterns = [StageSpec(t, "").regex for t in part.consumes]
    return [p for p in available if any(r.match(p) for r in patterns)]


def draws(part: Part, paths: Iterable[str]) -> list[str]:
    """The recorded random draws of this part among `paths` (given to every replay, never drawn again)."""
    return [p for p in paths if (s := stages.find_spec(p)) is not None and s.part == part.name and s.draw]


def chain(parts: Iterable[Part], run_part: Callable[[Part, dict], dict], given: Mapping[str, object]) -> dict:
    """Run parts in order; each sees what it consumes of `given` and of what earlier parts produced, plus
    its own draws from `given`. Returns everything produced (and `given`)."""
    produced = dict(given)
    for part in parts:
        inputs = {p: produced[p] for p in consumed(part, produced)}
        inputs.update({p: given[p] for p in draws(part, given)})
        if part.given:
            inputs.update({p: v for p, v in given.items() if stages.find_spec(p).part == part.name})
        produced.update(run_part(part, inputs))
    return produced


def boundary_inputs(part: Part, trace_paths: Iterable[str]) -> list[str]:
    """What a part run alone needs from a trace: what it consumes, and its draws."""
    paths = list(trace_paths)
    return consumed(part, paths) + draws(part, paths)
