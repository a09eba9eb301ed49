"""The child-process runner on its own: events arrive in order, cancel is SIGINT, crashes are reported."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from ftwiz.tui.worker import ChildJob

from .conftest import fake_train_command


def _run(command: list[str], cancel_after_steps: int | None = None) -> tuple[list, list[str], int]:
    events: list = []
    lines: list[str] = []
    done = threading.Event()
    codes: list[int] = []
    job: ChildJob

    def on_event(event: object) -> None:
        events.append(event)
        if cancel_after_steps and sum(e.type == "step" for e in events) == cancel_after_steps:
            job.cancel()

    def on_exit(code: int) -> None:
        codes.append(code)
        done.set()

    job = ChildJob(command, on_event=on_event, on_line=lines.append, on_exit=on_exit)
    job.start()
    assert done.wait(60), "the child did not finish"
    return events, lines, codes[0]


def test_events_arrive_in_order_and_exit_comes_last(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: [demo]\n")
    events, _lines, code = _run(fake_train_command(steps=6, sleep=0.0)(recipe))
    kinds = [e.type for e in events]
    assert code == 0
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert [e.step for e in events if e.type == "step"] == [1, 2, 3, 4, 5, 6]
    assert events[-1].status == "completed"


def test_cancel_sends_sigint_and_the_child_saves_a_checkpoint(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: [demo]\n")
    events, _lines, code = _run(fake_train_command(steps=200, sleep=0.02)(recipe), cancel_after_steps=3)
    assert code == 130
    assert events[-1].type == "finished" and events[-1].status == "cancelled"
    checkpoint = next(e for e in events if e.type == "checkpoint")
    assert Path(checkpoint.path).is_dir()
    assert checkpoint.step < 200


def test_a_killed_child_reports_its_signal_and_stderr(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: demo\ndataset: [demo]\n")
    events, lines, code = _run(fake_train_command(steps=10, sleep=0.0, crash_at=3)(recipe))
    assert code == -9
    assert not any(e.type in ("finished", "failed") for e in events)
    assert any("simulated crash" in line for line in lines)


def test_non_event_stdout_lines_are_passed_on_not_dropped() -> None:
    code = "import json; print('hello'); print('{not json'); print(json.dumps({'type': 'message', 'text': 'hi'}))"
    events, lines, exit_code = _run([sys.executable, "-c", code])
    assert exit_code == 0
    assert [e.text for e in events] == ["hi"]
    assert lines == ["hello", "{not json"]


def test_the_export_child_reports_a_missing_run_as_failed_with_a_fix() -> None:
    from ftwiz.tui.app import default_export_command

    events, _lines, code = _run(default_export_command("no-such-run", "Q8_0"))
    assert code == 2
    assert [e.type for e in events] == ["failed"]
    assert "no-such-run" in events[0].reason and events[0].fix
