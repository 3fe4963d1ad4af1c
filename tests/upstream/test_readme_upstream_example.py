"""The README's "Add your own upstream" example, run verbatim, then held to the upstream contract."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from upstream import build_upstream, hub, list_upstreams

README = Path(__file__).resolve().parents[2] / "README.md"


def example_code() -> str:
    text = README.read_text()
    section = re.search(r"^## Add your own upstream\n(.*?)(?=^## )", text, flags=re.DOTALL | re.MULTILINE)
    assert section, "README.md lacks the section '## Add your own upstream'"
    block = re.search(r"```python\n(.*?)```", section.group(1), flags=re.DOTALL)
    assert block, "the section has no python example"
    return block.group(1)


def test_readme_example_runs_and_meets_the_contract(monkeypatch, fake_wavs):
    monkeypatch.setattr(hub, "_FACTORIES", dict(hub._FACTORIES))
    monkeypatch.setattr(hub, "_SPECS", dict(hub._SPECS))
    code = example_code()
    assert len(code.splitlines()) <= 20
    namespace: dict = {"__name__": "my_upstream"}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102  (the README example, verbatim)

    assert "log_energy" in list_upstreams()
    out = namespace["out"]
    assert out.hidden_states[0].shape == (2, 50, 1) and out.lengths.tolist() == [50, 25]
    upstream = build_upstream("log_energy")
    wavs, lens = fake_wavs([16_000, 8_000])
    batch, alone = upstream(wavs, lens), upstream(wavs[1:, :8_000], lens[1:])
    torch.testing.assert_close(batch.hidden_states[0][1, :25], alone.hidden_states[0][0])
    assert len(batch.hidden_states) == upstream.num_layers



def test_readme_example_as_a_plugin_module(tmp_path):
    """The README's command-line route: the module named in SER_UPSTREAM_PLUGINS registers on `import upstream`."""
    plugin = tmp_path / "my_upstream.py"
    plugin.write_text(example_code())
    code = "import upstream; print(upstream.get_spec('log_energy').backend)"
    env = {**os.environ, "SER_UPSTREAM_PLUGINS": str(plugin)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "custom"
