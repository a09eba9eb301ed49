"""The data pipeline end to end: load -> validate -> clean -> dedup -> split -> template -> mask.

``prepare_for_training`` is what training calls; ``check_dataset`` is the tokenizer-free check the CLI
and the wizard show before anything is trained.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftwiz.core.atomic import atomic_path
from ftwiz.core.data.blocks import count_blocks, documents_line
from ftwiz.core.data.clean import exact_dedup, mix_in, near_dedup, normalise_whitespace, remove_leakage, split
from ftwiz.core.data.held_out import HELD_OUT, held_out_line, mark_held_out
from ftwiz.core.data.near_placeholders import data_warnings, system_warnings
from ftwiz.core.data.records import Conversation, Reject
from ftwiz.core.data.sources import LoadResult, load_sources, specs_from_dataset_info
from ftwiz.core.data.tokenize import tokenize_split
from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.events import EventBus, Message, Progress


@dataclass
class CheckReport:
    files: list[str]
    formats: dict[str, tuple[str, str]]
    read: int
    kept: int
    rejected: dict[str, int]
    rejects: list[Reject]
    samples: list[dict[str, Any]]
    unfilled_placeholders: list[str]
    # with a tokenizer: what the raw-text records become ({"documents", "blocks", "documents_split"}), or None
    documents: dict[str, int] | None = None
    cutoff_len: int | None = None
    # with a tokenizer: conversations longer than cutoff_len, and how many training drops or truncates
    over_cutoff: dict[str, int] | None = None
    placeholders: list[str] = field(default_factory=list)  # every {{name}} the kept records use (--var checks)
    near_placeholders: list[str] = field(default_factory=list)  # '{{first-name}}' warnings (trained as written)
    special_text: list[str] = field(default_factory=list)  # with a tokenizer: '</s>' in the data, trained as a token

    @property
    def usable(self) -> bool:
        return self.kept > 0


@dataclass
class PreparedData:
    train: Any  # datasets.Dataset
    validation: Any | None
    splits: dict[str, list[dict[str, Any]]]
    dataset_hash: str
    template_hash: str
    stats: dict[str, Any]
    rejects: list[Reject] = field(default_factory=list)
    rejects_path: Path | None = None
    origins: dict[str, list[str]] = field(default_factory=dict)  # split -> "FILE, line N" of each record
    placeholders: list[str] = field(default_factory=list)  # every {{name}} the kept records use (--var checks)

    def save_splits(self, directory: str | Path, *, overwrite: bool = True) -> Path:
        """Write train/validation/test JSONL, rejects and stats into ``directory`` (atomically, each).

        ``overwrite=False`` (``ftwiz data prepare``) refuses a folder already holding any of those files:
        ``--out`` may be the user's own data folder, whose ``train.jsonl`` would be replaced by a split.
        """
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            refuse_file_as_out(directory)
        names = [f"{name}.jsonl" for name in self.splits] + ["rejects.jsonl", "stats.json"]
        existing = [name for name in names if (directory / name).exists()]
        if existing and not overwrite:
            raise FtwizError(f"{directory} already holds {', '.join(existing)}, and ftwiz does not overwrite "
                             "files without asking", where=Location(file=directory),
                             fix="choose another --out folder, or pass --overwrite to replace them")
        directory.mkdir(parents=True, exist_ok=True)
        for name, records in self.splits.items():
            _write_jsonl(directory / f"{name}.jsonl", records)
        self.rejects_path = directory / "rejects.jsonl"
        _write_jsonl(self.rejects_path, [r.to_json() for r in self.rejects])
        with atomic_path(directory / "stats.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.stats, indent=2), encoding="utf-8")
        return directory


def refuse_file_as_out(path: Path) -> None:
    """The FtwizError for a file given where the splits' folder goes (``ftwiz data prepare --out``)."""
    raise FtwizError(f"--out {path} is a file; the splits go into a folder", where=Location(file=path),
                     fix="give a folder (it is created if missing), e.g. --out my-data.prepared")


def _jsonl_bytes(rows: list[dict[str, Any]], sample: int = 200) -> int:
    """The JSONL's size, measured on an even sample of ``sample`` rows (cheap for a million rows)."""
    if not rows:
        return 0
    step = max(1, len(rows) // sample)
    picked = rows[::step]
    measured = sum(len(json.dumps(row, ensure_ascii=False).encode()) + 1 for row in picked)
    return int(measured * len(rows) / len(picked))


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    from ftwiz.core.pause import pause_point

    with atomic_path(path, overwrite=True, needed=_jsonl_bytes(rows), what=f"the data split {path.name}") as tmp, \
            open(tmp, "w", encoding="utf-8") as fh:
        for index, row in enumerate(rows):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            if index == len(rows) // 2:
                fh.flush()
                pause_point("data.write")  # kill tests stop here, a split half written


def files_hash(files: list[Path], options: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    for path in sorted(files):
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _refuse_holding_out_all(n: int, recipe: Any) -> None:
    """FtwizError when ``val_size`` given as a number of records (and the test split) leave none of the ``n``
    usable records to train on."""
    from ftwiz.core.recipe_values import held_out_counts

    n_val, n_test = held_out_counts(n, recipe.val_size, recipe.test_size)
    if recipe.val_size >= 1 and n_val + n_test >= n:
        raise FtwizError(f"val_size: {n_val} holds out {n_val} records" + (f" (and test_size {n_test} more)"
                         if n_test else "") + f", but the data has {n} usable records: none would be left to train on",
                         where="recipe: val_size", fix=f"give fewer than {n - n_test} records, or a share such as "
                                                       "val_size: 0.1")


def check_dataset(path: str, *, formatting: str = "auto", columns: dict[str, str] | None = None,
                  variables: dict[str, str] | None = None, dataset_dir: str | None = None,
                  tokenizer: Any = None, recipe: Any = None, sample_by: str = "line") -> CheckReport:
    """Read and validate every record. With ``tokenizer`` and ``recipe`` (``data check --model``) every kept
    record is also rendered with the model's chat template, and the records it refuses are rejected with
    the template's own message, as ``prepare``/``preview`` reject them."""
    specs = specs_from_dataset_info([path], dataset_dir, formatting, columns, sample_by)
    loaded = load_sources(specs, variables=variables if variables is not None else {})
    documents = None  # without a tokenizer only the documents are counted: blocks need token lengths
    over_cutoff = None
    special_text: list[str] = []
    count = sum(1 for c in loaded.conversations if c.messages and c.messages[0]["role"] == "text")
    if count:
        documents = {"documents": count}
    if tokenizer is not None and recipe is not None:
        from ftwiz.core.data.template import chat_template_of
        from ftwiz.core.data.tokenize import template_rejects

        template = chat_template_of(tokenizer, recipe.template, enable_thinking=getattr(recipe, "enable_thinking",
                                                                                        None))
        refused = template_rejects(tokenizer, template, loaded.conversations, recipe)
        bad = {i for i, _reject in refused}
        loaded.conversations = [c for i, c in enumerate(loaded.conversations) if i not in bad]
        loaded.rejects.extend(reject for _i, reject in refused)
        documents = count_blocks(tokenizer, template, loaded.conversations, recipe)
        over_cutoff = _over_cutoff(tokenizer, template, loaded.conversations, recipe)
        special_text = _special_text_warnings(tokenizer, loaded.conversations, recipe.system)
    return CheckReport(
        files=[str(f) for f in loaded.files], formats=loaded.formats, read=loaded.read,
        kept=len(loaded.conversations), rejected=dict(Counter(r.reason for r in loaded.rejects)),
        rejects=loaded.rejects, samples=[c.to_json() for c in loaded.conversations[:3]],
        unfilled_placeholders=sorted(loaded.unfilled_placeholders), documents=documents,
        placeholders=sorted(loaded.placeholders), near_placeholders=data_warnings(loaded.near_placeholders),
        cutoff_len=recipe.cutoff_len if recipe is not None else None, over_cutoff=over_cutoff,
        special_text=special_text,
    )


def _special_text_warnings(tokenizer, convs: list[Conversation], system: str | None) -> list[str]:
    """Warnings for special-token texts (``</s>``) in the records or the system prompt (core/data/special_text.py)."""
    from ftwiz.core.data.special_text import find_special_text, special_text_warnings, special_token_texts

    tokens = special_token_texts(tokenizer)
    return special_text_warnings(find_special_text(convs, tokens), system, tokens)


def _over_cutoff(tokenizer, template: str, convs: list, recipe) -> dict[str, int] | None:
    """{"over_cutoff", "dropped", "truncated"} as training counts them (tokenized as training tokenizes);
    None when no conversation is longer than cutoff_len (raw-text documents become blocks, never cut)."""
    from ftwiz.core.data.tokenize import tokenize_split

    if not convs:
        return None
    stats = tokenize_split(tokenizer, template, convs, recipe)[1]
    if not stats.get("over_cutoff"):
        return None
    return {"over_cutoff": int(stats["over_cutoff"]), "dropped": int(stats.get("dropped", 0)),
            "truncated": int(stats.get("truncated", 0))}


def _default_system(convs: list[Conversation], system: str | None) -> list[Conversation]:
    """The recipe's ``system`` in front of every conversation without one (raw text excepted), in place."""
    for conv in convs if system else ():
        if conv.messages and conv.messages[0]["role"] not in ("system", "text"):
            conv.messages.insert(0, {"role": "system", "content": system})
    return convs


def _where(conv: Conversation) -> str:
    return conv.source.where() if conv.source else "a record"


def not_trained_line(rejects: list[Reject], read: int) -> str:
    """'3 of 12 records are not trained (no_learned_tokens 3): ...', the rejects counted by reason."""
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(Counter(r.reason for r in rejects).items()))
    return (f"{len(rejects)} of {read} records are not trained ({reasons}); each is listed with its file and "
            "line in rejects.jsonl beside the prepared splits (a run's data/rejects.jsonl)")


def write_rejects(rejects: list[Reject], path: str | Path) -> Path:
    _write_jsonl(Path(path), [r.to_json() for r in rejects])
    return Path(path)


def _clean(loaded: LoadResult, recipe, stats: dict[str, Any]) -> list[Conversation]:
    convs = [normalise_whitespace(c) for c in loaded.conversations]
    if recipe.dedup:
        convs, dups = exact_dedup(convs)
        stats["exact_duplicates"] = len(dups)
        if recipe.near_dedup_threshold is not None and recipe.near_dedup_threshold < 1.0:
            convs, near = near_dedup(convs, recipe.near_dedup_threshold)
            stats["near_duplicates"] = len(near)
    if recipe.max_samples:
        convs = convs[: recipe.max_samples]
    return convs


def prepare_for_training(recipe, tokenizer, *, events: EventBus | None = None,
                         variables: dict[str, str] | None = None, refuse_placeholders: bool = False,
                         system_filled: bool = False) -> PreparedData:
    """Everything between the user's files and tokenized train/validation datasets with loss masks.

    ``variables`` fill ``{{name}}`` placeholders (default: the recipe's ``variables:``). With
    ``refuse_placeholders`` (training) unfilled ones are an FtwizError unless the recipe sets
    ``allow_placeholders``; otherwise (previews, plans) they are a warning. ``system_filled``: ``recipe.system``
    was filled already (a run's stored recipe, checked when the run started) and is trained as it is: filling it
    again would fill a value's own ``{{other}}`` (``--var name='{{author}}'``), which must stay literal.
    """
    from ftwiz.core.data.template import chat_template_of, template_hash

    say = events.emit if events else (lambda _e: None)
    specs = specs_from_dataset_info(recipe.dataset, recipe.dataset_dir, recipe.formatting, recipe.columns,
                                    recipe.sample_by)
    if variables is None:
        variables = dict(getattr(recipe, "variables", None) or {})
    loaded = load_sources(specs, variables=variables)
    say(Progress(stage="data", done=1, total=4, message=f"read {loaded.read} records"))
    from ftwiz.core.recipe_inputs import filled_system, placeholder_error, system_placeholder_error

    # filled once, as the data is: chat/serve send this text
    system, system_missing = (recipe.system, []) if system_filled else filled_system(recipe, variables)
    refuse = refuse_placeholders and not getattr(recipe, "allow_placeholders", False)
    if system_missing and refuse:
        raise system_placeholder_error(system_missing)
    if loaded.unfilled_placeholders and refuse:
        raise placeholder_error(sorted(loaded.unfilled_placeholders))
    if system_missing:
        say(Message(level="warning", text="unfilled placeholders in the system prompt: " + ", ".join(
            "{{" + name + "}}" for name in system_missing)))
    if loaded.unfilled_placeholders:
        say(Message(level="warning", text="unfilled placeholders: " + ", ".join(
            "{{" + name + "}}" for name in sorted(loaded.unfilled_placeholders))))
    # '{{first-name}}' is trained as written: said in the system prompt as written (a stored, filled one was
    # said when its run started), and in the data
    as_written = None if system_filled or getattr(recipe, "system_filled", False) else recipe.system
    for line in system_warnings(as_written) + data_warnings(loaded.near_placeholders):
        say(Message(level="warning", text=line))
    stats: dict[str, Any] = {"read": loaded.read, "formats": {k: v[0] for k, v in loaded.formats.items()},
                             "rejected": dict(Counter(r.reason for r in loaded.rejects))}
    convs = _clean(loaded, recipe, stats)
    exact, near = stats.get("exact_duplicates", 0), stats.get("near_duplicates", 0)
    if exact or near:  # distinct records may go as near-duplicates: said, not only counted in stats.json
        near_part = f", near {near} at near_dedup_threshold {recipe.near_dedup_threshold}" if "near_duplicates" in stats \
            else ""
        say(Message(level="warning", text=f"{exact + near} duplicate record(s) left out (exact {exact}{near_part}); "
                    "`dedup: false` keeps them"))
    for line in _special_text_warnings(tokenizer, convs, system):  # before the system joins every record
        say(Message(level="warning", text=line))
    _default_system(convs, system)
    if not convs and not loaded.read:  # "no usable records (0 rejected)" read as if something were wrong in them
        raise FtwizError(f"no records in {', '.join(recipe.dataset)}: nothing to read (an empty file, blank lines, "
                         "a CSV header alone, or [])", fix="put records in it, or point at the file that holds them")
    if not convs:
        raise FtwizError(f"no usable records in {', '.join(recipe.dataset)} ({len(loaded.rejects)} rejected)",
                         fix="run `ftwiz data check PATH` to see each problem with its line")
    _refuse_holding_out_all(len(convs), recipe)
    parts = split(convs, recipe.val_size, recipe.test_size, recipe.seed)
    if recipe.val_size > 0 and not parts["validation"]:  # split() holds nothing out below 10 records
        say(Message(level="warning", text=f"only {len(convs)} record(s): too few to hold out a validation split "
                    "(10 or more are needed), so training reports no eval loss"))
    stats["leakage_moved"] = remove_leakage(parts)
    if recipe.mix_dataset and recipe.mix_ratio > 0:
        general = load_sources(specs_from_dataset_info([recipe.mix_dataset], recipe.dataset_dir, "auto", None))
        mixed = _default_system([normalise_whitespace(c) for c in general.conversations], system)  # as own
        parts["train"] = mix_in(parts["train"], mixed, recipe.mix_ratio, recipe.seed)
        stats["mixed_in"] = len(parts["train"]) - len([c for c in parts["train"] if c in convs])
    say(Progress(stage="data", done=2, total=4, message="cleaned and split"))
    template = chat_template_of(tokenizer, recipe.template, enable_thinking=getattr(recipe, "enable_thinking", None))
    tokenized = {}
    held_out: dict[str, list[Reject]] = {}  # validation/test records left out as training leaves them out
    for name in ("train", *HELD_OUT):  # test too: eval scores only what training could have seen whole
        if parts[name]:
            dataset, split_stats = tokenize_split(tokenizer, template, parts[name], recipe)
            kept = split_stats.pop("kept_records")  # the split files and preference trainers get what is trained
            parts[name] = [conv for i, conv in enumerate(parts[name]) if i in kept]
            if name == "test":  # never trained on, so no dataset; its lengths would only bloat the run card
                split_stats.pop("lengths", None)
            else:
                tokenized[name] = dataset
            stats[name] = split_stats
            for reject in split_stats.pop("reject_objects", []):
                if name in HELD_OUT:
                    held_out.setdefault(name, []).append(mark_held_out(reject, name))
                loaded.rejects.append(reject)
                if reject.reason != "over_max_length":  # refused by the chat template: counted as check counts it
                    stats["rejected"][reject.reason] = stats["rejected"].get(reject.reason, 0) + 1
    undesirable = sorted((c for c in parts["train"] if c.label is False),  # the first one in file order
                         key=lambda c: (c.source.file, c.source.index) if c.source else ("", 0))
    if undesirable and recipe.stage == "sft":  # KTO data trained as SFT: every answer is learned as a good one
        say(Message(level="warning", text=f"{len(undesirable)} training records are marked undesirable (kto_tag "
                    f"or label false), e.g. {_where(undesirable[0])}: stage sft learns them as good answers; use "
                    "`stage: kto` to learn from the marks, or leave those records out"))
    held_ids = {id(r) for rejects in held_out.values() for r in rejects}
    not_trained = [r for r in loaded.rejects if id(r) not in held_ids]
    if not_trained:  # said where training shows it, not only written to rejects.jsonl
        say(Message(level="warning", text=not_trained_line(not_trained, loaded.read)))
    truncated = {name: max(0, stats[name].get("truncated", 0) - sum(  # kept and cut: one cut to no answer is out
        r.reason == "no_learned_tokens" for r in held_out.get(name, []))) for name in HELD_OUT if name in stats}
    line = held_out_line(held_out, {name: len(parts[name]) for name in HELD_OUT}, truncated, recipe.cutoff_len)
    if line:
        say(Message(level="warning", text=line))
    removed = sum(stats[name].get("reasoning_removed", 0) for name in tokenized)
    if removed:  # told once for the whole dataset: the model learns the answers, not the thoughts
        stats["reasoning_removed"] = removed
        say(Message(level="warning", text=f"enable_thinking is false: <think> reasoning was removed from the "
                    f"answers of {removed} record(s); the model learns the answers only, as it is served (after "
                    "an empty <think></think> block). Set `enable_thinking: true` to train the reasoning"))
    for name in tokenized:  # long raw-text documents are split, not cut: say how many blocks they became
        line = documents_line(stats[name], recipe.cutoff_len)
        if line:
            say(Message(level="info", text=f"{name} data: {line}"))
    if "train" not in tokenized or len(tokenized["train"]) == 0:
        raise FtwizError(f"every training record is longer than cutoff_len={recipe.cutoff_len} tokens",
                         fix="raise cutoff_len or set `overlength: truncate`")
    train_stats = stats["train"]
    rows = len(tokenized["train"])  # packed: several short samples share a row, so say both numbers
    say(Progress(stage="data", done=4, total=4, message=(
        f"{train_stats['packed_samples']} training samples packed into {rows} rows of <= {recipe.cutoff_len} tokens"
        if train_stats.get("packed_samples", rows) != rows else f"{rows} training samples")))
    stats["kept"] = {name: len(parts[name]) for name in parts}
    options = {k: getattr(recipe, k) for k in ("formatting", "columns", "system", "cutoff_len", "overlength",
                                                "train_on_prompt", "mask_history", "packing", "dedup",
                                                "near_dedup_threshold", "val_size", "test_size", "seed",
                                                "max_samples", "mix_dataset", "mix_ratio")}
    options["system"] = system  # as trained: another --var value is other data
    filled = {name: variables[name] for name in sorted(loaded.placeholders) if name in variables}
    if filled:  # the files hold {{name}}, the model learns the value: data without placeholders keeps its hash
        options["variables"] = filled
    if recipe.sample_by != "line":  # only when set: runs prepared before the field keep their dataset hash
        options["sample_by"] = recipe.sample_by
    return PreparedData(
        train=tokenized["train"], validation=tokenized.get("validation"),
        splits={name: [c.to_json() for c in convs_] for name, convs_ in parts.items()},
        origins={name: [c.source.where() if c.source else f"record {i}" for i, c in enumerate(convs_)]
                 for name, convs_ in parts.items()},
        dataset_hash=files_hash(loaded.files, options), template_hash=template_hash(template),
        stats=stats, rejects=loaded.rejects,
        placeholders=sorted(loaded.placeholders),
    )
