"""The one-block tensor-name map answers as gguf-py's full ``TensorNameMap`` does (the oracle), for every
architecture ftwiz exports, every name the full map knows, with and without .weight/.bias, and for names of
blocks the model does not have."""

from __future__ import annotations

import pytest
from ftwiz.core.export.arch import ARCHITECTURES
from ftwiz.core.export.placement import arch_enum as _arch_enum
from ftwiz.core.export.tensor_names import BlockNameMap

GGUF_ARCHS = sorted({info.gguf_arch for info in ARCHITECTURES.values()})


@pytest.mark.parametrize("arch", GGUF_ARCHS)
def test_every_name_maps_as_the_full_map_does(arch: str) -> None:
    import gguf

    n_blocks = 13
    full = gguf.get_tensor_name_map(_arch_enum(arch), n_blocks)
    fast = BlockNameMap(_arch_enum(arch), n_blocks)
    names = list(full.mapping)
    assert len(names) > 100  # the full map really spells out every block
    beyond = [name.replace(".12.", ".13.", 1) for name in names if ".12." in name]  # a 14th block: unknown
    odd = ["model.layers.07.self_attn.q_proj", "model.layers.3.", "lm_head", "model.norm", "nothing.at.all"]
    for name in names + beyond + odd:
        for key, suffixes in ((name, ()), (f"{name}.weight", (".weight", ".bias")), (f"{name}.bias", (".weight", ".bias"))):
            assert fast.get_name(key, try_suffixes=suffixes) == full.get_name(key, try_suffixes=suffixes), key
    assert fast._full is not None or not beyond  # names it could not place went to the full map


def test_a_model_with_many_blocks_is_mapped_without_building_the_full_map() -> None:
    fast = BlockNameMap(_arch_enum("llama"), 80)
    assert fast.get_name("model.layers.79.mlp.down_proj.weight", try_suffixes=(".weight",)) == "blk.79.ffn_down.weight"
    assert fast.get_name("model.embed_tokens.weight", try_suffixes=(".weight",)) == "token_embd.weight"
    assert fast._full is None  # 0.1 s saved on an 80-block model
