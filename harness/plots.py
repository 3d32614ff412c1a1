"""The report's figures, drawn with matplotlib from downsampled data and returned as PNG bytes.

Each function takes plain data (the comparison's results, or arrays read one stage at a time) so a
figure never needs the whole trace in memory.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from harness import stages  # noqa: E402
from harness.compare import StageResult  # noqa: E402

MAX_POINTS = 1000  # frames (or samples) drawn per axis at most


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _positive(values: list[float | None]) -> np.ndarray:
    """Log axes cannot show zeros: an exact match is drawn at 1e-12 (the floor of the axis)."""
    return np.array([max(v, 1e-12) if v is not None and v == v else np.nan for v in values], dtype=float)


def error_by_position(results: list[StageResult], first_index: int | None) -> bytes:
    """Every stage's local and propagated error against pipeline position, with the floors."""
    fig, ax = plt.subplots(figsize=(12, 3.6))
    x = np.arange(len(results))
    prop = _positive([r.propagated.rel_l2 if r.propagated else None for r in results])
    floor = _positive([r.propagated_floor.rel_l2 if r.propagated_floor else None for r in results])
    local = _positive([r.local.rel_l2 if r.local else None for r in results])
    ax.semilogy(x, floor, color="0.7", lw=1, label="noise floor (propagated)")
    ax.semilogy(x, prop, ".", ms=2, color="tab:blue", label="propagated error")
    if np.isfinite(local).any():
        ax.semilogy(x, local, ".", ms=2, color="tab:orange", label="local error")
    failed = [i for i, r in enumerate(results) if r.failed]
    if failed:
        ax.semilogy(failed, prop[failed], "x", ms=4, color="tab:red", label="out of tolerance")
    if first_index is not None:
        ax.axvline(first_index, color="tab:red", ls="--", lw=1, label="first divergence")
    ax.set_xlabel("stage, in pipeline order")
    ax.set_ylabel("relative L2 vs the reference")
    ax.legend(loc="lower right", fontsize=8, ncol=3)
    ax.grid(alpha=0.3)
    return _png(fig)


def _series(results: list[StageResult], tag: str) -> dict[str, list[tuple[int, StageResult]]]:
    """Per-step rows of every stage declared with this plot tag, by label (conditional half only)."""
    out: dict[str, list[tuple[int, StageResult]]] = {}
    for r in results:
        spec = stages.find_spec(r.path)
        if spec is None or tag not in spec.plot or r.propagated is None or r.half not in ("", "cond"):
            continue
        numbers = spec.fields(r.path)
        if "step" not in numbers or numbers.get("seg", 0) != 0:
            continue
        label = spec.template.split("step_{step}/", 1)[-1] + (" (cond)" if r.half else "")
        out.setdefault(label, []).append((numbers["step"], r))
    return out


def ode_steps(results: list[StageResult]) -> bytes | None:
    """Over the ODE steps (first segment): the error per step of every stage declared as a step series
    (a schedule difference shows in the t fed), and the mean/std of both sides of those with stats."""
    series = _series(results, "step_series")
    stats = set(_series(results, "step_stats"))
    if not series:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for label, rows in series.items():
        steps = [s for s, _ in rows]
        line, = axes[0].semilogy(steps, _positive([r.propagated.rel_l2 for _, r in rows]), "o-", ms=3, label=label)
        axes[0].semilogy(steps, _positive([r.propagated_floor.rel_l2 if r.propagated_floor else None for _, r in rows]),
                         "--", color=line.get_color(), lw=1, alpha=0.6)
        if label not in stats:
            continue
        axes[1].plot(steps, [r.propagated.ref_mean for _, r in rows], "o-", ms=3, label=f"{label} ref")
        axes[1].plot(steps, [r.propagated.cand_mean for _, r in rows], "x--", ms=4, label=f"{label} cand")
        axes[2].plot(steps, [r.propagated.ref_std for _, r in rows], "o-", ms=3, label=f"{label} ref")
        axes[2].plot(steps, [r.propagated.cand_std for _, r in rows], "x--", ms=4, label=f"{label} cand")
    for ax, title in zip(axes, ("relative L2 per step (dashed: floor; 1e-12 = exact)", "mean per step",
                                "std per step")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("ODE step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _png(fig)


def _stride_time(a: np.ndarray) -> np.ndarray:
    step = max(1, a.shape[-1] // MAX_POINTS)
    return a[..., ::step]


def mels(ref: np.ndarray, cand: np.ndarray | None, note: str = "", what: str = "mel") -> bytes:
    """Reference and candidate mels side by side, and their difference. Arrays are [80, T]; `what` names them
    in the titles (the output audio's log mel spectrogram is drawn the same way)."""
    panels = 3 if cand is not None and cand.shape == ref.shape else (2 if cand is not None else 1)
    ref = _stride_time(ref)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.2), squeeze=False)
    axes = axes[0]
    lo, hi = np.nanmin(ref), np.nanmax(ref)
    im = axes[0].imshow(ref, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma")
    axes[0].set_title(f"reference {what} (mean {np.nanmean(ref):.2f})", fontsize=10)
    fig.colorbar(im, ax=axes[0])
    if cand is not None:
        c = _stride_time(cand)
        im = axes[1].imshow(c, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma")
        axes[1].set_title(f"candidate {what} (mean {np.nanmean(c):.2f}) {note}".strip(), fontsize=10)
        fig.colorbar(im, ax=axes[1])
        if panels == 3:
            d = c - ref
            lim = float(np.nanmax(np.abs(d))) or 1.0
            im = axes[2].imshow(d, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
            axes[2].set_title("candidate - reference", fontsize=10)
            fig.colorbar(im, ax=axes[2])
    for ax in axes:
        ax.set_xlabel("frame")
        ax.set_ylabel("mel bin")
    return _png(fig)


def histogram(label: str, diff: np.ndarray) -> bytes:
    """Distribution of candidate - reference for one failing stage (at most 1e6 values drawn)."""
    flat = diff.reshape(-1)
    flat = flat[:: max(1, flat.size // 1_000_000)]
    flat = flat[np.isfinite(flat)]
    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    ax.hist(flat, bins=80, color="tab:red", alpha=0.8)
    ax.set_yscale("log")
    ax.set_title(label, fontsize=8)
    ax.set_xlabel("candidate - reference", fontsize=8)
    ax.tick_params(labelsize=7)
    return _png(fig)


def channel_offset(label: str, offset: np.ndarray) -> bytes:
    """Mean over time of candidate - reference, per channel."""
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.bar(np.arange(offset.size), offset, color="tab:purple")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_title(f"per-channel mean offset: {label}", fontsize=9)
    ax.set_xlabel("channel")
    return _png(fig)
