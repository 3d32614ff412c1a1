"""When a stage counts as matching: within a small multiple of the reference's own numerical noise.

The rule is PyTorch's float64 rule (torch._dynamo.utils.same with fp64_ref), restated so that judging a
candidate needs only the float32 reference and its stored noise floors (harness/floors.py):

    floor   = RMSE(float32 reference, float64 run)          stored per stage at capture time
    allowed = multiple x floor + ulps x eps32 x rms(reference)
    pass    = RMSE(candidate, float32 reference) <= allowed

- `multiple` (5): a correct float32 implementation lands within about 4 floors of the float64 run (two
  correct implementations that order their sums differently land a few floors apart, not on the floor);
  by the triangle inequality it is then within 4 + 1 = 5 floors of the float32 reference. Real porting
  bugs move a stage by 1e-2 relative or more, 10^4 floors and beyond.
- `ulps` (4 float32 ulps of the stage's RMS): stages whose floor is zero (exact copies, inputs, masks)
  must still tolerate a last-bit difference from an innocent reordering.
Without floors (a reference captured with `--no-floors`, or one from elsewhere) the rule falls back to
`rel_l2` (1e-4) or `atol` on the largest error, and every output says so.
Per-stage overrides come from a TOML file (`--tolerances FILE`):

    [[override]]
    stage = "cfm/*/step_*/x_next"   # a glob over stage paths
    multiple = 8                    # any of: multiple, ulps, rel_l2, atol
"""
from __future__ import annotations

import fnmatch
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import UserError
from harness.metrics import Metrics
from harness.trace import Floor

EPS32 = float(2.0**-23)
FLOOR_RULE = "floors"
FALLBACK_RULE = "fallback"


@dataclass(frozen=True)
class Rule:
    multiple: float = 5.0
    ulps: float = 4.0
    rel_l2: float = 1e-4
    atol: float = 1e-5

    def allowed(self, err: Metrics, floor: Floor | None) -> float:
        """The largest RMSE that passes, given the floor (None: no floors, fall back)."""
        ref_rms = math.sqrt(err.ref_mean**2 + err.ref_std**2)
        if floor is None:
            return max(self.rel_l2 * ref_rms, 0.0)
        return self.multiple * floor.rmse + self.ulps * EPS32 * ref_rms

    def passes(self, err: Metrics, floor: Floor | None) -> bool:
        if err.cand_nonfinite or err.ref_nonfinite or math.isnan(err.rmse):
            return False
        if floor is None:
            return err.rel_l2 <= self.rel_l2 or err.max_abs <= self.atol
        return err.rmse <= self.allowed(err, floor)

    def describe(self, with_floor: bool = True) -> str:
        if with_floor:
            return f"RMSE vs the float32 reference <= {self.multiple:g} x floor + {self.ulps:g} ulp32 x RMS(ref)"
        return f"fallback rule rel-L2 <= {self.rel_l2:g} or max|err| <= {self.atol:g} (no noise floors)"


@dataclass(frozen=True)
class Tolerances:
    default: Rule = field(default_factory=Rule)
    overrides: tuple[tuple[str, Rule], ...] = ()

    def rule_for(self, path: str) -> Rule:
        for pattern, rule in reversed(self.overrides):  # the last matching override wins
            if fnmatch.fnmatchcase(path, pattern):
                return rule
        return self.default

    def to_json(self) -> dict:
        return {"default": vars(self.default), "overrides": [{"stage": p, **vars(r)} for p, r in self.overrides]}

    @classmethod
    def from_json(cls, data: dict) -> Tolerances:
        return cls(Rule(**data["default"]),
                   tuple((o["stage"], Rule(**{k: v for k, v in o.items() if k != "stage"})) for o in data["overrides"]))


DEFAULT = Tolerances()
_KNOWN = {"multiple", "ulps", "rel_l2", "atol"}


def load(path: Path | None) -> Tolerances:
    if path is None:
        return DEFAULT
    from harness.files import read_text

    text = read_text(path, "tolerance file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"default", "override"}
    if unknown:
        word = sorted(unknown)[0]
        raise UserError(f"{path}: unknown table {word!r}{_did_you_mean(word, ('default', 'override'))}; known: "
                        "[default], [[override]]")
    if not isinstance(data.get("default", {}), dict) or not isinstance(data.get("override", []), list):
        raise UserError(f"{path}: [default] must be a table and [[override]] an array of tables ([[override]], "
                        "not [override])")
    from harness.limits import MAX_ENTRIES, check

    check(f"{path}: the number of [[override]] entries", len(data.get("override", [])), MAX_ENTRIES, "MAX_ENTRIES")
    default = replace(DEFAULT.default, **_fields(data.get("default", {}), path))
    overrides = []
    for i, item in enumerate(data.get("override", [])):
        if not isinstance(item, dict) or not isinstance(item.get("stage"), str) or not item["stage"]:
            raise UserError(f"{path}: [[override]] #{i + 1} needs stage = \"a glob over stage paths\"")
        if not _matches_schema(item["stage"]):
            from harness.mapfile import suggest_stage

            raise UserError(f"{path}: [[override]] #{i + 1}: stage {item['stage']!r} matches no stage of the schema"
                            f"{suggest_stage(item['stage'])}")
        fields_ = {k: v for k, v in item.items() if k != "stage"}
        overrides.append((item["stage"], replace(default, **_fields(fields_, path))))
    return Tolerances(default, tuple(overrides))


def _did_you_mean(word: str, choices) -> str:
    import difflib

    guess = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {guess[0]}?)" if guess else ""


def _matches_schema(glob: str) -> bool:
    """Does a glob over stage paths match any stage the schema can produce (with the numbers it names)?"""
    import itertools
    import re

    from harness import stages

    numbers = sorted({0, *(int(n) for n in re.findall(r"\d+", glob)[:3])})
    for spec in stages.STAGES:
        names = [f for f in stages.FIELDS if "{" + f + "}" in spec.template]
        for combo in itertools.product(numbers, repeat=len(names)):
            if fnmatch.fnmatchcase(spec.path(**dict(zip(names, combo))), glob):
                return True
    return False


#: upper bounds of the rule's numbers: a rule looser than these passes anything
_BOUNDS = {"multiple": "MAX_MULTIPLE", "ulps": "MAX_ULPS", "rel_l2": "MAX_REL_L2", "atol": "MAX_ATOL"}


def _fields(values: dict, path: Path) -> dict:
    from harness import limits

    bad = set(values) - _KNOWN
    if bad:
        word = sorted(bad)[0]
        raise UserError(f"{path}: unknown tolerance field {word!r}{_did_you_mean(word, _KNOWN)}; "
                        f"known: {', '.join(sorted(_KNOWN))}")
    out = {}
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise UserError(f"{path}: {k} = {v!r} must be a non-negative finite number")
        bound = getattr(limits, _BOUNDS[k])
        if v > bound:
            raise UserError(f"{path}: {k} = {v!r} is over the limit of {bound:g} ({_BOUNDS[k]}): a rule that loose "
                            "passes anything")
        out[k] = float(v)
    return out
