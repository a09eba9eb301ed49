"""The two ways ftwiz runs a model for evaluation: transformers (with or without a LoRA adapter) and GGUF.

Both backends expose the same four token-level operations (tokenize, detokenize, greedy continuation,
negative log-likelihood of a token range); prompts are rendered to text by the chat template *before*
tokenizing, and everything above this module (answers, losses, perplexities) is computed from those
operations in one place. That is what makes the HF-vs-GGUF comparison meaningful: the only thing that
differs between the two columns of a report is the engine, so a difference points at the export.

Greedy decoding is a hand-written argmax loop on both engines rather than each library's sampler, so
"greedy" means the same thing on both sides and there is no sampler setting to drift.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ftwiz.core.errors import FtwizError, Location

# End-of-turn tokens of the chat families ftwiz supports; those present in a vocabulary stop generation.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<|eom_id|>",
                      "<end_of_turn>", "<|end|>", "</s>")


class Engine(Protocol):
    """What the evaluator needs from a loaded model."""

    kind: str
    path: str
    n_vocab: int

    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, ids: Sequence[int]) -> str: ...

    def greedy(self, prompt_ids: Sequence[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]: ...

    def nll(self, ids: Sequence[int], start: int) -> tuple[float, int]: ...

    def token_text(self, token_id: int) -> str: ...

    def token_id(self, text: str) -> int | None: ...

    @property
    def context_length(self) -> int: ...


@dataclass
class HFEngine:
    """A transformers model; ``adapter_off`` runs a PEFT model with its adapter disabled (the base)."""

    model: Any
    tokenizer: Any
    path: str
    kind: str = "hf"
    adapter_off: bool = False
    n_vocab: int = field(init=False)

    def __post_init__(self) -> None:
        self.n_vocab = int(self.model.get_input_embeddings().weight.shape[0])

    @contextlib.contextmanager
    def _mode(self) -> Iterator[None]:
        import torch

        with torch.inference_mode():
            if self.adapter_off:
                with self.model.disable_adapter():
                    yield
            else:
                yield

    @property
    def context_length(self) -> int:
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", None) or 2048)

    def tokenize(self, text: str) -> list[int]:
        # The chat template already wrote BOS where the model wants it, so the tokenizer must add nothing.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def token_text(self, token_id: int) -> str:
        return str(self.tokenizer.convert_ids_to_tokens(int(token_id)))

    def token_id(self, text: str) -> int | None:
        vocab = self.tokenizer.get_vocab()
        return vocab.get(text)

    def greedy(self, prompt_ids: Sequence[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]:
        import torch

        out: list[int] = []
        with self._mode():
            ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=self.model.device)
            result = self.model(input_ids=ids, use_cache=True)
            # transformers 5.x names the KV cache `cache`; 4.x called it `past_key_values`.
            cache_key = "cache" if "cache" in result else "past_key_values"
            for _ in range(max_new_tokens):
                token = int(torch.argmax(result.logits[0, -1]).item())
                if token in stop_ids:
                    break
                out.append(token)
                step = torch.tensor([[token]], dtype=torch.long, device=self.model.device)
                result = self.model(input_ids=step, use_cache=True, **{cache_key: result[cache_key]})
        return out

    def nll(self, ids: Sequence[int], start: int) -> tuple[float, int]:
        import torch

        if len(ids) <= max(start, 1):
            return 0.0, 0
        start = max(start, 1)
        with self._mode():
            tensor = torch.tensor([list(ids)], dtype=torch.long, device=self.model.device)
            logits = self.model(input_ids=tensor).logits[0].float()
            logprobs = torch.log_softmax(logits[start - 1 : len(ids) - 1], dim=-1)
            targets = tensor[0, start:]
            picked = logprobs.gather(1, targets.unsqueeze(1)).squeeze(1)
        return float(-picked.sum().item()), int(targets.numel())


@dataclass
class GGUFEngine:
    """A GGUF file run by llama-cpp-python on the CPU, with logits kept for every position (for the loss)."""

    llm: Any
    path: str
    kind: str = "gguf"
    n_vocab: int = field(init=False)

    def __post_init__(self) -> None:
        self.n_vocab = int(self.llm.n_vocab())

    @property
    def context_length(self) -> int:
        return int(self.llm.n_ctx())

    def tokenize(self, text: str) -> list[int]:
        # special=True: the rendered template contains control tokens (<|im_start|>...) that must map to
        # their ids, exactly as the HF tokenizer does; add_bos=False because the template wrote BOS.
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.llm.detokenize(list(ids)).decode("utf-8", errors="replace")

    def token_text(self, token_id: int) -> str:
        return self.llm.detokenize([int(token_id)], special=True).decode("utf-8", errors="replace")

    def token_id(self, text: str) -> int | None:
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return int(ids[0]) if len(ids) == 1 else None

    def _eval(self, ids: Sequence[int]) -> None:
        if len(ids) > self.context_length:
            raise FtwizError(f"a sample is {len(ids)} tokens, more than the {self.context_length}-token context "
                             f"this GGUF was opened with", where=Location(file=self.path),
                             fix="lower --max-new-tokens or evaluate shorter samples")
        self.llm.reset()
        self.llm.eval(list(ids))

    def greedy(self, prompt_ids: Sequence[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]:
        import numpy as np

        out: list[int] = []
        self._eval(prompt_ids)
        for _ in range(max_new_tokens):
            token = int(np.argmax(self.llm.scores[self.llm.n_tokens - 1]))
            if token in stop_ids or self.llm.n_tokens >= self.context_length:
                break
            out.append(token)
            self.llm.eval([token])
        return out

    def nll(self, ids: Sequence[int], start: int) -> tuple[float, int]:
        import numpy as np

        if len(ids) <= max(start, 1):
            return 0.0, 0
        start = max(start, 1)
        self._eval(ids)
        logits = np.asarray(self.llm.scores[start - 1 : len(ids) - 1], dtype=np.float64)
        peak = logits.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
        targets = np.asarray(ids[start:], dtype=np.int64)
        picked = logits[np.arange(len(targets)), targets] - log_norm
        return float(-picked.sum()), int(len(targets))


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise FtwizError(f"could not load a tokenizer from {path}: {exc}", where=Location(file=path),
                         fix="point at a folder with tokenizer.json / tokenizer_config.json") from None


def load_hf_model(path: Path) -> Any:
    """A causal LM in float32 on CPU (bf16 on CUDA), safetensors only, no remote code."""
    import torch
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, use_safetensors=True,
                                                     trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise FtwizError(f"could not load the model in {path}: {exc}", where=Location(file=path),
                         fix="give a Hugging Face model folder with config.json and *.safetensors") from None
    return model.to(device).eval()


def attach_adapter(model: Any, adapter_dir: Path) -> Any:
    """Wrap ``model`` with the LoRA adapter; a shape mismatch means the adapter was trained on another base."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False).eval()
    except RuntimeError as exc:
        if "size mismatch" in str(exc):
            raise FtwizError("the adapter does not fit this base model (weight shapes differ)",
                             where=Location(file=adapter_dir),
                             fix="pass the base model the adapter was trained on with --base") from None
        raise


def check_tokenizer_fits(tokenizer: Any, n_vocab: int, *, tokenizer_path: Path | str, model_path: Path | str) -> None:
    """A tokenizer with ids beyond the embedding table belongs to another model: say so before indexing errors."""
    if len(tokenizer) > n_vocab:
        raise FtwizError(
            f"the tokenizer has {len(tokenizer)} tokens but the model in {model_path} has only {n_vocab} "
            "embeddings: they belong to different models",
            where=Location(file=tokenizer_path),
            fix="evaluate the model with its own tokenizer (the one saved beside it when it was trained)",
        )


def cpu_threads() -> int | None:
    """Threads for llama.cpp: ``OMP_NUM_THREADS`` when set (the knob torch already obeys), else its default.

    On a shared or oversubscribed CPU, llama.cpp's spinning batch threads can make prompt processing
    a hundred times slower than one thread; honouring the usual variable lets users (and CI) say so once.
    """
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def load_gguf(path: Path, *, n_ctx: int = 2048) -> GGUFEngine:
    """Open a GGUF with llama-cpp-python on the CPU with logits for every position (needed for the loss)."""
    if not path.is_file():
        raise FtwizError(f"{path} does not exist", fix="give the path of a .gguf file (see `ftwiz export`)")
    from ftwiz.core.gguf_info import read_gguf_info

    read_gguf_info(path)  # not a GGUF, or cut off: said as such, not as llama.cpp's "Failed to load model"
    try:
        from llama_cpp import Llama
    except ImportError:
        raise FtwizError("llama-cpp-python is not installed, so GGUF files cannot be evaluated",
                         fix="pip install llama-cpp-python") from None
    from ftwiz.core import llama_logs

    llama_logs.install()
    threads = cpu_threads()
    try:
        llm = Llama(model_path=str(path), n_ctx=n_ctx, logits_all=True, n_gpu_layers=0, seed=0, verbose=False,
                    n_threads=threads, n_threads_batch=threads)
    except (ValueError, RuntimeError) as exc:
        raise FtwizError(f"llama.cpp could not load {path}: {exc}", where=Location(file=path),
                         fix="re-export it with `ftwiz export`, or check it is a complete GGUF file") from None
    return GGUFEngine(llm=llm, path=str(path))


def stop_token_ids(engine: Engine, extra: Sequence[str | None] = ()) -> dict[int, str]:
    """The ids that end an answer: the template's end-of-turn tokens present in this vocabulary, plus EOS."""
    stops: dict[int, str] = {}
    for text in (*extra, *END_OF_TURN_TOKENS):
        if not text:
            continue
        token = engine.token_id(text)
        if token is not None and token not in stops:
            stops[token] = text
    return stops
