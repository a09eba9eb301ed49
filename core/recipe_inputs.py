"""Checks on what a recipe points at, done before a run folder is made: dataset paths and placeholders
(in the data and in the ``system:`` prompt, filled alike from ``variables:`` and ``--var``).

``ftwiz train`` runs them first, so a typo in a dataset path is one clear error and no ``failed`` run
folder; ``ftwiz recipe validate`` checks the paths too; the wizard's data step asks for the placeholder
values. Training itself refuses unfilled placeholders as well (``prepare_for_training``), so a script
calling core directly is held to the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ftwiz.core.errors import FtwizError, Location


def check_dataset_paths(recipe, *, recipe_file: str | None = None) -> list[str]:
    """Every dataset the recipe names exists (files, folders, globs, dataset_info names); returns the files.

    Raises FtwizError naming the missing dataset and the recipe field, with a fix.
    """
    from ftwiz.core.data.loaders import expand_paths
    from ftwiz.core.data.sources import specs_from_dataset_info

    files: list[str] = []
    specs = specs_from_dataset_info(list(recipe.dataset), recipe.dataset_dir, recipe.formatting, recipe.columns,
                                    recipe.sample_by)
    for index, spec in enumerate(specs):
        try:
            paths = expand_paths(spec.path)
        except FtwizError as exc:
            raise FtwizError(exc.what, where=Location(file=recipe_file, field=f"dataset[{index}]"),
                             fix=exc.fix) from None
        if all(p.stat().st_size == 0 for p in paths):  # a file saved before anything was written to it
            raise FtwizError(f"the dataset {'file is' if len(paths) == 1 else 'files are all'} empty: "
                             f"{', '.join(str(p) for p in paths[:3])}", where=Location(file=recipe_file,
                             field=f"dataset[{index}]"), fix="put records in it (`ftwiz data check FILE` shows "
                             "what it reads), or point dataset: at the file that holds them")
        files += [str(p) for p in paths]
    return files


def parse_var_values(items: list[str] | None) -> dict[str, str]:
    """``--var NAME=VALUE`` items as {NAME: VALUE}, for every command that takes them: the name trimmed (and
    ``{{name}}`` accepted), the value exactly as typed (it is inserted literally, spaces and braces included).
    FtwizError for an item without ``=`` or a name."""
    values = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise FtwizError(f"--var expects NAME=VALUE, got '{item}'", where="--var", fix="e.g. --var name=Aria")
        name = name.strip().strip("{}").strip()  # '{{ name }}=Aria' names {{name}}, as the data may write it
        if name in values and values[name] != value:  # a script that sets a name twice means one of them
            raise FtwizError(f"--var {name} is given twice ({values[name]!r}, then {value!r})", where="--var",
                             fix=f"give --var {name}=VALUE once")
        values[name] = value
    return values


def unfilled_placeholders(recipe, variables: dict[str, str] | None = None) -> list[str]:
    """``{{name}}`` placeholders in the recipe's data that ``variables`` (default: the recipe's) leave unfilled."""
    from ftwiz.core.data.sources import load_sources, specs_from_dataset_info

    specs = specs_from_dataset_info(list(recipe.dataset), recipe.dataset_dir, recipe.formatting, recipe.columns,
                                    recipe.sample_by)
    loaded = load_sources(specs, variables=dict(recipe.variables if variables is None else variables))
    return sorted(loaded.unfilled_placeholders)


def placeholder_error(names: list[str], *, recipe_file: str | None = None) -> FtwizError:
    """The refusal to train with ``{{name}}`` left in the data, and the three ways out."""
    shown = ", ".join("{{" + n + "}}" for n in names)
    example = " ".join(f"--var {n}=VALUE" for n in names)
    return FtwizError(
        f"the data still has unfilled placeholders {shown}; the model would learn them literally",
        where=Location(file=recipe_file, field="variables"),
        fix=f"give their values: `ftwiz train RECIPE {example}`, or in the recipe under `variables:`, "
            "or train anyway with --allow-placeholders")


def filled_system(recipe, variables: dict[str, str] | None = None) -> tuple[str | None, list[str]]:
    """The recipe's ``system`` prompt with its ``{{name}}`` placeholders filled from ``variables`` (default: the
    recipe's ``variables:``, which ``--var`` adds to), as the data's are; and the names left unfilled. A prompt
    stored filled (``system_filled``: a run's recipe.yaml) is returned as it is: filling it again would fill a
    value's own ``{{other}}``, and training the run's recipe again would learn other text than the run did."""
    from ftwiz.core.data.validate import fill_text

    if not recipe.system or getattr(recipe, "system_filled", False):
        return recipe.system, []
    text, missing = fill_text(recipe.system, dict(recipe.variables if variables is None else variables))
    return text, sorted(missing)


def edited_stored_system(recipe) -> list[str]:
    """Names whose ``{{name}}`` a prompt stored filled (``system_filled``) holds although ``variables:`` gives them a
    value no other value brought in: filling left none such when the run started, so the prompt was edited after
    (a copy of a run's recipe.yaml with a new ``{{name}}``) and would be trained with the braces, not the value."""
    from ftwiz.core.data.validate import PLACEHOLDER

    if not recipe.system or not getattr(recipe, "system_filled", False):
        return []
    values = dict(recipe.variables)
    brought = {name for value in values.values() for name in PLACEHOLDER.findall(str(value))}  # a value's own braces
    return sorted(set(PLACEHOLDER.findall(recipe.system)) & set(values) - brought)


def edited_stored_system_error(names: list[str], *, recipe_file: str | None = None) -> FtwizError:
    """The refusal for :func:`edited_stored_system`'s names."""
    shown = ", ".join("{{" + n + "}}" for n in names)
    return FtwizError(
        f"system: holds {shown}, but system_filled: true marks it as a run's prompt filled already, so it would be "
        "trained and sent with the braces, not the value under variables: (was system: edited in a copy of a run's "
        "recipe.yaml?)", where=Location(file=recipe_file, field="system_filled"),
        fix="delete the system_filled line, so system: is filled from variables:; or keep the braces as written with "
            "--allow-placeholders")


def with_filled_system(recipe):
    """The recipe with its system prompt filled (what a run stores, trains with, and chat/serve/eval send);
    unfilled names stay as written, for training to refuse (or, with allow_placeholders, to learn literally).
    A prompt that filling changed is marked ``system_filled``, so the run's stored recipe trains that text again."""
    system, _missing = filled_system(recipe)
    return recipe if system == recipe.system else recipe.model_copy(update={"system": system, "system_filled": True})


def system_placeholder_error(names: list[str], *, recipe_file: str | None = None) -> FtwizError:
    """The refusal to train with ``{{name}}`` left in the recipe's system prompt, and the three ways out."""
    shown = ", ".join("{{" + n + "}}" for n in names)
    example = " ".join(f"--var {n}=VALUE" for n in names)
    return FtwizError(
        f"the system prompt still has unfilled placeholders {shown}; the model would learn them literally, and "
        "chat and serve would send them", where=Location(file=recipe_file, field="system"),
        fix=f"give their values: `ftwiz train RECIPE {example}`, or in the recipe under `variables:`, "
            "or train anyway with --allow-placeholders")


def refuse_unfilled_placeholders(recipe, *, recipe_file: str | None = None) -> None:
    """Raise :func:`system_placeholder_error` or :func:`placeholder_error` unless every placeholder (system
    prompt, then data) is filled or the recipe allows them."""
    if recipe.allow_placeholders:
        return
    system_missing = filled_system(recipe)[1]
    if system_missing:
        raise system_placeholder_error(system_missing, recipe_file=recipe_file)
    names = unfilled_placeholders(recipe)
    if names:
        raise placeholder_error(names, recipe_file=recipe_file)


def system_placeholders(recipe) -> set[str]:
    """The ``{{name}}`` names the recipe's ``system`` prompt uses, as written (before any filling); none for a
    prompt stored filled (``system_filled``), which no value fills again."""
    from ftwiz.core.data.validate import PLACEHOLDER

    if getattr(recipe, "system_filled", False):
        return set()
    return set(PLACEHOLDER.findall(getattr(recipe, "system", None) or ""))


def _closest(name: str, used: set[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(name, sorted(used), n=1)
    return close[0] if close else None


def _usable_name(name: str) -> str:
    """``name`` as a placeholder name (letters, digits and _, not starting with a digit): itself when it is one."""
    from ftwiz.core.data.near_placeholders import usable_name

    return usable_name(name)  # one rule, also for '{{first-name}}' in the data


def unused_variable_error(names: list[str], used: set[str], *,
                          where: str = "the recipe's system prompt or data") -> FtwizError:
    """The refusal of ``--var NAME=...`` whose NAME no ``{{NAME}}`` uses: a typo would otherwise be ignored and
    the placeholder it meant trained with another value (or refused as unfilled, naming the wrong cause)."""
    existing = ", ".join("{{" + n + "}}" for n in sorted(used))
    uses = f"the placeholders there are {existing}" if used else "there are no {{NAME}} placeholders there"
    hints = [f"--var {close}=VALUE instead of --var {n}=VALUE" for n in names if (close := _closest(n, used))]
    # '{{first-name}}' may well be in the data, but as text: a placeholder name is letters, digits and _
    invalid = [n for n in names if _usable_name(n) != n]
    if invalid:
        renames = [(n, _usable_name(n)) for n in invalid]
        return FtwizError(
            f"--var {', '.join(invalid)}: a placeholder name is letters, digits and _ (not starting with a digit), "
            f"so {', '.join('{{' + n + '}}' for n in invalid)} is no placeholder: no value fills it, it is trained "
            f"as written; {uses}", where="--var",
            fix=(f"did you mean {'; '.join(hints)}? Else " if hints else "")
            + "; ".join(f"write {{{{{new}}}}} in the data or system prompt and give --var {new}=VALUE"
                        for _, new in renames))
    return FtwizError(
        f"--var {', '.join(names)}: no {', '.join('{{' + n + '}}' for n in names)} in {where}, so the value would "
        f"fill nothing; {uses}", where="--var",
        fix=(f"did you mean {'; '.join(hints)}? " if hints else "") + "remove the --var that fills nothing")


def refuse_unused_variables(given, used: set[str], *, where: str = "the recipe's system prompt or data") -> None:
    """Raise :func:`unused_variable_error` for the ``--var`` names in ``given`` that no placeholder in ``used``
    has."""
    unused = sorted(set(given) - used)
    if unused:
        raise unused_variable_error(unused, used, where=where)


def empty_var_warning(name: str) -> str:
    """What ``ftwiz train`` and ``ftwiz data`` say of ``--var NAME=`` that fills a placeholder with nothing."""
    return f"--var {name} is empty: {{{{{name}}}}} becomes empty text (an unset shell variable?)"


def check_placeholders(recipe, *, given=(), recipe_file: str | None = None,
                       stored_values: Mapping[str, str] | None = None) -> list[str]:
    """What ``ftwiz train`` checks before a run folder is made, reading the data once: every ``--var`` name in
    ``given`` fills a ``{{name}}`` in the system prompt (as written) or the data, else
    :func:`unused_variable_error`; then :func:`refuse_unfilled_placeholders`' rule. Returns warnings for names
    set under the recipe's own ``variables:`` that nothing uses (a shared recipe may fill more than one dataset
    needs: said, not refused). ``stored_values``: the recipe file's own ``variables:`` (before ``--var``); on a
    prompt stored filled, a new value for a name whose old value the prompt holds is refused too (the data would
    say the new value, the system prompt the old one)."""
    from ftwiz.core.data.sources import load_sources, specs_from_dataset_info

    specs = specs_from_dataset_info(list(recipe.dataset), recipe.dataset_dir, recipe.formatting, recipe.columns,
                                    recipe.sample_by)
    loaded = load_sources(specs, variables=dict(recipe.variables))
    used = loaded.placeholders | system_placeholders(recipe)
    stored = bool(getattr(recipe, "system_filled", False))  # a run's recipe.yaml: its values are in the prompt
    refill = sorted((set(given) - used) & set(recipe.variables)) if stored else []
    old = dict(stored_values or {})
    if stored and not refill:  # `--var name=Bob` filling the data's {{name}}: the stored prompt keeps 'Aria'
        refill = sorted(name for name, value in dict(given).items() if old.get(name) and old[name] != value
                        and old[name] in (recipe.system or ""))
    if refill:  # `ftwiz train runs/X/recipe.yaml --var name=Bob`: the stored prompt says the old value
        raise FtwizError(
            f"--var {', '.join(refill)}: {recipe_file or 'this recipe'} stores its system prompt filled "
            f"(system_filled: true, as a run's recipe.yaml does), so a new value cannot reach it; "
            + (f"its data has no {', '.join('{{' + n + '}}' for n in refill)}" if not set(refill) & used else
               "it holds " + ", ".join(f"'{old[n]}' ({n}'s value when the run started)" for n in refill)
               + " while the data's " + ", ".join("{{" + n + "}}" for n in refill) + " would get the new value"),
            where="--var",
            fix="train from the recipe the run started with, giving the new --var there; or edit system: in a copy "
                "of this file and delete its system_filled line")
    edited = [] if recipe.allow_placeholders else edited_stored_system(recipe)
    if edited:
        raise edited_stored_system_error(edited, recipe_file=recipe_file)
    refuse_unused_variables(given, used, where=f"{recipe_file or 'the recipe'}'s system prompt or data")
    warnings = [empty_var_warning(name) for name, value in dict(given).items() if value == "" and name in used]
    # a run's recipe.yaml keeps the values its (stored filled) system prompt used: checked when the run started
    for name in sorted(set() if stored else set(recipe.variables) - used - set(given)):
        close = _closest(name, used)
        if _usable_name(name) != name:  # '{{first-name}}' may be in the data, as text no value fills
            warnings.append(f"variables: {name} fills nothing: a placeholder name is letters, digits and _, so "
                            f"{{{{{name}}}}} is trained as written; write {{{{{_usable_name(name)}}}}} and name it "
                            f"{_usable_name(name)} under variables:" + (f" (or did you mean {close}?)" if close else ""))
            continue
        warnings.append(f"variables: {name} fills nothing: no {{{{{name}}}}} in the system prompt or data"
                        + (f" (did you mean {close}?)" if close else ""))
    if not recipe.allow_placeholders:
        system_missing = filled_system(recipe)[1]
        if system_missing:
            raise system_placeholder_error(system_missing, recipe_file=recipe_file)
        if loaded.unfilled_placeholders:
            raise placeholder_error(sorted(loaded.unfilled_placeholders), recipe_file=recipe_file)
    return warnings


def tokenizer_for(recipe):
    """The tokenizer training will use; the demo's is built alone (seconds), without building the model."""
    if recipe.model_name_or_path == "demo":
        from ftwiz.core.tiny.demo import demo_tokenizer

        return demo_tokenizer()
    from ftwiz.core.models import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model(recipe.model_name_or_path, revision=recipe.revision), recipe)


def lengths_key(recipe) -> tuple:
    """What the training split's token lengths depend on: a cached measurement is reused only if these match."""
    return (tuple(recipe.dataset), recipe.dataset_dir, recipe.model_name_or_path, recipe.revision, recipe.template,
            recipe.cutoff_len, recipe.overlength, tuple(sorted(recipe.variables.items())), recipe.system,
            recipe.val_size, recipe.test_size, recipe.seed, recipe.max_samples)


def prepare_dataset(recipe, *, tokenizer=None, variables: dict[str, str] | None = None, events=None):
    """The data step, as ``ftwiz data prepare|preview|stats`` and the wizard's data step run it: the recipe's
    records checked, rendered with the model's template, tokenized, masked and split, with the tokenizer
    training uses (:func:`tokenizer_for`). Returns ``PreparedData`` (``save_splits`` writes the files).
    ``events``: an EventBus that gets the warnings training shows (records left out and why)."""
    from ftwiz.core.data import prepare_for_training

    return prepare_for_training(recipe, tokenizer or tokenizer_for(recipe), variables=variables, events=events)


def training_lengths(recipe, tokenizer=None) -> list[int]:
    """Token lengths of the training split exactly as ``train`` measures them for its plan."""
    prepared = prepare_dataset(recipe, tokenizer=tokenizer)
    return list(prepared.stats.get("train", {}).get("lengths") or [])


REAL_MODEL_HINT = "Qwen/Qwen2.5-0.5B-Instruct"


def demo_model_note(recipe) -> str | None:
    """What to tell a user who trains the built-in demo model on their own data: it is too small to learn it.

    None for the demo recipe itself (the demo data is made for the tiny model) and for any real model.
    """
    if recipe.model_name_or_path != "demo" or list(recipe.dataset) == ["demo"]:
        return None
    return ("note: the built-in demo model is tiny (about 1M parameters) and learned only a little English; "
            "trained on your data its answers will barely change. For a real result pick a real model, e.g. "
            f"`{REAL_MODEL_HINT}` (download it once with `ftwiz pull {REAL_MODEL_HINT}`).")


def with_absolute_paths(recipe, base: str | Path | None = None):
    """The recipe with its local paths absolute, as a run stores it (runs/NAME/recipe.yaml): training that recipe
    again from another directory (the command a finished run suggests) finds the same files. The keys holding a
    local path are the ones below; every other key is a name, a number or text. The user's recipe file and the
    recipe given are not changed; absolute paths are kept as written.

    Each value is resolved against ``base`` (default: the working directory) the way its reader resolves it:

    - data: with a ``dataset_dir:`` only that folder (``dataset:``/``mix_dataset:`` entries are names in its
      dataset_info.json or paths inside it); without one each ``dataset:``/``mix_dataset:`` path (globs keep their
      pattern; ``demo`` stays);
    - ``template:`` when it is a file path (a template name or Jinja text stays);
    - ``model_name_or_path:`` when it names a path that exists there (a local model folder, or its config.json):
      ``resolve_model`` reads such a value as that path. Anything else stays as written: a hub id such as
      ``Qwen/Qwen2.5-0.5B-Instruct`` (read from the Hugging Face cache) and ``demo`` (never a path);
    - ``adapter_name_or_path:`` when it names a folder there holding an adapter (adapter_config.json, directly or
      in ``adapter/``) or a run (recipe.yaml), as ``resolve_adapter`` reads it first; a run name stays.

    A value starting with ``~`` counts as absolute and is kept (every reader expands it).
    """
    import os

    from ftwiz.core.chat_templates.record import template_kind

    root = Path.cwd() if base is None else Path(base)

    def absolute(value: str | None, *, home: bool = False) -> str | None:
        if value is None or value == "demo":
            return value
        path = Path(os.path.expanduser(value) if home else value)
        if path.is_absolute():
            return value
        return os.path.normpath(root / path)  # a glob's * and [] are kept; ../data.jsonl is folded in

    def existing(value: str | None, *marks: str) -> bool:  # the value is a path its reader finds here
        if value is None or value == "demo":
            return False
        path = root / os.path.expanduser(value)
        return path.exists() if not marks else any((path / mark).is_file() for mark in marks)

    if recipe.dataset_dir:
        update = {"dataset_dir": absolute(recipe.dataset_dir, home=True)}
    else:
        update = {"dataset": [absolute(entry, home=True) for entry in recipe.dataset],
                  "mix_dataset": absolute(recipe.mix_dataset, home=True)}
    if recipe.template is not None and template_kind(recipe.template) == "file":
        update["template"] = absolute(recipe.template, home=True)
    if existing(recipe.model_name_or_path):
        update["model_name_or_path"] = absolute(recipe.model_name_or_path, home=True)
    if existing(recipe.adapter_name_or_path, "adapter_config.json", "adapter/adapter_config.json", "recipe.yaml"):
        update["adapter_name_or_path"] = absolute(recipe.adapter_name_or_path, home=True)
    return recipe.model_copy(update=update)


def check_recipe_columns(recipe, recipe_file: str | Path) -> None:
    """The recipe's ``columns:`` (and dataset_info.json entries' own) against the first records of its data; the
    refusal names ``recipe_file`` and its key. ``recipe validate`` and ``train`` (before a run folder) both ask."""
    from ftwiz.core.data.column_map import refuse_absent_recipe_columns
    from ftwiz.core.data.sources import specs_from_dataset_info

    specs = specs_from_dataset_info(list(recipe.dataset), recipe.dataset_dir, recipe.formatting, recipe.columns,
                                    recipe.sample_by)
    refuse_absent_recipe_columns(specs, recipe_file)
