"""One reader each: config.json through core/model_config.py, adapter_config.json through core/adapter_config.py.

The source scan fails when a module parses either file itself (the way the vLLM export once read Gemma 3's
``text_config`` raw and sized the KV cache from a guessed head_dim); the behaviour tests check what a user
sees: the right numbers for Gemma 3, and the same clear error from every stage for a broken file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ftwiz.core.errors import FtwizError

CORE = Path(__file__).resolve().parents[2] / "core"
READERS = {"config.json": "model_config.py", "adapter_config.json": "adapter_config.py"}


def _parses(tree: ast.AST, file_name: str) -> list[int]:
    """Lines where json.load/json.loads parses ``file_name`` (named in the call, or via a variable named from it)."""
    def names_file(node: ast.AST, tainted: set[str]) -> bool:
        return any((isinstance(n, ast.Constant) and n.value == file_name) or (isinstance(n, ast.Name) and n.id in tainted)
                   for n in ast.walk(node))

    hits = []
    for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module))]:
        tainted: set[str] = set()
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and names_file(node.value, tainted):
                tainted |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(func):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("load", "loads")
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "json"
                    and names_file(node, tainted)):
                hits.append(node.lineno)
    return sorted(set(hits))


@pytest.mark.parametrize("file_name", sorted(READERS))
def test_only_its_reader_parses_the_file(file_name: str) -> None:
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        if path.relative_to(CORE).as_posix() == READERS[file_name]:
            continue
        offenders += [f"{path.relative_to(CORE)}:{line}" for line in _parses(ast.parse(path.read_text()), file_name)]
    assert not offenders, f"parse {file_name} through core/{READERS[file_name]}, not in {offenders}"


def test_the_scan_finds_a_raw_read() -> None:
    code = 'import json\ndef f(d):\n    p = d / "config.json"\n    return json.loads(p.read_text())\n'
    assert _parses(ast.parse(code), "config.json") == [4]


def test_vllm_sizes_gemma3_from_the_completed_text_config() -> None:
    """google/gemma-3-4b-it's text_config omits head_dim (256) and max_position_embeddings (131072):
    hidden // heads would say 320 and the KV cache would be sized 25% too big."""
    from ftwiz.core.scale.vllm import kv_bytes_per_token, max_context
    from transformers import AutoConfig

    text = {"hidden_size": 2560, "num_hidden_layers": 34, "num_attention_heads": 8, "num_key_value_heads": 4,
            "intermediate_size": 10240, "model_type": "gemma3_text"}
    config = {"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"], "text_config": text}
    oracle = AutoConfig.for_model(**text)
    assert kv_bytes_per_token(config) == 2 * 34 * 4 * oracle.head_dim * 2
    assert max_context(config) == oracle.max_position_embeddings


def _broken(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text('{"r": 8,\n "base_model_name_or_path": }', encoding="utf-8")
    return folder


def test_a_broken_adapter_config_is_the_same_error_in_merge_eval_and_vllm(tmp_path: Path) -> None:
    from ftwiz.core.evaluate.targets import _adapter_base
    from ftwiz.core.export.adapter import load_adapter
    from ftwiz.core.export.merge import resolve_adapter_and_base
    from ftwiz.core.scale.vllm import _lora_rank

    adapter = _broken(tmp_path / "adapter", "adapter_config.json")
    for read in (resolve_adapter_and_base, _adapter_base, _lora_rank, load_adapter):
        with pytest.raises(FtwizError) as info:
            read(adapter)
        assert "adapter_config.json is not valid JSON" in info.value.what, read.__name__
        assert info.value.where.line == 2 and Path(info.value.where.file) == adapter / "adapter_config.json"


def test_adapter_facts_as_peft_saved_them(tmp_path: Path) -> None:
    from ftwiz.core.adapter_config import (
        adapter_base_model,
        adapter_rank,
        is_adapter_dir,
        read_adapter_config,
    )

    assert not is_adapter_dir(tmp_path)
    with pytest.raises(FtwizError, match="not a LoRA adapter folder"):
        read_adapter_config(tmp_path)
    peft = pytest.importorskip("peft")
    peft.LoraConfig(r=32, lora_alpha=64, base_model_name_or_path="Qwen/Qwen2.5-0.5B").save_pretrained(str(tmp_path))
    assert is_adapter_dir(tmp_path)
    assert adapter_base_model(tmp_path) == "Qwen/Qwen2.5-0.5B" and adapter_rank(tmp_path) == 32
    assert read_adapter_config(tmp_path)["lora_alpha"] == 64


def test_a_broken_config_json_is_the_same_error_for_plan_export_and_vllm(tmp_path: Path) -> None:
    from ftwiz.core.export.arch import model_params
    from ftwiz.core.planner.spec import load_model_spec
    from ftwiz.core.scale.vllm import vllm_command

    model = _broken(tmp_path / "model", "config.json")
    (model / "model.safetensors").write_bytes(b"")
    for read in (load_model_spec, model_params, vllm_command):
        with pytest.raises(FtwizError) as info:
            read(model)
        assert "config.json is not valid JSON" in info.value.what, read.__name__
        assert info.value.where.line == 2


DATED = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
         "{% endif %}Today is {{ strftime_now('%d %b %Y') }}.{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}"
         "{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_eval_and_deploy_render_through_the_one_renderer(tiny_qwen2: Path) -> None:
    """The prompt eval scores and the one the Ollama TEMPLATE is proven against are both transformers' own."""
    from datetime import datetime

    from ftwiz.core.chat_templates import TemplateRaised
    from ftwiz.core.deploy.probes import Renderer as DeployRenderer
    from ftwiz.core.evaluate.prompts import renderer_for_tokenizer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2)
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "again"}]
    today = tokenizer.apply_chat_template(messages, chat_template=DATED, tokenize=False, add_generation_prompt=True)
    deploy = DeployRenderer(DATED, bos_token=tokenizer.bos_token, eos_token=tokenizer.eos_token, now=datetime.now())
    assert deploy.full(messages) == today
    assert renderer_for_tokenizer(tokenizer, template=DATED).render(messages, generation_prompt=True) == today
    other_day = DeployRenderer(DATED, tokenizer.bos_token, tokenizer.eos_token, now=datetime(2024, 7, 26)).full(messages)
    assert other_day == today.replace(datetime.now().strftime("%d %b %Y"), "26 Jul 2024")
    system = [{"role": "system", "content": "be brief"}, *messages]
    with pytest.raises(TemplateRaised, match="System role not supported"):
        deploy.full(system)
    # eval scores the prompt training built: the system text folded in front of the first user turn (Gemma's
    # convention, as LLaMA-Factory applies it), rendered by transformers itself
    folded = [{"role": "user", "content": "be brief\n\nhi"}, *messages[1:]]
    assert renderer_for_tokenizer(tokenizer, template=DATED).render(system, generation_prompt=True) == \
        tokenizer.apply_chat_template(folded, chat_template=DATED, tokenize=False, add_generation_prompt=True)
