"""A base whose end token is <|endoftext|>, fine-tuned on ChatML: every runtime must stop at <|im_end|>.

vLLM adds each ``eos_token_id`` of the generation config it loads to a request's stop tokens
(SamplingParams.update_from_generation_config), so the exported folder must list the template's end-of-turn
token there and the serve command must load that folder's generation config.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.deploy.stops import generation_config_eos, template_end_strings
from ftwiz.core.scale.vllm import export_for_vllm, missing_stops, vllm_command


@pytest.fixture(scope="module")
def chatml_on_endoftext_base(tiny_qwen2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen2 with a base model's end token (<|endoftext|>) and the ChatML template it was tuned on."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("chatml-base") / "model"
    shutil.copytree(tiny_qwen2, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.eos_token = "<|endoftext|>"
    tok.save_pretrained(folder)
    end = tok.convert_tokens_to_ids("<|endoftext|>")
    for name in ("generation_config.json", "config.json"):
        path = folder / name
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        config["eos_token_id"] = end
        path.write_text(json.dumps(config), encoding="utf-8")
    return folder


def test_vllm_export_stops_at_im_end(chatml_on_endoftext_base: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(chatml_on_endoftext_base)
    im_end, endoftext = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert generation_config_eos(chatml_on_endoftext_base) == [endoftext]  # the bug: vLLM would not stop
    assert missing_stops(chatml_on_endoftext_base) == {im_end: "<|im_end|>"}

    out = export_for_vllm(chatml_on_endoftext_base, tmp_path / "serve")
    eos = GenerationConfig.from_pretrained(out).eos_token_id
    assert im_end in eos and endoftext in eos
    assert missing_stops(out) == {}
    command = vllm_command(out)
    assert command[command.index("--generation-config") + 1] == str(out)
    assert '--generation-config "$here"' in (out / "vllm-serve.sh").read_text(encoding="utf-8")
    assert "`<|im_end|>`" in (out / "README.md").read_text(encoding="utf-8")


def test_template_end_strings_come_from_the_template_not_the_eos(tiny_qwen2: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen2)
    ends = template_end_strings(tok.chat_template, eos_token="<|endoftext|>")
    assert ends[0] == "<|im_end|>" and "<|endoftext|>" in ends
    alpaca = ("{% for m in messages %}{% if m['role'] == 'user' %}{{ '### Instruction:\\n' + m['content'] + '\\n\\n' }}"
              "{% else %}{{ '### Response:\\n' + m['content'] + eos_token + '\\n\\n' }}{% endif %}{% endfor %}"
              "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}")
    assert template_end_strings(alpaca, eos_token="</s>")[0] == "</s>"
