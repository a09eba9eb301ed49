"""Layering of ftwiz.core and ftwiz.tui, read from the sources with ``ast`` (imports inside functions count too).

The rules (DESIGN.md, Layering): ``core`` never imports the wizard (``ftwiz.tui``) or Textual; ``core/cli``
is the top of core, so no other core module imports it; and a stage never imports a stage above it in
``LEVELS``. An import inside a function is still a dependency: it only moves the failure to run time.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lowest first; a module may import its own level and the levels below it.
LEVELS: list[set[str]] = [
    {"errors", "atomic", "diskspace", "pause", "paths", "events", "versions", "interrupted", "rate", "llama_logs",
     "build_reports", "quant_types", "column_roles"},
    {"model_config", "adapter_config", "chat_templates", "recipe", "recipe_values", "tiny", "models", "run_card",
     "rundir", "gguf_info", "registry", "model_files", "trained_context"},
    {"hardware"},
    {"planner"},
    {"hub"},
    {"data", "recipe_inputs", "step_plan"},
    {"train"},
    {"export"},
    {"deploy"},
    {"evaluate"},
    {"scale"},
    {"demo"},
    {"cli"},
]
# Modules that sit at another stage's level than their folder's, and why.
PLACED: dict[str, str] = {
    # runs real training steps in a child process; planner.probe starts it with `python -m`, never imports it
    "ftwiz.core.planner.probe_child": "train",
    # the demo's before/after comparison: generates with base and tuned and scores with eval's ROUGE-L
    "ftwiz.core.train.effect": "evaluate",
}
# train asks, before training, whether its result could become a GGUF. The export preflight answers from the
# base model's files only (config.json -> GGUF architecture, tokenizer kind, safetensors shapes), so it and
# the export modules it imports (transitively: tensor reading brings ggml's dtype kernels) sit with the other
# file readers, below train; the modules that merge, write, quantize or verify GGUFs must never be among them.
PREFLIGHT = "ftwiz.core.export.preflight"
CONVERTER = {f"ftwiz.core.export.{m}" for m in ("convert", "gguf_data", "quantize", "pipeline", "merge", "verify",
                                                "lora_gguf", "adapter", "export_step")}

# Known imports of a higher stage, each to be moved down; the test fails when one disappears, so the list
# only shrinks. Empty now: every stage imports only its own level and the levels below.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["ftwiz", *parts])


@functools.cache
def import_graph() -> dict[str, set[tuple[str, int]]]:
    """module -> {(imported module or module.name, line)} for every .py under core/ and tui/."""
    graph: dict[str, set[tuple[str, int]]] = {}
    for top in ("core", "tui"):
        for path in sorted((ROOT / top).rglob("*.py")):
            name = _module_name(path)
            package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            edges = graph.setdefault(name, set())
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.Import):
                    edges |= {(alias.name, node.lineno) for alias in node.names}
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                    edges |= {(f"{base}.{alias.name}", node.lineno) for alias in node.names}
    return graph


def _target_module(target: str, graph: dict[str, set[tuple[str, int]]]) -> str:
    """``ftwiz.core.x.y.name`` -> the longest prefix that is a module of ours."""
    parts = target.split(".")
    for end in range(len(parts), 1, -1):
        if ".".join(parts[:end]) in graph:
            return ".".join(parts[:end])
    return target


@functools.cache
def preflight_readers() -> frozenset[str]:
    """The export preflight and every ``core.export`` module it imports, transitively."""
    graph, found, todo = import_graph(), set(), [PREFLIGHT]
    while todo:
        module = todo.pop()
        if module in found or module not in graph:
            continue
        found.add(module)
        todo += [t for t in (_target_module(t, graph) for t, _ in graph[module]) if t.startswith("ftwiz.core.export.")]
    return frozenset(found)


def _stage(module: str) -> str | None:
    if module in PLACED:
        return PLACED[module]
    if module in preflight_readers():
        return "model_files"
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["ftwiz", "core"] else None


def _level(stage: str) -> int:
    """The stage's index in LEVELS (-1 when unplaced: test_every_core_module_has_a_level names it)."""
    return next((i for i, level in enumerate(LEVELS) if stage in level), -1)


def _core_modules() -> list[str]:
    return [m for m in import_graph() if m.startswith("ftwiz.core")]


def test_every_core_module_has_a_level() -> None:
    unplaced = sorted({_stage(m) for m in _core_modules() if _stage(m)} - set().union(*LEVELS))
    assert not unplaced, f"add {unplaced} to LEVELS here and to the table in DESIGN.md"


def test_core_never_imports_the_wizard_or_textual() -> None:
    bad = [f"{m}:{line} imports {t}" for m in _core_modules() for t, line in import_graph()[m]
           if t.split(".")[0] in ("textual", "textual_plotext") or t.startswith("ftwiz.tui")]
    assert not bad, bad


def test_only_the_cli_imports_the_cli() -> None:
    bad = [f"{m}:{line} imports {t}" for m in _core_modules() if not m.startswith("ftwiz.core.cli")
           for t, line in import_graph()[m] if t.startswith("ftwiz.core.cli")]
    assert not bad, "move what they need below core/cli: " + "; ".join(bad)


def _upward_imports() -> dict[tuple[str, str], int]:
    graph = import_graph()
    found: dict[tuple[str, str], int] = {}
    for module in _core_modules():
        for target, line in graph[module]:
            if not target.startswith("ftwiz.core."):
                continue
            target_module = _target_module(target, graph)
            src, dst = _stage(module), _stage(target_module)
            if src and dst and _level(src) >= 0 and _level(dst) > _level(src):
                found.setdefault((module, target_module), line)
    return found


def test_no_stage_imports_a_higher_one() -> None:
    new = {f"{m}:{line} imports {t} ({_stage(t)} is above {_stage(m)})"
           for (m, t), line in _upward_imports().items() if (m, t) not in KNOWN_UPWARD}
    assert not new, sorted(new)


def test_the_export_preflight_reads_files_without_the_converter() -> None:
    """train imports the preflight: pulling the converter in with it would be train importing export."""
    assert PREFLIGHT in preflight_readers() and "ftwiz.core.export.arch" in preflight_readers()
    assert not preflight_readers() & CONVERTER, sorted(preflight_readers() & CONVERTER)


def test_known_upward_imports_are_still_there() -> None:
    gone = set(KNOWN_UPWARD) - set(_upward_imports())
    assert not gone, f"fixed: remove {sorted(gone)} from KNOWN_UPWARD"


@pytest.mark.parametrize("source, expected", [
    ("from ftwiz.core.cli.console import console", "ftwiz.core.cli.console.console"),
    ("from ..cli import console", "ftwiz.core.cli.console"),
])
def test_the_graph_sees_absolute_relative_and_lazy_imports(tmp_path: Path, source: str, expected: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fake_root = tmp_path
    (fake_root / "core" / "evaluate").mkdir(parents=True)
    (fake_root / "tui").mkdir()
    (fake_root / "core" / "evaluate" / "review.py").write_text(f"def review():\n    {source}\n", encoding="utf-8")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", fake_root)
    import_graph.cache_clear()
    preflight_readers.cache_clear()
    try:
        assert (expected, 2) in import_graph()["ftwiz.core.evaluate.review"]
    finally:
        import_graph.cache_clear()
        preflight_readers.cache_clear()


def test_every_package_ships_in_the_wheel() -> None:
    """A new package folder missing from pyproject's list imports in a checkout but not after `pip install`."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    packages = {_module_name(p) for top in ("core", "tui") for p in (ROOT / top).rglob("__init__.py")}
    assert packages - listed == set()


def test_chat_templates_come_from_chat_templates_not_the_tiny_model_builder() -> None:
    bad = [f"{m}:{line} imports {t}" for m in import_graph() if not m.startswith("ftwiz.core.tiny")
           for t, line in import_graph()[m]
           if t.startswith("ftwiz.core.tiny") and (".tokenizer" in t or t.endswith("_TEMPLATE"))]
    assert not bad, "import templates from ftwiz.core.chat_templates: " + "; ".join(bad)


def test_core_outside_the_cli_returns_data_and_never_imports_rich() -> None:
    """Rendering is the CLI's (rich) and the wizard's (Textual + rich) job; core hands them data."""
    bad = [f"{m}:{line} imports {t}" for m in _core_modules() if not m.startswith("ftwiz.core.cli")
           for t, line in import_graph()[m] if t.split(".")[0] == "rich"]
    assert not bad, "return segments/lines from core and render them in core/cli and tui: " + "; ".join(bad)


# the `ftwiz` console script: the wizard with no verb, the CLI with one (it parses `ftwiz wizard`'s arguments)
LAUNCHER = "ftwiz.tui.launcher"


def test_the_wizard_never_imports_the_cli() -> None:
    """The wizard and the CLI are two renderings of the same core calls; neither borrows the other's."""
    bad = [f"{m}:{line} imports {t}" for m in import_graph() if m.startswith("ftwiz.tui") and m != LAUNCHER
           for t, line in import_graph()[m] if t.startswith("ftwiz.core.cli")]
    assert not bad, "move what they share below core/cli: " + "; ".join(bad)


def test_the_wizard_lists_no_quantization_types_of_its_own() -> None:
    """The choices it offers come from core/quant_types.py, the one table of GGUF types."""
    from ftwiz.core.quant_types import QUANT_TYPES

    bad = []
    for path in sorted((ROOT / "tui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                named = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in QUANT_TYPES]
                if len(named) >= 2:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} {named}")
    assert not bad, "take the list from ftwiz.core.quant_types (COMMON_QUANTS, QUANT_NAMES): " + "; ".join(bad)
