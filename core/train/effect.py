"""Did the fine-tune change what the model says? Base vs tuned answers to held-out prompts, scored.

"Loss went down" is not what a user sees; the answers are. For the demo (and any recipe with held-out
prompt/reference pairs) both models answer the same prompts greedily and each is scored with ROUGE-L
against the references, so the claim "it learned the style" is a number, not a screenshot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location


def read_heldout(path: str | Path) -> list[dict[str, str]]:
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append({"prompt": str(row["prompt"]), "reference": str(row["reference"])})
        except (json.JSONDecodeError, KeyError) as exc:
            raise FtwizError(f"held-out line is not a {{prompt, reference}} object: {exc}",
                             where=Location(file=path, line=number), fix="fix or remove that line") from None
    return rows


def greedy_answers(model, tokenizer, prompts: list[str], system: str | None, max_new_tokens: int) -> list[str]:
    import torch

    answers = []
    for prompt in prompts:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        answers.append(tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return answers


def style_effect(base_dir: Path, tuned_dir: Path, heldout: list[dict[str, str]], *, system: str | None = None,
                 max_new_tokens: int = 32) -> dict[str, Any]:
    """ROUGE-L of base and tuned answers against the references, with the answers themselves."""
    from ftwiz.core.evaluate.metrics import rouge_l
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tuned_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype="float32").eval()
    prompts = [row["prompt"] for row in heldout]
    references = [row["reference"] for row in heldout]
    base_answers = greedy_answers(base, tokenizer, prompts, system, max_new_tokens)
    if (tuned_dir / "adapter_config.json").exists():
        from peft import PeftModel

        tuned = PeftModel.from_pretrained(base, tuned_dir).eval()
    else:
        tuned = AutoModelForCausalLM.from_pretrained(tuned_dir, dtype="float32").eval()
    tuned_answers = greedy_answers(tuned, tokenizer, prompts, system, max_new_tokens)
    return {
        "metric": "ROUGE-L F1 against the held-out references (greedy decoding)",
        "base_rouge_l": rouge_l(base_answers, references),
        "tuned_rouge_l": rouge_l(tuned_answers, references),
        "samples": [{"prompt": p, "reference": r, "base": b, "tuned": t}
                    for p, r, b, t in zip(prompts, references, base_answers, tuned_answers, strict=True)],
    }
