"""Evaluation: held-out metrics, base vs fine-tuned side by side, HF vs GGUF parity, forgetting, review.

``evaluate(target, ...)`` is the entry point behind ``ftwiz eval`` and the wizard's evaluation step;
the metric functions live in :mod:`ftwiz.core.evaluate.metrics`. Heavy libraries (torch, transformers,
llama-cpp-python, matplotlib) are imported only when a model is actually evaluated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftwiz.core.evaluate.report import EvalReport
    from ftwiz.core.evaluate.runner import evaluate

__all__ = ["EvalReport", "evaluate"]


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from ftwiz.core.evaluate.runner import evaluate

        return evaluate
    if name == "EvalReport":
        from ftwiz.core.evaluate.report import EvalReport

        return EvalReport
    raise AttributeError(name)
