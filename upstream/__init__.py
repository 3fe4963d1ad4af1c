"""Upstream hub: `build_upstream(name)` turns any registered model into a hidden-state extractor."""
from . import fbank  # noqa: F401  (registers its upstreams)
from .hub import UpstreamSpec, build_upstream, get_spec, list_upstreams, register_upstream
from .interface import Batch, Upstream, UpstreamOutput

__all__ = [
    "Batch",
    "Upstream",
    "UpstreamOutput",
    "UpstreamSpec",
    "build_upstream",
    "get_spec",
    "list_upstreams",
    "register_upstream",
]
