"""Serve a fine-tune with vLLM: the command sized for the model and GPU, and a self-contained merged folder.

    from ftwiz.core.scale.vllm import export_for_vllm, vllm_command
    out = export_for_vllm("my-run", "serve/my-run")     # merged 16-bit HF folder + vllm-serve.sh + README.md
    print(" ".join(vllm_command(out, gpu_memory_gb=24)))

Why vLLM besides llama.cpp: GGUF on llama.cpp is the right answer for one user on a laptop; a team or an
app with many concurrent requests wants vLLM's batching on a GPU, which loads the Hugging Face folder
directly. Two ways to serve a LoRA run: merge it (one model, fastest), or keep the base and hand vLLM the
adapter with ``--enable-lora`` (several adapters can share one base). ``--max-lora-rank`` must be at
least the adapter's rank or vLLM refuses it, so it is read from the adapter. ``--max-model-len`` comes
from the config and is lowered when the KV cache for one full-length sequence would not fit next to the
weights; vLLM otherwise stops at start-up with a KV-cache error a hobbyist cannot act on. vLLM is not a
dependency of ftwiz (it pins its own torch): the command is for the machine that has it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from ftwiz.core.adapter_config import adapter_rank, is_adapter_dir
from ftwiz.core.errors import FtwizError, Location
from ftwiz.core.model_config import language_config, read_config

GIB = 2**30
# vLLM's default share of the GPU; the rest stays free for the CUDA context, other processes and the desktop.
DEFAULT_UTILIZATION = 0.90
# Activations, CUDA graphs and the sampler's buffers beside weights and KV cache (vLLM's profiling run
# typically finds 1-2 GiB for small and mid-size models).
RUNTIME_OVERHEAD_BYTES = int(1.5 * GIB)
VALID_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
MIN_MODEL_LEN = 256


@dataclass
class ServeSource:
    """What vLLM loads: a model folder, and optionally a LoRA adapter on top of it."""

    model_dir: Path
    adapter_dir: Path | None
    name: str


def _resolve(model_dir_or_run: str | Path, adapter_dir: str | Path | None) -> ServeSource:
    from ftwiz.core.rundir import RunDir, RunFolderIncomplete

    path = Path(model_dir_or_run)
    if (path / "config.json").is_file():
        return ServeSource(path.resolve(), Path(adapter_dir).resolve() if adapter_dir else None, path.name)
    try:
        run = RunDir.resolve(model_dir_or_run)
    except RunFolderIncomplete:
        raise
    except FtwizError:
        from ftwiz.core.models import resolve_model

        model = resolve_model(str(model_dir_or_run))
        return ServeSource(model, Path(adapter_dir).resolve() if adapter_dir else None, model.name)
    for folder in (run.merged, run.model):
        if (folder / "config.json").is_file():
            return ServeSource(folder.resolve(), Path(adapter_dir).resolve() if adapter_dir else None, run.name)
    if not is_adapter_dir(run.adapter):
        raise FtwizError(f"run '{run.name}' has no model or adapter yet", where=Location(file=run.root),
                         fix="wait for training to finish (ftwiz train --resume RUN)")
    base = run.read_json(run.run_card).get("base_model")
    if not base or not (Path(base) / "config.json").is_file():
        raise FtwizError(f"the base model of run '{run.name}' is not at {base}", where=Location(file=run.run_card,
                         field="base_model"), fix="merge it first: ftwiz merge RUN --base MODEL_DIR")
    return ServeSource(Path(base).resolve(), Path(adapter_dir or run.adapter).resolve(), run.name)


def _text_config(config: dict) -> dict:
    # Gemma 3's text_config is a diff against transformers' defaults (no head_dim, no max_position_embeddings
    # in google/gemma-3-4b-it): read raw, the KV cache and the context would be sized from guesses.
    return language_config(config)


def max_context(config: dict) -> int | None:
    """The longest sequence the model was built for (max_position_embeddings and friends)."""
    text = _text_config(config)
    for key in ("max_position_embeddings", "max_sequence_length", "seq_length", "n_positions"):
        if isinstance(text.get(key), int) and text[key] > 0:
            return int(text[key])
    return None


def kv_bytes_per_token(config: dict, dtype_bytes: int = 2) -> int:
    """K and V for every layer, in the model's 16-bit dtype (vLLM's default KV cache dtype)."""
    text = _text_config(config)
    layers = int(text["num_hidden_layers"])
    heads = int(text["num_attention_heads"])
    kv_heads = int(text.get("num_key_value_heads") or heads)
    head_dim = int(text.get("head_dim") or text["hidden_size"] // heads)
    return 2 * layers * kv_heads * head_dim * dtype_bytes


def weight_bytes(model_dir: Path) -> int:
    return sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))


def _dtype(config: dict) -> str:
    dtype = str(_text_config(config).get("dtype") or config.get("torch_dtype") or "auto")
    return {"bfloat16": "bfloat16", "float16": "float16"}.get(dtype, "auto")


def _lora_rank(adapter_dir: Path) -> int:
    rank = adapter_rank(adapter_dir, default=16)
    return next((r for r in VALID_LORA_RANKS if r >= rank), rank)


def vllm_command(model_dir_or_run: str | Path, *, gpu_memory_gb: float | None = None,
                 adapter_dir: str | Path | None = None, port: int = 8000) -> list[str]:
    """``vllm serve MODEL ...`` on 127.0.0.1, with the context length and GPU share sized to fit."""
    source = _resolve(model_dir_or_run, adapter_dir)
    config = read_config(source.model_dir)
    context = max_context(config) or 4096
    utilization = DEFAULT_UTILIZATION
    if gpu_memory_gb is not None:
        budget = gpu_memory_gb * GIB * utilization
        free_for_kv = budget - weight_bytes(source.model_dir) - RUNTIME_OVERHEAD_BYTES
        per_token = kv_bytes_per_token(config)
        if free_for_kv < MIN_MODEL_LEN * per_token:
            need = (weight_bytes(source.model_dir) + RUNTIME_OVERHEAD_BYTES) / GIB / utilization
            raise FtwizError(f"{source.name} does not fit a {gpu_memory_gb:g} GB GPU in 16 bit (needs about "
                             f"{need:.1f} GB with a minimal KV cache)", where="gpu_memory_gb",
                             fix="export a GGUF and serve it with llama.cpp (ftwiz export, ftwiz serve), "
                                 "or use a bigger GPU")
        # room for one full-length sequence; shorter requests batch into the rest
        context = min(context, int(free_for_kv // per_token))
    cmd = ["vllm", "serve", str(source.model_dir), "--served-model-name", source.name,
           "--host", "127.0.0.1", "--port", str(port), "--max-model-len", str(context),
           "--gpu-memory-utilization", f"{utilization:.2f}", "--dtype", _dtype(config),
           # the folder's generation_config.json: vLLM adds every eos_token_id in it to each request's stop
           # tokens (SamplingParams.update_from_generation_config), so a list stops on end-of-turn markers too
           "--generation-config", str(source.model_dir)]
    if source.adapter_dir is not None:
        cmd += ["--enable-lora", "--lora-modules", f"{source.name}-lora={source.adapter_dir}",
                "--max-lora-rank", str(_lora_rank(source.adapter_dir))]
    return cmd


def _serve_script(name: str, command: list[str]) -> str:
    # The folder moves with the user (another disk, another machine): the script finds the model beside it.
    args = [shlex.quote(a) for a in command[3:]]
    if "--generation-config" in command:  # the generation config beside the script, too
        args[command.index("--generation-config") - 2] = '"$here"'

    return "\n".join([
        "#!/usr/bin/env bash",
        f"# Serve {name} with vLLM's OpenAI-compatible server (written by ftwiz). Needs: pip install vllm",
        "# Extra arguments are passed to vllm serve, e.g. --port 9000 or --tensor-parallel-size 2.",
        "set -euo pipefail",
        'here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        f'exec vllm serve "$here" {" ".join(args)} "$@"',
        "",
    ])


def run_first_messages(run_or_model: str | Path, template: str | None = None) -> tuple[str | None, list[dict]]:
    """(the run's recipe ``system`` prompt or None, the first request's messages: that prompt first, or folded
    where ``template`` has no system role, as training placed it; then "Hello"). vLLM adds no system prompt."""
    from ftwiz.core.chat_templates import record_of_run
    from ftwiz.core.deploy.server import first_messages
    from ftwiz.core.recipe import load_recipe
    from ftwiz.core.rundir import RunDir

    system = None
    if not (Path(run_or_model) / "config.json").is_file():
        try:
            run = RunDir.resolve(run_or_model)
        except FtwizError:  # a model folder or hub name: no recipe, no system prompt of record
            run = None
        if run is not None:
            system = load_recipe(run.recipe).system
            record = record_of_run(run.root) if template is None else None
            template = record.template if record is not None else template
    return system, first_messages(system, template, hello="Hello")


def _readme(name: str, command: list[str], messages: list[dict] | None = None) -> str:
    body = json.dumps({"model": name, "messages": messages or [{"role": "user", "content": "Hello"}]})
    return f"""# {name} for vLLM

A merged 16-bit Hugging Face model (safetensors, tokenizer, chat template) written by ftwiz.

Serve it on this machine (127.0.0.1:8000, OpenAI-compatible):

    ./vllm-serve.sh                      # = {" ".join(shlex.quote(a) for a in command)}

Ask it:

    curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
      -d {shlex.quote(body)}

`--max-model-len` is the model's context length; lower it if vLLM reports that the KV cache does not fit,
or raise `--gpu-memory-utilization` on a GPU nothing else uses. To listen on the network, add
`--host 0.0.0.0 --api-key KEY` (never without a key).
"""


def _carry_training_template(source: ServeSource, model_dir: Path) -> None:
    """vLLM applies the folder's chat template: make it the run's training template (its template of record)."""
    from ftwiz.core.chat_templates import record_of_model_dir, write_template_files

    record = record_of_model_dir(source.adapter_dir or source.model_dir)
    if record is not None:
        write_template_files(model_dir, record.template)


def export_for_vllm(run_or_model: str | Path, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """A folder vLLM serves as is: the run merged into 16-bit weights, plus vllm-serve.sh and README.md."""
    from ftwiz.core.atomic import atomic_dir
    from ftwiz.core.chat_templates import record_of_model_dir
    from ftwiz.core.export.merge import merge_adapter

    source = _resolve(run_or_model, None)
    out = Path(out_dir)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        model_dir = tmp / "model"
        if source.adapter_dir is not None:
            merge_adapter(source.adapter_dir, model_dir, base_dir=source.model_dir)
        else:
            shutil.copytree(source.model_dir, model_dir)
        _carry_training_template(source, model_dir)
        for item in model_dir.iterdir():
            os.replace(item, tmp / item.name)
        model_dir.rmdir()
        stops = write_stop_tokens(tmp)
        command = vllm_command(tmp)
        command[2] = str(out.resolve())
        command[command.index("--generation-config") + 1] = str(out.resolve())
        command[command.index("--served-model-name") + 1] = source.name
        script = tmp / "vllm-serve.sh"
        script.write_text(_serve_script(source.name, command), encoding="utf-8")
        script.chmod(0o755)
        record = record_of_model_dir(tmp)
        _system, messages = run_first_messages(run_or_model, record.template if record else None)
        (tmp / "README.md").write_text(_readme(source.name, command, messages) + _stops_note(stops),
                                       encoding="utf-8")
    return out


def _tokenizer_dir(model_dir: Path, adapter_dir: Path | None) -> Path:
    """Where the chat template the model was trained with lives: the adapter's tokenizer, else the model's."""
    if adapter_dir is not None and any((adapter_dir / f).is_file() for f in ("tokenizer_config.json", "tokenizer.json")):
        return adapter_dir
    return model_dir


def stop_token_ids(model_dir: Path, adapter_dir: Path | None = None) -> dict[int, str]:
    """Every token that must end an answer: generation_config.json's eos_token_id (int or list), the
    tokenizer's EOS and the chat template's end-of-turn markers (see ftwiz.core.deploy.stops), id -> text."""
    from ftwiz.core.deploy.stops import model_stop_ids
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(_tokenizer_dir(model_dir, adapter_dir))
    return {i: str(tokenizer.convert_ids_to_tokens(i)) for i in model_stop_ids(model_dir, tokenizer)}


def write_stop_tokens(model_dir: Path) -> dict[int, str]:
    """Write every stop id into the folder's generation_config.json ``eos_token_id`` (a list), keeping its
    other fields; returns them. vLLM stops on each (and transformers' generate() does too)."""
    from ftwiz.core.atomic import write_text_atomic

    stops = stop_token_ids(model_dir)
    path = model_dir / "generation_config.json"
    config: dict = {}
    if path.is_file():
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise FtwizError(f"{path} is not valid JSON: {exc}", where=Location(file=path),
                             fix="restore generation_config.json from the base model") from None
    config["eos_token_id"] = list(stops) if len(stops) != 1 else next(iter(stops))
    write_text_atomic(path, json.dumps(config, indent=2) + "\n", overwrite=True)
    return stops


def _stops_note(stops: dict[int, str]) -> str:
    names = ", ".join(f"`{text}` ({i})" for i, text in stops.items())
    return (f"\nAnswers end on {names}: `generation_config.json` lists them as `eos_token_id`, and vLLM stops on "
            "every one (`--generation-config` points at this folder).\n")


def missing_stops(model_dir_or_run: str | Path, adapter_dir: str | Path | None = None) -> dict[int, str]:
    """Stop tokens the folder vLLM would load does not declare (empty when it declares them all)."""
    from ftwiz.core.deploy.stops import generation_config_eos

    source = _resolve(model_dir_or_run, adapter_dir)
    declared = set(generation_config_eos(source.model_dir))
    return {i: t for i, t in stop_token_ids(source.model_dir, source.adapter_dir).items() if i not in declared}
