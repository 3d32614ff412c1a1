"""The stage registry: every part's declarations, in pipeline order, and the lookups built on them.

This is the one contract between `reference_hooks/` (which writes what upstream computes), `reimpl/` (which
writes what we compute) and the harness (which compares the two). The first segment of a stage path names
its part, and `harness/stages/<part>.py` declares it; a path that no template matches cannot be written
or selected.
"""
from __future__ import annotations

import fnmatch
import functools
import re

from harness.errors import UserError
from harness.stages import cfm, frontend, gpt, inputs, s2mel, semantic, style, vocoder
from harness.stages.spec import (
    AUDIO,
    BOUNDARY,
    CFG_BOTH,
    CFG_COND,
    CFG_NONE,
    CFG_UNCOND,
    EXACT,
    FIELDS,
    FLOAT,
    HALVES,
    INTERNAL,
    FaultSpec,
    Part,
    StageSpec,
)

__all__ = [
    "PARTS", "PART_NAMES", "STAGES", "FAULTS", "GROUPS", "Part", "StageSpec", "FaultSpec", "find_spec", "spec_for",
    "selector", "part", "fault", "is_given", "expected_stage", "segments_in", "seg_path", "CFG_BOTH", "CFG_COND",
    "CFG_NONE", "CFG_UNCOND", "HALVES", "BOUNDARY", "INTERNAL", "FLOAT", "EXACT", "AUDIO", "FIELDS",
]

#: the parts, in pipeline order
PARTS: tuple[Part, ...] = (inputs.PART, frontend.PART, style.PART, semantic.PART, gpt.PART, s2mel.PART, cfm.PART,
                           vocoder.PART)
PART_NAMES = ("inputs", "frontend", "style", "semantic", "gpt", "s2mel", "cfm", "vocoder")
STAGES: tuple[StageSpec, ...] = tuple(s for p in PARTS for s in p.stages)
FAULTS: tuple[FaultSpec, ...] = tuple(f for p in PARTS for f in p.faults)

#: named selections: every part by its name, plus the groups parts declare
GROUPS: dict[str, tuple[str, ...]] = {p.name: (p.name + "/*",) for p in PARTS}
for _p in PARTS:
    GROUPS.update(_p.groups)

_COMPILED = [(spec.regex, spec) for spec in STAGES]
_BY_PART = {p.name: p for p in PARTS}
_FAULTS = {f.name: f for f in FAULTS}


@functools.lru_cache(maxsize=65536)
def find_spec(path: str) -> StageSpec | None:
    for regex, spec in _COMPILED:
        if regex.match(path):
            return spec
    return None


def spec_for(path: str) -> StageSpec:
    spec = find_spec(path)
    if spec is None:
        raise UserError(f"{path!r} is not a stage of the schema (see `harness stages --schema`)")
    return spec


def part(name: str) -> Part:
    try:
        return _BY_PART[name]
    except KeyError:
        raise UserError(f"unknown part {name!r}; parts: {', '.join(_BY_PART)}") from None


def is_given(path: str) -> bool:
    """A stage every implementation is handed rather than computes: a recorded input or random draw."""
    spec = find_spec(path)
    return spec is not None and (spec.draw or _BY_PART[spec.part].given)


def fault(name: str) -> FaultSpec:
    try:
        return _FAULTS[name]
    except KeyError:
        import difflib

        close = [f for f in _FAULTS if f.endswith(name.split(".")[-1])] or difflib.get_close_matches(name, _FAULTS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"unknown fault {name!r}{hint}; `harness faults` lists them") from None


def _without_segments(path: str) -> str:
    """A path with its `seg_NN` segment dropped, so a selection that names no segment matches every one."""
    return re.sub(r"/seg_\d+(?=/|$)", "", path)


def selector(stage: str | None):
    """A predicate on paths for a `--stage` argument; unknown selections are a UserError.

    A selection is a group name (a part, `dit`, `lr`), a glob (`cfm/*/step_0*/dit/velocity`), or a prefix of
    path segments that may start at any segment (`dit/block_03` selects that block in every step). A
    selection that names no `seg_NN` applies to every text segment.
    """
    if not stage:
        return lambda path: True
    stage = stage.strip("/")
    if stage in GROUPS:
        globs = GROUPS[stage]
        pred = lambda path: any(fnmatch.fnmatchcase(path, g) for g in globs)  # noqa: E731
    elif any(ch in stage for ch in "*?["):
        pred = lambda path: any(fnmatch.fnmatchcase(p, stage) or fnmatch.fnmatchcase(p, stage + "/*")  # noqa: E731
                                for p in (path, _without_segments(path)))
    else:
        want = stage.split("/")
        keep_seg = any(re.fullmatch(r"seg_\d+", w) for w in want)

        def pred(path: str) -> bool:
            parts = (path if keep_seg else _without_segments(path)).split("/")
            return any(_segments_match(parts[i : i + len(want)], want) for i in range(len(parts)))

    if not any(pred(p) for p in _examples(stage)):
        raise UserError(f"unknown stage {stage!r}: no stage of the schema matches it "
                        f"(groups: {', '.join(GROUPS)}; `harness stages --schema` lists every stage)")
    return pred


def _examples(selection: str) -> list[str]:
    """Example paths of every template, with the numbers a selection names, to test the selection against."""
    numbers = {name: 0 for name in FIELDS}
    for name in FIELDS:
        m = re.search(rf"{name}_(\d+)", selection)
        if m:
            numbers[name] = int(m.group(1))
    m = re.search(r"block_(\d+)", selection)
    if m:
        numbers["layer"] = int(m.group(1))  # the length regulator's block_N is a layer number
    return [spec.path(**numbers) for spec in STAGES]


def _segments_match(parts: list[str], want: list[str]) -> bool:
    if len(parts) < len(want):
        return False
    for got, w in zip(parts, want):
        if got == w:
            continue
        # "step_3" or "block_3" selects the zero-padded "step_03"
        m = re.fullmatch(r"([a-z]+)_(\d+)", w)
        if m and re.fullmatch(rf"{m.group(1)}_0*{int(m.group(2))}", got):
            continue
        return False
    return True


def expected_stage(f: FaultSpec, config) -> str:
    """A fault's expected first-divergence label for this pipeline config (some depend on the depth)."""
    part_cfg = getattr(config, f.part, None)
    numbers = part_cfg.fault_fields() if hasattr(part_cfg, "fault_fields") else {}
    return f.stage.format(**numbers)


def segments_in(paths, template: str) -> list[int]:
    """The text segments present among `paths` for a template with a `{seg}` field, in order."""
    spec = StageSpec(template, "")
    found = {spec.fields(p)["seg"] for p in paths if spec.regex.match(p)}
    return sorted(found)


def seg_path(template: str, seg: int, **numbers: int) -> str:
    """A concrete path of a template (declared or not) for one segment and the given numbers."""
    return StageSpec(template, "").path(seg=seg, **numbers)
