"""Registry of upstreams: one decorated factory per name, each with its metadata as a frozen spec.

Two kinds of entries:
- names (`@register_upstream("hubert", ...)`): a factory `(**options) -> Upstream` and its `UpstreamSpec`;
- namespaces (`@register_namespace("s3prl", ...)`): a factory `(inner_name, **options) -> Upstream`
  that serves every `prefix:inner_name` (e.g. `s3prl:wavlm`), for toolkits with their own catalogue.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .interface import SAMPLE_RATE, Modality, Upstream

UpstreamFactory = Callable[..., Upstream]
PLUGINS_ENV = "SER_UPSTREAM_PLUGINS"


def _always() -> bool:
    return True


class UnknownUpstreamError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it a plain sentence
        return str(self.args[0])


@dataclass(frozen=True)
class UpstreamSpec:
    """What a registered upstream is, before any weights are loaded.

    `hidden_size`/`num_layers` are 0 where only the built model knows them (namespaced entries);
    `downsample_rate` is input samples per output frame (0 for text); `available` answers, without
    loading anything or touching the network, whether the default source is present on this machine.
    """

    name: str
    backend: str
    source: str = ""
    hidden_size: int = 0
    num_layers: int = 0
    downsample_rate: int = 0
    sample_rate: int = SAMPLE_RATE
    modality: Modality = "audio"
    reference: str = ""
    licence: str = ""
    available: Callable[[], bool] = field(default=_always, compare=False, repr=False)
    # How input is prepared before the model (normalisation, features, tokenisation), as (key, value)
    # pairs: part of a trained unit's identity, so a changed pipeline never reuses stale results.
    input_pipeline: tuple[tuple[str, object], ...] = ()
    # Builds the upstream's modules without weights or files (`upstream.architecture` runs it on the
    # meta device to size a run before it starts); None where only loading the checkpoint would tell.
    architecture: Callable[[], object] | None = field(default=None, compare=False, repr=False)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.downsample_rate if self.downsample_rate else 0.0


@dataclass(frozen=True)
class UpstreamNamespace:
    """A family of names `prefix:<inner name>` served by one factory.

    `example`: an inner name that builds offline (the contract tests run it), or "" where none does
    (`hf:` needs a model directory; its tests save tiny ones). `placeholder` is how listings write the
    inner name. `describe(inner)` returns UpstreamSpec fields known without loading weights (sizes,
    input pipeline), or {} when it cannot tell.
    """

    prefix: str
    backend: str
    example: str = ""
    placeholder: str = "<name>"
    reference: str = ""
    available: Callable[[], bool] = field(default=_always, compare=False, repr=False)
    describe: Callable[[str], dict[str, object]] | None = field(default=None, compare=False, repr=False)

    @property
    def example_name(self) -> str:
        return f"{self.prefix}:{self.example}" if self.example else ""

    @property
    def pattern(self) -> str:
        return f"{self.prefix}:{self.placeholder}"


_SPECS: dict[str, UpstreamSpec] = {}
_FACTORIES: dict[str, UpstreamFactory] = {}
_NAMESPACES: dict[str, tuple[UpstreamNamespace, UpstreamFactory]] = {}


def register_upstream(name: str, **spec_fields: object) -> Callable[[UpstreamFactory], UpstreamFactory]:
    """Decorator adding `factory(**options) -> Upstream` under `name`; `spec_fields` fill its UpstreamSpec."""
    if ":" in name:
        raise ValueError(f"upstream name {name!r} may not contain ':' (reserved for namespaces)")

    def decorator(factory: UpstreamFactory) -> UpstreamFactory:
        if name in _FACTORIES:
            raise ValueError(f"upstream {name!r} is already registered (by {_FACTORIES[name].__module__})")
        _SPECS[name] = UpstreamSpec(name=name, **spec_fields)  # type: ignore[arg-type]
        _FACTORIES[name] = factory
        return factory

    return decorator


def register_namespace(prefix: str, **fields: object) -> Callable[[UpstreamFactory], UpstreamFactory]:
    """Decorator adding `factory(inner_name, **options) -> Upstream` for every name `prefix:inner_name`."""

    def decorator(factory: UpstreamFactory) -> UpstreamFactory:
        if prefix in _NAMESPACES:
            raise ValueError(f"upstream namespace {prefix!r} is already registered")
        _NAMESPACES[prefix] = (UpstreamNamespace(prefix=prefix, **fields), factory)  # type: ignore[arg-type]
        return factory

    return decorator


def list_upstreams() -> list[str]:
    """Registered names (namespaces such as `s3prl:<name>` are in `list_namespaces()`)."""
    return sorted(_FACTORIES)


def list_namespaces() -> list[UpstreamNamespace]:
    return [namespace for namespace, _ in sorted(_NAMESPACES.values(), key=lambda entry: entry[0].prefix)]


def _resolve(name: str) -> tuple[UpstreamFactory, tuple[str, ...]]:
    """The factory serving `name` and the positional arguments it needs; raises UnknownUpstreamError."""
    if name in _FACTORIES:
        return _FACTORIES[name], ()
    prefix, sep, inner = name.partition(":")
    if sep and prefix in _NAMESPACES and inner:
        return _NAMESPACES[prefix][1], (inner,)
    known = list(_FACTORIES) + [namespace.pattern for namespace, _ in _NAMESPACES.values()]
    close = difflib.get_close_matches(name, list(_FACTORIES), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownUpstreamError(f"unknown upstream {name!r}{hint} (registered: {', '.join(sorted(known))})")


def get_spec(name: str) -> UpstreamSpec:
    """Metadata of `name`; for `prefix:inner` names, a spec whose sizes are known only once built."""
    _resolve(name)
    if name in _SPECS:
        return _SPECS[name]
    prefix, _, inner = name.partition(":")
    namespace = _NAMESPACES[prefix][0]
    fields: dict[str, object] = {"source": f"{prefix} hub: {inner}", "reference": namespace.reference}
    fields.update(namespace.describe(inner) if namespace.describe else {})
    return UpstreamSpec(name=name, backend=namespace.backend, available=namespace.available, **fields)  # type: ignore[arg-type]


def _check_options(name: str, factory: UpstreamFactory, positional: int, options: dict[str, object]) -> None:
    parameters = list(inspect.signature(factory).parameters.values())[positional:]
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    accepted = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    unknown = sorted(set(options) - accepted)
    if unknown:
        takes = ", ".join(sorted(accepted)) or "no options"
        raise ValueError(f"upstream {name!r} does not take option(s) {', '.join(unknown)} (it takes: {takes})")


def build_upstream(name: str, **options: object) -> Upstream:
    """Build the upstream registered as `name`; `options` go to its factory (e.g. `ckpt=PATH`).

    Options that are None are dropped, so callers can forward optional CLI flags unconditionally.
    The upstream comes back in eval mode (as `from_pretrained` models do); `.train()` to fine-tune.
    """
    factory, args = _resolve(name)
    options = {key: value for key, value in options.items() if value is not None}
    _check_options(name, factory, len(args), options)
    upstream = factory(*args, **options)
    upstream.name = name
    return upstream.eval()


def import_plugins(specs: str) -> None:
    """Import modules that register upstreams outside this package.

    `specs`: `os.pathsep`-separated module names (`my_pkg.upstreams`) or `.py` files; `upstream`
    imports those listed in $SER_UPSTREAM_PLUGINS, so a user's module needs no edit here.
    """
    for spec in filter(None, specs.split(os.pathsep)):
        if not spec.endswith(".py"):
            importlib.import_module(spec)
            continue
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"upstream plugin {spec!r} ({PLUGINS_ENV}) does not exist")
        module_name = f"upstream_plugin_{path.stem}"
        if module_name in sys.modules:
            continue
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
