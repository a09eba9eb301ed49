"""Plain .txt datasets (continued pre-training) read as the `datasets` "text" builder reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main
from ftwiz.core.data.text_files import read_text_file
from ftwiz.core.errors import FtwizError

CORPUS = ("The first line of text.\r\nA second line, same paragraph.\n\nA new paragraph starts here.\n"
          "It goes on.\n\n\nAfter two blank lines.\n   \nLast line without a newline")


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_bytes(CORPUS.encode("utf-8"))
    return path


@pytest.mark.parametrize("sample_by", ["line", "paragraph", "document"])
def test_txt_records_match_the_datasets_text_builder(corpus: Path, tmp_path: Path, sample_by: str) -> None:
    from datasets import load_dataset

    oracle = load_dataset("text", data_files=str(corpus), sample_by=sample_by, split="train",
                          cache_dir=str(tmp_path / "hf-datasets"))["text"]
    ours = [r.data["text"] for r in read_text_file(corpus, sample_by)]
    assert ours == [t for t in oracle if t.strip()]  # blank records are skipped (README says so)
    assert len(ours) == {"line": 6, "paragraph": 3, "document": 1}[sample_by]


def test_txt_records_name_the_line_they_start_on(corpus: Path) -> None:
    lines = [r.line for r in read_text_file(corpus, "paragraph")]
    assert lines == [1, 4, 7]


def test_txt_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(FtwizError, match="not valid UTF-8") as caught:
        list(read_text_file(path))
    assert caught.value.where.line == 2


def test_data_check_preview_and_prepare_accept_txt(corpus: Path, tmp_path: Path, capsys) -> None:
    assert cli_main(["data", "check", str(corpus), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["formats"][str(corpus)][0] == "text" and report["kept"] == 6 and report["read"] == 6
    assert cli_main(["data", "check", str(corpus), "--sample-by", "paragraph", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kept"] == 3
    assert cli_main(["data", "preview", str(corpus), "--sample-by", "document"]) == 0
    assert "Last line without a newline" in capsys.readouterr().out
    out = tmp_path / "prepared"
    assert cli_main(["data", "prepare", str(corpus), "--out", str(out)]) == 0
    rows = [json.loads(line) for name in ("train", "validation", "test") if (out / f"{name}.jsonl").exists()
            for line in (out / f"{name}.jsonl").read_text().splitlines()]
    assert len(rows) == 6


def test_a_folder_of_json_data_ignores_a_readme_txt(tmp_path: Path) -> None:
    from ftwiz.core.data.loaders import expand_paths

    (tmp_path / "train.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "README.txt").write_text("notes about the data\n")
    assert [p.name for p in expand_paths(str(tmp_path))] == ["train.jsonl"]
    (tmp_path / "train.jsonl").unlink()
    assert [p.name for p in expand_paths(str(tmp_path))] == ["README.txt"]  # a folder of text is text
