"""`ftwiz eval`'s summary names runs, files, notes and warnings with brackets as they are (rich read
'[v2]' as a style tag and dropped it)."""

from __future__ import annotations

import io

from ftwiz.core.cli.eval import _print_summary
from ftwiz.core.evaluate.report import EvalReport, GenerationSettings, ModelResult
from rich.console import Console


def test_brackets_in_the_evaluated_run_and_its_files_print_as_they_are() -> None:
    report = EvalReport(target="runs/chat [v2]", split="test", data_file="d.jsonl", n_samples=0,
                        generation=GenerationSettings(),
                        models=[ModelResult(label="tuned", engine="hf", path="m", loss=1.0, perplexity=2.7)],
                        samples=[], notes=["ROUGE-L left out [no references]"], warnings=["data [v2] is small"],
                        files={"report": "/evals/run [v2]/report.json"})
    out = io.StringIO()
    _print_summary(report, Console(file=out, width=200))
    shown = out.getvalue()
    for text in ("runs/chat [v2]", "ROUGE-L left out [no references]", "data [v2] is small",
                 "/evals/run [v2]/report.json"):
        assert text in shown, text
