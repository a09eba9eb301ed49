"""Preference accuracy and reward margin on held-out pairs, for runs trained with dpo, orpo or kto.

For each pair the chosen and the rejected answer are scored by the tuned model (the policy) and by the
reference model (the base: the run's model with its adapter disabled, which is TRL's reference for LoRA
runs). The implicit reward of an answer is DPO's: ``beta * (log p_policy(answer) - log p_reference(answer))``
with the run's ``pref_beta``, the log-probabilities summed over the answer tokens as TRL's trainers sum
them (prompt rendered with the generation prompt, the answer being what follows the shared prefix). A pair
is won when the chosen answer's reward is higher; the margin is chosen minus rejected. These are the
figures TRL logs as ``rewards/accuracies`` and ``rewards/margins`` during training, here on data the model
never trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ftwiz.core.data.pair_view import common_prefix_length
from ftwiz.core.evaluate.report import PreferenceResult

PREFERENCE_STAGES = ("dpo", "orpo", "kto")
WHY_NO_PERPLEXITY = ("perplexity is not reported for a {stage} run: the stage optimises how much more likely the "
                     "chosen answer is than the rejected one relative to the reference model, not the "
                     "likelihood of the answers, and its loss is a preference loss, not a token cross-entropy, "
                     "so exp(loss) is no perplexity; preference accuracy and reward margin measure it instead")




def pair_token_ids(engine: Any, renderer: Any, prompt: list[dict[str, str]], chosen: str, rejected: str,
                   cutoff: int, tools: list[dict[str, Any]] | None = None) -> tuple[int, list[int], list[int]]:
    """(prompt length, prompt+chosen ids, prompt+rejected ids) as TRL's DPOTrainer tokenizes a pair,
    each cut at ``cutoff`` tokens (the run's ``cutoff_len``, TRL's ``max_length``); ``tools``: the record's."""
    prompt_ids = engine.tokenize(renderer.render(prompt, generation_prompt=True, tools=tools))
    full = [engine.tokenize(renderer.render([*prompt, {"role": "assistant", "content": answer}],
                                            generation_prompt=False, tools=tools))[:cutoff]
            for answer in (chosen, rejected)]
    prompt_len = min(common_prefix_length(prompt_ids, full[0]), common_prefix_length(prompt_ids, full[1]))
    return prompt_len, full[0], full[1]


def answer_logp(engine: Any, ids: Sequence[int], start: int) -> float:
    """Summed log-probability (nats) of ``ids[start:]`` given what precedes them."""
    loss, _ = engine.nll(ids, start)
    return -loss


def preference_metrics(policy: Any, reference: Any, renderer: Any, samples: Sequence[Any], *, beta: float,
                       stage: str, cutoff: int, progress=None) -> PreferenceResult | None:
    """Accuracy and margins of the implicit rewards over the samples that carry a rejected answer.

    ``policy``/``reference`` are evaluation engines (``nll`` over token ids) sharing a vocabulary; both
    score the very same ids. ``progress(i, n)`` is called after each pair. None when no sample is a pair.
    """
    pairs = [s for s in samples if getattr(s, "rejected", None) is not None]
    if not pairs:
        return None
    chosen_rewards, rejected_rewards = [], []
    policy_wins = reference_wins = 0
    for i, sample in enumerate(pairs):
        start, chosen_ids, rejected_ids = pair_token_ids(policy, renderer, sample.prompt, sample.reference,
                                                         sample.rejected, cutoff, getattr(sample, "tools", None))
        pol_c, pol_r = answer_logp(policy, chosen_ids, start), answer_logp(policy, rejected_ids, start)
        ref_c, ref_r = answer_logp(reference, chosen_ids, start), answer_logp(reference, rejected_ids, start)
        chosen_rewards.append(beta * (pol_c - ref_c))
        rejected_rewards.append(beta * (pol_r - ref_r))
        policy_wins += pol_c > pol_r
        reference_wins += ref_c > ref_r
        if progress is not None:
            progress(i + 1, len(pairs))
    n = len(pairs)
    margins = [c - r for c, r in zip(chosen_rewards, rejected_rewards, strict=True)]
    return PreferenceResult(
        stage=stage, beta=beta, pairs=n, accuracy=sum(m > 0 for m in margins) / n, margin=sum(margins) / n,
        rewards_chosen=sum(chosen_rewards) / n, rewards_rejected=sum(rejected_rewards) / n,
        tuned_prefers_chosen=policy_wins / n, base_prefers_chosen=reference_wins / n,
        margins=[round(m, 6) for m in margins])
