"""Precision profiles: judging a port that runs in float16, bfloat16 or int8 against the noise its precision implies.

A float32 reference's noise floor is the error float32 rounding makes. A port that runs in a coarser type
rounds more, and judging it against float32's floor calls every stage a divergence. With
`--candidate-dtype D` the floors become D's:
- measured, where the reference trace holds floors from an upstream run in D (`harness capture
  --precision-floors D` runs upstream with its networks after the GPT (s2mel, the CFM, the vocoder:
  reference_hooks/driver.py AUTOCAST_PARTS) under CPU autocast in D, as upstream runs its own fp16 mode, and
  stores per stage the larger of its error against the float64 run and that of the float32 values rounded
  to D as `floor_<D>_prop_*`);
- derived otherwise: rounding error grows with the unit roundoff u, so each float32 floor is scaled by
  u(D) / u(float32) (to first order in u, which is how rounding error propagates through a network), and
  the ulps allowance is counted in D's ulps. Without floors the fallback rule becomes rel-L2 <= 8 u(D).
int8 is taken as symmetric 8-bit quantisation, a step of 1/127 of the range: u = 2^-8 like bfloat16.
The verdict names the profile and whether it was measured or derived.

Without the option, a candidate whose values are all representable in a coarser type where the
reference's are not (or whose dump says it was written in one) is reported, with the option to use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from harness.tolerance import Rule
from harness.trace import Floor

UNIT_ROUNDOFF = {"float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8, "int8": 2.0**-8}
CHOICES = ("float16", "bfloat16", "int8")
FALLBACK_UNITS = 8  # the fallback rule of a reduced profile: rel-L2 <= 8 u
MIN_VALUES = 64  # stages smaller than this say nothing about a candidate's precision
DETECT_SHARE = 0.9  # share of the telling stages that must be representable for a precision to be suggested


@dataclass(frozen=True)
class Profile:
    dtype: str  # float16, bfloat16, int8
    measured: bool  # floors from an upstream run in this dtype, stored in the reference

    @property
    def scale(self) -> float:
        return UNIT_ROUNDOFF[self.dtype] / UNIT_ROUNDOFF["float32"]

    def describe(self) -> str:
        if self.measured:
            return (f"precision profile {self.dtype} (propagated floors measured: upstream under {self.dtype} "
                    f"autocast; local floors x {self.scale:g} from its rounding)")
        return (f"precision profile {self.dtype} (floors derived from its rounding: float32 floors x "
                f"{self.scale:g} = u({self.dtype}) / u(float32))")

    def adjust(self, rule: Rule, floor: Floor | None, measured: Floor | None) -> tuple[Rule, Floor | None]:
        """The rule and floor a stage is judged by under this profile."""
        ulps = replace(rule, ulps=rule.ulps * self.scale)
        if measured is not None:
            return ulps, measured
        if floor is None:
            return replace(rule, rel_l2=max(rule.rel_l2, FALLBACK_UNITS * UNIT_ROUNDOFF[self.dtype])), None
        return ulps, Floor(floor.rmse * self.scale, floor.rel_l2 * self.scale)

    def to_json(self) -> dict:
        return {"dtype": self.dtype, "measured": self.measured, "scale": self.scale, "description": self.describe()}


def round_to(values: np.ndarray, dtype: str) -> np.ndarray:
    """Float values as the nearest value of a reduced type holds them (kept in float64): what a port in that
    type stores at best. bfloat16 keeps float32's upper 16 bits (ties to even); int8 is symmetric 8-bit
    quantisation over the array's range."""
    a = np.asarray(values, dtype=np.float32)
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return a.astype(np.float16).astype(np.float64)
    if dtype == "int8":
        top = float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0))
        return a.astype(np.float64) if top == 0 else np.round(a / top * 127.0) * (top / 127.0)
    bits = a.view(np.uint32).astype(np.uint64)
    lsb = (bits >> np.uint64(16)) & np.uint64(1)
    kept = ((bits + np.uint64(0x7FFF) + lsb) & np.uint64(0xFFFF0000)).astype(np.uint32)
    return kept.view(np.float32).astype(np.float64)


def representable(values: np.ndarray) -> set[str]:
    """The reduced types every (finite) value of a float32 array is exactly representable in."""
    a = np.asarray(values)
    if a.dtype.kind != "f" or a.size == 0:
        return set()
    a32 = a.astype(np.float32)
    if a.dtype == np.float64 and not np.array_equal(a32.astype(np.float64), a, equal_nan=True):
        return set()
    out = set()
    finite = a32[np.isfinite(a32)]
    if not (finite.view(np.uint32) & 0xFFFF).any():
        out.add("bfloat16")
    with np.errstate(over="ignore"):
        if np.array_equal(finite.astype(np.float16).astype(np.float32), finite):
            out.add("float16")
    return out


@dataclass
class Detector:
    """Counts, over compared float stages, where the candidate is representable in a reduced type and the
    reference is not; names the type when nearly all of them are (or when the dump declares one)."""

    telling: int = 0
    hits: dict = field(default_factory=dict)  # dtype -> count
    declared: str = ""

    def see(self, ref: np.ndarray, cand: np.ndarray, cand_dtype: str) -> None:
        if cand_dtype in ("float16", "bfloat16") and not self.declared:
            self.declared = cand_dtype
        if ref.size < MIN_VALUES or ref.dtype.kind != "f" or cand.dtype.kind != "f":
            return
        ref_fits, cand_fits = representable(ref), representable(cand)
        if "float16" in ref_fits and "bfloat16" in ref_fits:
            return  # the reference itself is coarse here (zeros, small integers): says nothing
        self.telling += 1
        for dtype in cand_fits - ref_fits:
            self.hits[dtype] = self.hits.get(dtype, 0) + 1

    def detected(self) -> str:
        if self.declared:
            return self.declared
        if not self.telling or not self.hits:
            return ""
        # bfloat16 values are mostly float16-representable too when small; the coarser type that fits wins
        for dtype in ("bfloat16", "float16"):
            if self.hits.get(dtype, 0) >= math.ceil(DETECT_SHARE * self.telling):
                return dtype
        return ""


def suggestion(detected: str) -> str:
    return (f"the candidate looks {detected} (its values are {detected}-representable where the reference's are "
            f"not): judge it with --candidate-dtype {detected}")
