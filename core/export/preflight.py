"""Can this model be exported to GGUF? Answered before training, from config and tokenizer files only.

Nobody should train for hours and then learn that the architecture, the tokenizer or the disk cannot
take the export. The planner and ``ftwiz train`` call :func:`check_exportable` on the base model;
``ftwiz export --check`` prints it. It reads only small JSON files and shard headers, so it is instant.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ftwiz.core.errors import FtwizError
from ftwiz.core.export.kquant import needs_f16_intermediate
from ftwiz.core.quant_types import BITS_PER_WEIGHT


@dataclass
class ExportCheck:
    """What the preflight found; ``ok`` is False when any problem blocks the export. A plain dataclass
    (``dataclasses.asdict`` for JSON): ``ftwiz export`` imports no pydantic (start-up time)."""

    model_dir: str
    ok: bool
    architecture: str | None = None
    gguf_architecture: str | None = None
    tokenizer: str | None = None
    parameters: int | None = None
    bytes_needed: dict[str, int] = field(default_factory=dict)  # merge, F16, <quant>, total
    disk_free: int | None = None
    problems: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)  # fixes[i] answers problems[i] ("" when none)


def _count_parameters(model_dir: Path) -> int:
    from ftwiz.core.export.tensors import list_tensors

    total = 0
    for ref in list_tensors(model_dir):
        n = 1
        for d in ref.shape:
            n *= d
        total += n
    return total


def _vocab_merges_tokenizer(path: Path) -> str:
    """Describe a GPT-2/Qwen2-style tokenizer given as vocab.json + merges.txt (no tokenizer.json).

    The export builds the fast tokenizer from these files as transformers does
    (:mod:`ftwiz.core.export.vocab_slow`), so the check is that it builds, is byte-level BPE, and has a
    pre-tokenizer the export knows. FtwizError otherwise (naming merges.txt when only vocab.json is there).
    """
    from ftwiz.core.export.vocab import detect_pre_tokenizer
    from ftwiz.core.export.vocab_slow import slow_bpe_tokenizer_json

    tokenizer_json = slow_bpe_tokenizer_json(path)
    return (f"byte-level BPE from vocab.json + merges.txt (pre-tokenizer {detect_pre_tokenizer(tokenizer_json)}; "
            "the export builds tokenizer.json from them as transformers does)")


def check_exportable(model_dir: str | Path, *, quants: list[str] | None = None, out_dir: str | Path | None = None,
                     needs_merge: bool = True) -> ExportCheck:
    """Architecture, tokenizer and disk space for merge + F16 + each quant, without raising."""
    from ftwiz.core.export.adapter_folder import refuse_adapter_folder
    from ftwiz.core.export.arch import model_params
    from ftwiz.core.export.vocab import detect_pre_tokenizer, read_tokenizer_json, tokenizer_kind
    from ftwiz.core.export.vocab_slow import has_slow_bpe_files
    from ftwiz.core.models import resolve_model

    quants = [q.upper() for q in (quants or ["Q4_K_M"])]
    check = ExportCheck(model_dir=str(model_dir), ok=True)

    def problem(error: FtwizError) -> None:
        check.ok = False
        check.problems.append(error.headline())
        check.fixes.append(error.fix or "")  # kept index-aligned with problems

    try:
        refuse_adapter_folder(model_dir)
        path = resolve_model(str(model_dir))
    except FtwizError as exc:
        problem(exc)
        return check
    check.model_dir = str(path)
    try:
        params = model_params(path)
        check.architecture, check.gguf_architecture = params.hf_arch, params.info.gguf_arch
    except FtwizError as exc:
        problem(exc)
    try:
        if has_slow_bpe_files(path):  # vocab.json (+ merges.txt), no tokenizer.json
            check.tokenizer = _vocab_merges_tokenizer(path)
        else:
            kind = tokenizer_kind(path)
            if kind == "bpe":
                pre = detect_pre_tokenizer(read_tokenizer_json(path))  # checked as the export reads it
                check.tokenizer = f"byte-level BPE (pre-tokenizer {pre})"
            else:
                check.tokenizer = "SentencePiece"
    except FtwizError as exc:
        problem(exc)
    for quant in quants:
        if quant not in BITS_PER_WEIGHT:
            problem(FtwizError(f"unknown quantization '{quant}'", fix=f"choose from {', '.join(BITS_PER_WEIGHT)}"))
    try:
        check.parameters = _count_parameters(path)
    except FtwizError as exc:
        problem(exc)
        return check
    if check.ok and check.gguf_architecture:  # every tensor placed as the export will (shard headers only)
        from ftwiz.core.export.placement import place_tensors

        try:
            place_tensors(path, params)
        except FtwizError as exc:
            problem(exc)
    n = check.parameters
    needed = {"merge": 2 * n if needs_merge else 0}
    if "F16" in quants or needs_f16_intermediate(quants):  # K-quants need no F16 when ggml writes them directly
        needed["F16"] = 2 * n
    for quant in quants:
        if quant in BITS_PER_WEIGHT and quant != "F16":
            needed[quant] = int(n * BITS_PER_WEIGHT[quant] / 8)
    needed["total"] = sum(needed.values())
    check.bytes_needed = needed
    target = Path(out_dir) if out_dir else Path.cwd()
    while not target.exists() and target != target.parent:
        target = target.parent
    check.disk_free = shutil.disk_usage(target).free
    if check.disk_free < needed["total"]:
        problem(FtwizError(f"export needs {needed['total'] / 2**30:.1f} GiB on disk, "
                           f"{check.disk_free / 2**30:.1f} GiB free at {target}",
                           fix="free disk space or export to another drive (--out)"))
    return check
