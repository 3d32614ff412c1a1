"""The trace file: one HDF5 dataset per stage, written as the stage runs.

Why HDF5: a trace of a real-size run holds gigabytes; a reader must be able to open one stage, or one
slice of it, without loading the rest, and a writer must be able to stream stage after stage with
memory bounded by the largest single tensor.

A writer never exposes a half-written file under its final name: it writes a unique `NAME.<random>.partial`
(created exclusively), and only a run that ends cleanly is renamed to `NAME`. An interrupted run leaves
the partial, readable, with `complete = False`.

Format version 2 (the restructure's one bump): stage paths carry `seg_NN` for per-segment parts; every
dataset records its declaration (layout, cfg, derived, kind, detail, stand-in, draw); a reference may
hold its own noise floors as per-stage attributes (`harness/floors.py`).
"""
from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from harness import limits, stages
from harness.errors import UserError
from harness.files import check_target, input_file, publish, temporary_beside

FORMAT = "indextts-parity-trace"
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Floor:
    """The float32 reference's own error at a stage (one CFG half): its noise floor."""

    rmse: float
    rel_l2: float


@dataclass(frozen=True)
class StageInfo:
    """What a trace says about one stored stage, without its data."""

    path: str
    shape: tuple[int, ...]
    dtype: str  # the dtype the stage was computed in
    layout: str
    cfg: str
    derived: bool
    order: int
    note: str = ""
    kind: str = stages.FLOAT
    detail: str = stages.BOUNDARY
    stand_in: str = ""
    draw: bool = False
    sample_rate: int = 0
    # noise floors by half ("" for a stage without halves): local and propagated
    local_floor: dict[str, Floor] = field(default_factory=dict)
    propagated_floor: dict[str, Floor] = field(default_factory=dict)
    # measured floors of reduced precisions (harness/precision.py): dtype -> half -> propagated floor
    precision_floors: dict[str, dict[str, Floor]] = field(default_factory=dict)


class TraceWriter:
    """Streams stages into a trace; use as a context manager so the file is always closed.

    Writing happens on a background thread, so the disk works while the model computes: a capture
    costs the copy of each tensor, not its write. The queue is short (`QUEUE` tensors), so memory
    stays bounded by a few of the largest tensors whatever the number of stages or steps.
    """

    QUEUE = 4

    def __init__(self, path: str | Path, provenance: dict):
        self.path = Path(path)
        check_target(self.path)
        self.tmp = temporary_beside(self.path)
        self._file = h5py.File(self.tmp, "w")
        self._order = 0
        self._seen: set[str] = set()
        self._file.attrs["format"] = FORMAT
        self._file.attrs["format_version"] = FORMAT_VERSION
        self._file.attrs["complete"] = False
        self._provenance = dict(provenance, start_time=_now())
        self._file.attrs["provenance"] = json.dumps(self._provenance, sort_keys=True, default=str)
        self._file.flush()
        self._queue: queue.Queue = queue.Queue(maxsize=self.QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="trace-writer", daemon=True)
        self._thread.start()

    def __contains__(self, path: str) -> bool:
        return path in self._seen

    @property
    def paths(self) -> list[str]:
        """The stages written so far."""
        return list(self._seen)

    def write(self, path: str, value: np.ndarray, *, dtype: str | None = None, cfg: str | None = None,
              note: str = "", sample_rate: int = 0, layout: str | None = None) -> None:
        """Store one stage; its declaration gives its layout (unless a port's tensor has other axes), CFG
        arrangement and the rest."""
        self._raise_pending()
        spec = stages.spec_for(path)
        if path in self._seen:
            raise ValueError(f"stage {path} written twice")
        self._seen.add(path)
        value = np.asarray(value)
        computed = dtype or str(value.dtype)
        # a private copy: the caller's tensor may be changed in place once this returns
        kind = np.float64 if value.dtype == np.float64 else (np.float32 if value.dtype.kind == "f" else value.dtype)
        value = np.array(value, dtype=kind, copy=True)
        attrs = {"layout": layout or spec.layout, "cfg": cfg or spec.cfg, "derived": spec.derived, "dtype": computed,
                 "order": self._order, "kind": spec.kind, "detail": spec.detail}
        for key, v in (("note", note), ("stand_in", spec.stand_in), ("draw", spec.draw), ("sample_rate", sample_rate)):
            if v:
                attrs[key] = v
        self._order += 1
        self._queue.put(("write", path, value, attrs))

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item[0] == "stop":
                    return
                if self._error is None:
                    self._apply(item)
            except BaseException as exc:  # kept and raised in the caller's thread
                self._error = exc
            finally:
                self._queue.task_done()

    def _apply(self, item) -> None:
        if item[0] == "write":
            _, path, value, attrs = item
            ds = self._file.create_dataset(path, data=value)  # contiguous: the fastest to stream out
            ds.attrs.update(attrs)
            # on disk at once: a run killed outright (kill -9) leaves a partial that reads, up to this stage
            self._file.flush()
        elif item[0] == "flush":
            self._file.flush()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def update_provenance(self, **fields) -> None:
        self._provenance.update(fields)
        self._queue.join()
        self._file.attrs["provenance"] = json.dumps(self._provenance, sort_keys=True, default=str)

    def flush(self) -> None:
        self._queue.put(("flush",))

    def close(self, complete: bool, reason: str = "", publish_now: bool = True) -> Path:
        """Finish the file; only a complete trace takes its final name (atomically).

        `publish_now=False` keeps a complete trace under its temporary name, for a caller that adds to it
        (noise floors) before `publish(tmp, path)`.
        """
        self._queue.put(("stop",))
        self._thread.join()
        failed, self._error = self._error, None
        complete = complete and failed is None
        if failed is not None and not reason:
            reason = f"{type(failed).__name__}: {failed}"
        self._provenance.update(end_time=_now(), **({"interrupted": reason} if reason else {}))
        self._file.attrs["provenance"] = json.dumps(self._provenance, sort_keys=True, default=str)
        self._file.attrs["complete"] = complete
        self._file.close()
        if failed is not None:
            raise failed
        if complete and publish_now:
            return publish(self.tmp, self.path)
        return self.tmp

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close(complete=True)
        else:
            self.close(complete=False, reason=f"{exc_type.__name__}: {exc}")


class Trace:
    """A read-only trace. Opening checks the format; data is read stage by stage, on demand."""

    def __init__(self, path: str | Path):
        self.path = input_file(path, "trace")
        try:
            self._file = h5py.File(self.path, "r")
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.path}: not a readable HDF5 trace ({_short(exc)})") from None
        attrs = self._file.attrs
        try:
            self._check_format(attrs)
            self.provenance: dict = json.loads(attrs.get("provenance", "{}"))
            self.complete = bool(attrs.get("complete", False))
            self.floors: dict = json.loads(attrs.get("floors", "null") or "null") or {}
            self._stages = self._index()
        except (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
            self._file.close()
            raise UserError(f"{self.path}: corrupt trace ({_short(exc)})") from None
        except UserError:
            self._file.close()
            raise
        if not isinstance(self.provenance, dict) or not isinstance(self.floors, dict):
            self._file.close()
            raise UserError(f"{self.path}: corrupt trace (provenance and floors must be JSON objects)")

    def _check_format(self, attrs) -> None:
        if attrs.get("format") != FORMAT:
            raise UserError(f"{self.path}: not an indextts-parity trace (no format mark)")
        version = attrs.get("format_version", -1)
        if isinstance(version, bytes | str) or int(version) != FORMAT_VERSION:
            raise UserError(
                f"{self.path}: trace format version {version}, this harness reads {FORMAT_VERSION}; "
                "capture it again with `harness capture` (or delete the cache: `harness cache clean`)"
            )

    def _index(self) -> dict[str, StageInfo]:
        found: list[StageInfo] = []

        def visit(name: str, obj) -> bool | None:
            if isinstance(obj, h5py.Dataset):
                _check_dataset(self.path, name, obj)
                found.append(_info(name, obj))
                if len(found) > limits.MAX_TENSORS:
                    return True  # stop visiting: the check below names the limit
            return None

        self._file.visititems(visit)
        limits.check(f"{self.path}: the number of stages", len(found), limits.MAX_TENSORS, "MAX_TENSORS")
        found.sort(key=lambda s: (s.order, s.path))
        return {s.path: s for s in found}

    @property
    def has_floors(self) -> bool:
        return bool(self.floors)

    def stages(self) -> list[StageInfo]:
        """Every stored stage, in the order it was written (pipeline order)."""
        return list(self._stages.values())

    def __contains__(self, path: str) -> bool:
        return path in self._stages

    def info(self, path: str) -> StageInfo:
        try:
            return self._stages[path]
        except KeyError:
            raise UserError(f"{self.path}: no stage {path!r}") from None

    def dataset(self, path: str) -> h5py.Dataset:
        self.info(path)
        return self._file[path]

    def read(self, path: str, index=()) -> np.ndarray:
        ds = self.dataset(path)  # its declared size was checked against the limit when the trace was opened
        try:
            return np.asarray(ds[index])
        except (OSError, RuntimeError, ValueError, TypeError) as exc:
            raise UserError(f"{self.path}: cannot read {path} ({_short(exc)}); the file looks truncated") from None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_dataset(path: Path, name: str, ds: h5py.Dataset) -> None:
    """A stage is a plain array stored in this file, of a size the limits allow: checked before any read."""
    where = f"{path}: stage {name}"
    if ds.is_virtual or ds.external:
        raise UserError(f"{where} takes its data from other files; refusing (a trace holds its own data)")
    dtype = ds.dtype
    if dtype.hasobject or dtype.kind not in "biufcS" or dtype.fields is not None and dtype.kind != "c":
        raise UserError(f"{where} holds {dtype} values, not a plain number, bool or byte-string array")
    limits.tensor_bytes(where, ds.shape if ds.shape is not None else (), dtype.itemsize)


def _floors(attrs, kind: str) -> dict[str, Floor]:
    rmse, rel = attrs.get(f"floor_{kind}_rmse"), attrs.get(f"floor_{kind}_rel")
    if rmse is None or rel is None:
        return {}
    rmse, rel = np.atleast_1d(rmse), np.atleast_1d(rel)
    halves = ("",) if len(rmse) == 1 else stages.HALVES
    return {h: Floor(float(a), float(b)) for h, a, b in zip(halves, rmse, rel)}


def _info(name: str, ds: h5py.Dataset) -> StageInfo:
    a = dict(ds.attrs.items())  # each attribute read once: h5py's per-key `get` costs as much as a read, a miss more
    return StageInfo(
        path=name, shape=tuple(ds.shape), dtype=str(a.get("dtype", ds.dtype)), layout=str(a.get("layout", "")),
        cfg=str(a.get("cfg", stages.CFG_NONE)), derived=bool(a.get("derived", False)),
        order=int(a.get("order", 1 << 30)), note=str(a.get("note", "")), kind=str(a.get("kind", stages.FLOAT)),
        detail=str(a.get("detail", stages.BOUNDARY)), stand_in=str(a.get("stand_in", "")),
        draw=bool(a.get("draw", False)), sample_rate=int(a.get("sample_rate", 0)),
        local_floor=_floors(a, "local"), propagated_floor=_floors(a, "prop"),
        precision_floors={k[6:-10]: _floors(a, k[6:-5]) for k in a if k.startswith("floor_") and k.endswith("_prop_rmse")
                          and k.count("_") == 3},
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
