"""Feature caches dropped once every unit of the run reading them has finished (`Profile.keep_cache: false`).

A cache holds one fold's hidden states of one upstream (weights and layer selection): the frozen
units that read it are known from the plan (`plan.cache_id`), the file from the first reader's
`caches.json`. Checkpoint retention of a finished unit is `stages.apply_retention`.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..reporting.results import load_result
from .plan import FrozenUnit, Unit, cache_id
from .stages import CACHES_FILE


class CacheJanitor:
    """Call `unit_done(unit)` after each unit finishes; with `keep_cache` it does nothing."""

    def __init__(self, units: Sequence[Unit], out: Path, keep_cache: bool) -> None:
        self.out, self.keep_cache = out, keep_cache
        self.readers: dict[str, set[tuple[str, int]]] = {}
        self.deleted: list[Path] = []
        for unit in units:
            if isinstance(unit, FrozenUnit) and load_result(unit.directory(out)) is None:
                for branch in range(len(unit.upstreams)):
                    self.readers.setdefault(cache_id(unit, branch), set()).add((unit.key, unit.fold))

    def unit_done(self, unit: Unit) -> None:
        if self.keep_cache or not isinstance(unit, FrozenUnit):
            return
        record_file = unit.directory(self.out) / CACHES_FILE
        record = json.loads(record_file.read_text()) if record_file.is_file() else {}
        for branch in range(len(unit.upstreams)):
            cid = cache_id(unit, branch)
            readers = self.readers.get(cid, set())
            readers.discard((unit.key, unit.fold))
            if readers:
                continue
            for name in record.get(cid, []):
                path = Path(name)
                if path.is_file():
                    path.unlink()
                    self.deleted.append(path)
