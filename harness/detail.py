"""Detail levels: which stages a capture (or a replay) records.

Boundary stages, what one part hands the next, are always recorded. Internals are recorded where asked:
`full` records every stage, `boundary` none of the internals, and `default` the internals of the first
and last ODE step (and token), where a bug shows first and where it has grown most. A replay records
what its reference holds, so the same stages are compared.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from harness import stages
from harness.errors import UserError

LEVELS = ("boundary", "default", "full")
#: the iteration fields whose first and last values keep their internals at the default level
ITERATIONS = ("step", "token")


@dataclass(frozen=True)
class Detail:
    level: str = "default"
    last: tuple[tuple[str, int], ...] = ()  # (field, last index) of each iteration known in advance

    def __post_init__(self):
        if self.level not in LEVELS:
            raise UserError(f"unknown detail level {self.level!r}; choose one of: {', '.join(LEVELS)}")

    def wants(self, path: str) -> bool:
        return _wants(self, path)

    def to_json(self) -> dict:
        return {"level": self.level, "last": dict(self.last)}

    @classmethod
    def from_json(cls, data: dict | None) -> Detail:
        data = data or {"level": "full"}
        return cls(str(data.get("level", "full")), tuple(sorted((str(k), int(v)) for k, v in data.get("last", {}).items())))


@functools.lru_cache(maxsize=1 << 16)
def _wants(detail: Detail, path: str) -> bool:
    spec = stages.find_spec(path)
    if spec is None or spec.detail == stages.BOUNDARY or detail.level == "full":
        return True
    if detail.level == "boundary":
        return False
    numbers = spec.fields(path)
    last = dict(detail.last)
    for name in ITERATIONS:
        if name in numbers and numbers[name] not in (0, last.get(name, -1)):
            return False
    return True


def for_config(level: str, config) -> Detail:
    """The detail policy of a run: the level, the last ODE step and the last token (the cap) of this configuration."""
    return Detail(level, (("step", config.cfm.steps - 1), ("token", config.gpt.max_tokens - 1)))
