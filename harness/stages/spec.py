"""What a stage declaration says: the data types every part's declaration module fills in.

A stage is a named tensor at one point of the pipeline. Its declaration says everything the harness
needs to know about it without running a model: the axes of its layout, how the two CFG halves are
arranged, whether it is recomputed rather than hooked, how it is compared (float, exact, audio), whether
it is a boundary of its part or an internal, the group it is reported in, and what to plot of it.
Declarations are plain frozen data: the harness core reads them, and so do both model sides.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# CFG arrangement of a tensor. "both": the batched estimator call, conditional half first on axis 0.
CFG_NONE, CFG_COND, CFG_UNCOND, CFG_BOTH = "none", "cond", "uncond", "both"
HALVES = (CFG_COND, CFG_UNCOND)

# How a stage is compared. float: metrics against noise floors; exact: integers or booleans, the first
# differing index; audio: float metrics plus SNR, delay, gain and a log-mel distance.
FLOAT, EXACT, AUDIO = "float", "exact", "audio"

# Detail levels. A boundary stage is what a part consumes or hands on and is always captured; an
# internal stage is captured where asked (by default on the first and last ODE step and token).
BOUNDARY, INTERNAL = "boundary", "internal"

#: the numbered fields a template may hold, how each is written, and how a match reads it back
FIELDS: dict[str, tuple[str, int]] = {"seg": (r"\d{2}", 2), "step": (r"\d{2}", 2), "block": (r"\d{2}", 2),
                                      "token": (r"\d{4}", 4), "layer": (r"\d+", 0)}


@dataclass(frozen=True)
class StageSpec:
    """A template of stage paths that share a meaning, a layout and a CFG arrangement."""

    template: str  # e.g. "cfm/seg_{seg}/step_{step}/dit/block_{block}/attn_norm"
    layout: str  # axis names, e.g. "B C T"
    cfg: str = CFG_NONE
    derived: bool = False  # recomputed from hooked tensors rather than hooked itself
    doc: str = ""
    kind: str = FLOAT
    detail: str = BOUNDARY
    group: str = ""  # template of the report group (a pytest item); default: the part
    plot: tuple[str, ...] = ()  # "mel": draw it as a spectrogram; "step_series": per-step curves
    stand_in: str = ""  # non-empty: a seeded stand-in for what a later part will compute, and which part
    draw: bool = False  # a random draw upstream makes: recorded, and given to every replay, never drawn again
    mix_of: tuple[str, ...] = ()  # a derived mix of these sibling stages (CFG), for the mix hint
    mix_rate: str = ""  # the config field (part.field) holding the mix's rate
    checked_by: str = ""  # for a derived stage: the hooked upstream value it must equal, in words
    input: str = ""  # the sibling stage this one is computed from (for hints that look through the computation)
    step_of: tuple[str, str] = ()  # an integration stage: (the sibling velocity, the template of its schedule)

    @property
    def part(self) -> str:
        return self.template.split("/", 1)[0]

    @property
    def regex(self) -> re.Pattern:
        pattern = re.escape(self.template)
        for name, (digits, _) in FIELDS.items():
            pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{digits})")
        return re.compile(pattern + r"\Z")

    def path(self, **numbers: int) -> str:
        """The stage path for these numbers (zero-padded as the template's fields want)."""
        values = {name: (f"{int(numbers.get(name, 0)):0{width}d}" if width else str(int(numbers.get(name, 0))))
                  for name, (_, width) in FIELDS.items()}
        return self.template.format(**values)

    def fields(self, path: str) -> dict[str, int]:
        m = self.regex.match(path)
        return {k: int(v) for k, v in m.groupdict().items()} if m else {}

    def group_of(self, path: str) -> str:
        """The report group a path of this template belongs to (its template formatted with the path's numbers)."""
        template = self.group or self.part
        numbers = self.fields(path)
        values = {name: (f"{numbers.get(name, 0):0{width}d}" if width else str(numbers.get(name, 0)))
                  for name, (_, width) in FIELDS.items()}
        return template.format(**values)


@dataclass(frozen=True)
class FaultSpec:
    """A real porting bug that `reimpl/` can switch on, and where and how the harness must name it.

    The name is `<part>.<module>.<what>`: the switch point is `reimpl/<part>/<module>.py`, where the code
    asks `active(name)` at the one place the bug lives (`<part>.<what>`: `reimpl/<part>/__init__.py`).
    """

    name: str
    summary: str
    stage: str  # the stage label where it must show first (the expected first divergence)
    hint: str = ""  # the hint kind expected on that stage, or "" where no known pattern fits
    recording: str = ""  # a recording in fixtures/ the fault needs to show (e.g. an odd frame count); "" the default
    #: config changes the fault needs to show, as `PipelineConfig.with_` takes them (e.g. the emotion-vector mode)
    config: tuple[tuple[str, object], ...] = ()

    @property
    def part(self) -> str:
        return self.name.split(".", 1)[0]


@dataclass(frozen=True)
class Part:
    """One part of the pipeline, as the harness knows it: its stages, boundaries, config and faults."""

    name: str
    doc: str
    stages: tuple[StageSpec, ...]
    consumes: tuple[str, ...] = ()  # stage templates of earlier parts this part reads
    produces: tuple[str, ...] = ()  # its stage templates that later parts read
    config: type | None = None  # the part's config dataclass
    faults: tuple[FaultSpec, ...] = ()
    per_segment: bool = False  # runs once per text segment (its stages carry seg_NN)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # named selections: globs over paths
    exports: tuple[str, ...] = ()  # stages of its own that a port needs to run this part alone
    given: bool = False  # its stages are given to every implementation (recorded inputs), never computed
    extras: object = None  # read(path) -> {name: (array, meaning)}: what a port needs that no stage holds


class PartConfig:
    """Mixin of every part's config dataclass: plain data, hashed to key caches and matched across traces.

    `RUN_FIELDS` names the fields that are run settings rather than architecture: a checkpoint fits any
    value of them, so they are left out of `arch_digest`.
    """

    RUN_FIELDS: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        import dataclasses

        return dataclasses.asdict(self)

    def arch_dict(self) -> dict:
        return {k: v for k, v in self.to_dict().items() if k not in self.RUN_FIELDS}

    @classmethod
    def from_dict(cls, data: dict):
        import dataclasses

        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)
