"""The whole pipeline on the embedded tiny model, offline, on CPU: what ``ftwiz demo`` walks through.

doctor -> plan -> data -> train -> base-vs-tuned answers -> merge + export (Q8_0) -> verify -> serve
through llama.cpp -> one chat turn over the OpenAI-compatible API. Each stage is the same core entry
point the CLI verbs and the wizard call; the demo only strings them together and reports.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from ftwiz.core.errors import FtwizError
from ftwiz.core.events import EventBus


@dataclass
class DemoResult:
    run_dir: Path
    gguf: Path
    effect: dict[str, Any]
    verify_passed: bool
    server_reply: str
    timings: dict[str, float] = field(default_factory=dict)


def demo_recipe_path() -> Path:
    return Path(str(resources.files("ftwiz.recipes") / "demo.yaml"))


def heldout_path() -> Path:
    return Path(str(resources.files("ftwiz.recipes") / "demo" / "heldout.jsonl"))


def chat_once(base_url: str, model: str, prompt: str, headers: dict[str, str], max_tokens: int = 32) -> dict:
    """One OpenAI-style chat completion over HTTP (what any client of the served model would send)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                       "temperature": 0}).encode()
    request = urllib.request.Request(f"{base_url}/chat/completions", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def run_demo(*, events: EventBus | None = None, say=print, run_name: str | None = None, max_steps: int | None = None,
             serve: bool = True) -> DemoResult:
    from ftwiz.core.export.pipeline import export_model
    from ftwiz.core.hardware.detect import detect
    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.tiny import ensure_demo_base_model
    from ftwiz.core.train.effect import read_heldout, style_effect
    from ftwiz.core.train.runner import train

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 1)
        clock = now

    say("[1/7] doctor: checking this machine")
    report = detect(probe_backends=True)
    say(f"      training device: {report.device}; {report.cpu_cores} CPU cores; "
        f"{report.ram_available_bytes / 2**30:.1f} GiB RAM free")
    for problem in report.problems:
        if problem.severity == "error":
            say(f"      note: {problem.what} (fix: {problem.fix})")
    lap("doctor")

    say("[2/7] model: the embedded tiny chat model (built offline on first use, then cached)")

    def built(step) -> None:  # a progress bar with an estimate: the first build takes 30 s to minutes
        if events is not None:
            from ftwiz.core.events import Progress

            left = f" (about {step.eta_s:.0f} s left)" if step.eta_s else ""
            events.emit(Progress(stage="base model", done=step.done, total=step.total, message=step.message + left))

    base_dir = ensure_demo_base_model(progress=lambda text: say(f"      {text}"), on_progress=built)
    lap("base model")

    recipe = load_recipe(demo_recipe_path())
    name = run_name or f"demo-{datetime.now():%Y%m%d-%H%M%S}"
    recipe = recipe.model_copy(update={"run_name": name, **({"max_steps": max_steps} if max_steps else {})})
    say(f"[3/7] plan + data + train: {recipe.finetuning_type} on the demo dataset (run '{name}')")
    result = train(recipe, events=events, hardware=report)
    if result.status != "completed":
        raise FtwizError(f"demo training ended as {result.status}", fix=f"resume with ftwiz train --resume {name}")
    plan = json.loads((result.run_dir / "plan.json").read_text())
    say(f"      plan: {plan['method']}, micro-batch {plan['micro_batch']} x {plan['grad_accum']}, "
        f"max length {plan['max_seq_len']}, {plan['dtype']}, peak estimate "
        f"{plan['estimate']['peak_bytes'] / 2**20:.0f} MiB")
    summary = result.summary
    say(f"      eval loss {summary['eval_loss_first']:.3f} -> {summary['eval_loss_last']:.3f} "
        f"in {summary['steps']} steps ({summary['seconds']:.0f} s)")
    lap("train")

    say("[4/7] effect: base vs fine-tuned answers to held-out prompts")
    effect = style_effect(base_dir, result.output_path, read_heldout(heldout_path()))
    write_json(result.run_dir / "eval" / "demo_effect.json", effect)
    say(f"      ROUGE-L against the references: base {effect['base_rouge_l']:.2f} -> tuned "
        f"{effect['tuned_rouge_l']:.2f}")
    sample = effect["samples"][0]
    say(f"      prompt: {sample['prompt']}\n      base:   {sample['base']!r}\n      tuned:  {sample['tuned']!r}")
    lap("effect")

    say("[5/7] merge + export to GGUF (Q8_0) with our converter, then verify against transformers")
    exported = export_model(str(result.run_dir), ["Q8_0"], verify=True, events=events)
    gguf = Path(exported.gguf_paths[0])
    verify = exported.reports[0]
    say(f"      {gguf} ({gguf.stat().st_size / 2**20:.1f} MiB): verification "
        f"{'passed' if verify.passed else 'FAILED'}")
    lap("export")
    if not verify.passed:
        raise FtwizError(f"the exported GGUF failed verification: see {gguf}.verify.json",
                         fix="report this with the verify file attached")

    reply = ""
    if serve:
        from ftwiz.core.deploy.server import start_server

        say("[6/7] serve: llama.cpp OpenAI-compatible server on 127.0.0.1")
        with start_server(gguf, n_ctx=512) as server:
            say(f"      {server.base_url} serving '{server.model_alias}'")
            answer = chat_once(server.base_url, server.model_alias, sample["prompt"], server.headers())
            reply = answer["choices"][0]["message"]["content"].strip()
            say(f"[7/7] chat: {sample['prompt']!r} -> {reply!r} (finish: {answer['choices'][0]['finish_reason']})")
        lap("serve + chat")
    return DemoResult(result.run_dir, gguf, effect, verify.passed, reply, timings)


def write_json(path: Path, data: Any) -> Path:
    from ftwiz.core.atomic import write_text_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False))
