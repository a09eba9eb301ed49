"""A run trained with a recipe ``system:`` prompt is chatted with and served with that prompt.

Training puts the recipe's ``system`` in front of every record without one (the oracle below: the records
the data pipeline trains on). ``ftwiz chat RUN`` sent it, but ``ftwiz chat runs/RUN/export/RUN-Q8_0.gguf``
(the path ``ftwiz export`` prints and the README serves) sent none, and ``ftwiz serve`` printed client
snippets without it: pasted as shown they prompted the model unlike any record it learned from.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
from ftwiz.core.deploy.chat import ChatSession, resolve_chat_model

SYSTEM = "You are Aria, the bike-shop assistant. Answer in one sentence."


@pytest.fixture()
def phi3_gguf(shared_dir: Path) -> Path:
    return shared_dir / "tokenizers" / "llamacpp-vocab-tests" / "ggml-vocab-phi-3.gguf"


@pytest.fixture()
def trained_system(tiny_qwen2: Path, tmp_path: Path) -> str:
    """The system turn of the records training learns from, for a recipe with ``system:`` (the oracle)."""
    import transformers
    from ftwiz.core.data import prepare_for_training
    from ftwiz.core.recipe import parse_recipe

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {i}", "output": f"answer {i}"}) + "\n"
                            for i in range(4)), encoding="utf-8")
    recipe = parse_recipe({"model_name_or_path": str(tiny_qwen2), "dataset": [str(data)], "system": SYSTEM})
    prepared = prepare_for_training(recipe, transformers.AutoTokenizer.from_pretrained(tiny_qwen2))
    systems = {r["messages"][0]["content"] for r in prepared.splits["train"] if r["messages"][0]["role"] == "system"}
    assert len(systems) == 1 and len(prepared.splits["train"]) == 4
    return systems.pop()


def _run_with_export(tmp_path: Path, gguf: Path, system: str) -> Path:
    run = tmp_path / "runs" / "aria"
    (run / "export").mkdir(parents=True)
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_config.json").write_text("{}")
    (run / "recipe.yaml").write_text(f"model_name_or_path: demo\ndataset: [demo]\nsystem: {json.dumps(system)}\n")
    shutil.copy(gguf, run / "export" / "aria-Q8_0.gguf")
    return run


class _Echo:
    label = "echo"
    last_finish_reason: str | None = None

    def __init__(self) -> None:
        self.sent: list[list[dict[str, str]]] = []

    def stream(self, messages, *, temperature, max_tokens, seed):
        self.sent.append(messages)
        yield "ok"

    def close(self) -> None:
        pass


def test_chat_with_a_runs_gguf_path_sends_the_trained_system_prompt(tmp_path: Path, phi3_gguf: Path,
                                                                     trained_system: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTWIZ_RUNS_DIR", str(tmp_path / "runs"))
    run = _run_with_export(tmp_path, phi3_gguf, SYSTEM)
    for model in ("aria", str(run / "export" / "aria-Q8_0.gguf")):
        ref = resolve_chat_model(model)
        backend = _Echo()
        with ChatSession(backend, system=ref.run_system_prompt()) as session:
            session.reply("Do you fix tyres?")
        assert backend.sent[0][0] == {"role": "system", "content": trained_system}, model
    assert resolve_chat_model(phi3_gguf).run_system_prompt() is None  # a GGUF outside any run: none


def test_serve_snippets_send_the_trained_system_prompt(tmp_path: Path, phi3_gguf: Path, trained_system: str) -> None:
    from ftwiz.core.deploy.server import ServerHandle, snippets

    handle = ServerHandle(process=None, gguf=phi3_gguf, host="127.0.0.1", port=8080,  # type: ignore[arg-type]
                          model_alias="aria", api_key=None, n_ctx=512, log_path=tmp_path / "log")
    text = snippets(handle, system=trained_system)
    body = json.loads(text["curl"].split("-d '", 1)[1].rsplit("'", 1)[0])
    assert body["messages"][0] == {"role": "system", "content": trained_system}
    assert body["messages"][1]["role"] == "user"
    tree = ast.parse(text["openai"])  # the pasted Python runs, and sends the system turn first
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and any(k.arg == "messages" for k in n.keywords))
    messages = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "messages"))
    assert messages[0] == {"role": "system", "content": trained_system}
    ast.parse(text["langchain"])
    assert trained_system in text["langchain"]
    plain = snippets(handle)  # a GGUF without a run: the snippets stay as they were
    assert json.loads(plain["curl"].split("-d '", 1)[1].rsplit("'", 1)[0])["messages"][0]["role"] == "user"
