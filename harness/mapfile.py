"""A port's map file (TOML): which of its tensors is which of our stages, in which layout and CFG half.

Every mistake a porter can make in a map is caught when the map is read, before any tensor is, with one
line that names the entry and the fix: an unknown key or table (did you mean ...), a value of the wrong
type, a placeholder that does not exist (`{blok}`) or is not captured by the name, a stage that is not in
the schema (with the nearest one, e.g. `block_{block}` where `block_{layer}` was written), an axis name we
do not use, a CFG half that the stage cannot have, an unreachable duplicate entry.

    [[tensor]]
    name = "step{step}.cond.velocity"            # the port's name; {seg} {step} {block} {layer} {token}
                                                 # capture integers, * any text
    stage = "cfm/seg_00/step_{step}/dit/velocity"  # our stage (`harness stages --schema`)
    layout = "B T C"                             # the port tensor's axes, in our axis names
    half = "cond"                                # both (CFG pair on axis 0, cond first) | cond | uncond | none
    transforms = ["slice_time:384:"]             # optional: slice_time:START:END, squeeze:AXIS, unsqueeze:AXIS
    count_from = {step = 1}                      # optional: the port numbers steps from 1 (ours from 0)
"""
from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness import limits, stages
from harness.errors import UserError
from harness.files import read_text

KEYS = ("name", "stage", "layout", "half", "transforms", "count_from")
HALF_CHOICES = ("both", "cond", "uncond", "none")
TRANSFORM = re.compile(r"(slice_time):(-?\d{0,12}):(-?\d{0,12})\Z|(squeeze|unsqueeze):(-?\d{1,2})\Z")
AXES = tuple(sorted({a for s in stages.STAGES for a in s.layout.split()}))
MAX_COUNT_FROM = 1000
_FIELD = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class MapEntry:
    name: str
    stage: str
    layout: str
    half: str = "both"
    transforms: tuple[str, ...] = ()
    count_from: tuple[tuple[str, int], ...] = ()  # (field, the port's number for our 0)

    def pattern(self) -> re.Pattern:
        out = ""
        for piece in re.split(r"(\{[a-z]+\}|\*)", self.name):
            if piece == "*":
                out += ".*?"
            elif piece.startswith("{") and piece[1:-1] in stages.FIELDS:
                out += rf"(?P<{piece[1:-1]}>\d+)"
            else:
                out += re.escape(piece)
        return re.compile(out + r"\Z")

    def stage_for(self, fields: dict[str, str]) -> str | None:
        """Our stage path for the numbers a name captured (None: a number below the port's first)."""
        shift = dict(self.count_from)
        values = {name: "{" + name + "}" for name in stages.FIELDS}
        for key, value in fields.items():
            number = int(value) - shift.get(key, 0)
            if number < 0:
                return None
            width = stages.FIELDS[key][1]
            values[key] = f"{number:0{width}d}" if width else str(number)
        return self.stage.format(**values)


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]}?)" if close else ""


def _fields(text: str, where: str, what: str) -> list[str]:
    found = _FIELD.findall(text)
    for f in found:
        if f not in stages.FIELDS:
            raise UserError(f"{where}: {what} {text!r} uses {{{f}}}, not a field{_did_you_mean(f, stages.FIELDS)}; "
                            f"fields: {', '.join('{' + k + '}' for k in stages.FIELDS)}")
    if "{" in _FIELD.sub("", text) or "}" in _FIELD.sub("", text):
        raise UserError(f"{where}: {what} {text!r} has an unbalanced brace")
    return found


def suggest_stage(stage: str) -> str:
    """The schema template nearest a stage that is not in the schema, and which field to change."""
    norm = lambda t: re.sub(r"\{[a-z]+\}|\d+", "#", t)  # noqa: E731
    by_norm = {norm(s.template): s.template for s in stages.STAGES}
    close = difflib.get_close_matches(norm(stage), list(by_norm), n=1, cutoff=0.6)
    if not close:
        return " (`harness stages --schema` lists every stage)"
    template = by_norm[close[0]]
    if template == stage:
        return " (`harness stages --schema` lists every stage)"
    swaps = [f"{t}, not {u}" for u, t in zip(stage.split("/"), template.split("/"))
             if u != t and _FIELD.search(u) and _FIELD.search(t) and _FIELD.sub("", u) == _FIELD.sub("", t)]
    return f" (did you mean {template}{'; ' + swaps[0] if swaps else ''}?)"


def _entry(item, i: int, path: Path) -> MapEntry:
    where = f"{path}: [[tensor]] #{i + 1}"
    if not isinstance(item, dict):
        raise UserError(f"{where}: not a table; write each entry as [[tensor]] with name, stage and layout")
    if isinstance(item.get("name"), str):
        where += f" ({item['name']})"
    for key in item:
        if key not in KEYS:
            raise UserError(f"{where}: unknown key {key!r}{_did_you_mean(key, KEYS)}; keys: {', '.join(KEYS)}")
    missing = [k for k in ("name", "stage", "layout") if k not in item]
    if missing:
        raise UserError(f"{where}: lacks {', '.join(missing)}")
    for key in ("name", "stage", "layout", "half"):
        if key in item and not isinstance(item[key], str):
            raise UserError(f"{where}: {key} must be a string, not {type(item[key]).__name__} {item[key]!r}")
    transforms = item.get("transforms", [])
    if not isinstance(transforms, list) or not all(isinstance(t, str) for t in transforms):
        raise UserError(f"{where}: transforms must be a list of strings, e.g. [\"slice_time:384:\"]")
    count_from = item.get("count_from", {})
    if not isinstance(count_from, dict):
        raise UserError(f"{where}: count_from must be a table, e.g. count_from = {{step = 1}}")
    return MapEntry(item["name"], item["stage"], item["layout"], item.get("half", "both"), tuple(transforms),
                    tuple(sorted(count_from.items())))


def _check(e: MapEntry, where: str) -> None:
    if not e.name:
        raise UserError(f"{where}: name is empty")
    captured = _fields(e.name, where, "name")
    if len(set(captured)) != len(captured):
        raise UserError(f"{where}: name {e.name!r} captures a field twice")
    for f in _fields(e.stage, where, "stage"):
        if f not in captured:
            raise UserError(f"{where}: stage {e.stage!r} uses {{{f}}}, which name {e.name!r} does not capture; "
                            f"write the number, or capture it in the name")
    for f, n in e.count_from:
        if f not in captured:
            raise UserError(f"{where}: count_from names {{{f}}}, which name {e.name!r} does not capture")
        if isinstance(n, bool) or not isinstance(n, int) or not -MAX_COUNT_FROM <= n <= MAX_COUNT_FROM:
            raise UserError(f"{where}: count_from {f} = {n!r} must be an integer between -{MAX_COUNT_FROM} and "
                            f"{MAX_COUNT_FROM} (the port's number for our first)")
    first = dict(e.count_from)
    spec = stages.find_spec(e.stage_for({f: str(first.get(f, 0)) for f in captured}) or "")
    if spec is None:
        raise UserError(f"{where}: {e.stage!r} is not a stage of the schema{suggest_stage(e.stage)}")
    _check_layout(e, spec, where)
    if e.half not in HALF_CHOICES:
        raise UserError(f"{where}: half must be both, cond, uncond or none, not {e.half!r}"
                        f"{_did_you_mean(e.half, HALF_CHOICES)}")
    if spec.cfg == stages.CFG_NONE and e.half in stages.HALVES:
        raise UserError(f"{where}: {e.stage} has no CFG halves; set half = \"none\"")
    if spec.cfg == stages.CFG_BOTH and e.half == "none":
        raise UserError(f"{where}: {e.stage} holds the CFG pair; set half = \"both\" (stacked on axis 0, cond first), "
                        "\"cond\" or \"uncond\"")
    if spec.cfg in stages.HALVES and e.half in stages.HALVES and e.half != spec.cfg:
        raise UserError(f"{where}: {e.stage} is the {spec.cfg} half only; set half = \"{spec.cfg}\"")
    for t in e.transforms:
        if not TRANSFORM.match(t):
            raise UserError(f"{where}: unknown transform {t!r}; transforms: \"slice_time:START:END\", "
                            "\"squeeze:AXIS\", \"unsqueeze:AXIS\"")


def _check_layout(e: MapEntry, spec: stages.StageSpec, where: str) -> None:
    axes = e.layout.split()
    if not axes:
        raise UserError(f"{where}: layout is empty; name the tensor's axes, e.g. layout = \"{spec.layout}\"")
    for a in axes:
        if a not in AXES:
            raise UserError(f"{where}: layout {e.layout!r}: {a!r} is not one of our axis names "
                            f"({', '.join(AXES)}){_did_you_mean(a, AXES)}; {spec.template} is {spec.layout!r}")
    if len(set(axes)) != len(axes):
        raise UserError(f"{where}: layout {e.layout!r} names an axis twice")


def load_map(path: Path) -> list[MapEntry]:
    text = read_text(path, "map")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    for key in data:
        if key != "tensor":
            raise UserError(f"{path}: unknown table or key {key!r}{_did_you_mean(key, ['tensor'])}; a map is a list of "
                            "[[tensor]] entries (docs/example.map.toml)")
    items = data.get("tensor", [])
    if not isinstance(items, list):
        raise UserError(f"{path}: write each entry as [[tensor]] (an array of tables), not [tensor]")
    limits.check(f"{path}: the number of [[tensor]] entries", len(items), limits.MAX_ENTRIES, "MAX_ENTRIES")
    entries, names = [], {}
    for i, item in enumerate(items):
        e = _entry(item, i, path)
        where = f"{path}: [[tensor]] #{i + 1} ({e.name})"
        _check(e, where)
        if e.name in names:
            raise UserError(f"{where}: the same name as entry #{names[e.name] + 1}, which always matches first; "
                            "remove one")
        names[e.name] = i
        entries.append(e)
    if not entries:
        raise UserError(f"{path}: the map has no [[tensor]] entries (docs/example.map.toml is a complete example)")
    return entries
