"""Errors caused by the user's input: the CLI prints them as one line and exits with status 2."""
from __future__ import annotations

from upstream.hub import UnknownUpstreamError

from .common.lock import RunLockedError
from .data.audio import AudioError
from .data.iemocap import CorpusError

USER_ERRORS: tuple[type[BaseException], ...] = (
    CorpusError,
    AudioError,
    UnknownUpstreamError,
    RunLockedError,
    PermissionError,
    FileNotFoundError,
    ValueError,
)
