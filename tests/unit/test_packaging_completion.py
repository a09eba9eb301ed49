"""Shell completion generated from the real parsers: every verb, its options, and scripts the shells accept."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from ftwiz.core.cli import VERBS
from ftwiz.core.cli.completion import completion_script, install_completion
from ftwiz.core.errors import FtwizError


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "ftwiz.bash"
    path.write_text(completion_script("bash"), encoding="utf-8")
    return path


def complete(script: Path, words: list[str]) -> list[str]:
    """What bash offers after `ftwiz WORDS...` (the last word is the one being completed)."""
    words_array = " ".join(f"'{w}'" for w in ["ftwiz", *words])
    program = (f"source {script}; COMP_WORDS=({words_array}); COMP_CWORD={len(words)}; _ftwiz; "
               'printf "%s\\n" "${COMPREPLY[@]}"')
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                          check=True)
    return [line for line in done.stdout.splitlines() if line]


def test_bash_script_parses_and_lists_every_verb(bash_script: Path) -> None:
    subprocess.run(["bash", "-n", str(bash_script)], check=True)
    offered = complete(bash_script, [""])
    assert set(VERBS) | {"wizard"} <= set(offered)


def test_bash_completes_options_and_their_values(bash_script: Path) -> None:
    assert "--quant" in complete(bash_script, ["export", "--q"])
    assert {"Q4_K_M", "Q8_0", "F16"} <= set(complete(bash_script, ["export", "runs/x", "--quant", ""]))
    assert complete(bash_script, ["plan", "demo", "--method", "q"]) == ["qlora"]
    assert "--resume" in complete(bash_script, ["train", "--"])
    # the export verb's options are not offered for another verb
    assert "--quant" not in complete(bash_script, ["train", "--"])


def test_bash_completes_actions_and_sub_commands(bash_script: Path) -> None:
    assert set(complete(bash_script, ["recipe", ""])) == {"validate", "new"}
    assert "--overwrite" in complete(bash_script, ["recipe", "new", "--o"])
    assert complete(bash_script, ["data", "pre"]) == ["prepare", "preview"]
    # after an option's value the action is still the first positional
    assert complete(bash_script, ["data", "--format", "alpaca", "st"]) == ["stats"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_cover_every_verb_and_parse(shell: str, tmp_path: Path) -> None:
    script = completion_script(shell)
    for verb in VERBS:
        assert verb in script
    assert "--quant" in script or "-l quant" in script
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed: only the content was checked")
    path = tmp_path / f"ftwiz.{shell}"
    path.write_text(script, encoding="utf-8")
    subprocess.run([shell, "-n", str(path)], check=True)


def test_fish_offers_verbs_options_and_quant_values(tmp_path: Path) -> None:
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed")
    path = tmp_path / "ftwiz.fish"
    path.write_text(completion_script("fish"), encoding="utf-8")

    def offered(line: str) -> set[str]:
        done = subprocess.run(["fish", "--no-config", "-c", f"source {path}; complete -C '{line}'"],
                              capture_output=True, text=True, check=True)
        return {row.split("\t")[0] for row in done.stdout.splitlines()}

    assert set(VERBS) <= offered("ftwiz ")
    assert "--quant" in offered("ftwiz export --q")
    assert "Q4_K_M" in offered("ftwiz export run --quant ")
    assert offered("ftwiz recipe ") == {"new", "validate"}


def test_unknown_shell_is_a_user_error() -> None:
    with pytest.raises(FtwizError, match="powershell"):
        completion_script("powershell")


def test_install_writes_where_the_shell_looks(tmp_path: Path) -> None:
    target = install_completion("fish", tmp_path / "completions" / "ftwiz.fish")
    assert target.read_text(encoding="utf-8").startswith("# fish completion for ftwiz")
