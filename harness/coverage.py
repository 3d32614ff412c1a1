"""What a comparison promised and what it compared, so a green over a sliver of the run never reads as a pass
of the whole.

Two promises: the selection (every reference stage it selects) and, for a port's dump, the map (every
selected reference stage one of its entries names: a port that maps `step{step}.velocity` promises the
velocity of every step the reference holds). The verdict line says when only a small part of either was
compared, and, when nothing was, why (the notes of the map's conversion).
"""
from __future__ import annotations

import fnmatch
import re

#: under this share of a promise compared, the verdict line says "only"
SMALL = 0.5


def _glob(stage_template: str) -> str:
    """A map entry's stage (with {step}-style fields) as a glob over stage paths."""
    return re.sub(r"\{[a-z]+\}", "*", stage_template)


def of(results, candidate_provenance: dict) -> dict:
    """{selected, compared, promised (by the map, or None), provided, notes} of a comparison's results."""
    compared = [r for r in results if r.status != "missing"]
    out = {"selected": len(results), "compared": len(compared), "promised": None, "provided": None,
           "notes": list(candidate_provenance.get("notes") or [])}
    entries = candidate_provenance.get("map_stages")
    if isinstance(entries, list):
        pairs = [(_glob(str(e.get("stage", ""))), str(e.get("half", "both"))) for e in entries if isinstance(e, dict)]
        promised = [r for r in results if any(fnmatch.fnmatchcase(r.path, g) and (h in ("both", "none") or not r.half
                                                                                 or h == r.half) for g, h in pairs)]
        out["promised"] = len(promised)
        out["provided"] = sum(r.status != "missing" for r in promised)
    return out


def shortfall(c: dict) -> str:
    """Clauses for the verdict line when only a small part of a promise was compared, and when a port's
    tensors landed on stages the reference does not hold (with the likely fix) ("" otherwise)."""
    if not c:
        return ""
    out = []
    if c.get("promised") is not None:  # a port's dump: its map says what it set out to provide
        if c["provided"] < SMALL * c["promised"]:
            out.append(f"only {c['provided']} of the {c['promised']} stages the map promises were provided")
    elif c.get("selected") and c["compared"] < SMALL * c["selected"]:
        out.append(f"only {c['compared']} of the {c['selected']} selected stages were compared")
    out += [f"map: {n}" for n in (c.get("notes") or []) if ABSENT in n][:1]
    return " - ".join(out)


#: the words of the conversion note on tensors that map to stages the reference does not hold
ABSENT = "map to stages the reference does not hold"


def why_nothing(c: dict) -> str:
    """Why nothing was compared, from the map's conversion notes, where there are any."""
    notes = sorted(c.get("notes") or [], key=lambda n: ABSENT not in n)  # the likely fix first
    return f" ({'; '.join(notes[:2])})" if notes else ""
