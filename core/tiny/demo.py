"""The embedded demo's base model: a tiny Qwen2-architecture chat model pre-trained on shipped text.

Built on first use (well under a minute on 2 CPU cores) and cached under ``cache_dir()/models`` keyed
by the build recipe's hash, so a change to the recipe rebuilds it and nothing stale is reused. The
pre-training is short and generic: the model learns English-ish text and the ChatML turn structure,
and answers plainly. Fine-tuning on the demo data then visibly changes the style of its answers.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftwiz.core.build_reports import build_reporter
from ftwiz.core.paths import cache_dir
from ftwiz.core.tiny.model import TinySpec, build_tiny_model
from ftwiz.core.tiny.tokenizer import corpus_text

DEMO_SPEC = TinySpec(
    arch="qwen2", hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=384,
    vocab_size=1024, max_position_embeddings=1024, seed=1234,
)
PRETRAIN_STEPS = 300
PRETRAIN_BLOCK = 128
PRETRAIN_BATCH = 8
BUILD_VERSION = 1  # bump when the pre-training recipe changes


@dataclass(frozen=True)
class BuildProgress:
    """Where the demo model's one-time build is: ``done`` of ``total`` pre-training steps.

    ``eta_s`` is the time left at the rate measured so far (None until a few steps have run: the first
    steps include start-up costs and would predict nonsense).
    """

    stage: str          # "preparing", "pre-training", "saving", "done"
    done: int
    total: int
    eta_s: float | None
    message: str


ProgressCallback = Callable[[BuildProgress], None]


def demo_base_model_ready() -> bool:
    """Whether the demo base model is already built (then ``ensure_demo_base_model`` returns at once)."""
    final = demo_base_model_dir()
    return (final / "config.json").exists() and (final / "model.safetensors").exists()


def _pretraining_texts(tokenizer) -> list[str]:
    """Plain corpus lines plus generic ChatML exchanges built from them (plain, factual answers)."""
    rng = random.Random(7)
    lines = [line.strip() for line in corpus_text().splitlines() if line.strip()]
    texts = list(lines)
    asks = ["Tell me about {}.", "What do you know about {}?", "Say something about {}.", "Explain {}."]
    for line in lines:
        words = [w.strip(".,!?").lower() for w in line.split() if len(w.strip(".,!?")) > 3]
        topic = rng.choice(words) if words else "this"
        messages = [
            {"role": "user", "content": rng.choice(asks).format(topic)},
            {"role": "assistant", "content": line},
        ]
        texts.append(tokenizer.apply_chat_template(messages, tokenize=False))
    return texts


def _build_key() -> str:
    payload = json.dumps({"spec": DEMO_SPEC.__dict__, "steps": PRETRAIN_STEPS, "v": BUILD_VERSION,
                          "corpus": hashlib.sha256(corpus_text().encode()).hexdigest()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def demo_base_model_dir() -> Path:
    return cache_dir() / "models" / f"demo-base-{_build_key()}"


def demo_tokenizer():
    """The demo model's tokenizer without building the model: for previews before anything is trained.

    The tokenizer is a pure function of the shipped corpus and the demo spec, so building it alone gives
    exactly the tokenizer the built model will carry (seconds, not the model's pre-training).
    """
    from ftwiz.core.tiny.model import DEFAULT_FAMILY
    from ftwiz.core.tiny.tokenizer import build_tokenizer

    built = demo_base_model_dir()
    if (built / "tokenizer.json").exists():
        # the submodule: safe when wizard workers import transformers at the same time (see core/models.py)
        from transformers.models.auto.tokenization_auto import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(built)
    else:
        tokenizer = build_tokenizer(DEMO_SPEC.chat_family or DEFAULT_FAMILY[DEMO_SPEC.arch],
                                    vocab_size=DEMO_SPEC.vocab_size)
    # Previews name the tokenizer they measured with: the same name whether it was loaded from the built
    # model's folder or built in memory (which has no folder), so users see "demo" either way.
    tokenizer.name_or_path = "demo"
    return tokenizer


def ensure_demo_base_model(progress: Callable[[str], None] | None = None,
                           on_progress: ProgressCallback | None = None) -> Path:
    """Return the demo base model's directory, building and caching it first if needed.

    ``progress`` gets a line of text per stage; ``on_progress`` a :class:`BuildProgress` per pre-training
    step (for a progress bar with an estimate: half a minute on an idle 2-core machine, minutes on a busy one).
    """
    from ftwiz.core.atomic import atomic_dir

    final = demo_base_model_dir()
    if demo_base_model_ready():
        return final
    say = progress or (lambda _msg: None)
    report = on_progress or build_reporter() or (lambda _p: None)
    say("building the demo base model (once; cached afterwards)")
    report(BuildProgress("preparing", 0, PRETRAIN_STEPS, None, "building the demo model's tokenizer and weights"))
    with atomic_dir(final, overwrite=True) as tmp:
        build_tiny_model(tmp, DEMO_SPEC)
        _pretrain(tmp, say, report)
    report(BuildProgress("done", PRETRAIN_STEPS, PRETRAIN_STEPS, 0.0, "the demo model is ready"))
    return final


def _progress_callback(report: ProgressCallback):
    """A transformers callback turning trainer steps into BuildProgress with a measured time left."""
    import transformers

    class _Reporter(transformers.TrainerCallback):
        def __init__(self) -> None:
            self.marks: list[tuple[float, int]] = []

        def on_step_end(self, args, state, control, **kwargs):
            now, step = time.perf_counter(), state.global_step
            self.marks.append((now, step))
            eta = None
            if len(self.marks) > 5:  # rate over the last 50 steps: follows a machine that gets busier
                then, before = self.marks[max(1, len(self.marks) - 50)]
                if step > before:
                    eta = (now - then) / (step - before) * (state.max_steps - step)
            report(BuildProgress("pre-training", step, state.max_steps, eta,
                                 f"pre-training the demo model: step {step}/{state.max_steps}"))
            return control

    return _Reporter()


def _pretrain(model_dir: Path, say: Callable[[str], None], report: ProgressCallback | None = None) -> None:
    import torch
    import transformers
    from datasets import Dataset

    torch.manual_seed(DEMO_SPEC.seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    texts = _pretraining_texts(tokenizer)
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids.append(tokenizer.pad_token_id)
    blocks = [ids[i : i + PRETRAIN_BLOCK] for i in range(0, len(ids) - PRETRAIN_BLOCK, PRETRAIN_BLOCK // 2)]
    dataset = Dataset.from_dict({"input_ids": blocks, "labels": blocks})
    args = transformers.TrainingArguments(
        output_dir=str(model_dir / "_pretrain"),
        per_device_train_batch_size=PRETRAIN_BATCH,
        max_steps=PRETRAIN_STEPS,
        learning_rate=3e-3,
        warmup_steps=20,
        lr_scheduler_type="cosine",
        weight_decay=0.01,
        logging_steps=50,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=DEMO_SPEC.seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    say(f"pre-training the demo base model: {PRETRAIN_STEPS} steps on {len(blocks)} blocks of text")
    trainer = transformers.Trainer(model=model, args=args, train_dataset=dataset)
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # our caller reports progress
    if report is not None:
        trainer.add_callback(_progress_callback(report))
    result = trainer.train()
    say(f"pre-training done: loss {result.training_loss:.2f}")
    if report is not None:
        report(BuildProgress("saving", PRETRAIN_STEPS, PRETRAIN_STEPS, 0.0, "saving the demo model"))
    model.save_pretrained(model_dir, safe_serialization=True)
    import shutil

    shutil.rmtree(model_dir / "_pretrain", ignore_errors=True)
