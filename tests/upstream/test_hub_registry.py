"""The registry: names, specs, namespaces, option checking, errors, plugins."""
from __future__ import annotations

import pytest
import torch

from upstream import hub
from upstream.fbank import FbankUpstream
from upstream.hub import (
    UnknownUpstreamError,
    build_upstream,
    get_spec,
    import_plugins,
    list_namespaces,
    list_upstreams,
    register_namespace,
    register_upstream,
)

EXPECTED = {"fbank", "hubert", "wav2vec2", "hubert_base", "wav2vec2_base", "wavlm_base_plus", "wavlm_large",
            "bert", "minilm", "tiny_hubert", "tiny_wav2vec2", "tiny_wavlm"}


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test vanish after it."""
    monkeypatch.setattr(hub, "_FACTORIES", dict(hub._FACTORIES))
    monkeypatch.setattr(hub, "_SPECS", dict(hub._SPECS))
    monkeypatch.setattr(hub, "_NAMESPACES", dict(hub._NAMESPACES))


def test_issue_names_are_registered_with_complete_specs():
    assert EXPECTED <= set(list_upstreams())
    assert "s3prl" in {namespace.prefix for namespace in list_namespaces()}
    for name in list_upstreams():
        spec = get_spec(name)
        assert spec.name == name and spec.backend and spec.source and spec.reference
        assert spec.hidden_size > 0 and spec.num_layers > 0 and spec.sample_rate == 16_000
        assert (spec.downsample_rate == 0) == (spec.modality == "text")
    assert get_spec("hubert").source == "facebook/hubert-large-ll60k"
    assert get_spec("wav2vec2").source == "facebook/wav2vec2-large-robust"
    assert get_spec("hubert").frame_rate == 50.0 and get_spec("fbank").frame_rate == 100.0


def test_duplicate_name_is_an_error(scratch_registry):
    with pytest.raises(ValueError, match="'fbank' is already registered"):
        register_upstream("fbank", backend="x")(FbankUpstream)
    with pytest.raises(ValueError, match="namespace 's3prl' is already registered"):
        register_namespace("s3prl", backend="x", example="y")(FbankUpstream)


def test_colon_is_reserved_for_namespaces():
    with pytest.raises(ValueError, match="':'"):
        register_upstream("my:model", backend="x")


def test_unknown_name_lists_closest_names():
    with pytest.raises(UnknownUpstreamError, match="did you mean hubert") as info:
        build_upstream("hubrt")
    assert "registered:" in str(info.value) and "s3prl:<name>" in str(info.value)
    with pytest.raises(UnknownUpstreamError):
        get_spec("nope:thing")


def test_namespaced_names_resolve_to_a_spec_without_sizes():
    spec = get_spec("s3prl:wavlm_large")
    assert spec.backend == "s3prl" and spec.source == "s3prl hub: wavlm_large" and spec.hidden_size == 0


def test_options_are_checked_against_the_factory():
    with pytest.raises(ValueError, match="'fbank' does not take option\\(s\\) ckpt"):
        build_upstream("fbank", ckpt="/some/where")
    assert isinstance(build_upstream("fbank", ckpt=None), FbankUpstream)  # None options are dropped


def test_build_sets_the_name_and_eval_mode():
    upstream = build_upstream("tiny_hubert")
    assert upstream.name == "tiny_hubert" and not upstream.training
    assert not any(module.training for module in upstream.modules())


def test_plugin_file_registers_its_upstreams(scratch_registry, tmp_path):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(
        "from upstream import register_upstream\n"
        "from upstream.fbank import FbankUpstream\n"
        "register_upstream('plugged', backend='fbank', hidden_size=80, num_layers=1, downsample_rate=160)(FbankUpstream)\n"
    )
    import_plugins(str(plugin))
    assert "plugged" in list_upstreams()
    out = build_upstream("plugged")(torch.zeros(1, 1600), torch.tensor([1600]))
    assert out.hidden_states[0].shape == (1, 8, 80)
    with pytest.raises(FileNotFoundError, match="SER_UPSTREAM_PLUGINS"):
        import_plugins(str(tmp_path / "missing.py"))
