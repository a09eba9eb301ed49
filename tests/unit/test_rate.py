"""Tokens/s and ETA on the train screen and in the CLI come from one smoothed window (issue 17.6)."""

from __future__ import annotations

from dataclasses import replace

from ftwiz.core.events import Step
from ftwiz.core.rate import RateWindow


def _steps(durations: list[float], tokens_per_step: int = 1000, total: int = 160) -> list[Step]:
    """Step events whose intervals jitter the way a real run's do (an eval or a checkpoint in between)."""
    events, now, seen = [], 1_000.0, 0
    for step, seconds in enumerate(durations, start=1):
        now += seconds
        seen += tokens_per_step
        events.append(Step(step=step, total_steps=total, epoch=0.0, loss=1.0, lr=1e-4, time=now, tokens_seen=seen,
                           tokens_per_s=tokens_per_step / seconds))
    return events


def test_rate_does_not_jump_and_eta_follows_from_it() -> None:
    durations = [0.2, 3.0] * 20  # instantaneous rates alternate 5,000 and 333 tok/s
    window = RateWindow(window_s=10.0)
    shown = []
    for event in _steps(durations):
        window.add(event)
        if window.tokens_per_s is not None:
            shown.append(window.tokens_per_s)
            eta = window.eta_s(event.step, event.total_steps)
            # the ETA is the steps left at the very rate shown: both numbers tell one story
            assert abs(eta - (event.total_steps - event.step) * 1000 / window.tokens_per_s) < 1e-6
    assert len(shown) > 30
    settled = shown[5:]
    assert max(settled) / min(settled) < 1.5  # instantaneous values differ 15x
    true_rate = 1000 / 1.6  # 1,000 tokens per 1.6 s on average
    assert all(abs(rate - true_rate) / true_rate < 0.15 for rate in settled)


def test_until_measured_the_screen_says_so_and_a_resume_starts_afresh() -> None:
    from ftwiz.tui.screens.train import step_line

    window = RateWindow()
    events = _steps([1.0] * 5)
    window.add(events[0])
    assert "ETA measuring..." in str(step_line(events[0], window))
    assert "tok/s" not in str(step_line(events[0], window))
    for event in events[1:]:
        window.add(event)
    line = str(step_line(events[-1], window))
    assert "1,000 tok/s" in line and "ETA 2:35" in line  # 155 steps left at 1 step/s
    window.add(events[0])  # the step counter went back (a resumed run): measure again
    assert window.tokens_per_s is None


def test_chart_ticks_are_whole_steps() -> None:
    from ftwiz.tui.widgets.loss_chart import step_ticks

    assert step_ticks(1, 17) == [1, 5, 9, 13, 17]
    assert all(isinstance(t, int) for t in step_ticks(3, 160))
    assert step_ticks(5, 5) == [5]


def test_a_resumed_runs_summary_covers_the_steps_before_the_resume(tmp_path) -> None:
    from ftwiz.core.events import JsonlSink
    from ftwiz.core.train.runner import _Recorder

    path = tmp_path / "events.jsonl"
    sink = JsonlSink(path)
    for event in _steps([1.0] * 12):
        sink(replace(event, loss=5.0 - event.step * 0.1))
    sink.close()
    recorder = _Recorder()
    recorder.preload(path)
    for event in _steps([1.0] * 20)[10:]:  # resumed from checkpoint-10: steps 11.. again
        recorder(replace(event, loss=1.0))
    steps = [s.step for s in recorder.steps]
    assert steps == list(range(1, 21))
    assert recorder.steps[0].loss == 4.9 and recorder.steps[-1].loss == 1.0
