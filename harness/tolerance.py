"""When a stage counts as matching.

A stage passes when its relative L2 error is within `rel_l2`, or when its largest absolute error is
within `atol` (for stages whose reference is near zero, where a relative figure means nothing).
The defaults are set for two float32 implementations of the same arithmetic: the same operations in
a different order differ by a few float32 ulps per stage (relative ~1e-7), and 25 Euler steps with
CFG amplify that by at most a few hundred times (seen: under 1e-5 at the last step of `tiny`).
A porting bug moves a stage by 1e-2 or more, orders of magnitude above both.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.metrics import Metrics


@dataclass(frozen=True)
class Tolerance:
    rel_l2: float = 1e-4
    atol: float = 1e-5

    def passes(self, m: Metrics) -> bool:
        if m.cand_nonfinite or m.ref_nonfinite:
            return False
        return m.rel_l2 <= self.rel_l2 or m.max_abs <= self.atol

    def describe(self) -> str:
        return f"rel-L2 <= {self.rel_l2:g} or max|err| <= {self.atol:g}"


DEFAULT = Tolerance()
