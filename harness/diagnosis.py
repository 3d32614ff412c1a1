"""What kind of bug a failing stage looks like: every hint family, tried on every failing stage of every part.

Each family (harness/hints/) is a general test of a kind of bug, never knowledge of our own fault catalogue;
each returns a `Hint` with its evidence: the share of the error energy its relation removes. The verdict's
first line names the most specific relation that removes at least 90% of the error; where none does, it
says "no known pattern" and gives the closest candidates with their shares, so a porter sees what was
tried and how near it came.
"""
from __future__ import annotations

import numpy as np

from harness.hints import audio, discrete, layout, regions, relations, scale
from harness.hints.base import NEAR, SHOWN, Case, Hint

__all__ = ["FAMILIES", "Case", "Hint", "diagnose", "first_line", "shown"]

#: every family, most specific first (the order breaks ties between relations that explain enough)
FAMILIES: tuple[str, ...] = (
    "exact", "transposed", "sign_flip", "swapped_halves", "equals_stage", "length", "mix", "integration_step",
    "difference_is_stage", "time_shift", "elementwise", "normalisation", "confined", "affine", "channel_affine",
    "position_affine", "delay_gain", "band", "half_only",
)

_TESTS = (
    ("transposed", layout.transposed), ("sign_flip", layout.sign_flip), ("swapped_halves", layout.swapped_halves),
    ("equals_stage", relations.equals_stage), ("mix", relations.declared_mix), ("mix", relations.stage_mix),
    ("integration_step", relations.integration_step), ("difference_is_stage", relations.difference_is_stage),
    ("time_shift", layout.time_shift), ("elementwise", scale.elementwise), ("normalisation", scale.normalisation),
    ("affine", scale.affine), ("channel_affine", scale.channel_affine), ("position_affine", scale.position_affine),
    ("delay_gain", audio.delay_gain), ("band", audio.band), ("confined", regions.confined),
    ("half_only", regions.half_only),
)


def diagnose(case: Case) -> list[Hint]:
    """Every family's hint for this failing stage, the one for the first line (if any) first."""
    if case.ref.shape != case.cand.shape:
        found = [layout.transposed(case),
                 layout.length_against_input(case, layout.length(case.ref, case.cand, case.layout))]
        return _ordered([h for h in found if h is not None])
    if case.kind == "exact" or case.ref.dtype.kind in "biu" or case.cand.dtype.kind in "biu":
        h = discrete.exact(case)
        return [h] if h else []
    if not (np.all(np.isfinite(case.cand)) and np.all(np.isfinite(case.ref))) or case.err_energy == 0:
        return []
    found = []
    for _, test in _TESTS:
        h = test(case)
        if h is not None and h.explained >= NEAR:
            found.append(h)
    return _ordered(found)


def _ordered(hints: list[Hint]) -> list[Hint]:
    """Relations that explain enough come first: the one that explains most, the more specific on a near-tie
    (shares equal to 0.1%); the rest by how much they explain."""
    rank = {k: i for i, k in enumerate(FAMILIES)}
    good = sorted((h for h in hints if h.explained >= SHOWN),
                  key=lambda h: (-round(h.explained, 3), rank.get(h.kind, 99)))
    rest = sorted((h for h in hints if h.explained < SHOWN), key=lambda h: -h.explained)
    return good + rest


def shown(hints: tuple[Hint, ...] | list[Hint]) -> Hint | None:
    """The hint the verdict's first line names, if one explains enough."""
    return hints[0] if hints and hints[0].explained >= SHOWN else None


def first_line(hints: tuple[Hint, ...] | list[Hint]) -> str:
    """The hint part of a verdict line: a named relation, or "no known pattern" with the closest candidates."""
    best = shown(hints)
    if best is not None:
        return f"hint [{best.kind}]: {best.message}"
    near = ", ".join(f"{h.kind} {100 * h.explained:.0f}%" for h in list(hints)[:3])
    return "no known pattern" + (f" (closest: {near} of the error explained)" if near else "")
