"""The loss-mask self-check: decode what each sample learns and prove it is the answers and nothing else.

Independent of how spans were computed, each contiguous run of learned tokens is decoded and compared,
whitespace-insensitively (templates trim and reformat, tokenizers decode spaces their own way), with the
conversation itself:

- every learned assistant turn's answer appears, in order (its text after a ``</think>`` when it reasons:
  templates may drop earlier turns' reasoning; the name of every tool call it makes);
- after a turn's last answer text a run holds nothing but the template's end-of-turn text (a span that runs
  on into the next turn, as prefix-based spans do on Qwen3's template, fails here);
- no run holds the generation prompt or the text of a user, system or tool message.
"""

from __future__ import annotations

from typing import Any

from ftwiz.core.errors import FtwizError

MIN_PROMPT_CHARS = 8  # shorter prompt texts ("Hi", "end") occur inside answers and template tokens by chance


def _squash(text: str) -> str:
    return "".join(text.split())


def _answer_marks(message: dict[str, Any]) -> list[str]:
    """What must be learned of one assistant turn, in rendering order: the answer text, then each tool name."""
    content = str(message.get("content") or "")
    marks = [_squash(content.split("</think>")[-1])]
    for call in message.get("tool_calls") or ():
        marks.append(_squash(str((call.get("function") or call).get("name", ""))))
    return [m for m in marks if m]


def learned_runs(tokenizer, input_ids: list[int], labels: list[int]) -> list[str]:
    """The decoded text of each contiguous run of learned tokens."""
    runs: list[list[int]] = []
    previous = False
    for token, label in zip(input_ids, labels, strict=True):
        if label != -100:
            if not previous:
                runs.append([])
            runs[-1].append(token)
        previous = label != -100
    return [tokenizer.decode(run, skip_special_tokens=False) for run in runs]


def _ends_cleanly(rest: str, end_of_turn: str, *, tool_turn: bool) -> bool:
    """``rest`` (what a run holds after a turn's last answer text) is the end-of-turn text or its beginning;
    after a tool call's name the rest of the call's JSON may come first. Nothing may follow."""
    if not end_of_turn or end_of_turn.startswith(rest):
        return True
    return tool_turn and rest.endswith(end_of_turn) and rest.count(end_of_turn) == 1


def mask_problem(runs: list[str], messages: list[dict[str, Any]], *, mask_history: bool, train_on_prompt: bool,
                 generation_prompt: str = "", end_of_turn: str = "") -> str | None:
    """What is wrong with these learned runs for this conversation, in words; None when they are right."""
    if messages and messages[0]["role"] == "text":
        return None
    squashed = [_squash(r) for r in runs]
    answers = [m for m in messages if m["role"] == "assistant" and m.get("weight", 1) != 0]  # weight 0: context
    if mask_history:
        answers = answers[-1:]
    marks = [_answer_marks(m) for m in answers]
    if train_on_prompt:
        joined = "".join(squashed)
        missing = next((m for ms in marks for m in ms if m not in joined), None)
        return f"the answer text {missing[:60]!r} is not learned" if missing else None
    header, eot = _squash(generation_prompt), _squash(end_of_turn)
    answer_text = "".join(_squash(str(m.get("content") or "")) for m in messages if m["role"] == "assistant")
    prompts = [p for p in (_squash(str(m.get("content") or "")) for m in messages if m["role"] != "assistant")
               if len(p) >= MIN_PROMPT_CHARS and p not in answer_text and p not in eot and p not in header]
    turn = 0
    for run, text in zip(squashed, runs, strict=True):
        if header and header in run:
            return f"the learned tokens {text[:80]!r} include the prompt header {generation_prompt.strip()!r}"
        leaked = next((p for p in prompts if p in run), None)
        if leaked:
            return f"the learned tokens {text[:80]!r} include prompt text {leaked[:40]!r}"
        pos, last = 0, None
        while turn < len(marks):
            found = pos
            for mark in marks[turn]:
                at = run.find(mark, found)
                if at < 0:
                    break
                found = at + len(mark)
            else:
                pos, last, turn = found, turn, turn + 1
                continue
            break
        if last is None:
            return f"the learned tokens {text[:80]!r} are not an assistant answer"
        final = marks[last][-1]  # an answer may also occur inside its own reasoning: anchor on the last one
        pos = max(pos, run.rfind(final) + len(final))
        if not _ends_cleanly(run[pos:], eot, tool_turn=bool(answers[last].get("tool_calls"))):
            return f"the learned tokens run on past the end of the answer: {text[-80:]!r}"
    if turn < len(marks):
        return f"the answer {' '.join(marks[turn])[:60]!r} is not among the learned tokens"
    return None


def verify_masks(tokenizer, rows: list[dict[str, Any]], conversations: list[list[dict]], *, mask_history: bool,
                 train_on_prompt: bool, template: str | None = None, template_kwargs: dict[str, Any] | None = None,
                 where: list[str] | None = None) -> None:
    """Check each row's learned tokens against its conversation; FtwizError naming the record when one is wrong.

    ``rows``: dicts with ``input_ids`` and ``labels``; ``conversations``: the messages each row was rendered
    from; ``where``: "file, line N" per row for the error; ``template``/``template_kwargs``: what was
    rendered with (for the generation prompt and end-of-turn text; the tokenizer's own template when None).
    """
    from ftwiz.core.data.render import turn_shape

    template = template or getattr(tokenizer, "chat_template", None)
    shape = turn_shape(tokenizer, template, template_kwargs) if isinstance(template, str) else None
    for n, (row, messages) in enumerate(zip(rows, conversations, strict=True)):
        runs = learned_runs(tokenizer, row["input_ids"], row["labels"])
        problem = mask_problem(runs, messages, mask_history=mask_history, train_on_prompt=train_on_prompt,
                               generation_prompt=shape.generation_prompt if shape else "",
                               end_of_turn=(shape.end_of_turn or "") if shape else "")
        if problem:
            record = where[n] if where else f"sample {n}"
            raise FtwizError(f"loss-mask check failed for {record}: {problem}",
                             fix="report this with your model's chat template; meanwhile set `template:` to a "
                                 "named template, or `mask_history: true`")
