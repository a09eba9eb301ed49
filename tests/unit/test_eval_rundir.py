"""A real, minimal trained run directory for the evaluation tests, and checks that it is what they assume.

``build_trained_run`` LoRA-trains a tiny Qwen2 model for a few dozen steps on the demo's pirate data
(a hand-written loop over transformers + peft, so it does not depend on ``ftwiz train``), logging the
real losses as Step/Eval events, and lays the result out as ``ftwiz train`` does: recipe.yaml,
run_card.json, data/{train,validation,test}.jsonl, adapter/ (with tokenizer) and events.jsonl.

The e2e CLI test loads this module by path, so the fixture builder has one home.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest


def _demo_records() -> tuple[list[dict], list[dict]]:
    root = resources.files("ftwiz.recipes").joinpath("demo")
    train = [json.loads(line) for line in root.joinpath("demo.jsonl").read_text().splitlines() if line.strip()]
    held = []
    for line in root.joinpath("heldout.jsonl").read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            held.append({"messages": [{"role": "user", "content": rec["prompt"]},
                                      {"role": "assistant", "content": rec["reference"]}]})
    return train, held


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _batch(tokenizer, template: str, records: list[dict]):
    import torch
    from ftwiz.core.data.template import render_with_spans, tokenize_with_labels

    rendered = [render_with_spans(tokenizer, template, r["messages"]) for r in records]
    enc = tokenize_with_labels(tokenizer, [t for t, _ in rendered], [s for _, s in rendered])
    width = max(len(ids) for ids in enc["input_ids"])
    pad = tokenizer.pad_token_id
    ids = [row + [pad] * (width - len(row)) for row in enc["input_ids"]]
    mask = [[1] * len(row) + [0] * (width - len(row)) for row in enc["input_ids"]]
    labels = [row + [-100] * (width - len(row)) for row in enc["labels"]]
    return torch.tensor(ids), torch.tensor(mask), torch.tensor(labels)


def build_trained_run(runs_root: Path, base_dir: Path, *, name: str = "eval-run", steps: int = 40,
                      lr: float = 1e-2) -> Path:
    """Train a LoRA adapter on ``base_dir`` and write a complete run directory; returns its path."""
    import torch
    from ftwiz.core.data.template import template_hash
    from ftwiz.core.events import Eval, JsonlSink, Step
    from ftwiz.core.recipe import Recipe, dump_recipe
    from ftwiz.core.versions import stack_versions
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    run = runs_root / name
    train_all, test = _demo_records()
    random.Random(0).shuffle(train_all)
    train, validation = train_all[:96], train_all[96:104]
    _write_jsonl(run / "data" / "train.jsonl", train)
    _write_jsonl(run / "data" / "validation.jsonl", validation)
    _write_jsonl(run / "data" / "test.jsonl", test)

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    template = tokenizer.chat_template
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    sink = JsonlSink(run / "events.jsonl")
    val_ids, val_mask, val_labels = _batch(tokenizer, template, validation)
    batch_size = 8
    for step in range(1, steps + 1):
        start = ((step - 1) * batch_size) % len(train)
        ids, mask, labels = _batch(tokenizer, template, train[start : start + batch_size])
        model.train()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        sink(Step(step=step, total_steps=steps, epoch=step * batch_size / len(train), loss=float(loss.detach()), lr=lr))
        if step % 10 == 0:
            model.eval()
            with torch.no_grad():
                val = float(model(input_ids=val_ids, attention_mask=val_mask, labels=val_labels).loss)
            sink(Eval(step=step, loss=val, perplexity=math.exp(val)))
    sink.close()
    model.save_pretrained(str(run / "adapter"))
    tokenizer.save_pretrained(str(run / "adapter"))

    recipe = Recipe(model_name_or_path=str(base_dir), dataset=["demo"], finetuning_type="lora", lora_rank=8,
                    cutoff_len=256, run_name=name)
    (run / "recipe.yaml").write_text(dump_recipe(recipe), encoding="utf-8")
    card = {"base_model": str(Path(base_dir).resolve()), "method": "lora", "dataset_hash": "test",
            "template_hash": template_hash(template), "versions": stack_versions()}
    (run / "run_card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    (run / "status.json").write_text(json.dumps({"state": "completed"}), encoding="utf-8")
    return run


@pytest.fixture(scope="session")
def eval_run_template(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2: Path) -> Path:
    """Built once per test session even though several test modules import this fixture.

    status.json is written last, so its presence means a complete earlier build in this session.
    """
    root = tmp_path_factory.getbasetemp() / "eval-run-template"
    run = root / "eval-run"
    if (run / "status.json").is_file():
        return run
    shutil.rmtree(root, ignore_errors=True)
    with one_torch_thread():
        return build_trained_run(root, tiny_qwen2)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine run 10-100x faster on one thread than oversubscribed on two.

    torch is told directly; llama.cpp (the GGUF engine) and child processes read OMP_NUM_THREADS.
    """
    import torch

    before, env_before = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if env_before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env_before


@pytest.fixture
def eval_run(eval_run_template: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy of the trained run (tests delete splits or write reports into it)."""
    with one_torch_thread():
        yield Path(shutil.copytree(eval_run_template, tmp_path / eval_run_template.name))


def test_fixture_run_has_a_trained_adapter_and_real_events(eval_run: Path) -> None:
    from ftwiz.core.events import Eval, Step, read_events
    from safetensors.torch import load_file

    weights = load_file(str(eval_run / "adapter" / "adapter_model.safetensors"))
    lora_b = [t for k, t in weights.items() if "lora_B" in k]
    assert lora_b and any(float(t.abs().max()) > 0 for t in lora_b), "LoRA B is zero: the adapter is a no-op"
    events = list(read_events(eval_run / "events.jsonl"))
    steps = [e for e in events if isinstance(e, Step)]
    evals = [e for e in events if isinstance(e, Eval)]
    assert len(steps) == 40 and len(evals) == 4
    assert steps[-1].loss < steps[0].loss, "training did not lower the loss"
