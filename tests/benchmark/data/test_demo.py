"""The synthetic demo corpus: deterministic, IEMOCAP-shaped, readable, and emotional in its prosody."""
from __future__ import annotations

import hashlib
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile

from benchmark.data import demo
from benchmark.data.demo import DemoCorpusConfig, config_key, ensure_demo_corpus, generate_demo_corpus
from benchmark.data.espeak import EspeakUnavailable, synthesize

# 5 sessions x 2 speakers x (4 emotions + 3 dropped) = 70 turns, about 2 s to generate
SMALL = DemoCorpusConfig(seed=3, utterances_per_class=1, dropped_per_speaker=3, excited_ratio=0.5,
                         dialogs_per_session=2)
TURN = re.compile(r"^\[(\d+\.\d{4}) - (\d+\.\d{4})\]\t(\S+)\t(\w+)\t\[[\d.]+, [\d.]+, [\d.]+\]$")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo_corpus(tmp_path_factory.mktemp("demo") / "corpus", SMALL)


def tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def turns(corpus: Path) -> dict[str, str]:
    """utterance id → raw label, from the EmoEvaluation turn lines."""
    found = {}
    for label_file in sorted(corpus.glob("Session*/dialog/EmoEvaluation/*.txt")):
        lines = label_file.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
        for line in lines[1:]:
            if line.startswith("["):
                match = TURN.match(line)
                assert match, line
                assert float(match.group(1)) < float(match.group(2))
                found[match.group(3)] = match.group(4)
            else:
                assert line == "" or re.match(r"^[CA]-E\d:\t.+;\t\(\)$", line), line
    return found


def test_same_config_gives_identical_bytes(corpus: Path, tmp_path: Path) -> None:
    again = generate_demo_corpus(tmp_path / "again", SMALL)
    assert tree_hashes(again) == tree_hashes(corpus)


def test_synthesis_does_not_depend_on_history() -> None:
    first, rate = synthesize("Hello there.", "en-us+f5", seed=1)
    synthesize("Something else entirely, said before.", "en+m2", seed=2)
    assert rate == 22050 and np.array_equal(first, synthesize("Hello there.", "en-us+f5", seed=1)[0])


def test_layout_matches_iemocap(corpus: Path) -> None:
    labelled = turns(corpus)
    assert len(labelled) == 70
    assert set(labelled.values()) == {"neu", "hap", "exc", "ang", "sad", "fru", "xxx", "sur"}
    transcripts = {}
    for path in corpus.glob("Session*/dialog/transcriptions/*.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.match(r"^(Ses\S+) \[\d{3}\.\d{4}-\d{3}\.\d{4}\]: (.+)$", line)
            assert match, line
            transcripts[match.group(1)] = match.group(2)
    assert set(transcripts) == set(labelled)
    speakers, kinds = set(), set()
    for utterance_id in labelled:
        match = re.match(r"^Ses(0[1-5])[FM]_(impro|script)\d\d(?:_\d)?_([FM])\d{3}$", utterance_id)
        assert match, utterance_id
        speakers.add(match.group(1) + match.group(3))
        kinds.add(match.group(2))
        dialog = utterance_id.rsplit("_", 1)[0]
        wav = corpus / f"Session{int(match.group(1))}" / "sentences" / "wav" / dialog / f"{utterance_id}.wav"
        info = soundfile.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        samples, _ = soundfile.read(str(wav))
        assert 0.5 < len(samples) / 16000 < 5.0 and np.sqrt(np.mean(samples**2)) > 0.005
    assert len(speakers) == 10 and kinds == {"impro", "script"}


def test_real_reader_loads_it(corpus: Path) -> None:
    from benchmark.data.iemocap import class_counts, load

    utterances = load(corpus, verbose=False)
    assert class_counts(utterances) == {"neu": 10, "hap": 10, "ang": 10, "sad": 10}
    assert len({u.speaker for u in utterances}) == 10 and all(u.text for u in utterances)


def test_prosody_differs_between_classes(corpus: Path) -> None:
    rms, seconds = defaultdict(list), defaultdict(list)
    for utterance_id, label in turns(corpus).items():
        wav = next(corpus.glob(f"Session*/sentences/wav/*/{utterance_id}.wav"))
        samples, rate = soundfile.read(str(wav))
        rms[label].append(np.sqrt(np.mean(samples**2)))
        seconds[label].append(len(samples) / rate)
    mean = {label: float(np.mean(values)) for label, values in rms.items()}
    assert mean["ang"] > mean["neu"] > mean["sad"] and mean["hap"] > mean["sad"]
    assert np.mean(seconds["sad"]) > np.mean(seconds["neu"]) > np.mean(seconds["ang"])


def test_ensure_reuses_an_existing_corpus(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / f"IEMOCAP_demo-{config_key(SMALL)}"
    shutil.copytree(corpus, folder)

    def regenerate(*args: object) -> Path:
        raise AssertionError("the existing corpus should have been reused")

    monkeypatch.setattr(demo, "generate_demo_corpus", regenerate)
    assert ensure_demo_corpus(tmp_path, SMALL) == folder.absolute()
    assert config_key(DemoCorpusConfig(seed=4)) != config_key(DemoCorpusConfig(seed=3))


def test_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a demo corpus"):
        generate_demo_corpus(tmp_path / "data", SMALL)
    assert (tmp_path / "data" / "notes.txt").read_text() == "mine"


def test_missing_espeak_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    with pytest.raises(EspeakUnavailable, match="espeakng-loader"):
        synthesize("Hello.", "en-us")


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        DemoCorpusConfig(utterances_per_class=0)
