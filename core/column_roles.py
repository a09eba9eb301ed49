"""The role names a column mapping may give on its left side (``--column ROLE=COLUMN``, a recipe's
``columns: {ROLE: COLUMN}``), checked when the mapping is read, before any data is.

A role is a record field the format readers of core/data/formats.py take, or LLaMA-Factory's dataset_info.json
name for one (its ``columns`` block: prompt/query/response/messages, renamed by ``formats.LF_COLUMNS``; and the
multimodal images/videos/audios, whose records are refused by name). A mapping to any other name was read by
nothing: the user's column was renamed to it and then ignored, and the records failed later with only the key.

This module imports nothing of ftwiz.core.data (whose package import loads the whole pipeline) so the recipe
schema can use it; tests/unit/test_column_role_names.py keeps the names in step with formats.py.
"""

from __future__ import annotations

import difflib
from typing import Annotated

from pydantic import AfterValidator

# the record fields formats.py reads (kto_tag: LLaMA-Factory's KTO mark; label: TRL's)
OUR_ROLES = ("instruction", "input", "output", "system", "history", "tools", "conversations", "text", "chosen",
             "rejected", "kto_tag", "label")
# LLaMA-Factory's dataset_info.json "columns" names that are not ours
LF_ROLES = ("prompt", "query", "response", "messages", "images", "videos", "audios")
ROLE_NAMES = OUR_ROLES + LF_ROLES


def roles_listed() -> str:
    """The valid role names, as a message lists them."""
    return f"{', '.join(OUR_ROLES)}, or LLaMA-Factory's {', '.join(LF_ROLES)}"


def closest_role(name: str) -> str | None:
    """The role a mistyped ``name`` most likely meant (difflib), or None when none is close."""
    match = difflib.get_close_matches(name.strip().lower(), ROLE_NAMES, n=1, cutoff=0.6)
    return match[0] if match else None


def role_problem(ours: str, theirs: str) -> str | None:
    """Why ``ours`` (the left side of one mapping, ``theirs`` its column) names no role, or None when it does.

    The text names the mapping as ``ours=theirs`` would be read in either place, a close role ("did you mean") or,
    where the two sides look swapped (the column is a role name), the mapping turned round."""
    if ours in ROLE_NAMES:
        return None
    close = closest_role(ours)
    if theirs in ROLE_NAMES and close is None:
        hint = f" (the two sides look swapped: the role comes first, '{theirs}={ours}')"
    else:
        hint = f" (did you mean '{close}'?)" if close else ""
    return f"'{ours}' (mapped to your column '{theirs}') is not a role ftwiz reads{hint}"


def corrected_mapping(ours: str, theirs: str) -> tuple[str, str]:
    """The (role, column) the user most likely meant by an unknown role ``ours``: the closest role, else the two
    sides turned round when the column is a role name, else an example role for the column."""
    close = closest_role(ours)
    if close:
        return close, theirs
    return (theirs, ours) if theirs in ROLE_NAMES else ("instruction", theirs)


def roles_sentence() -> str:
    """What follows the problems in a message: which side is which, and the valid roles."""
    return f"the left side names the role, the right side your column; the roles are {roles_listed()}"


def refuse_unknown_roles(columns: dict[str, str] | None) -> dict[str, str] | None:
    """Pydantic after-validator of a recipe's ``columns:``: ValueError naming every unknown role."""
    problems = [p for ours, theirs in (columns or {}).items() if (p := role_problem(ours, theirs))]
    if problems:
        raise ValueError("; ".join(problems) + "; " + roles_sentence())
    return columns


# the recipe's ``columns:`` type: a mapping of role -> the user's column, roles checked as the recipe is read
RoleMap = Annotated[dict[str, str], AfterValidator(refuse_unknown_roles)]
