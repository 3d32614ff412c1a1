"""The tap: how our reimplementation records each stage and, teacher-forced, is fed the reference's.

Every stage of `reimpl` passes its value through `tap(path, value)` and continues with what comes back.
Free-running, that is its own value; teacher-forced, it is the reference's recorded value of the same
stage, so the next stage sees exactly the reference's input and its error is its own. A tap records only
the stages its detail policy wants (the replay uses its reference's), so both traces hold the same stages.
"""
from __future__ import annotations

import torch

from harness.detail import Detail
from harness.trace import Trace, TraceWriter


class Tap:
    def __init__(self, writer: TraceWriter | None = None, forced_from: Trace | None = None,
                 detail: Detail | None = None):
        self.writer = writer
        self.forced_from = forced_from
        self.detail = detail or Detail("full")

    def __call__(self, path: str, value: torch.Tensor) -> torch.Tensor:
        if self.writer is not None and self.detail.wants(path):
            v = value.detach()
            self.writer.write(path, v.cpu().numpy(), dtype=str(v.dtype).replace("torch.", ""))
        if self.forced_from is not None and path in self.forced_from:
            return _in_layout_of(value, torch.from_numpy(self.forced_from.read(path)).to(value.dtype))
        return value


def _in_layout_of(value: torch.Tensor, forced: torch.Tensor) -> torch.Tensor:
    """The reference's value in the memory layout of the value it replaces. A trace stores values contiguous,
    but upstream often hands on a transposed view (S_ref, `quantize(...)[1].transpose(1, 2)`), and a matmul
    on a view and on a contiguous copy of it may round differently: fed in the layout free-running would have
    had, the next stage runs the same kernel, and its local error is its own."""
    if forced.shape != value.shape or value.is_contiguous():
        return forced
    return torch.empty_like(value).copy_(forced)


class MemoryTap:
    """Keeps every stage in order, in memory: for in-process comparisons of small runs."""

    def __init__(self):
        self.items: list[tuple[str, object]] = []

    def __call__(self, path: str, value: torch.Tensor) -> torch.Tensor:
        self.items.append((path, value.detach().cpu().numpy().copy()))
        return value


def no_tap(path: str, value: torch.Tensor) -> torch.Tensor:
    """Record nothing, force nothing: the plain pipeline."""
    return value
