"""`packing: true` keeps samples apart: a packed sample's logits equal the same sample run alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset
from ftwiz.core.data.tokenize import pack
from ftwiz.core.errors import FtwizError
from ftwiz.core.train.packing import PackedCollator, check_isolation, seq_lengths


def _samples() -> list[dict[str, list[int]]]:
    """Four samples of different lengths, each with a prompt (-100) and an answer part."""
    rows = []
    for n, (start, length) in enumerate([(5, 11), (40, 7), (90, 13), (150, 9)]):
        ids = [(start + 3 * i) % 400 + 10 for i in range(length)]
        rows.append({"input_ids": ids, "attention_mask": [1] * length,
                     "labels": [-100] * (2 + n % 2) + ids[2 + n % 2:]})
    return rows


def _model(path: Path, attention: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation=attention).eval()


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("micro_batch", [1, 2])
def test_packed_sample_logits_equal_the_sample_alone(tiny_qwen2: Path, attention: str, micro_batch: int) -> None:
    samples = _samples()
    rows = pack(Dataset.from_list(samples), cutoff=24)  # two samples per row: [11+7], [13+9]
    assert [seq_lengths(r) for r in rows["position_ids"]] == [[11, 7], [13, 9]]
    model = _model(tiny_qwen2, attention)
    collate = PackedCollator(pad_token_id=0)
    batches = [collate([rows[i] for i in range(j, j + micro_batch)]) for j in range(0, len(rows), micro_batch)]
    packed_logits = []
    with torch.no_grad():
        for batch in batches:
            assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch  # flattened, padding-free
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            packed_logits.append(model(**inputs, use_cache=False).logits[0])
        flat = torch.cat(packed_logits)
        offset = 0
        for sample in samples:
            n = len(sample["input_ids"])
            alone = model(input_ids=torch.tensor([sample["input_ids"]]), use_cache=False).logits[0]
            torch.testing.assert_close(flat[offset:offset + n], alone, atol=1e-5, rtol=1e-4)
            offset += n
    labels = torch.cat([b["labels"][0] for b in batches]).tolist()
    offset = 0
    for sample in samples:  # each sample keeps its own learned tokens; its first token is never a target
        n = len(sample["input_ids"])
        assert labels[offset] == -100 and labels[offset + 1:offset + n] == sample["labels"][1:]
        offset += n


def test_packed_loss_equals_the_loss_of_the_samples_alone(tiny_qwen2: Path) -> None:
    samples = _samples()
    rows = pack(Dataset.from_list(samples), cutoff=24)
    model = _model(tiny_qwen2, "sdpa")
    with torch.no_grad():
        packed = model(**PackedCollator(pad_token_id=0)([rows[0], rows[1]]), use_cache=False).loss
        total, count = 0.0, 0
        for sample in samples:
            labels = torch.tensor([sample["labels"]])
            out = model(input_ids=torch.tensor([sample["input_ids"]]), labels=labels, use_cache=False)
            learned = int((labels[0, 1:] != -100).sum())
            total, count = total + float(out.loss) * learned, count + learned
    assert float(packed) == pytest.approx(total / count, rel=1e-4)


def test_isolation_check_passes_for_attention_that_honours_position_ids(tiny_qwen2: Path) -> None:
    assert check_isolation(_model(tiny_qwen2, "sdpa")) < 1e-4


class _IgnoresPositions(torch.nn.Module):
    """A model whose attention spans the whole row (as one that ignores position_ids would)."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def forward(self, input_ids, position_ids=None, **kwargs):
        return self.inner(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)


def test_isolation_check_refuses_packing_when_samples_would_see_each_other(tiny_qwen2: Path) -> None:
    with pytest.raises(FtwizError, match="would see each other") as caught:
        check_isolation(_IgnoresPositions(_model(tiny_qwen2, "sdpa")))
    assert caught.value.where == "recipe: packing" and "packing: false" in caught.value.fix
