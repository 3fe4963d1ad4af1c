"""Shared fixtures: small IEMOCAP-format corpora built on the fly."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from corpus_builder import synthetic_turns, write_tree  # noqa: E402


@pytest.fixture(scope="session")
def tone_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A learnable 5-session corpus of synthetic tones (class ↔ pitch and loudness), read-only for tests."""
    return write_tree(tmp_path_factory.mktemp("tone_corpus"), synthetic_turns(per_class=4))
