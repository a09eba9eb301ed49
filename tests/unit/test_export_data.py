"""The GGUF data section: float16 casts (ggml kernels and the numpy fallback), Q8_0, tensors cut into
pieces and blocks, empty and truncated tensors. Checked against independent implementations (torch's casts,
gguf's numpy quantizer) and byte for byte between the threaded and the whole-tensor paths.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
from ftwiz.core.errors import FtwizError


def bf16_copy(model: Path, out: Path) -> Path:
    """``model`` saved again in bfloat16 (as models ship), with its tokenizer and template files."""
    import torch
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16).save_pretrained(out)
    for f in model.iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "special_tokens", "generation")):
            (out / f.name).write_bytes(f.read_bytes())
    return out


def _tensors(path: Path) -> dict:
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


@pytest.mark.parametrize("use_ggml", [True, False], ids=["ggml-kernels", "numpy-table"])
def test_bf16_to_f16_bits_match_torch_for_every_pattern(use_ggml: bool) -> None:
    """All 65536 bfloat16 values, including zeros, subnormals, overflow, inf and NaN, convert exactly as
    torch's own bfloat16 -> float16 cast (an independent implementation) does, on both paths."""
    import torch
    from ftwiz.core.export.dtypes import bf16_bits_to_f16

    bits = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    expected = torch.from_numpy(bits.copy()).view(torch.bfloat16).to(torch.float16).numpy()
    got = bf16_bits_to_f16(bits, chunk=1000, use_ggml=use_ggml)
    nan = np.isnan(expected)
    assert got.shape == bits.shape
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got.view(np.uint16)[~nan], expected.view(np.uint16)[~nan])


@pytest.mark.parametrize("use_ggml", [True, False], ids=["ggml-kernels", "numpy"])
def test_f32_to_f16_rounds_like_numpy(use_ggml: bool) -> None:
    """Ties to even, overflow to inf, subnormals and signed zeros: the fast kernel agrees with numpy."""
    from ftwiz.core.export.dtypes import f32_to_f16

    rng = np.random.default_rng(0)
    values = np.concatenate([
        rng.standard_normal(200_003).astype(np.float32) * 0.02,
        np.array([0.0, -0.0, 65504.0, 65520.0, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 1e-10, np.inf, -np.inf],
                 dtype=np.float32),
        (np.arange(1, 4096, dtype=np.float32) + 0.5) * 2.0**-10,  # exact ties at float16 spacing
    ]).reshape(-1, 1)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    got = f32_to_f16(values, use_ggml=use_ggml)
    assert got.shape == values.shape
    assert np.array_equal(got.view(np.uint16), expected.view(np.uint16))


def test_q8_0_from_ggml_is_bit_identical_to_gguf_numpy() -> None:
    """The fast Q8_0 path (ggml's C quantizer) writes exactly the bytes gguf's numpy reference writes,
    including all-zero blocks, exact .5 ties after scaling and large outliers."""
    from ftwiz.core.export.dtypes import quantize

    rng = np.random.default_rng(3)
    rows = (rng.standard_normal((64, 256)) * 0.02).astype(np.float32)
    rows[0, :32] = 0.0
    rows[1, :32] = np.arange(32, dtype=np.float32) - 15.5  # many exact .5 ties once scaled by 1 ...
    rows[1, 0] = 127.0  # ... because the block's scale is then exactly 1
    rows[2, 5] = 300.0
    fast = quantize(rows, gguf.GGMLQuantizationType.Q8_0)
    slow = quantize(rows, gguf.GGMLQuantizationType.Q8_0, use_ggml=False)
    assert fast.shape == slow.shape == (64, 256 // 32 * 34)
    assert fast.tobytes() == slow.tobytes()


def test_ggml_kernels_are_found_in_the_installed_llama_cpp() -> None:
    """The bootstrap installs a llama-cpp-python whose ggml-cpu exports the casts; without them F16
    export silently falls back to the 2x slower numpy path, so CI should notice."""
    from ftwiz.core.export.ggml_kernels import kernels

    found = kernels()
    assert found is not None and found.quantize_chunk is not None


def test_bf16_model_exports_like_its_float32_values(tiny_llama: Path, tmp_path: Path) -> None:
    import gguf
    import torch
    from ftwiz.core.export.convert import convert_to_gguf, permute_rotate_half
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.bfloat16).save_pretrained(model)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (tiny_llama / name).is_file():
            (model / name).write_bytes((tiny_llama / name).read_bytes())
    hf = load_file(str(model / "model.safetensors"))
    for out_type, want in (("F16", torch.float16), ("F32", torch.float32), ("BF16", None)):
        tensors = _tensors(convert_to_gguf(model, tmp_path / f"m-{out_type}.gguf", out_type))
        down = hf["model.layers.0.mlp.down_proj.weight"]
        q = permute_rotate_half(hf["model.layers.0.self_attn.q_proj.weight"], 4)
        for name, source in (("blk.0.ffn_down.weight", down), ("blk.0.attn_q.weight", q)):
            data = np.asarray(tensors[name].data)
            if want is None:
                assert tensors[name].tensor_type == gguf.GGMLQuantizationType.BF16
                assert np.array_equal(data.reshape(-1).view(np.uint16),
                                      source.contiguous().view(torch.int16).numpy().reshape(-1).view(np.uint16))
            else:
                assert np.array_equal(data.reshape(source.shape), source.to(want).numpy()), (out_type, name)


@pytest.mark.parametrize("out_type", ["F16", "Q8_0", "F32"])
def test_pieces_and_blocks_give_the_same_file_as_whole_tensors(tiny_llama: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, out_type: str) -> None:
    """Tensors cut into pieces of a few rows (whole heads for the permuted q/k) and converted a row at a time
    on 3 threads produce the same bytes as one piece per tensor on one thread."""
    from ftwiz.core.export import convert, gguf_data

    model = bf16_copy(tiny_llama, tmp_path / "bf16")
    whole = tmp_path / "whole.gguf"
    monkeypatch.setattr(gguf_data, "PIECE_BYTES", 1 << 40)
    monkeypatch.setattr(gguf_data, "BLOCK_BYTES", 1 << 40)
    monkeypatch.setattr(gguf_data, "READ_BYTES", 1 << 40)
    monkeypatch.setattr(convert, "write_data", lambda *a, **k: gguf_data.write_data(*a, **k, threads=1))
    convert.convert_to_gguf(model, whole, out_type)
    plans = convert.plan_tensors(model, convert.model_params(model), out_type)
    assert max(len(gguf_data.split(p, 0, piece_bytes=1000)) for p in plans) > 10  # really cut up
    # the reference itself has q rows in llama.cpp's order (checked against the HF weights, 4 heads)
    from ftwiz.core.export.dtypes import to_gguf_array
    from ftwiz.core.export.tensors import NUMPY_DTYPES, read_header

    q_plan = next(p for p in plans if p.name == "blk.0.attn_q.weight")
    ref = next(r for r in read_header(model / "model.safetensors")[0] if r.name == q_plan.ref.name)
    with open(ref.file, "rb") as handle:
        handle.seek(ref.start)
        bits = np.frombuffer(handle.read(ref.nbytes), dtype=NUMPY_DTYPES[ref.dtype]).reshape(ref.shape)
    expected = np.ascontiguousarray(to_gguf_array(convert.permute_rotate_half(bits, 4), "BF16", q_plan.qtype))
    got = np.asarray(_tensors(whole)["blk.0.attn_q.weight"].data)
    assert got.tobytes() == expected.tobytes()

    for piece_bytes in (1000, 5000):  # one head per q/k piece; two heads per piece
        cut = tmp_path / f"cut-{piece_bytes}.gguf"
        monkeypatch.setattr(gguf_data, "PIECE_BYTES", piece_bytes)
        monkeypatch.setattr(gguf_data, "BLOCK_BYTES", 1)
        monkeypatch.setattr(gguf_data, "READ_BYTES", 6)  # bfloat16 -> F16 read 3 values at a time
        monkeypatch.setattr(convert, "write_data", lambda *a, **k: gguf_data.write_data(*a, **k, threads=3))
        convert.convert_to_gguf(model, cut, out_type)
        assert cut.read_bytes() == whole.read_bytes(), piece_bytes


def test_truncated_safetensors_is_a_clear_error_and_leaves_nothing(tiny_llama: Path, tmp_path: Path) -> None:
    import shutil

    from ftwiz.core.export.convert import convert_to_gguf

    model = tmp_path / "cut"
    shutil.copytree(tiny_llama, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-5000])
    with pytest.raises(FtwizError, match="truncated") as err:
        convert_to_gguf(model, tmp_path / "m.gguf", "F16")
    assert "fetch the file again" in err.value.fix
    assert not list(tmp_path.glob("*m.gguf*"))


def test_empty_tensors_are_written_as_empty(tmp_path: Path) -> None:
    """A checkpoint may carry 0-sized tensors; they get a header entry and no data, not a crash."""
    from ftwiz.core.export import gguf_data
    from ftwiz.core.export.convert import TensorPlan, _nbytes
    from ftwiz.core.export.tensors import read_header
    from safetensors.numpy import save_file

    q = gguf.GGMLQuantizationType
    for shape in ((0, 64), (64, 0), (0,)):
        save_file({"w": np.zeros(shape, dtype=np.float32)}, str(tmp_path / "e.safetensors"))
        ref = read_header(tmp_path / "e.safetensors")[0][0]
        out = tmp_path / "out.bin"
        out.write_bytes(b"\0" * 7)
        gguf_data.write_data(out, 32, [TensorPlan(ref, "x", shape, q.F16, _nbytes(shape, q.F16))])
        assert out.stat().st_size == 32  # the header padded to the alignment, no data


def _resident_file_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="resident memory is read from Linux's /proc")
def test_released_source_pages_leave_resident_memory(tmp_path: Path) -> None:
    """An F16 export converts out of one mapping of the whole safetensors file; released pieces must not stay
    resident, or the export's peak memory would grow to the model's size (a 16 GB model on a 16 GB machine)."""
    import os

    from ftwiz.core.export.gguf_data import SourceMap

    if not SourceMap.available():
        pytest.skip("whole-file mappings with page release are Linux-only")
    size = 32 << 20
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(os.urandom(size))
    fd = os.open(weights, os.O_RDONLY)
    source = SourceMap(fd, size)
    try:
        before = _resident_file_kib()
        view = np.frombuffer(source.region, dtype=np.uint8)
        assert int(view[::4096].astype(np.int64).sum()) >= 0  # touch every page
        del view
        touched = _resident_file_kib()
        assert touched - before > 24 << 10  # the mapping really became resident
        source.release(100, size - 100)  # not page-aligned: the first, partly released page stays
        assert _resident_file_kib() - before < 1 << 10
        with open(weights, "rb") as fh:  # the file itself is untouched
            assert fh.read(4096) == bytes(np.frombuffer(source.region, dtype=np.uint8)[:4096])
    finally:
        source.close()
        os.close(fd)


def test_f16_export_reads_the_file_where_it_cannot_be_mapped(tiny_llama: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Some network and FUSE file systems refuse mmap: the bfloat16 -> F16 export then reads the file, and
    writes the same bytes."""
    from ftwiz.core.export import gguf_data
    from ftwiz.core.export.convert import convert_to_gguf

    model = bf16_copy(tiny_llama, tmp_path / "bf16")
    mapped = convert_to_gguf(model, tmp_path / "mapped.gguf", "F16")

    def refuse(*_args, **_kwargs):
        raise OSError(19, "No such device")  # what mmap says on a file system without it

    monkeypatch.setattr(gguf_data.SourceMap, "__init__", refuse)
    read = convert_to_gguf(model, tmp_path / "read.gguf", "F16")
    assert read.read_bytes() == mapped.read_bytes()


@pytest.mark.parametrize("out_type", ["F16", "Q8_0"])
def test_a_model_that_shrinks_during_its_export_is_a_clear_error(tiny_llama: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 out_type: str) -> None:
    """Saving the model again while it is exported cuts its safetensors file. Reading a mapped page past the
    new end would kill the process with SIGBUS (no message, a partial left behind); it must be the named
    error, with nothing left."""
    from ftwiz.core.export import convert

    model = bf16_copy(tiny_llama, tmp_path / "bf16")
    weights = model / "model.safetensors"

    def cut_after_header(name: str) -> None:
        if name == "export.header":  # planned against the whole file, then cut before the data is read
            with open(weights, "r+b") as fh:
                fh.truncate(weights.stat().st_size // 2)

    monkeypatch.setattr(convert, "pause_point", cut_after_header)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(FtwizError, match="truncated") as err:
        convert.convert_to_gguf(model, out / "m.gguf", out_type)
    assert "save them again" in err.value.fix
    assert list(out.iterdir()) == []
