"""Traces from other ports: tensors in a safetensors file, an npz, or a folder of .npy files, plus a
map (TOML) from the port's names and layouts onto our stage paths.

A port in Rust, Swift or C++ can dump tensors under its own names in its own layouts; the map says
what each one is. Conversion writes a regular trace, so everything downstream (verdicts, JSON, JUnit,
the pytest plugin) is the same for a foreign port as for ours. Map format:

    [[tensor]]
    name = "call_{step}.velocity"                   # the port's name; {seg} {step} {block} {layer} {token}
                                                    # capture integers, * any text
    stage = "cfm/seg_00/step_{step}/dit/velocity"   # our stage path (numbers are zero-padded as the schema wants)
    layout = "B C T"                          # the port tensor's axes, in our axis names
    half = "both"                             # both (CFG pair stacked on axis 0, cond first) | cond | uncond | none
    transforms = ["slice_time:384:"]          # optional: slice_time:START:END, squeeze:AXIS, unsqueeze:AXIS

The first entry whose `name` matches a tensor wins. Tensors no entry matches, and reference stages no
tensor provides, are listed, not errors. A map that names an unknown stage, a layout that is not a
permutation of ours, or a tensor whose shape does not fit the reference is bad input (exit 2).
"""
from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import stages
from harness.errors import UserError
from harness.paths import cache_dir
from harness.trace import Trace, TraceWriter

_FIELDS = {name: rf"(?P<{name}>\d+)" for name in stages.FIELDS}
_PLACEHOLDER = re.compile(r"(\{(?:" + "|".join(stages.FIELDS) + r")\}|\*)")
_TRANSFORM = re.compile(r"(slice_time):(-?\d*):(-?\d*)\Z|(squeeze|unsqueeze):(-?\d+)\Z")


@dataclass(frozen=True)
class MapEntry:
    name: str
    stage: str
    layout: str
    half: str = "both"
    transforms: tuple[str, ...] = ()

    def pattern(self) -> re.Pattern:
        out = ""
        for piece in _PLACEHOLDER.split(self.name):
            if piece == "*":
                out += ".*?"
            elif piece.startswith("{") and piece[1:-1] in _FIELDS:
                out += _FIELDS[piece[1:-1]]
            else:
                out += re.escape(piece)
        return re.compile(out + r"\Z")

    def stage_for(self, fields: dict[str, str]) -> str:
        values = {name: "{" + name + "}" for name in stages.FIELDS}
        for key, value in fields.items():
            width = stages.FIELDS[key][1]
            values[key] = f"{int(value):0{width}d}" if width else str(int(value))
        return self.stage.format(**values)


def load_map(path: Path) -> list[MapEntry]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"map not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    entries = []
    for i, item in enumerate(data.get("tensor", [])):
        missing = {"name", "stage", "layout"} - set(item)
        if missing:
            raise UserError(f"{path}: [[tensor]] #{i + 1} lacks {', '.join(sorted(missing))}")
        e = MapEntry(str(item["name"]), str(item["stage"]), str(item["layout"]), str(item.get("half", "both")),
                     tuple(item.get("transforms", ())))
        if e.half not in ("both", "cond", "uncond", "none"):
            raise UserError(f"{path}: [[tensor]] {e.name}: half must be both, cond, uncond or none, not {e.half!r}")
        for t in e.transforms:
            if not _TRANSFORM.match(t):
                raise UserError(f"{path}: [[tensor]] {e.name}: unknown transform {t!r}")
        example = e.stage_for({name: "0" for name in stages.FIELDS})
        if stages.find_spec(example) is None:
            raise UserError(f"{path}: [[tensor]] {e.name}: {e.stage!r} is not a stage of the schema")
        entries.append(e)
    if not entries:
        raise UserError(f"{path}: the map has no [[tensor]] entries")
    return entries


def load_tensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors by name from a safetensors file, an npz, or a folder of .npy files (lazily where possible)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"candidate not found: {path}")
    try:
        if path.is_dir():
            return {f.stem: np.load(f, mmap_mode="r") for f in sorted(path.glob("*.npy"))}
        if path.suffix == ".npz":
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        if path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            return load_file(str(path))
    except Exception as exc:  # numpy and safetensors raise many kinds of error on corrupt files
        raise UserError(f"{path}: cannot be read ({str(exc).splitlines()[0][:160]})") from None
    raise UserError(f"{path}: a candidate is a .h5 trace, a .safetensors file, an .npz, or a folder of .npy files")


def _apply(data: np.ndarray, transforms: tuple[str, ...], layout: list[str], name: str) -> np.ndarray:
    for t in transforms:
        m = _TRANSFORM.match(t)
        if m.group(1):
            if "T" not in layout:
                raise UserError(f"{name}: slice_time needs a T axis in layout {' '.join(layout)}")
            start, end = (int(x) if x else None for x in (m.group(2), m.group(3)))
            index = [slice(None)] * data.ndim
            index[layout.index("T")] = slice(start, end)
            data = data[tuple(index)]
        elif m.group(4) == "squeeze":
            data = np.squeeze(data, axis=int(m.group(5)))
        else:
            data = np.expand_dims(data, axis=int(m.group(5)))
    return data


def convert(ref: Trace, candidate: Path, map_path: Path, out: Path) -> tuple[Path, list[str]]:
    """Write the foreign candidate as a trace of our schema; returns it and the notes on coverage."""
    entries = load_map(map_path)
    tensors = load_tensors(candidate)
    compiled = [(e, e.pattern()) for e in entries]
    unmapped, halves, placed = [], {}, {}
    for name in tensors:
        hit = next(((e, m) for e, p in compiled if (m := p.match(name))), None)
        if hit is None:
            unmapped.append(name)
            continue
        e, m = hit
        stage = e.stage_for({k: v for k, v in m.groupdict().items() if v is not None})
        spec = stages.find_spec(stage)
        if spec is None:
            raise UserError(f"{map_path}: {name} maps to {stage!r}, which is not a stage of the schema")
        if stage not in ref:
            raise UserError(f"{map_path}: {name} maps to {stage}, which the reference trace does not hold")
        axes = e.layout.split()
        data = _apply(np.asarray(tensors[name]), e.transforms, axes, name)
        axes_ref = spec.layout.split()
        if sorted(axes) != sorted(axes_ref) or data.ndim != len(axes):
            raise UserError(f"{map_path}: {name}: layout {e.layout!r} ({data.ndim} axes) cannot be mapped onto "
                            f"{stage}'s {spec.layout!r}")
        data = np.transpose(data, [axes.index(a) for a in axes_ref])
        want = ref.info(stage).shape
        if e.half in ("cond", "uncond") and spec.cfg == stages.CFG_BOTH:
            want = (want[0] // 2, *want[1:])
        if tuple(data.shape) != tuple(want):
            raise UserError(f"{map_path}: {name} -> {stage} ({e.half}): shape {tuple(data.shape)} after the map, "
                            f"the reference has {tuple(want)} ({spec.layout})")
        if e.half in ("cond", "uncond") and spec.cfg == stages.CFG_BOTH:
            halves.setdefault(stage, {})[e.half] = data
        else:
            placed[stage] = data
    for stage, pair in halves.items():
        if len(pair) == 2:
            placed[stage] = np.concatenate([pair["cond"], pair["uncond"]], axis=0)
        else:
            (half, data), = pair.items()
            placed[stage] = (data, half)
    notes = []
    if unmapped:
        notes.append(f"{len(unmapped)} tensor(s) of the candidate not covered by the map, e.g. {unmapped[0]}")
    provided = set(placed)
    absent = [s.path for s in ref.stages() if s.path not in provided and not stages.is_given(s.path)]
    if absent:
        notes.append(f"{len(absent)} reference stage(s) the port does not provide, e.g. {absent[0]}")
    prov = {"implementation": "foreign", "candidate": str(candidate), "map": str(map_path), "notes": notes,
            "config": ref.provenance.get("config")}
    with TraceWriter(out, prov) as writer:
        for info in ref.stages():  # in the reference's pipeline order
            if info.path in placed:
                value = placed[info.path]
                if isinstance(value, tuple):
                    writer.write(info.path, value[0], cfg=value[1])
                else:
                    writer.write(info.path, value)
    return out, notes


def cache_name(candidate: Path, map_path: Path) -> str:
    h = hashlib.sha256()
    for p in (Path(candidate), Path(map_path)):
        h.update(str(p.resolve()).encode())
        st = p.stat()
        h.update(json.dumps([st.st_size, st.st_mtime_ns]).encode())
    return h.hexdigest()[:16]


def foreign_candidate(reference: Path, candidate: Path, map_path: Path | None, log=None) -> Path:
    """Convert a port's tensors into a trace of our schema (cached by file identity); notes go to `log`."""
    if map_path is None:
        raise UserError(f"{candidate} is not an HDF5 trace: give --map MAP to say what its tensors are")
    if not Path(candidate).exists():
        raise UserError(f"candidate not found: {candidate}")
    load_map(map_path)  # a bad map is bad input before anything is read
    out = cache_dir() / "foreign" / f"{Path(candidate).stem}-{cache_name(candidate, map_path)}.h5"
    with Trace(reference) as ref:
        _, notes = convert(ref, Path(candidate), Path(map_path), out)
    for note in notes:
        (log or (lambda _m: None))(f"map: {note}")
    return out
