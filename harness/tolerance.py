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
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"tolerance file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror})") from None
    unknown = set(data) - {"default", "override"}
    if unknown:
        raise UserError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; known: [default], [[override]]")
    if not isinstance(data.get("default", {}), dict) or not isinstance(data.get("override", []), list):
        raise UserError(f"{path}: [default] must be a table and [[override]] an array of tables")
    default = replace(DEFAULT.default, **_fields(data.get("default", {}), path))
    overrides = []
    for i, item in enumerate(data.get("override", [])):
        if not isinstance(item, dict) or not isinstance(item.get("stage"), str) or not item["stage"]:
            raise UserError(f"{path}: [[override]] #{i + 1} needs stage = \"a glob over stage paths\"")
        fields_ = {k: v for k, v in item.items() if k != "stage"}
        overrides.append((item["stage"], replace(default, **_fields(fields_, path))))
    return Tolerances(default, tuple(overrides))


def _fields(values: dict, path: Path) -> dict:
    bad = set(values) - _KNOWN
    if bad:
        import difflib

        guess = difflib.get_close_matches(sorted(bad)[0], _KNOWN, n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        raise UserError(f"{path}: unknown tolerance field(s) {', '.join(sorted(bad))}{hint}; "
                        f"known: {', '.join(sorted(_KNOWN))}")
    out = {}
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise UserError(f"{path}: {k} = {v!r} must be a non-negative finite number")
        out[k] = float(v)
    return out
