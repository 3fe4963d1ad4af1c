"""Upstream hub: `build_upstream(name)` turns any registered model into a hidden-state extractor.

Backends register on import; they are listed here explicitly (no scanning), then the user's
modules named in $SER_UPSTREAM_PLUGINS. Heavy dependencies (transformers, s3prl) are imported only
when an upstream of theirs is built.
"""
import os as _os

from . import fbank, hf_any, releases, s3prl_hub, text, tiny  # noqa: F401  (each registers its upstreams)
from .checkpoints import CheckpointNotFoundError, UntrustedCheckpointError
from .hub import (
    PLUGINS_ENV,
    UnknownUpstreamError,
    UpstreamSpec,
    build_upstream,
    get_spec,
    import_plugins,
    list_namespaces,
    list_upstreams,
    register_namespace,
    register_upstream,
)
from .interface import Batch, Upstream, UpstreamOutput

__all__ = [
    "Batch",
    "CheckpointNotFoundError",
    "UnknownUpstreamError",
    "UntrustedCheckpointError",
    "Upstream",
    "UpstreamOutput",
    "UpstreamSpec",
    "build_upstream",
    "get_spec",
    "import_plugins",
    "list_namespaces",
    "list_upstreams",
    "register_namespace",
    "register_upstream",
]

import_plugins(_os.environ.get(PLUGINS_ENV, ""))
