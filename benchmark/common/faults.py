"""Deterministic crash injection for the crash-safety tests.

`SER_FAULT_INJECT="write:table1.csv#1"` kills the process with SIGKILL the first time the named point
is reached (`fnmatch` patterns; `#N`: the N-th time). Points: `write:<file name>` (between writing a
file's temporary copy and renaming it into place) and `step:<unit folder>` (after an optimizer step; e.g. `step:*fold2#3`). Without the
variable, `fault_point` does nothing.
"""
from __future__ import annotations

import fnmatch
import os
import signal

FAULT_ENV = "SER_FAULT_INJECT"
_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    pattern, _, count = spec.partition("#")
    if fnmatch.fnmatchcase(name, pattern):
        _hits[pattern] = _hits.get(pattern, 0) + 1
        if _hits[pattern] == int(count or 1):
            os.kill(os.getpid(), signal.SIGKILL)
