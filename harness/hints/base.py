"""What every hint family shares: the case it examines, the hint it returns, and how much error a fit explains.

A hint is a claim that can be checked: a relation between the candidate and the reference (or other
reference stages) that predicts the candidate, with its evidence: the share of the error energy the
relation removes (`explained`) and what it leaves (`residual`, relative to the candidate). A family never
knows the fault catalogue; it tests a kind of bug.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: a hint is shown on the verdict's first line only when its relation removes this share of the error energy
SHOWN = 0.9
#: below this share a relation is not worth naming at all, even as a near miss
NEAR = 0.3


@dataclass(frozen=True)
class Hint:
    kind: str  # the family: transposed, affine, channel_affine, ... (harness.diagnosis.FAMILIES)
    message: str
    residual: float  # relative L2 of what the relation leaves unexplained, against the candidate
    explained: float = 1.0  # share of the error energy (|cand - ref|^2) the relation removes

    def to_json(self) -> dict:
        return {"kind": self.kind, "message": self.message, "residual": self.residual, "explained": self.explained}


@dataclass
class Case:
    """One failing stage (one CFG half), and what its hints may read besides it."""

    ref: np.ndarray
    cand: np.ndarray
    layout: str  # axis names of both
    label: str = ""
    kind: str = "float"  # the stage's declared kind (float, exact, audio)
    sample_rate: int = 0  # audio stages
    others: Callable[[], dict[str, np.ndarray]] | None = None  # nearby reference stages, read lazily
    stage_input: tuple[str, np.ndarray] | None = None  # the declared input stage of this one (name, value)
    input_layout: str = ""  # its axis names
    mix: tuple[tuple[str, np.ndarray], tuple[str, np.ndarray], float | None] | None = None  # declared mix parts
    step_size: float | None = None  # an integration stage's dt
    twin: tuple[str, float, float] | None = None  # (the other CFG half, its error, its allowed error)
    _others: dict | None = field(default=None, repr=False)
    _err: tuple[np.ndarray, np.ndarray, float] | None = field(default=None, repr=False)

    def error(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(candidate in float64, candidate - reference, its energy): every hint tried on this case weighs its
        prediction against them, so they are computed once."""
        if self._err is None:
            cand = self.cand.astype(np.float64)
            err = cand - self.ref
            self._err = (cand, err, float(np.sum(err * err)))
        return self._err

    @property
    def axes(self) -> list[str]:
        axes = self.layout.split()
        return axes if len(axes) == self.ref.ndim else [f"ax{i}" for i in range(self.ref.ndim)]

    def axis(self, name: str) -> int | None:
        axes = self.axes
        return axes.index(name) if name in axes else None

    def neighbours(self) -> dict[str, np.ndarray]:
        if self._others is None:
            self._others = self.others() if self.others else {}
        return self._others

    @property
    def err_energy(self) -> float:
        return self.error()[2]


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """Relative L2 of a against b, in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = np.linalg.norm(b)
    num = np.linalg.norm(a - b)
    return float(num / den) if den > 0 else (0.0 if num == 0 else float("inf"))


def explained(case: Case, prediction: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The share of the error energy that predicting the candidate by `prediction` removes."""
    cand, err, total = case.error()
    left = cand - prediction
    if mask is not None:
        left, err = left[mask], err[mask]
        total = float(np.sum(err * err))
    if total == 0:
        return 0.0
    return max(0.0, 1.0 - float(np.sum(left * left)) / total)


def hint(case: Case, kind: str, message: str, prediction: np.ndarray, mask: np.ndarray | None = None) -> Hint | None:
    """A hint for a relation that predicts the candidate, with its evidence; None where it explains too little.
    `mask`: the positions the relation predicts at all (a shift says nothing of the positions it vacates)."""
    share = explained(case, prediction, mask)
    if share < NEAR:
        return None
    cand, pred = (case.cand, prediction) if mask is None else (case.cand[mask], prediction[mask])
    return Hint(kind, f"{message} (explains {100 * share:.1f}% of the error)", rel(cand, pred), share)


def line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares y ~ a x + b over all values (as np.polyfit(x, y, 1), in closed form on centred values: the
    same fit several times faster, which matters where a hint tries a dozen functions on every failing stage)."""
    x, y = np.asarray(x, np.float64).reshape(-1), np.asarray(y, np.float64).reshape(-1)
    mx, my = float(x.mean()), float(y.mean())
    dx = x - mx
    vx = float(dx @ dx)
    a = float(dx @ (y - my)) / vx if vx > 0 else 0.0
    return a, my - a * mx


def group_affine(x: np.ndarray, y: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares y ~ a_g x + b_g for every index g along `axis`: (a, b, prediction)."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, 0).reshape(x.shape[axis], -1)
    y = np.moveaxis(np.asarray(y, np.float64), axis, 0).reshape(y.shape[axis], -1)
    mx, my = x.mean(axis=1, keepdims=True), y.mean(axis=1, keepdims=True)
    vx = ((x - mx) ** 2).sum(axis=1, keepdims=True)
    a = np.where(vx > 0, ((x - mx) * (y - my)).sum(axis=1, keepdims=True) / np.where(vx > 0, vx, 1), 0.0)
    b = my - a * mx
    return a[:, 0], b[:, 0], a * x + b


def unmove(pred: np.ndarray, shape: tuple, axis: int) -> np.ndarray:
    """Back from the (group, rest) layout of `group_affine` to the original shape."""
    moved = list(shape)
    moved.insert(0, moved.pop(axis))
    return np.moveaxis(pred.reshape(moved), 0, axis)
