"""The `--list-upstreams` table."""
from __future__ import annotations

from upstream import list_namespaces, list_upstreams
from upstream.catalog import format_upstream_table, upstream_table
from upstream.checkpoints import hf_snapshot


def test_table_has_a_row_per_name_and_namespace():
    rows = upstream_table()
    assert [row["name"] for row in rows] == list_upstreams() + [n.pattern for n in list_namespaces()]
    by_name = {row["name"]: row for row in rows}
    assert by_name["hubert"] | {"available_offline": None} == {
        "name": "hubert", "backend": "transformers", "source": "facebook/hubert-large-ll60k", "hidden_size": 1024,
        "num_layers": 25, "frame_rate": 50.0, "modality": "audio", "available_offline": None,
    }
    assert by_name["hubert"]["available_offline"] == (hf_snapshot("facebook/hubert-large-ll60k") is not None)
    for name in ("fbank", "tiny_hubert", "tiny_wav2vec2", "tiny_wavlm", "minilm"):
        assert by_name[name]["available_offline"] is True


def test_formatted_table_is_aligned_text():
    lines = format_upstream_table().splitlines()
    assert lines[0].split() == ["name", "backend", "source", "hidden", "layers", "frames/s", "offline"]
    assert len(lines) == 1 + len(upstream_table())
    fbank = next(line for line in lines if line.startswith("fbank "))
    assert fbank.split()[-3:] == ["1", "100", "yes"]
    minilm = next(line for line in lines if line.startswith("minilm "))
    assert minilm.split()[-2:] == ["text", "yes"]
