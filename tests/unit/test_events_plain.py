"""Events are plain dataclasses: every command starts without pydantic, and the JSON lines are unchanged.

The writer side (``to_json``, ``JsonlSink``) is checked against pydantic's own serializer of the same
dataclasses (the oracle for "the same lines as before"); the reader side (``parse_event``, ``read_events``)
still validates with pydantic.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ftwiz.core.events import (
    EVENT_TYPES,
    BackOff,
    CheckpointSaved,
    Eval,
    Failed,
    Finished,
    JsonlSink,
    Message,
    Progress,
    Started,
    Step,
    event_schema,
    parse_event,
    read_events,
)


def _one_of_each() -> list:
    return [
        Started(run_dir="runs/demo", method="lora", total_steps=40, resumed_from_step=10, device="cuda", time=1.5),
        Step(step=3, total_steps=40, epoch=0.25, loss=2.5, lr=2e-4, grad_norm=0.75, tokens_per_s=1234.5,
             tokens_seen=4096, rss_bytes=123_456_789, rewards_margins=0.5, time=2.0),
        Eval(step=10, loss=1.75, perplexity=math.exp(1.75), rewards_accuracy=0.625),
        CheckpointSaved(step=10, path="runs/demo/checkpoints/checkpoint-10"),
        BackOff(step=10, reason="CUDA out of memory", old_micro_batch=4, new_micro_batch=2, new_grad_accum=8),
        Progress(stage="export", done=2.0, total=4.0, message="quantizing"),
        Message(level="warning", text="packing: true is ignored — für DPO"),
        Finished(output_path="runs/demo/export/demo-F16.gguf", summary={"steps": 40, "checks": [{"passed": None}]}),
        Failed(reason="out of memory even at micro-batch 1", fix="use QLoRA", step=7),
    ]


def test_importing_and_writing_events_does_not_import_pydantic(tmp_path: Path) -> None:
    # every CLI command imports the events; pydantic's import and model building cost ~0.2 s of start-up
    code = (
        "import sys\n"
        "from ftwiz.core.events import EventBus, JsonlSink, Progress, Finished\n"
        f"sink = JsonlSink({str(tmp_path / 'events.jsonl')!r})\n"
        "bus = EventBus([sink])\n"
        "bus.emit(Progress(stage='export', done=1, total=2))\n"
        "bus.emit(Finished(output_path='x.gguf'))\n"
        "sink.close()\n"
        "print(sorted(m for m in sys.modules if m == 'pydantic' or m.startswith('pydantic.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout
    assert len((tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()) == 2


def test_json_lines_are_what_pydantic_writes_for_the_same_event() -> None:
    from pydantic import TypeAdapter

    events = _one_of_each()
    assert sorted(e.type for e in events) == sorted(EVENT_TYPES)  # every kind of event is covered
    for event in events:
        assert event.to_json() == TypeAdapter(type(event)).dump_json(event).decode("utf-8")


def test_every_event_survives_the_round_trip() -> None:
    for event in _one_of_each():
        back = parse_event(event.to_json())
        assert back == event and type(back) is type(event)


def test_numpy_numbers_from_a_trainer_serialise_as_plain_json_numbers() -> None:
    loss = np.float32(2.3)
    event = Step(step=np.int64(5), total_steps=40, epoch=np.float64(0.5), loss=loss, lr=1e-4, time=3.0,
                 tokens_seen=np.int64(640))
    line = event.to_json()
    raw = json.loads(line)
    assert raw["loss"] == float(loss) and raw["step"] == 5 and raw["tokens_seen"] == 640
    back = parse_event(line)
    assert back == Step(step=5, total_steps=40, epoch=0.5, loss=float(loss), lr=1e-4, time=3.0, tokens_seen=640)
    assert type(back.loss) is float and type(back.step) is int


def test_a_diverged_loss_is_written_as_valid_json(tmp_path: Path) -> None:
    from pydantic import TypeAdapter

    event = Step(step=1, total_steps=2, epoch=0.0, loss=float("nan"), lr=1e-4, grad_norm=float("inf"), time=1.0)

    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} is not JSON; a reader in another language would fail")

    line = event.to_json()
    json.loads(line, parse_constant=no_constants)
    assert line == TypeAdapter(Step).dump_json(event).decode("utf-8")  # null, as pydantic wrote it


def test_an_unknown_key_or_type_is_rejected() -> None:
    good = json.loads(Message(text="hi", time=1.0).to_json())
    assert parse_event(good) == Message(text="hi", time=1.0)
    with pytest.raises(ValueError, match="surprise"):
        parse_event({**good, "surprise": 1})
    with pytest.raises(ValueError):
        parse_event({**good, "type": "telemetry"})
    with pytest.raises(ValueError):
        parse_event({**good, "level": "debug"})
    with pytest.raises(ValueError):
        parse_event('{"type": "message", "text": "torn')


def test_read_events_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "run" / "events.jsonl"
    sink = JsonlSink(path)
    written = _one_of_each()[:3]
    for event in written:
        sink(event)
    sink.close()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(Progress(stage="export", done=1, total=4).to_json()[:25])  # the writer was killed mid-line
    assert list(read_events(path)) == written


def test_the_schema_for_other_languages_keeps_descriptions_and_forbids_unknown_keys() -> None:
    schema = event_schema()
    assert schema["discriminator"]["propertyName"] == "type"
    assert set(schema["discriminator"]["mapping"]) == set(EVENT_TYPES)
    step = schema["$defs"]["Step"]
    assert step["additionalProperties"] is False
    assert step["properties"]["tokens_seen"]["description"] == "Non-padding tokens trained on so far"
    assert "time" in step["properties"] and "time" not in step["required"]
    assert {"step", "total_steps", "epoch", "loss", "lr"} <= set(step["required"])
