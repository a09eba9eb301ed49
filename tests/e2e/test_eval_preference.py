"""ftwiz eval on a DPO run: preference accuracy and reward margin on held-out pairs, no perplexity.

Oracle for the figures: one pair scored directly with transformers + peft (``apply_chat_template`` ids,
the adapter on for the policy and disabled for the reference), DPO's implicit reward with the run's beta.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ftwiz.core.cli import main as cli_main
from ftwiz.core.train.runner import train
from test_stages import pairs_file, stage_recipe


def _logp(model, ids: list[int], start: int) -> float:
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logprobs = torch.log_softmax(logits[start - 1:len(ids) - 1], dim=-1)
    return float(logprobs.gather(1, torch.tensor(ids[start:]).unsqueeze(1)).sum())


def _oracle_margin(run_dir: Path, base: Path, record: dict, beta: float) -> float:
    """DPO's reward margin of one pair, computed with transformers and peft only."""
    import transformers
    from peft import PeftModel

    tok = transformers.AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(transformers.AutoModelForCausalLM.from_pretrained(
        base, dtype=torch.float32), str(run_dir / "adapter")).eval()
    prompt = record["messages"]
    head = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    start = len(tok(head, add_special_tokens=False)["input_ids"])
    rewards = []
    for answer in (record["chosen"], record["rejected"]):
        text = tok.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=False)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        policy = _logp(model, ids, start)
        with model.disable_adapter():
            reference = _logp(model, ids, start)
        rewards.append(beta * (policy - reference))
    return rewards[0] - rewards[1]


@pytest.mark.slow
def test_eval_of_a_dpo_run_reports_preference_accuracy_and_margin(
        tiny_qwen2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = train(stage_recipe(tiny_qwen2, pairs_file(tmp_path), stage="dpo", run_name="dpo-eval",
                                test_size=0.2, pref_beta=0.2))
    assert result.status == "completed"
    assert cli_main(["eval", str(result.run_dir), "--split", "test", "--max-new-tokens", "2",
                     "--no-forgetting"]) == 0
    out = capsys.readouterr().out
    report = json.loads((result.run_dir / "eval" / "report.json").read_text())
    pref = report["preference"]
    held_out = [json.loads(line) for line in (result.run_dir / "data" / "test.jsonl").read_text().splitlines()]
    assert report["stage"] == "dpo" and pref["beta"] == 0.2 and pref["pairs"] == len(held_out) >= 6
    # trained to prefer the pirate answers: held-out pairs are won, by a positive margin
    assert pref["accuracy"] >= 0.8 and pref["margin"] > 0.05, pref
    assert pref["rewards_chosen"] > pref["rewards_rejected"]
    assert pref["margin"] == pytest.approx(sum(pref["margins"]) / len(pref["margins"]))
    assert pref["margins"][0] == pytest.approx(_oracle_margin(result.run_dir, tiny_qwen2, held_out[0], 0.2),
                                               rel=1e-3, abs=1e-4)
    # no perplexity for a preference run, and the reason is given instead
    assert all(m["perplexity"] is None for m in report["models"])
    markdown = (result.run_dir / "eval" / "report.md").read_text()
    assert "| perplexity |" not in markdown and "exp(loss) is no perplexity" in markdown
    assert f"accuracy **{pref['accuracy']:.0%}**" in markdown and f"{pref['margin']:+.4f}" in markdown
    flat = " ".join(out.split())
    assert f"Preference (dpo, beta 0.2) on {pref['pairs']} held-out pairs: accuracy {pref['accuracy']:.0%}" in flat
    assert "perplexity │" not in out and "no perplexity" in flat
