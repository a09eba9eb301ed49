"""Local chat and deployment of exported GGUFs (issue 7).

- ``templates`` / ``gotemplate``: Jinja chat template -> Ollama Go TEMPLATE, proven equal by rendering both.
  ``templates`` is the entry point; ``chat_families``, ``probes`` and ``turn_layout`` hold its parts (the Jinja
  side is rendered by ``ftwiz.core.chat_templates.render``, the one renderer).
- ``gguf_info``: the GGUF metadata deployment needs (template, BOS, token types), read fast.
- ``modelfile``: the checked Modelfile (TEMPLATE, control-token stops, SYSTEM, num_ctx, LICENSE).
- ``ollama_register``: upload, create and smoke-test through Ollama's REST API; never half-registered.
- ``server``: llama-cpp-python's OpenAI-compatible server in a child process, bound to 127.0.0.1.
- ``chat``: ChatSession over a GGUF, an Ollama model or a run, with the slash commands CLI and wizard share.
- ``registry``: what ftwiz exported and where it is registered (``ftwiz models``).
"""
