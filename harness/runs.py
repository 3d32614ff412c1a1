"""Traces given together must come from one run: the same config, steps, seed, checkpoint and inputs.

A candidate replayed from another capture (another seed, another step count) differs from the reference
at every stage, and a comparison of the two would report a divergence that is no bug of the port. So the
traces' provenance is matched first and a difference is bad input, naming the field that differs.
A field one trace does not record (a foreign port's dump records little) is not held against it.
"""
from __future__ import annotations

from harness.errors import UserError


def _checkpoint(prov: dict):
    if prov.get("checkpoint_digest"):
        return prov["checkpoint_digest"]
    ckpt = prov.get("checkpoint")
    return ckpt.get("digest") if isinstance(ckpt, dict) else None


#: (what to call it, how to read it from a provenance)
FIELDS = (
    ("config", lambda p: p.get("config")),
    ("config_digest", lambda p: p.get("config_digest")),
    ("seed", lambda p: p.get("seed")),
    ("checkpoint digest", _checkpoint),
    ("inputs_digest", lambda p: p.get("inputs_digest")),
)


def _first_config_difference(a: dict, b: dict, prefix: str = "") -> str:
    """The first leaf where two config dicts differ, as `part.field a vs b`."""
    for key in sorted(set(a) | set(b), key=str):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            found = _first_config_difference(x, y, f"{prefix}{key}.")
            if found:
                return found
        elif x != y:
            return f"{prefix}{key} {x!r} vs {y!r}"
    return ""


def check_same_run(provenances: dict[str, dict], paths: dict[str, str]) -> None:
    """Bad input when a candidate's provenance names another run than the reference's."""
    ref = provenances.get("reference") or {}
    for role, prov in provenances.items():
        if role == "reference" or not isinstance(prov, dict):
            continue
        for name, read in FIELDS:
            a, b = read(ref), read(prov)
            if a is None or b is None or a == b:
                continue
            detail = f"{a!r} vs {b!r}"
            if name == "config_digest" and isinstance(ref.get("config_json"), dict) \
                    and isinstance(prov.get("config_json"), dict):
                detail = _first_config_difference(ref["config_json"], prov["config_json"]) or detail
            raise UserError(f"the {role} {paths.get(role)} comes from another run than the reference "
                            f"{paths.get('reference')}: provenance field {name} differs ({detail}); compare traces "
                            "of one capture (replay it, or run the port on its exported inputs)")
