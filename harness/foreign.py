"""Traces from other ports: tensors in a safetensors file, an npz, a .npy or a folder of .npy files, plus a
map (TOML, harness/mapfile.py) from the port's names and layouts onto our stage paths.

A port in Rust, Swift or C++ can dump tensors under its own names in its own layouts; the map says
what each one is. Conversion writes a regular trace, so everything downstream (verdicts, JSON, JUnit,
the pytest plugin) is the same for a foreign port as for ours.

What is bad input (exit 2): a map that contradicts itself or the schema, a tensor that contradicts its
map entry (a layout naming more or fewer axes than it has, one CFG half where the entry says both), two
tensors claiming one stage, an unreadable dump. What is a finding (exit 1, at that stage): a tensor whose
shape differs from the reference's after the map (a few frames short, an axis missing) - it is stored
as the port made it and the comparison measures the overlap. Tensors no entry matches, and tensors that
map to stages the reference does not hold (with the likely reason: numbering from 1, or a reference
captured without those internals), are listed and counted, not errors.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from harness import cache, stages
from harness.errors import UserError
from harness.mapfile import TRANSFORM, MapEntry, load_map
from harness.readers import Entry, open_tensors
from harness.trace import Trace, TraceWriter

__all__ = ["MapEntry", "load_map", "convert", "foreign_candidate", "as_traces"]


def _apply(data: np.ndarray, transforms: tuple[str, ...], layout: list[str], name: str) -> np.ndarray:
    for t in transforms:
        m = TRANSFORM.match(t)
        if m.group(1):
            if "T" not in layout or len(layout) != data.ndim:
                raise UserError(f"{name}: slice_time needs a T axis in layout {' '.join(layout)} ({data.ndim} axes)")
            start, end = (int(x) if x else None for x in (m.group(2), m.group(3)))
            index = [slice(None)] * data.ndim
            index[layout.index("T")] = slice(start, end)
            data = data[tuple(index)]
            continue
        axis = int(m.group(5))
        bound = data.ndim + (1 if m.group(4) == "unsqueeze" else 0)
        if not -bound <= axis < bound:
            raise UserError(f"{name}: {t} on a tensor of {data.ndim} axes (shape {tuple(data.shape)})")
        if m.group(4) == "squeeze":
            if data.shape[axis] != 1:
                raise UserError(f"{name}: {t}: axis {axis} has size {data.shape[axis]}, not 1 (shape {tuple(data.shape)})")
            data = np.squeeze(data, axis=axis)
        else:
            data = np.expand_dims(data, axis=axis)
    return data


def _place(e: MapEntry, name: str, entry: Entry, stage: str, ref: Trace, map_path: Path) -> tuple[np.ndarray, str]:
    """The tensor in our layout where its axes allow (else as the port made it), and the layout it is in."""
    spec = stages.find_spec(stage)
    axes = e.layout.split()
    data = _apply(np.asarray(entry.read()), e.transforms, axes, name)
    if data.ndim != len(axes):
        raise UserError(f"{map_path}: {name} has {data.ndim} axes (shape {tuple(data.shape)}) but its layout "
                        f"{e.layout!r} names {len(axes)}; fix layout, or add a squeeze/unsqueeze transform")
    if data.dtype.kind == "U":
        data = np.char.encode(data, "utf-8")  # HDF5 stores byte strings; text is compared as its UTF-8
    axes_ref = spec.layout.split()
    if sorted(axes) != sorted(axes_ref):
        return data, e.layout  # an axis more or fewer: a divergence the comparison will name
    data = np.transpose(data, [axes.index(a) for a in axes_ref])
    if spec.cfg == stages.CFG_BOTH and "B" in axes_ref:
        b, want = data.shape[axes_ref.index("B")], ref.info(stage).shape[axes_ref.index("B")]
        if e.half == "both" and b * 2 == want:
            raise UserError(f"{map_path}: {name} -> {stage}: B is {b}, one CFG half, where the reference holds the "
                            f"pair (B {want}); if it is the conditional half set half = \"cond\" (or \"uncond\")")
        if e.half in stages.HALVES and b == want and want > 1:
            raise UserError(f"{map_path}: {name} -> {stage}: B is {b}, the whole CFG pair, where half = "
                            f"\"{e.half}\" says one half; set half = \"both\"")
    return data, spec.layout


def _why_absent(entry: MapEntry, captured: list[dict], ref: Trace) -> str:
    """Why an entry's tensors map to stages the reference lacks: the port counts from 1, or detail."""
    for field in {k for fields in captured for k in fields}:
        if dict(entry.count_from).get(field):
            continue
        shifted = [dict(fields, **{field: str(int(fields[field]) - 1)}) for fields in captured if field in fields]
        paths = [entry.stage_for(f) for f in shifted if int(f[field]) >= 0]
        if paths and len(paths) == len(shifted) and all(p in ref for p in paths):
            return f"does the port count {field}s from 1? add count_from = {{{field} = 1}} to its entry"
    sample = entry.stage_for(captured[0]) or ""
    spec = stages.find_spec(sample)
    if spec is not None and spec.detail == stages.INTERNAL:
        return "the reference holds those internals only where its detail captured them (harness capture --detail full)"
    return "the reference trace does not hold them"


def convert(ref: Trace, candidate: Path, map_path: Path, out: Path) -> tuple[Path, list[str]]:
    """Write the foreign candidate as a trace of our schema; returns it and the notes on coverage."""
    entries = load_map(map_path)
    tensors = open_tensors(candidate)
    compiled = [(e, e.pattern()) for e in entries]
    unmapped: list[str] = []
    absent: dict[int, list] = {}
    placed: dict[str, tuple] = {}  # stage -> (data, layout, cfg)
    halves: dict[str, dict] = {}
    owner: dict[tuple[str, str], str] = {}
    for name, entry in tensors.items():
        hit = next(((i, e, m) for i, (e, p) in enumerate(compiled) if (m := p.match(name))), None)
        if hit is None:
            unmapped.append(name)
            continue
        i, e, m = hit
        fields = {k: v for k, v in m.groupdict().items() if v is not None}
        stage = e.stage_for(fields)
        if stage is None or stage not in ref:
            absent.setdefault(i, []).append((name, fields, stage))
            continue
        spec = stages.find_spec(stage)
        half = e.half if spec.cfg == stages.CFG_BOTH and e.half in stages.HALVES else ""
        claim = (stage, half)
        for other in ((stage, ""), (stage, "cond"), (stage, "uncond")) if not half else ((stage, ""), claim):
            if other in owner:
                raise UserError(f"{map_path}: tensors {owner[other]} and {name} both map onto {stage}"
                                f"{' (' + half + ')' if half else ''}; the map must place each stage once")
        owner[claim] = name
        data, layout = _place(e, name, entry, stage, ref, map_path)
        if half:
            halves.setdefault(stage, {})[half] = (data, layout, entry.dtype)
        else:
            placed[stage] = (data, layout, None, entry.dtype)
    for stage, pair in halves.items():
        if len(pair) == 2 and pair["cond"][1] == pair["uncond"][1] and pair["cond"][0].shape == pair["uncond"][0].shape \
                and pair["cond"][1] == stages.find_spec(stage).layout:
            placed[stage] = (np.concatenate([pair["cond"][0], pair["uncond"][0]], axis=0), pair["cond"][1], None,
                             pair["cond"][2])
        else:  # one half, or halves of differing shapes: the cond half is what is compared of a mismatch
            half = "cond" if "cond" in pair else "uncond"
            placed[stage] = (pair[half][0], pair[half][1], half, pair[half][2])
    notes = _notes(entries, absent, unmapped, placed, ref)
    prov = {"implementation": "foreign", "candidate": str(candidate), "map": str(map_path), "notes": notes,
            "config": ref.provenance.get("config"),
            "map_stages": [{"stage": e.stage, "half": e.half} for e in entries]}
    with TraceWriter(out, prov) as writer:
        for info in ref.stages():  # in the reference's pipeline order
            if info.path in placed:
                data, layout, cfg, dtype = placed[info.path]
                writer.write(info.path, data, cfg=cfg, layout=layout, dtype=dtype)
    return out, notes


def _notes(entries, absent, unmapped, placed, ref: Trace) -> list[str]:
    notes = []
    for i, items in absent.items():
        name, _, stage = items[0]
        where = f" -> {stage}" if stage else " (a number below count_from)"
        notes.append(f"{len(items)} tensor(s) of entry {entries[i].name!r} map to stages the reference does not hold, "
                     f"e.g. {name}{where}: {_why_absent(entries[i], [f for _, f, _ in items], ref)}")
    if unmapped:
        notes.append(f"{len(unmapped)} tensor(s) of the candidate not covered by the map, e.g. {unmapped[0]}")
    missing = [s.path for s in ref.stages() if s.path not in placed and not stages.is_given(s.path)]
    if missing:
        notes.append(f"{len(missing)} reference stage(s) the port does not provide, e.g. {missing[0]}")
    return notes


def cache_name(*paths: Path) -> str:
    """A name that changes with any of the files (the reference included: a dump converts against one)."""
    h = hashlib.sha256(b"conversion v3")  # bump when what a conversion writes changes
    for p in paths:
        h.update(str(Path(p).resolve()).encode())
        st = Path(p).stat()
        h.update(json.dumps([st.st_size, st.st_mtime_ns, st.st_ino]).encode())
    return h.hexdigest()[:16]


DUMP_SUFFIXES = (".safetensors", ".npz", ".npy")
TRACE_SUFFIXES = (".h5", ".hdf5", ".partial")  # .partial: an interrupted run's trace, readable as such


def is_foreign(path: Path | str | None, map_path: Path | str | None = None) -> bool:
    """A port's dump rather than a trace: a folder, a .safetensors/.npz/.npy file, or with a map anything
    that is not named as a trace."""
    if path is None:
        return False
    path = Path(path)
    return path.suffix in DUMP_SUFFIXES or path.is_dir() or (map_path is not None and path.suffix not in TRACE_SUFFIXES)


def as_traces(reference: Path, candidate: Path, forced: Path | None, map_path: Path | None, log=None
              ) -> tuple[Path, Path | None]:
    """The candidate and its teacher-forced run as traces: a port's dumps are converted through the map."""
    if map_path is not None and not (is_foreign(candidate, map_path) or is_foreign(forced, map_path)):
        raise UserError(f"--map is for a port's dump (.safetensors, .npz, .npy, a folder of .npy); {candidate} "
                        f"{'and ' + str(forced) + ' are traces' if forced else 'is a trace'}: drop --map")
    if is_foreign(candidate, map_path):
        candidate = foreign_candidate(reference, candidate, map_path, log)
    if is_foreign(forced, map_path):
        forced = foreign_candidate(reference, forced, map_path, log)
    return candidate, forced


def foreign_candidate(reference: Path, candidate: Path, map_path: Path | None, log=None) -> Path:
    """Convert a port's tensors into a trace of our schema (cached by file identity); notes go to `log`."""
    if map_path is None:
        raise UserError(f"{candidate} is not an HDF5 trace: give --map MAP to say what its tensors are "
                        "(docs/example.map.toml; `harness stages --schema` lists our stages)")
    load_map(map_path)  # a bad map is bad input before anything is read
    open_tensors(candidate)  # and so is an unreadable dump
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(candidate).stem)[:60]
    out = cache.folder("foreign") / f"{stem}-{cache_name(reference, candidate, map_path)}.h5"
    if out.exists():  # converted before from these very files
        cache.touch(out)
        with Trace(out) as t:
            notes = list(t.provenance.get("notes") or [])
    else:
        with Trace(reference) as ref:
            _, notes = convert(ref, Path(candidate), Path(map_path), out)
        cache.enforce()
    for note in notes:
        (log or (lambda _m: None))(f"map: {note}")
    return out
