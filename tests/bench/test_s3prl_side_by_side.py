"""s3prl's emotion recipe as the bench runs it: config, corpus mirror, metadata, a short training run."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from bench import s3prl_side_by_side as s3

HAS_S3PRL_RECIPE = all(importlib.util.find_spec(m) for m in ("s3prl", "librosa", "tensorboardX"))
needs_recipe = pytest.mark.skipif(not HAS_S3PRL_RECIPE, reason="pip install -r bench/requirements.txt")


def test_recipe_config_has_the_recipe_values(tmp_path: Path) -> None:
    config = s3.recipe_config(tmp_path, total_steps=7, fold=2)
    runner = config["runner"]
    assert runner["gradient_accumulate_steps"] * config["downstream_expert"]["datarc"]["train_batch_size"] == 32
    assert runner["total_steps"] == runner["eval_step"] == runner["save_step"] == 7
    assert config["optimizer"] == {"name": "TorchOptim", "torch_optim_name": "Adam", "lr": 1.0e-4}
    assert config["downstream_expert"]["datarc"]["test_fold"] == "fold2"
    assert config["downstream_expert"]["modelrc"]["UtteranceLevel"] == {"pooling": "MeanPooling"}


def test_mirror_links_sessions_and_leaves_the_corpus_alone(tone_corpus: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in tone_corpus.iterdir())
    mirror = s3.mirror_corpus(tone_corpus, tmp_path)
    assert sorted(p.name for p in mirror.iterdir()) == [f"Session{k}" for k in range(1, 6)]
    assert all(p.is_symlink() for p in mirror.iterdir())
    (mirror / "meta_data").mkdir()
    assert sorted(p.name for p in tone_corpus.iterdir()) == before


def test_training_log_seconds_are_summed(tmp_path: Path) -> None:
    unit = tmp_path / "runs" / "fbank" / "x" / "fold1"
    unit.mkdir(parents=True)
    (unit / "log.jsonl").write_text("".join(json.dumps({"epoch": e, "seconds": 0.5}) + "\n" for e in (1, 2, 3)))
    assert s3.training_seconds(tmp_path) == (1.5, 3)
    with pytest.raises(RuntimeError, match="no training log"):
        s3.training_seconds(tmp_path / "empty")


def test_missing_recipe_packages_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "librosa" else real(name, *a))
    with pytest.raises(s3.MissingDependency, match=r"librosa.*bench/requirements.txt"):
        s3.check_dependencies()


@needs_recipe
def test_s3prl_recipe_runs_on_an_iemocap_layout_corpus(tone_corpus: Path, tmp_path: Path) -> None:
    mirror = s3.mirror_corpus(tone_corpus, tmp_path)
    s3.s3prl_metadata(Path(sys.executable), mirror, tmp_path / "logs")
    train = json.loads((mirror / "meta_data" / "Session1" / "train_meta_data.json").read_text())
    assert {m["path"].split("/")[0] for m in train["meta_data"]} == {f"Session{k}" for k in range(2, 6)}
    result = s3.s3prl_train(Path(sys.executable), mirror, tmp_path, 2, tmp_path / "logs", timeout_s=600)
    assert result.returncode == 0 and result.peak_rss_mb > 100
    assert (tmp_path / "s3prl_2steps" / "states-2.ckpt").is_file()
