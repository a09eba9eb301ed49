"""``ftwiz export --quant Q4_K_M`` of a model whose rows are not whole 256-value blocks writes some tensors in
other types, as llama.cpp's quantizer does, and says so in a note. Oracle: the tensor types gguf's GGUFReader
reads from the written file. The note read "29 of 29 quantized tensors were written 5 as Q8_0 instead of ...",
a sentence that did not parse."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest


@pytest.mark.parametrize("quant", ["Q4_K_M", "Q8_0"])
def test_fallback_note_counts_the_types_in_the_file(tmp_path: Path, tiny_qwen2: Path, quant: str) -> None:
    import gguf
    from ftwiz.core.export.pipeline import export_model

    result = export_model(tiny_qwen2, [quant], out=tmp_path / f"m-{quant}.gguf", verify=False)
    types = Counter(t.tensor_type.name for t in gguf.GGUFReader(result.gguf_paths[0]).tensors)
    quantized = sum(n for name, n in types.items() if name not in ("F32", "F16"))
    if quant == "Q8_0":  # written as it is: nothing falls back, no note
        assert result.notes == []
        return
    other = {name: n for name, n in types.items() if name not in ("F32", "F16", "Q4_K", "Q6_K")}
    assert other, "the tiny model's rows are meant to be too short for 256-value blocks"
    (note,) = result.notes
    head = re.match(r"Q4_K_M: (\d+) of (\d+) quantized tensors are written in other types, as llama.cpp.s quantizer does: ", note)
    assert head, note
    assert (int(head[1]), int(head[2])) == (sum(other.values()), quantized)
    said = Counter()
    for n, used in re.findall(r"(\d+) as (\w+) instead of", note):
        said[used] += int(n)
    assert dict(said) == other
