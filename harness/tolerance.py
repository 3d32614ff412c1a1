"""When a stage counts as matching: within a small multiple of the reference's own numerical noise.

The rule is PyTorch's float64 rule (torch._dynamo.utils.same with fp64_ref): run the reference once
more in float64; the float32 reference's own error against that run is the stage's noise floor; a
candidate passes where its error against the float64 run is within

    allowed = multiple x floor_rmse + ulps x eps32 x rms(reference)

- `multiple` (4): two correct float32 implementations that order their sums differently land a few
  floors apart, not exactly on the floor; 4 leaves room for that and nothing a real bug does (those
  move a stage by 1e-2 relative or more, 10^4 times the floor and above).
- `ulps` (4 float32 ulps of the stage's RMS): stages whose floor is zero (exact copies, inputs,
  masks) must still tolerate a last-bit difference from an innocent reordering.
Without a float64 run (a foreign port, or a comparison of two plain traces) the rule falls back to
`rel_l2` (1e-4) or `atol` on the largest error.
Per-stage overrides come from a TOML file (`--tolerances FILE`):

    [[override]]
    stage = "cfm/step_*/x_next"   # a glob over stage paths
    multiple = 8                  # any of: multiple, ulps, rel_l2, atol
"""
from __future__ import annotations

import fnmatch
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import UserError
from harness.metrics import Metrics

EPS32 = float(2.0**-23)


@dataclass(frozen=True)
class Rule:
    multiple: float = 4.0
    ulps: float = 4.0
    rel_l2: float = 1e-4
    atol: float = 1e-5

    def allowed(self, err: Metrics, floor: Metrics | None) -> float:
        """The largest RMSE that passes, given the floor (None: no float64 run, fall back)."""
        ref_rms = math.sqrt(err.ref_mean**2 + err.ref_std**2)
        if floor is None:
            return max(self.rel_l2 * ref_rms, 0.0)
        return self.multiple * floor.rmse + self.ulps * EPS32 * ref_rms

    def passes(self, err: Metrics, floor: Metrics | None) -> bool:
        if err.cand_nonfinite or err.ref_nonfinite or math.isnan(err.rmse):
            return False
        if floor is None:
            return err.rel_l2 <= self.rel_l2 or err.max_abs <= self.atol
        return err.rmse <= self.allowed(err, floor)

    def describe(self, with_floor: bool = True) -> str:
        if with_floor:
            return f"RMSE vs float64 <= {self.multiple:g} x floor + {self.ulps:g} ulp32 x RMS(ref)"
        return f"rel-L2 <= {self.rel_l2:g} or max|err| <= {self.atol:g}"


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
    def from_json(cls, data: dict) -> "Tolerances":
        return cls(Rule(**data["default"]),
                   tuple((o["stage"], Rule(**{k: v for k, v in o.items() if k != "stage"})) for o in data["overrides"]))


DEFAULT = Tolerances()


def load(path: Path | None) -> Tolerances:
    if path is None:
        return DEFAULT
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"tolerance file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    default = replace(DEFAULT.default, **_fields(data.get("default", {}), path))
    overrides = []
    for item in data.get("override", []):
        if "stage" not in item:
            raise UserError(f"{path}: every [[override]] needs a stage = \"glob\"")
        fields_ = {k: v for k, v in item.items() if k != "stage"}
        overrides.append((str(item["stage"]), replace(default, **_fields(fields_, path))))
    return Tolerances(default, tuple(overrides))


def _fields(values: dict, path: Path) -> dict:
    known = {"multiple", "ulps", "rel_l2", "atol"}
    bad = set(values) - known
    if bad:
        raise UserError(f"{path}: unknown tolerance field(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(known))}")
    return {k: float(v) for k, v in values.items()}
