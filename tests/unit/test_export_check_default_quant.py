"""`ftwiz export --check` without --quant answers for the quant `ftwiz export` writes by default."""

from __future__ import annotations

from pathlib import Path


def test_check_sizes_the_quant_export_writes(tiny_llama: Path, tmp_path: Path, ftwiz_env, capsys) -> None:
    """`ftwiz export M --check` (no --quant) sizes the file that `ftwiz export M` then writes (Q8_0)."""
    import json

    from ftwiz.core.cli import main

    assert main(["export", str(tiny_llama), "--check", "--json"]) == 0
    needed = json.loads(capsys.readouterr().out)["bytes_needed"]
    assert main(["export", str(tiny_llama), "--out", str(tmp_path)]) == 0
    written = [p.name for p in tmp_path.glob("*.gguf")]
    assert len(written) == 1 and written[0].endswith("-Q8_0.gguf")
    assert set(needed) - {"merge", "total"} == {"Q8_0"}
