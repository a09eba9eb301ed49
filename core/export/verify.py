"""Prove a GGUF computes what the Hugging Face model computes: the export's acceptance test.

A file that loads is not a file that works: a missing Q/K permutation, a wrong pre-tokenizer or a lost
chat template all load fine and then answer gibberish. So after export, the GGUF is loaded with
llama-cpp-python and compared with transformers on sample prompts:

- tokenization: token ids identical (raw prompts and chat-rendered ones); the reference is transformers, or
  for a hub folder whose tokenizer.json transformers rebuilds differently the file's own pipeline, as the
  GGUF follows it (core/export/verify_reference.py; an info check ``tokenizer_reference`` says so);
- logits: F32/F16/BF16 max |diff| relative to the logit range <= 1e-3 (2e-2 for BF16's 8-bit mantissa;
  2e-3 for GELU models such as Gemma, whose GELU llama.cpp's CPU backend reads from a float16 table, so
  even an F32 file differs by ~3e-4); Q8_0 cosine similarity >= 0.99 (0.95-0.99 reported, not failed:
  small models' 8-bit rounding noise, see ``REPORT_COSINE``); K-quants' cosine is reported;
- chat template: the GGUF's embedded template is the run's training template (its template of record)
  and renders a conversation exactly like training did; for thinking templates, a conversation with
  earlier ``<think>`` turns renders the same when served (no kwargs) as in training (the run's
  ``enable_thinking``);
- eos: the model's end-of-turn tokens are end-of-generation tokens for llama.cpp, and generation stops on one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path

from ftwiz.core.export.verify_report import Check, VerifyReport

DEFAULT_PROMPTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Hello world! What's 1234 + 5678? It's 6912.",
    "  Indented line\nwith a newline, tabs\tand unicode: café, naïve, 東京.",
)
SAMPLE_CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Name three colours."},
    {"role": "assistant", "content": "Red, green and blue."},
    {"role": "user", "content": "And two more?"},
]
# Earlier turns with thoughts: thinking templates drop or keep them, and serving must do as training did.
THINKING_CHAT = [
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "<think>\nTwo plus three is five.\n</think>\n\n5"},
    {"role": "user", "content": "And times 4?"},
]
THINKING_ANSWER = {"role": "assistant", "content": "<think>\nFive times four.\n</think>\n\n20"}
# Relative-to-range tolerance on logits per GGUF type (see module docstring).
RELATIVE_TOLERANCE = {"F32": 1e-3, "F16": 1e-3, "BF16": 2e-2}
GELU_TOLERANCE = 2e-3  # F32/F16 for architectures whose MLP uses GELU (ggml evaluates it from an F16 table)
GELU_ARCHITECTURES = ("gemma", "gemma2", "gemma3")
MIN_COSINE = {"Q8_0": 0.99}
# Below MIN_COSINE but above this, a Q8_0 file is reported, not failed: a correct Q8_0 file of a very small
# model (hidden size 64-256) measures 0.98-0.995, because llama.cpp also rounds the activations to 8 bits in
# every quantized matmul and small models average that noise over few terms. A conversion bug (a missing
# Q/K permutation, a wrong norm or rope setting) lands far lower; the F16 export is the exact check.
REPORT_COSINE = {"Q8_0": 0.95}


def gguf_quant(path: Path) -> str:
    """The dominant weight type of a GGUF (what general.file_type names), e.g. F16 or Q4_K_M. Read with
    gguf_info.read_metadata: gguf.GGUFReader takes 10-30 s to build a 151k-token vocabulary's fields."""
    import gguf
    from ftwiz.core.gguf_info import read_metadata

    ftype = read_metadata(Path(path)).get("general.file_type")
    if ftype is not None:
        ftype = int(ftype)
        with contextlib.suppress(ValueError):
            name = gguf.LlamaFileType(ftype).name
            return {"ALL_F32": "F32"}.get(name, name.replace("MOSTLY_", ""))
    return "unknown"


def _load_llama(gguf_path: Path, n_ctx: int):
    import llama_cpp
    from ftwiz.core import llama_logs

    llama_logs.install()

    return llama_cpp.Llama(model_path=str(gguf_path), n_ctx=n_ctx, logits_all=True, verbose=False,
                           n_threads=max(1, min(4, os.cpu_count() or 1)), seed=0, n_batch=n_ctx,
                           type_k=0, type_v=0)  # F32 KV cache: the default F16 cache alone costs ~1e-3


def _hf_ids(tokenizer, text: str, runtime_bos: bool = True) -> list[int]:
    """transformers' ids of ``text`` with its special tokens; without the BOS it adds when the GGUF asks the
    runtime for none (a run whose template writes no BOS trained without it: core/export/train_bos.py)."""
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    bos = tokenizer.bos_token_id
    if not runtime_bos and ids and bos is not None and ids[0] == bos and not text.startswith(tokenizer.bos_token):
        ids = ids[1:]
    return ids


def _gguf_ids(llm, text: str) -> list[int]:
    return list(llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))


def _served_lead(llm, tokenizer):
    """A function text -> the space a client sends in front of ``text`` so that llama.cpp tokenizes it as
    transformers does: " " for plain text when transformers puts '▁' only at the start of a text
    (prepend_scheme=first) and the GGUF adds none (add_space_prefix=false; core/export/space_prefix.py)."""

    from ftwiz.core.export.space_prefix import SPACE, opens_with_plain_text
    from ftwiz.core.export.vocab_spm_json import prepend_scheme

    backend = getattr(tokenizer, "backend_tokenizer", None)
    scheme = prepend_scheme(json.loads(backend.to_str())) if backend is not None else None
    if scheme != "first" or str(llm.metadata.get("tokenizer.ggml.add_space_prefix", "true")).lower() != "false":
        return lambda text: ""
    added = list(tokenizer.get_added_vocab())
    return lambda text: SPACE if opens_with_plain_text(text, added) else ""


def _tolerance(quant: str, architecture: str | None) -> float | None:
    limit = RELATIVE_TOLERANCE.get(quant)
    if limit is not None and architecture in GELU_ARCHITECTURES:
        return max(limit, GELU_TOLERANCE)
    return limit


def _compare_logits(hf_logits, gguf_logits, quant: str, architecture: str | None = None) -> Check:
    import numpy as np

    diff = float(np.max(np.abs(hf_logits - gguf_logits)))
    span = float(np.max(hf_logits) - np.min(hf_logits)) or 1.0
    rel = diff / span
    a = hf_logits.astype(np.float64)
    b = gguf_logits.astype(np.float64)
    cos = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-30)
    min_cos = float(np.min(cos))
    detail = f"max|diff| {diff:.3g} = {rel:.2e} of range {span:.3g}; min cosine {min_cos:.5f}"
    limit = _tolerance(quant, architecture)
    if limit is not None:
        return Check(name="logits", passed=rel <= limit, value=rel, detail=detail + f" (limit {limit:.0e} of range)")
    if quant in MIN_COSINE:
        if min_cos < MIN_COSINE[quant] and min_cos >= REPORT_COSINE[quant]:
            return Check(name="logits", passed=None, value=min_cos,
                         detail=detail + f" (below the usual {MIN_COSINE[quant]} for {quant}, above the failure "
                         f"limit {REPORT_COSINE[quant]}: rounding noise of a small model; export F16 with --verify "
                         "for the exact check)")
        return Check(name="logits", passed=min_cos >= MIN_COSINE[quant], value=min_cos,
                     detail=detail + f" (limit cosine >= {MIN_COSINE[quant]})")
    return Check(name="logits", passed=None, value=min_cos, detail=detail + " (reported for this quantization)")


def _gguf_render(template: str, tokenizer, messages: list[dict[str, str]], **kwargs) -> str:
    """What llama-cpp-python's chat handler sends for ``messages`` (the GGUF's template, no kwargs)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(template=template, eos_token=tokenizer.eos_token or "",
                                    bos_token=tokenizer.bos_token or "", add_generation_prompt=True)
    return formatter(messages=messages, **kwargs).prompt


def _chat_check(llm, tokenizer, training=None) -> tuple[Check, str | None]:
    """The GGUF's template is the training template (``training``: the run's TemplateOfRecord, else the
    HF tokenizer's own) and renders a conversation identically."""
    from ftwiz.core.chat_templates import own_template, render_chat, special_tokens_of, template_hash
    from ftwiz.core.export.bos_less import strip_mark
    from ftwiz.core.export.space_prefix import split_served

    template = llm.metadata.get("tokenizer.chat_template")
    prefix, unserved = split_served(template)  # a leading space standing for transformers' first '▁'
    unserved = strip_mark(unserved)  # bos_token set to '' for a tokenizer without BOS (bos_less.py)
    reference = training.template if training is not None else own_template(tokenizer)
    if not reference:
        return Check(name="chat_template", passed=None, detail="the HF tokenizer has no chat template"), None
    if not template:
        return Check(name="chat_template", passed=False,
                     detail="the GGUF has no tokenizer.chat_template: chat apps will use a wrong format"), None
    if training is not None and unserved != training.template:
        what = f"'{training.name}'" if training.name else f"the {training.source} template"
        return Check(name="chat_template", passed=False,
                     detail=f"the GGUF carries a different chat template (hash {template_hash(template)}) than "
                            f"training used ({what}, hash {training.hash}): chat, Ollama and llama.cpp would "
                            "prompt the model in a format it was not trained on; export the run again"), None
    chat = SAMPLE_CHAT
    try:
        expected = render_chat(reference, chat, add_generation_prompt=True, special_tokens=special_tokens_of(tokenizer))
    except Exception:  # noqa: BLE001 - a template without a system role (Gemma) raises for the system turn
        chat = SAMPLE_CHAT[1:]
        expected = render_chat(reference, chat, add_generation_prompt=True, special_tokens=special_tokens_of(tokenizer))
    rendered = _gguf_render(template, tokenizer, chat)
    if rendered != prefix + expected:
        return Check(name="chat_template", passed=False,
                     detail=f"renders differently: GGUF {rendered[:80]!r}... vs training {expected[:80]!r}..."), expected
    source = f" ('{training.name}', as trained)" if training is not None and training.name else \
        " (the training template)" if training is not None else ""
    source += " after the leading space that stands for transformers' first '\u2581'" if prefix else ""
    return Check(name="chat_template", passed=True, detail=f"renders a {len(chat)}-turn chat identically{source} "
                 f"({len(rendered)} chars)"), expected


def _thinking_check(llm, tokenizer, training) -> Check | None:
    """A conversation with earlier ``<think>`` turns renders the same at serving time (the GGUF's template
    as llama.cpp front ends call it, without kwargs) as in training (the run's ``enable_thinking``), and a
    thinking answer is trained as a continuation of that served prompt (``answer_mismatch``)."""
    from ftwiz.core.chat_templates import own_template, render_chat, special_tokens_of
    from ftwiz.core.data.reasoning import training_messages
    from ftwiz.core.data.template import render_with_spans
    from ftwiz.core.export.space_prefix import split_served

    reference = training.template if training is not None else own_template(tokenizer)
    template = llm.metadata.get("tokenizer.chat_template")
    prefix, _ = split_served(template)
    if not reference or not template or ("<think>" not in reference and "enable_thinking" not in reference):
        return None
    thinking = training.enable_thinking if training is not None else None
    kwargs = {} if thinking is None else {"enable_thinking": thinking}
    served = _gguf_render(template, tokenizer, THINKING_CHAT)[len(prefix):]
    prompt = render_chat(reference, THINKING_CHAT, add_generation_prompt=True,
                         special_tokens=special_tokens_of(tokenizer), enable_thinking=thinking)
    mismatches = []
    if served != prompt:
        mismatches.append("earlier <think> turns render differently when served: " + _first_difference(prompt, served))
    # the answer exactly as the data pipeline trains it (thoughts removed when thinking is off)
    messages, _removed = training_messages(THINKING_CHAT + [THINKING_ANSWER], reference, kwargs)
    text, spans = render_with_spans(tokenizer, reference, messages, mask_history=True, template_kwargs=kwargs)
    problem = answer_mismatch(text, spans, served)
    if problem:
        mismatches.append(problem)
    setting = {None: "the template's default", True: "enable_thinking true", False: "enable_thinking false"}[thinking]
    if mismatches:
        return Check(name="thinking", passed=False, detail="; ".join(mismatches) + f" ({setting}; export the run "
                     "again so the GGUF carries its template, and prepare the data again)")
    return Check(name="thinking", passed=True, detail=f"a chat with earlier <think> turns renders as in training "
                 f"and the answer is learned right after the served prompt ({setting})")


def answer_mismatch(text: str, spans: list[tuple[int, int]], served: str) -> str | None:
    """Why the last learned span of a training ``text`` is not what the model writes after the ``served``
    prompt, or None when the text before it is exactly the served prompt.

    Catches a thinking template trained with a thought under ``enable_thinking: false``: the served prompt
    ends with an empty ``<think>\n\n</think>\n\n`` block while training learned a thought."""
    start = spans[-1][0] if spans else len(text)
    if text[:start] == served:
        return None
    return ("the trained answer does not follow the served prompt: " + _first_difference(text[:start], served)
            + f"; training learns {text[start:start + 40]!r}")


def _first_difference(trained: str, served: str) -> str:
    cut = next((i for i, (a, b) in enumerate(zip(trained, served, strict=False)) if a != b),
               min(len(trained), len(served)))
    return (f"at char {cut}: training {trained[max(0, cut - 20):cut + 30]!r} vs serving "
            f"{served[max(0, cut - 20):cut + 30]!r}")


def _end_ids(hf_model_dir: Path, tokenizer) -> list[int]:

    ids: list[int] = []
    gen = hf_model_dir / "generation_config.json"
    if gen.is_file():
        value = json.loads(gen.read_text(encoding="utf-8")).get("eos_token_id")
        ids = value if isinstance(value, list) else [value] if value is not None else []
    if not ids and tokenizer.eos_token_id is not None:
        ids = [tokenizer.eos_token_id]
    return [int(i) for i in ids]


def _eos_check(llm, hf_model_dir: Path, tokenizer, prompt_ids: list[int]) -> Check:
    import llama_cpp

    end_ids = _end_ids(hf_model_dir, tokenizer)
    if not end_ids:
        return Check(name="eos", passed=False, detail="the HF model names no eos token")
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    not_eog = [i for i in end_ids if not llama_cpp.llama_vocab_is_eog(vocab, i)]
    if not_eog:
        names = [tokenizer.convert_ids_to_tokens(i) for i in not_eog]
        return Check(name="eos", passed=False, detail=f"{names} do not end generation in llama.cpp: answers "
                     "would run on forever")
    stop_id = end_ids[0]
    llm.reset()
    # token ids, not text: the HF ids already carry BOS, and llama.cpp would add a second one to text
    out = llm.create_completion(prompt_ids, max_tokens=8, temperature=0.0, logit_bias={stop_id: 100.0})
    choice = out["choices"][0]
    if choice["finish_reason"] != "stop" or out["usage"]["completion_tokens"] > 1:
        return Check(name="eos", passed=False, detail=f"generation did not stop on {tokenizer.convert_ids_to_tokens(stop_id)}"
                     f" (finish_reason {choice['finish_reason']})")
    names = ", ".join(tokenizer.convert_ids_to_tokens(i) for i in end_ids)
    return Check(name="eos", passed=True, detail=f"{names} end generation; a forced end token stopped it")


def verify_gguf(gguf_path: str | Path, hf_model_dir: str | Path, *, prompts: list[str] | None = None,
                training=None) -> VerifyReport:
    """Compare ``gguf_path`` (llama-cpp-python) against ``hf_model_dir`` (transformers) on CPU.

    ``training`` is the run's chat template of record (``chat_templates.TemplateOfRecord``); by default
    it is read from the run ``hf_model_dir`` belongs to, and the GGUF's template must be exactly it.
    """
    import numpy as np
    import torch
    import transformers
    from ftwiz.core.chat_templates import record_of_model_dir
    from ftwiz.core.export.verify_reference import reference_tokenizer

    gguf_path, hf_model_dir = Path(gguf_path), Path(hf_model_dir)
    training = training if training is not None else record_of_model_dir(hf_model_dir)
    quant = gguf_quant(gguf_path)
    report = VerifyReport(gguf_path=str(gguf_path), hf_model_dir=str(hf_model_dir), quant=quant)
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_model_dir)
    # a hub folder whose tokenizer.json pipeline transformers rebuilds differently: the file's (verify_reference)
    tokenizer, reference_check = reference_tokenizer(hf_model_dir, tokenizer, training)
    if reference_check is not None:
        report.checks.append(reference_check)
    model = transformers.AutoModelForCausalLM.from_pretrained(hf_model_dir, dtype=torch.float32)
    model.eval()
    texts = list(prompts or DEFAULT_PROMPTS)
    llm = _load_llama(gguf_path, n_ctx=256)
    try:
        chat_check, chat_text = _chat_check(llm, tokenizer, training)
        if chat_text:
            texts.append(chat_text)
        mismatches = []
        pairs = []
        runtime_bos = bool(llm.tokenize(b"", add_bos=True, special=True))  # the GGUF's add_bos_token
        lead = _served_lead(llm, tokenizer)
        for text in texts:
            hf, gg = _hf_ids(tokenizer, text, runtime_bos), _gguf_ids(llm, lead(text) + text)
            pairs.append(hf)
            if hf != gg:
                first = next((i for i, (x, y) in enumerate(zip(hf, gg, strict=False)) if x != y), min(len(hf), len(gg)))
                mismatches.append(f"{text[:30]!r}: first difference at token {first} (HF {hf[first:first + 3]}, "
                                  f"GGUF {gg[first:first + 3]})")
        report.checks.append(Check(name="tokenization", passed=not mismatches,
                                   detail="; ".join(mismatches) or f"{len(texts)} texts, identical token ids"
                                   + (" (reference: the folder's tokenizer.json pipeline)" if reference_check else "")
                                   + (" (plain text sent after a leading space, as the GGUF's chat template does: "
                                      "prepend_scheme=first)" if any(lead(t) for t in texts) else ""),
                                   value=float(len(mismatches))))
        hf_all, gg_all = [], []
        for ids in pairs:
            ids = ids[:256]
            with torch.no_grad():
                hf_all.append(model(torch.tensor([ids])).logits[0].float().numpy())
            llm.reset()
            llm.eval(ids)
            gg_all.append(np.array(llm.scores[: len(ids)], dtype=np.float32))
        architecture = llm.metadata.get("general.architecture")
        report.checks.append(_compare_logits(np.concatenate(hf_all), np.concatenate(gg_all), quant, architecture))
        report.checks.append(chat_check)
        thinking = _thinking_check(llm, tokenizer, training)
        if thinking is not None:
            report.checks.append(thinking)
        report.checks.append(_eos_check(llm, hf_model_dir, tokenizer, pairs[0][:128]))  # a plain prompt: one BOS
    finally:
        llm.close()  # free the C model now, not at interpreter exit (where llama.cpp may already be unloaded)
        del model
    if any(math.isnan(c.value) for c in report.checks if c.value is not None):
        report.checks.append(Check(name="finite", passed=False, detail="NaN in a measured value"))
    return report
