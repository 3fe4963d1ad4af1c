"""One run per output folder: an advisory lock file holding the owner's PID."""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".run.lock"


class RunLockedError(RuntimeError):
    """Another live process is running on the same output folder."""


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold `out/.run.lock` for the block. The kernel drops the lock when its process dies, so a lock
    file left by a killed run is taken over (and said so) rather than blocking forever."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RunLockedError(f"{out}: another run (PID {holder}) is using this output folder; "
                             "wait for it to finish or pass another --out") from None
    handle.seek(0)
    previous = handle.read().strip()
    if previous and previous != str(os.getpid()):
        print(f"note: {path}: recovered the lock of a run that ended without releasing it (PID {previous})")
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        handle.seek(0)
        handle.truncate()
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
