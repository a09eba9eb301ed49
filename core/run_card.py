"""``run_card.json`` as a typed record: what a run was trained from (see :mod:`ftwiz.core.rundir`).

Its own module because pydantic costs half a second to import on a busy machine and ``rundir`` is on
the wizard's first screen (the resume offer lists runs); ``RunDir.card()`` imports this on first use.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class RunCard(BaseModel):
    """``run_card.json``: what a run was trained from, written once by training.

    Every field has a default so that cards written by older versions still read; unknown keys are kept
    (``extra="allow"``) so a newer card read by an older reader loses nothing when written back.
    """

    model_config = ConfigDict(extra="allow")

    run_name: str | None = None
    created: str | None = None
    base_model: str | None = None          # absolute path of the base model folder on the training machine
    base_model_name: str | None = None     # what the recipe named (hub id, folder or 'demo')
    base_model_revision: str | None = None  # hub commit when known
    method: str | None = None              # lora | qlora | full
    dataset_hash: str | None = None
    template_hash: str | None = None
    chat_template: str | None = None       # the template of record: what training rendered the data with
    template_source: str | None = None     # model | named | file | inline (see ftwiz.core.chat_templates)
    template_name: str | None = None       # the LLaMA-Factory name or file it came from
    enable_thinking: bool | None = None    # the recipe's setting, the template's default when it reads it
    fingerprint: dict[str, Any] = {}
    versions: dict[str, Any] = {}
    data_stats: dict[str, Any] = {}
