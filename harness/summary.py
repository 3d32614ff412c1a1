"""The JSON summary of a comparison: a stable, documented shape that round-trips losslessly.

Schema (version 1):
  {"schema": "indextts-parity-comparison", "version": 1,
   "reference": path, "candidate": path, "forced": path|null, "selection": str|null,
   "reference_provenance": {...}, "candidate_provenance": {...},
   "tolerance": {"rel_l2": float, "atol": float}, "passed": bool, "verdict": str,
   "first_failure": label|null, "warnings": [str],
   "stages": [{"path", "half", "layout", "status", "derived", "problem", "transform",
               "propagated": Metrics|null, "local": Metrics|null}]}
Non-finite numbers are written as the strings "inf", "-inf", "nan".
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from harness.compare import Comparison, StageResult
from harness.console import verdict_line
from harness.metrics import Metrics
from harness.tolerance import Tolerance

SCHEMA, VERSION = "indextts-parity-comparison", 1


def to_json(c: Comparison) -> dict:
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "reference": c.reference,
        "candidate": c.candidate,
        "forced": c.forced,
        "selection": c.selection,
        "reference_provenance": c.reference_provenance,
        "candidate_provenance": c.candidate_provenance,
        "tolerance": {"rel_l2": c.tolerance.rel_l2, "atol": c.tolerance.atol},
        "passed": c.passed,
        "verdict": verdict_line(c),
        "first_failure": c.first_failure.label if c.first_failure else None,
        "warnings": list(c.warnings),
        "stages": [_stage(r) for r in c.results],
    }


def _stage(r: StageResult) -> dict:
    return {
        "path": r.path, "half": r.half, "layout": r.layout, "status": r.status, "derived": r.derived,
        "problem": r.problem, "transform": r.transform,
        "propagated": r.propagated.to_json() if r.propagated else None,
        "local": r.local.to_json() if r.local else None,
    }


def from_json(data: dict) -> Comparison:
    if data.get("schema") != SCHEMA or data.get("version") != VERSION:
        raise ValueError("not an indextts-parity comparison summary of version 1")
    results = tuple(
        StageResult(
            path=s["path"], half=s["half"], layout=s["layout"], status=s["status"], derived=s["derived"],
            problem=s["problem"], transform=s["transform"],
            propagated=Metrics.from_json(s["propagated"]) if s["propagated"] else None,
            local=Metrics.from_json(s["local"]) if s["local"] else None,
        )
        for s in data["stages"]
    )
    return Comparison(
        reference=data["reference"], candidate=data["candidate"], forced=data["forced"],
        reference_provenance=data["reference_provenance"], candidate_provenance=data["candidate_provenance"],
        selection=data["selection"], tolerance=Tolerance(**data["tolerance"]), results=results,
        warnings=tuple(data["warnings"]),
    )


def write(c: Comparison, path: Path) -> Path:
    """Write atomically, so an interrupted run never leaves a half-written summary behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(to_json(c), indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path
