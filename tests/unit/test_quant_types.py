"""The one table of GGUF quantization types agrees with llama.cpp and gguf-py, and every stage reads it."""

from __future__ import annotations

import typing

import gguf
import pytest
from ftwiz.core.errors import FtwizError
from ftwiz.core.quant_types import BITS_PER_WEIGHT, CONVERTER_TYPES, QUANT_NAMES, QUANT_TYPES, QUANTIZER_TYPES


def _gguf_file_type(name: str) -> int:
    return int(getattr(gguf.LlamaFileType, ("ALL_" if name == "F32" else "MOSTLY_") + name))


@pytest.mark.parametrize("name", QUANT_NAMES)
def test_file_type_is_the_one_llama_cpp_and_gguf_py_use(name: str) -> None:
    # what `general.file_type` says in a GGUF we write: llama.cpp tools print the type from it
    assert QUANT_TYPES[name].file_type == _gguf_file_type(name)
    if QUANT_TYPES[name].needs_llama_cpp_quantize:
        llama_cpp = pytest.importorskip("llama_cpp")
        assert getattr(llama_cpp, QUANT_TYPES[name].llama_ftype) == QUANT_TYPES[name].file_type


def test_block_types_bits_per_weight_match_gguf_block_sizes() -> None:
    # F16/BF16/F32/Q8_0 are uniform blocks: bits = bytes per block * 8 / weights per block (gguf-py's table)
    for name in ("F32", "F16", "BF16", "Q8_0"):
        block, nbytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name]]
        assert BITS_PER_WEIGHT[name] == nbytes * 8 / block
    # a K-quant mix is never smaller than its smallest block type (Q4_K: 144 bytes per 256 weights)
    block, nbytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q4_K]
    assert BITS_PER_WEIGHT["Q4_K_M"] >= nbytes * 8 / block
    assert [QUANT_TYPES[n].k_quant for n in QUANT_NAMES] == ["_K" in n for n in QUANT_NAMES]


def test_recipe_export_and_quantizer_accept_exactly_the_table() -> None:
    from ftwiz.core.export.convert import OUT_TYPES
    from ftwiz.core.export.pipeline import ALL_QUANTS
    from ftwiz.core.recipe import QuantType, parse_recipe

    assert typing.get_args(QuantType) == QUANT_NAMES == ALL_QUANTS
    assert set(OUT_TYPES) | set(QUANTIZER_TYPES) == set(QUANT_NAMES)
    assert not set(CONVERTER_TYPES) & set(QUANTIZER_TYPES)
    recipe = parse_recipe({"model_name_or_path": "demo", "dataset": ["demo"], "export_quant": list(QUANT_NAMES)})
    assert recipe.export_quant == list(QUANT_NAMES)
    with pytest.raises(FtwizError, match="export_quant"):
        parse_recipe({"model_name_or_path": "demo", "dataset": ["demo"], "export_quant": ["Q3_K_M"]})


def test_export_help_and_completion_offer_every_type() -> None:
    from ftwiz.core.cli import build_parser
    from ftwiz.core.cli.completion import _value_choices

    assert _value_choices("export", "quant") == list(QUANT_NAMES)
    help_text = build_parser("export").format_help() + "".join(
        a.format_help() for a in build_parser("export")._subparsers._group_actions[0].choices.values())
    assert all(name in help_text for name in QUANT_NAMES)
