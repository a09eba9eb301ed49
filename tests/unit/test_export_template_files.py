"""The GGUF's chat template is the one transformers renders with (and training used): a chat_template.jinja
file, or additional_chat_templates/*.jinja, wins over tokenizer_config.json's ``chat_template``, as
transformers 5 loads them. gguf-py (and llama.cpp's converter) let tokenizer_config.json win, so a folder
holding both (a hub repo that shipped a fixed template as a file) was exported with the old template.

Oracle: ``AutoTokenizer.from_pretrained(folder).chat_template``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

OLD = "OLD{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
TOOLS = "TOOLS{% for m in messages %}{{ m['content'] }}{% endfor %}"


def _templates(gguf_path: Path) -> dict[str, str]:
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path))
    return {name: bytes(field.parts[field.data[0]]).decode("utf-8") for name, field in reader.fields.items()
            if name.startswith("tokenizer.chat_template") and name != "tokenizer.chat_templates"}  # (names list)


def _export(folder: Path, out: Path) -> dict[str, str]:
    from ftwiz.core.cli import main

    assert main(["export", str(folder), "--quant", "F16", "--out", str(out)]) == 0
    return _templates(out)


def test_template_files_win_over_tokenizer_config(tiny_qwen2: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    folder = shutil.copytree(tiny_qwen2, tmp_path / "model")
    real = AutoTokenizer.from_pretrained(tiny_qwen2).chat_template
    (folder / "chat_template.jinja").write_text(real, encoding="utf-8")
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": OLD}), encoding="utf-8")
    assert AutoTokenizer.from_pretrained(folder).chat_template == real  # what training renders with
    assert _export(folder, tmp_path / "one.gguf") == {"tokenizer.chat_template": real}

    (folder / "additional_chat_templates").mkdir()
    (folder / "additional_chat_templates" / "tool_use.jinja").write_text(TOOLS, encoding="utf-8")
    assert AutoTokenizer.from_pretrained(folder).chat_template == {"default": real, "tool_use": TOOLS}
    assert _export(folder, tmp_path / "named.gguf") == {"tokenizer.chat_template": real,
                                                        "tokenizer.chat_template.tool_use": TOOLS}
