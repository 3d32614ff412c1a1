"""The JSON summary of a comparison: a stable, documented shape that round-trips losslessly.

Schema `indextts-parity-comparison`, version 2 (docs/results-schema.json is the JSON Schema):
  schema, version, verdict (the one-line verdict), passed, exit_code, first_divergence (label|null),
  selection, rule ("floors" or "fallback"), traces {role: path}, provenance {role: {...}},
  tolerances {default, overrides}, warnings [str], advice [str], profile (the precision profile or null),
  detected_precision (a reduced precision the candidate looks like, or ""), coverage {selected, compared,
  promised, provided, notes}, incomplete [roles of interrupted traces], stages [{path, half, label, layout, status, derived,
  problem, transform, diagnosed, local, local_floor, local_allowed, propagated, propagated_floor, propagated_allowed,
  hints [{kind, message, residual, explained}], audio}]
where each metrics object holds n, ref_mean, ref_std, cand_mean, cand_std, max_abs, max_abs_index,
mean_abs, rmse, rel_l2, cosine, snr_db, ref_nonfinite, cand_nonfinite, and each floor {rmse, rel_l2}.
Non-finite numbers are the strings "inf", "-inf", "nan". `audio` is null but for audio stages, where it
holds harness/audio_metrics.py's measures (sample_rate, ref_samples, cand_samples, delay, snr_db, gain,
snr_aligned_db, gain_aligned, log_mel_distance); summaries written before it existed lack it.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness.audio_metrics import AudioMetrics
from harness.compare import Comparison, StageResult
from harness.console import verdict_line
from harness.diagnosis import Hint
from harness.files import write_text
from harness.metrics import Metrics, json_number
from harness.tolerance import Tolerances
from harness.trace import Floor

SCHEMA, VERSION = "indextts-parity-comparison", 2
_METRICS = ("local", "propagated")
_FLOORS = ("local_floor", "propagated_floor")


def to_json(c: Comparison) -> dict:
    first = c.first_divergence
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "verdict": verdict_line(c),
        "passed": c.passed,
        "exit_code": c.exit_code,
        "first_divergence": first.label if first else None,
        "selection": c.selection,
        "rule": c.rule,
        "traces": c.traces,
        "provenance": c.provenance,
        "tolerances": c.tolerances.to_json(),
        "warnings": list(c.warnings),
        "advice": list(c.advice),
        "profile": c.profile,
        "detected_precision": c.detected_precision,
        "coverage": c.coverage,
        "incomplete": list(c.incomplete),
        "stages": [_stage(r) for r in c.results],
    }


def _stage(r: StageResult) -> dict:
    out = {"path": r.path, "half": r.half, "label": r.label, "layout": r.layout, "status": r.status,
           "derived": r.derived, "problem": r.problem, "transform": r.transform, "diagnosed": r.diagnosed}
    for key in _METRICS:
        m = getattr(r, key)
        out[key] = m.to_json() if m else None
    for key in _FLOORS:
        f = getattr(r, key)
        out[key] = {"rmse": json_number(f.rmse), "rel_l2": json_number(f.rel_l2)} if f else None
    for key in ("local_allowed", "propagated_allowed"):
        v = getattr(r, key)
        out[key] = None if v is None else json_number(v)
    out["hints"] = [h.to_json() for h in r.hints]
    out["audio"] = r.audio.to_json() if r.audio is not None else None
    return out


def from_json(data: dict) -> Comparison:
    if data.get("schema") != SCHEMA or data.get("version") != VERSION:
        raise ValueError(f"not an indextts-parity comparison summary of version {VERSION}")
    results = []
    for s in data["stages"]:
        fields = {k: s[k] for k in ("path", "half", "layout", "status", "derived", "problem", "transform", "diagnosed")}
        for key in _METRICS:
            fields[key] = Metrics.from_json(s[key]) if s[key] else None
        for key in _FLOORS:
            fields[key] = Floor(float(s[key]["rmse"]), float(s[key]["rel_l2"])) if s[key] else None
        for key in ("local_allowed", "propagated_allowed"):
            fields[key] = None if s[key] is None else float(s[key])
        fields["hints"] = tuple(Hint(**h) for h in s["hints"])
        fields["audio"] = AudioMetrics.from_json(s["audio"]) if s.get("audio") else None
        results.append(StageResult(**fields))
    return Comparison(traces=data["traces"], provenance=data["provenance"], selection=data["selection"],
                      tolerances=Tolerances.from_json(data["tolerances"]), results=tuple(results),
                      warnings=tuple(data["warnings"]), rule=data["rule"], profile=data.get("profile"),
                      detected_precision=data.get("detected_precision", ""), coverage=data.get("coverage") or {},
                      incomplete=tuple(data.get("incomplete") or ()), advice=tuple(data.get("advice") or ()))


def write(c: Comparison, path: Path) -> Path:
    return write_text(json.dumps(to_json(c), indent=1) + "\n", path)
