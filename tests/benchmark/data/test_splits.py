import csv
from pathlib import Path

import pytest
import torch
from torch.utils.data import random_split

from benchmark.data import iemocap, splits
from benchmark.data.build_superb_split import build
from benchmark.data.iemocap import Utterance

SUPERB_META = Path(__file__).resolve().parents[4] / "shared" / "reference" / "superb_emotion_meta"
TEST_SIZES = {1: 1085, 2: 1023, 3: 1151, 4: 1031, 5: 1241}


def _shipped_rows() -> list[dict[str, str]]:
    with splits.SUPERB_SPLIT_FILE.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("fold", splits.SESSIONS)
def test_shipped_split_equals_superbs_procedure(fold):
    """SUPERB: fold-k train list in metadata order, torch.manual_seed(0), random_split 80/20."""
    rows = _shipped_rows()
    pool = [row["utterance_id"] for row in rows if int(row["utterance_id"][3:5]) != fold]
    n_train = int((1 - 0.2) * len(pool))
    with torch.random.fork_rng():
        torch.manual_seed(0)  # exactly as the recipe does it
        train, valid = random_split(pool, [n_train, len(pool) - n_train])
    expected = {**{uid: "train" for uid in train}, **{uid: "valid" for uid in valid}}
    shipped = {row["utterance_id"]: row[f"fold{fold}"] for row in rows}
    assert {uid: role for uid, role in shipped.items() if role != "test"} == expected
    tests = [uid for uid, role in shipped.items() if role == "test"]
    assert len(tests) == TEST_SIZES[fold]
    assert all(uid.startswith(f"Ses0{fold}") for uid in tests)


def test_shipped_split_covers_the_release():
    rows = _shipped_rows()
    assert len(rows) == 5531
    counts = {label: sum(row["label"] == label for row in rows) for label in iemocap.LABELS}
    assert counts == iemocap.OFFICIAL_COUNTS


@pytest.mark.skipif(not SUPERB_META.is_dir(), reason="SUPERB's metadata (../shared/reference) is not beside this checkout")
def test_shipped_file_is_what_superbs_metadata_gives(tmp_path):
    rebuilt = tmp_path / "superb_split.csv"
    build(SUPERB_META, rebuilt)
    assert rebuilt.read_bytes() == splits.SUPERB_SPLIT_FILE.read_bytes()


def _fake_release() -> list[Utterance]:
    return [
        Utterance(row["utterance_id"], Path(f"{row['utterance_id']}.wav"), row["label"], int(row["utterance_id"][3:5]),
                  row["utterance_id"][:5] + row["utterance_id"].rsplit("_", 1)[1][0], row["utterance_id"].rsplit("_", 1)[1][0], "", 1.0)
        for row in _shipped_rows()
    ]


def test_folds_on_the_complete_release_use_the_exact_split():
    folds = splits.folds(_fake_release(), "superb", indices=(2, 5))
    shipped = {row["utterance_id"]: row for row in _shipped_rows()}
    assert [f.index for f in folds] == [2, 5]
    for fold in folds:
        assert fold.split == "superb"
        assert len(fold.test) == TEST_SIZES[fold.index]
        assert len(fold.train) == int(0.8 * (5531 - TEST_SIZES[fold.index]))
        for role, members in (("train", fold.train), ("valid", fold.valid), ("test", fold.test)):
            assert all(shipped[u.id][f"fold{fold.index}"] == role for u in members)


def test_other_corpora_get_the_procedure_deterministically(tone_corpus):
    utterances = iemocap.load(tone_corpus)
    first, second = splits.folds(utterances), splits.folds(list(reversed(utterances)))
    for a, b in zip(first, second):
        assert a.split == "superb_procedure" and a.split_hash == b.split_hash
        assert {u.session for u in a.test} == {a.index}
        assert not {u.id for u in a.train} & {u.id for u in a.valid}
        assert len(a.train) + len(a.valid) + len(a.test) == len(utterances)
        assert len(a.train) == int(0.8 * (len(a.train) + len(a.valid)))
    assert len({f.split_hash for f in first}) == 5


def test_speaker_disjoint_split_shares_no_speaker(tone_corpus):
    for fold in splits.folds(iemocap.load(tone_corpus), "speaker"):
        assert fold.split == "speaker_disjoint"
        assert not {u.speaker for u in fold.train} & {u.speaker for u in fold.valid}
        assert {u.session for u in fold.test} == {fold.index}


def test_unknown_fold_and_method_are_rejected(tone_corpus):
    utterances = iemocap.load(tone_corpus)
    with pytest.raises(ValueError, match="fold 7 does not exist"):
        splits.folds(utterances, "superb", indices=(7,))
    with pytest.raises(ValueError, match="unknown split method 'random'"):
        splits.folds(utterances, "random")  # type: ignore[arg-type]
