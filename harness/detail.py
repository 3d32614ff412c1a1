"""Detail levels: which stages a capture (or a replay) records.

Boundary stages, what one part hands the next, are always recorded. Internals are recorded where asked:
`full` records every stage, `boundary` none of the internals, and `default` the internals of the first
and last ODE step (and token), where a bug shows first and where it has grown most. `full:PART[,PART]`
zooms: the default detail, and every internal of the parts named (a port of the CFM loop is compared at
every step without paying for every token of the GPT). A replay records what its reference holds, so the
same stages are compared.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from harness import stages
from harness.errors import UserError

LEVELS = ("boundary", "default", "full")
ZOOM = "full:"  # full:PART[,PART]: the default level, every internal of the named parts
#: the iteration fields whose first and last values keep their internals at the default level
ITERATIONS = ("step", "token")


@dataclass(frozen=True)
class Detail:
    level: str = "default"
    last: tuple[tuple[str, int], ...] = ()  # (field, last index) of each iteration known in advance
    full_parts: tuple[str, ...] = ()  # parts whose every internal is recorded whatever the level (a zoom)

    def __post_init__(self):
        if self.level not in LEVELS:
            raise UserError(f"unknown detail level {self.level!r}; choose one of: {', '.join(LEVELS)}, "
                            f"or {ZOOM}PART[,PART]")
        unknown = [p for p in self.full_parts if p not in stages.PART_NAMES]
        if unknown:
            raise UserError(f"unknown part {unknown[0]!r} in the detail level; the parts: {', '.join(stages.PART_NAMES)}")

    def wants(self, path: str) -> bool:
        return _wants(self, path)

    def to_json(self) -> dict:
        zoom = {"full_parts": list(self.full_parts)} if self.full_parts else {}
        return {"level": self.level, "last": dict(self.last), **zoom}

    @classmethod
    def from_json(cls, data: dict | None) -> Detail:
        data = data or {"level": "full"}
        return cls(str(data.get("level", "full")), tuple(sorted((str(k), int(v)) for k, v in data.get("last", {}).items())),
                   tuple(str(p) for p in data.get("full_parts", ())))


@functools.lru_cache(maxsize=1 << 16)
def _wants(detail: Detail, path: str) -> bool:
    spec = stages.find_spec(path)
    if spec is None or spec.detail == stages.BOUNDARY or detail.level == "full":
        return True
    if detail.full_parts and path.split("/", 1)[0] in detail.full_parts:
        return True
    if detail.level == "boundary":
        return False
    numbers = spec.fields(path)
    last = dict(detail.last)
    for name in ITERATIONS:
        if name in numbers and numbers[name] not in (0, last.get(name, -1)):
            return False
    return True


def parse(level: str) -> tuple[str, tuple[str, ...]]:
    """`full:cfm,gpt` -> ("default", ("cfm", "gpt")); a plain level -> (level, ())."""
    if not level.startswith(ZOOM):
        return level, ()
    parts = tuple(p.strip() for p in level[len(ZOOM):].split(",") if p.strip())
    if not parts:
        raise UserError(f"detail {level!r} names no part; e.g. {ZOOM}cfm")
    return "default", parts


def for_config(level: str, config) -> Detail:
    """The detail policy of a run: the level (or a zoom, `full:PART`), the last ODE step and the last token (the
    cap) of this configuration."""
    name, parts = parse(level)
    return Detail(name, (("step", config.cfm.steps - 1), ("token", config.gpt.max_tokens - 1)), parts)
