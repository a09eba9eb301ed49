"""The chat templates of the model families ftwiz's tiny models imitate, as the real models publish them.

Qwen2/SmolLM (ChatML: every message, system included, as an ``<|im_start|>`` block), Llama-3 (BOS, role
headers, ``<|eot_id|>``, contents trimmed) and Gemma (BOS, ``<start_of_turn>``, "model" for the
assistant). The tiny tokenizers in ``ftwiz.core.tiny`` carry these as their *own* templates, so tests meet
what users' models carry; recipes name templates from :mod:`ftwiz.core.chat_templates.named` instead.
"""

from __future__ import annotations

CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
LLAMA3_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}"
)

# Gemma's turn layout (a fact of the published template): no system role, "model" for the assistant.
GEMMA_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{- '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}"
)
