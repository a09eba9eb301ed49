"""Held-out samples: a prompt (the conversation before the last answer) and the reference answer.

A run's splits are ``data/<split>.jsonl`` with ``{"messages": [...]}`` records (what the data pipeline
wrote, template-free). The last assistant turn is the reference and everything before it is the prompt,
so multi-turn records are evaluated on their final answer with the earlier turns as context. Messages keep
every field training rendered (``tool_calls``, ``tool_call_id``, ``name``) and the record's ``tools`` are
kept beside them, so eval renders a tool record exactly as training did (``apply_chat_template(tools=)``). A file given
directly may also use ``{"prompt": ..., "reference": ...}`` (the demo's ``heldout.jsonl``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError, Location

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class EvalSample:
    """One held-out question: the chat messages to send and the answer a good model gives."""

    prompt: list[dict[str, Any]]
    reference: str
    index: int = 0
    conversation: list[dict[str, Any]] = field(default_factory=list)
    rejected: str | None = None  # preference pairs: the answer not to give (``reference`` is the chosen one)
    tools: list[dict[str, Any]] | None = None  # the record's tool definitions (rendered with tools=)

    @property
    def prompt_text(self) -> str:
        """The last user message, for tables and the review walk-through."""
        users = [m["content"] for m in self.prompt if m["role"] == "user"]
        return users[-1] if users else (self.prompt[-1]["content"] if self.prompt else "")


def _sample_from(record: object, index: int, path: Path, line: int) -> EvalSample | None:
    if not isinstance(record, dict):
        raise FtwizError("each line must be a JSON object", where=Location(file=path, line=line),
                         fix='write {"messages": [...]} or {"prompt": ..., "reference": ...} per line')
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages
        ):
            raise FtwizError("'messages' must be a list of {role, content} objects with string values",
                             where=Location(file=path, line=line, field="messages"),
                             fix="re-create the split with `ftwiz data prepare`")
        clean = [dict(m) for m in messages]  # tool calls, tool results' ids and names as training saw them
        tools = record.get("tools") if isinstance(record.get("tools"), list) and record.get("tools") else None
        if isinstance(record.get("chosen"), str) and isinstance(record.get("rejected"), str):
            # a preference split (what the data pipeline writes for dpo/orpo/kto): the chosen answer is the
            # reference, the rejected one is kept for the preference accuracy
            if not clean:
                return None
            return EvalSample(prompt=clean, reference=record["chosen"], index=index,
                              conversation=[*clean, {"role": "assistant", "content": record["chosen"]}],
                              rejected=record["rejected"], tools=tools)
        # the last answer training learned: an OpenAI "weight": 0 turn is context only, never a target
        last = max((i for i, m in enumerate(clean) if m["role"] == "assistant" and m.get("weight", 1) != 0),
                   default=None)
        if last is None or last == 0:
            return None  # plain text or a prompt with no answer: nothing to compare against
        return EvalSample(prompt=clean[:last], reference=clean[last]["content"], index=index,
                          conversation=clean[: last + 1], tools=tools)
    if "prompt" in record and ("reference" in record or "output" in record or "response" in record):
        reference = record.get("reference", record.get("output", record.get("response")))
        if not isinstance(record["prompt"], str) or not isinstance(reference, str):
            raise FtwizError("'prompt' and 'reference' must be strings", where=Location(file=path, line=line),
                             fix="quote the values as JSON strings")
        prompt = []
        if isinstance(record.get("system"), str) and record["system"]:
            prompt.append({"role": "system", "content": record["system"]})
        prompt.append({"role": "user", "content": record["prompt"]})
        return EvalSample(prompt=prompt, reference=reference, index=index,
                          conversation=[*prompt, {"role": "assistant", "content": reference}])
    raise FtwizError(f"record has keys {sorted(record)} but no 'messages' or 'prompt'/'reference'",
                     where=Location(file=path, line=line),
                     fix='write {"messages": [...]} or {"prompt": ..., "reference": ...} per line')


def _left_out(path: Path) -> Counter[str]:
    """Reasons -> counts of the records of split ``path`` (test.jsonl) that data preparation held out and then
    left out, from rejects.jsonl beside it (their messages start with 'test split: '); empty when none."""
    rejects = Path(path).with_name("rejects.jsonl")
    prefix = f"{Path(path).stem} split: "
    counts: Counter[str] = Counter()
    try:
        lines = rejects.read_text(encoding="utf-8").splitlines() if rejects.is_file() else []
    except (OSError, UnicodeDecodeError):  # the rejects only explain the empty split; the error stands without
        return counts
    for raw in lines:
        try:
            reject = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(reject, dict) and str(reject.get("message", "")).startswith(prefix):
            counts[str(reject.get("reason"))] += 1
    return counts


def _run_setting(split: Path, key: str) -> object:
    """``key`` of the run's recipe.yaml when ``split`` is a run's data/<split>.jsonl; None otherwise."""
    import yaml

    recipe = Path(split).parent.parent / "recipe.yaml"
    if Path(split).parent.name != "data" or not recipe.is_file():
        return None
    try:
        raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):  # only explains the empty split
        return None
    return raw.get(key) if isinstance(raw, dict) else None


def load_samples(path: Path, *, system: str | None = None, max_samples: int | None = None) -> list[EvalSample]:
    """Samples with a reference answer from a JSONL file; errors name the file and line."""
    if path.is_dir():
        raise FtwizError(f"{path} is a folder; this takes one JSONL file", where=Location(file=path),
                         fix=f"give a file in it, e.g. {path / 'test.jsonl'} (`ftwiz data prepare` writes "
                             "train/validation/test.jsonl)")
    if not path.is_file():
        raise FtwizError(f"{path} does not exist", fix="check the path, or prepare the data with `ftwiz data prepare`")
    samples: list[EvalSample] = []
    records = 0
    try:  # a BOM is skipped, as `ftwiz data` skips it; UTF-16 or Latin-1 is one error naming the first bad byte
        lines = path.read_bytes().decode("utf-8-sig").split("\n")
    except UnicodeDecodeError:
        from ftwiz.core.data.loaders import encoding_error

        raise encoding_error(path) from None
    for line_no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        records += 1
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FtwizError(f"not valid JSON ({exc.msg})", where=Location(file=path, line=line_no),
                             fix="fix or remove this line") from None
        sample = _sample_from(record, len(samples), path, line_no)
        if sample is None:
            continue
        if system and sample.prompt[0]["role"] != "system":
            sample = replace(sample, prompt=[{"role": "system", "content": system}, *sample.prompt],
                             conversation=[{"role": "system", "content": system}, *sample.conversation])
        samples.append(sample)
        if max_samples is not None and len(samples) >= max_samples:
            break
    if not records and path.stem not in ("test", "validation", "train"):  # the user's own --data file, not a split
        raise FtwizError("the file is empty (no records)", where=Location(file=path),
                         fix='put one JSON object a line in it: {"messages": [...]} or {"prompt": ..., "reference": ...}')
    if not records:  # a run's split is empty when its dataset was too small to hold one out (data/clean.split)
        validation = Path(path).with_name("validation.jsonl")
        offer_validation = Path(path).name != validation.name and validation.is_file() and \
            validation.stat().st_size > 1  # an empty split file holds one newline
        left_out, knob = _left_out(path), f"{'val' if path.stem == 'validation' else path.stem}_size"
        if path.stem in ("test", "validation") and _run_setting(path, knob) == 0:  # the user turned it off
            raise FtwizError(f"the file is empty: the run's recipe sets {knob}: 0, so nothing was held out",
                             where=Location(file=path),
                             fix=f"set {knob}: 0.1 in the recipe and train again, "
                                 + ("use --split validation, " if offer_validation else "") + "or pass --data FILE")
        if left_out:  # held out, then every record left out as training leaves it out (data/held_out.py)
            reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(left_out.items()))
            raise FtwizError(f"the file is empty: all {sum(left_out.values())} {path.stem} records were left out "
                             f"({reasons}), each listed in {path.with_name('rejects.jsonl')}",
                             where=Location(file=path),
                             fix="raise cutoff_len (or set `overlength: truncate`) and re-run training, "
                                 + ("use --split validation, " if offer_validation else "")
                                 + "or pass --data FILE")
        raise FtwizError("the file is empty (no records): nothing was held out to evaluate on",
                         where=Location(file=path),
                         fix="a run holds out a test split only from 20 records on (validation: 10); "
                             + ("use --split validation, " if offer_validation else "")
                             + "pass --data FILE (question/answer records, or raw text for a pre-training run), "
                               "or train on more data")
    if not samples:
        raise FtwizError(f"{path} holds no records with an assistant answer to compare against",
                         where=Location(file=path),
                         fix="evaluate on a split with question/answer records (set `test_size` in the recipe "
                             "and re-run training, use --split validation, or pass --data FILE)")
    return samples


def as_trained(samples: list[EvalSample], renderer: Any) -> list[EvalSample]:
    """``samples`` as training saw them: with a thinking template and thinking off (``renderer.template``,
    ``renderer.enable_thinking``), the ``<think>`` reasoning removed from every answer, the reference and a
    rejected answer included, by the rule training applies (core/data/reasoning.py). Otherwise unchanged."""
    from ftwiz.core.data.reasoning import drops_reasoning, strip_reasoning, without_thought

    thinking = getattr(renderer, "enable_thinking", None)
    if renderer is None or not drops_reasoning(renderer.template, {"enable_thinking": thinking}):
        return samples
    return [replace(s, prompt=strip_reasoning(s.prompt)[0], conversation=strip_reasoning(s.conversation)[0],
                    reference=without_thought(s.reference),
                    rejected=without_thought(s.rejected) if s.rejected is not None else None) for s in samples]


def split_path(data_dir: Path, split: str) -> Path:
    """``data/<split>.jsonl`` of a run, with an error that lists the splits that do exist."""
    if split not in SPLITS:
        raise FtwizError(f"unknown split '{split}'", where=Location(field="split"),
                         fix=f"choose one of {', '.join(SPLITS)}")
    path = data_dir / f"{split}.jsonl"
    if not path.is_file():
        present = [s for s in SPLITS if (data_dir / f"{s}.jsonl").is_file()]
        fix = (f"use --split {present[-1]}" if present else "the run has no prepared data; re-run `ftwiz train`")
        raise FtwizError(f"the run has no '{split}' split ({path} is missing)", where=Location(file=path),
                         fix=fix + ", or pass --data FILE")
    return path
