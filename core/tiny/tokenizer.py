"""Byte-level BPE tokenizers trained offline on the corpus shipped with ftwiz.

Two families mirror what users bring: ChatML (Qwen, SmolLM: ``<|im_start|>``/``<|im_end|>``, no BOS)
and Llama-3 (``<|begin_of_text|>`` added by the post-processor, ``<|eot_id|>`` ends a turn). The
pre-tokenizer regexes are the real ones of Qwen2 and Llama-3, so the GGUF exporter's regex-based
pre-tokenizer detection and llama.cpp's tokenizer see the same thing they see on real models.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from ftwiz.core.chat_templates.families import CHATML_TEMPLATE, GEMMA_TEMPLATE, LLAMA3_TEMPLATE

ChatFamily = Literal["chatml", "llama3", "gemma"]

# Split patterns of the real models (facts, not code): Qwen2 splits digits one by one, Llama-3 by 1-3.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@dataclass(frozen=True)
class FamilySpec:
    specials: tuple[str, ...]
    bos: str | None
    eos: str
    pad: str
    split: str
    template: str
    end_of_turn: tuple[str, ...]


FAMILIES: dict[str, FamilySpec] = {
    "chatml": FamilySpec(
        specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        bos=None, eos="<|im_end|>", pad="<|endoftext|>", split=QWEN2_SPLIT, template=CHATML_TEMPLATE,
        end_of_turn=("<|im_end|>", "<|endoftext|>"),
    ),
    "llama3": FamilySpec(
        specials=("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                  "<|eot_id|>"),
        bos="<|begin_of_text|>", eos="<|eot_id|>", pad="<|end_of_text|>", split=LLAMA3_SPLIT,
        template=LLAMA3_TEMPLATE, end_of_turn=("<|eot_id|>", "<|end_of_text|>"),
    ),
    "gemma": FamilySpec(
        specials=("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
        bos="<bos>", eos="<eos>", pad="<pad>", split=LLAMA3_SPLIT, template=GEMMA_TEMPLATE,
        end_of_turn=("<eos>", "<end_of_turn>"),  # config eos = the tokenizer's; generation stops on both
    ),
}


def corpus_text() -> str:
    """The small English corpus shipped in the package (tokenizer training and demo pre-training)."""
    return resources.files("ftwiz.core.tiny").joinpath("corpus.txt").read_text(encoding="utf-8")


def build_tokenizer(family: ChatFamily = "chatml", *, vocab_size: int = 512, extra_text: str = ""):
    """Train a byte-level BPE tokenizer on the shipped corpus; deterministic for the same inputs.

    Returns a ``transformers.PreTrainedTokenizerFast`` with special tokens and a chat template.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    spec = FAMILIES[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(spec.split), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(spec.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    lines = (corpus_text() + "\n" + extra_text).splitlines()
    tok.train_from_iterator(lines, trainer=trainer)
    if spec.bos:  # Llama-3 style: the tokenizer itself prepends BOS to every encoded text
        bos_id = tok.token_to_id(spec.bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{spec.bos} $A", pair=f"{spec.bos} $A {spec.bos} $B", special_tokens=[(spec.bos, bos_id)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=spec.bos,
        eos_token=spec.eos,
        pad_token=spec.pad,
        chat_template=spec.template,
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )


def save_tokenizer(tokenizer, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    return out
