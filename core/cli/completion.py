"""Shell completion for ``ftwiz`` (bash, zsh, fish), generated from the argparse parsers themselves.

    python -m ftwiz.core.cli.completion bash --install   # or zsh / fish; without --install: print it

Why generated and not hand-written: the verbs and their options live in ``ftwiz.core.cli`` (one module per
verb); a hand-kept completion file drifts the first time someone adds an option. Walking the real parsers
means a new option is completable the moment it exists, and a test can check that every verb is there.
Nothing here runs ftwiz at completion time, so pressing Tab costs no Python start-up.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

SHELLS = ("bash", "zsh", "fish")
PROG = "ftwiz"


@dataclass
class Option:
    """One ``--flag`` of a command: whether it takes a value, and which values make sense."""

    flags: list[str]
    help: str
    takes_value: bool
    choices: list[str] = field(default_factory=list)
    files: bool = False  # complete file names for the value
    repeatable: bool = False


@dataclass
class Positional:
    name: str
    help: str
    choices: list[str] = field(default_factory=list)
    optional: bool = False


@dataclass
class Command:
    """A verb (or a verb's sub-action such as ``recipe new``) as the shells need to see it."""

    name: str
    help: str
    options: list[Option] = field(default_factory=list)
    positionals: list[Positional] = field(default_factory=list)
    subcommands: list[Command] = field(default_factory=list)


def _value_choices(verb: str, dest: str) -> list[str]:
    """Known values for options argparse leaves open (``--quant`` is free text so errors can explain)."""
    if verb == "export" and dest == "quant":
        from ftwiz.core.export.pipeline import ALL_QUANTS

        return list(ALL_QUANTS)
    return []


def _takes_files(action: argparse.Action) -> bool:
    # ints and floats never name files; everything else here (paths, runs, model folders) may.
    return action.type not in (int, float)


def _describe(parser: argparse.ArgumentParser, name: str, help_text: str, verb: str) -> Command:
    command = Command(name=name, help=help_text)
    for action in parser._actions:  # argparse has no public walk over a parser's arguments
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for sub_name, sub_parser in action.choices.items():
                command.subcommands.append(_describe(sub_parser, sub_name, helps.get(sub_name, ""), verb))
            continue
        if action.option_strings:
            takes_value = action.nargs != 0
            choices = [str(c) for c in action.choices] if action.choices else _value_choices(verb, action.dest)
            command.options.append(Option(
                flags=list(action.option_strings), help=action.help or "", takes_value=takes_value,
                choices=choices, files=takes_value and not choices and _takes_files(action),
                repeatable=isinstance(action, argparse._AppendAction)))
        else:
            command.positionals.append(Positional(
                name=action.metavar if isinstance(action.metavar, str) else action.dest, help=action.help or "",
                choices=[str(c) for c in action.choices] if action.choices else [],
                optional=action.nargs in ("?", "*")))
    return command


def command_tree() -> Command:
    """The whole ``ftwiz`` command line: top-level options, every verb with its options and actions."""
    from ftwiz.core.cli import VERBS, build_parser

    root = _describe(build_parser(None), PROG, "fine-tuning wizard", "")
    root.subcommands = []
    root.subcommands.append(Command(name="wizard", help="open the terminal wizard",
                                    options=[Option(["-h", "--help"], "show help", False)]))
    for verb, (_module, help_text) in VERBS.items():
        parser = build_parser(verb)
        sub_action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        root.subcommands.append(_describe(sub_action.choices[verb], verb, help_text, verb))
    return root


# ----------------------------------------------------------------------------------------------- bash

def _words(items: list[str]) -> str:
    return " ".join(items)


def _bash_value_cases(command: Command, indent: str) -> list[str]:
    lines = []
    for option in command.options:
        if not option.takes_value:
            continue
        pattern = "|".join(option.flags)
        if option.choices:
            body = f'COMPREPLY=($(compgen -W "{_words(option.choices)}" -- "$cur")); return 0'
        elif option.files:
            body = 'COMPREPLY=($(compgen -f -- "$cur")); return 0'
        else:
            body = "return 0"  # a number: nothing sensible to offer
        lines.append(f"{indent}{pattern}) {body} ;;")
    return lines


def _all_commands(root: Command) -> list[tuple[str, Command]]:
    """(key, command) for every verb and sub-action; key is ``verb`` or ``verb/action``."""
    found = []
    for verb in root.subcommands:
        found.append((verb.name, verb))
        found.extend((f"{verb.name}/{sub.name}", sub) for sub in verb.subcommands)
    return found


def _bash(root: Command) -> str:
    commands = _all_commands(root)
    value_opts = sorted({flag for _key, cmd in commands for o in cmd.options if o.takes_value for flag in o.flags}
                        | {flag for o in root.options if o.takes_value for flag in o.flags})
    out = [
        "# bash completion for ftwiz, generated from its argparse parsers by ftwiz.core.cli.completion.",
        "# Install: python -m ftwiz.core.cli.completion bash > ~/.local/share/bash-completion/completions/ftwiz",
        "_ftwiz() {",
        '    local cur prev verb="" sub="" npos=0 i w skip=0',
        "    COMPREPLY=()",
        '    cur="${COMP_WORDS[COMP_CWORD]}"',
        '    prev="${COMP_WORDS[COMP_CWORD-1]}"',
        "    # Find the verb, its action and how many positionals came before the cursor;",
        "    # the word after an option that takes a value is that value, not a positional.",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        w="${COMP_WORDS[i]}"',
        "        if ((skip)); then skip=0; continue; fi",
        '        case "$w" in',
        f"            {'|'.join(value_opts)}) skip=1; continue ;;",
        "            -*) continue ;;",
        "        esac",
        '        if [[ -z "$verb" ]]; then verb="$w"',
        '        elif [[ -z "$sub" ]] && _ftwiz_has_actions "$verb"; then sub="$w"',
        "        else npos=$((npos + 1)); fi",
        "    done",
        '    local key="$verb"',
        '    [[ -n "$sub" ]] && key="$verb/$sub"',
        '    case "$key" in',
    ]
    for key, command in commands:
        cases = _bash_value_cases(command, "                ")
        if cases:
            out += [f"        {key})", '            case "$prev" in', *cases, "            esac ;;"]
    out += ["    esac", '    if [[ -z "$verb" ]]; then', '        if [[ "$cur" == -* ]]; then',
            f'            COMPREPLY=($(compgen -W "{_words([f for o in root.options for f in o.flags])}" -- "$cur"))',
            "        else",
            f'            COMPREPLY=($(compgen -W "{_words([c.name for c in root.subcommands])}" -- "$cur"))',
            "        fi", "        return 0", "    fi", '    if [[ "$cur" == -* ]]; then', '        case "$key" in']
    for key, command in commands:
        flags = [f for o in command.options for f in o.flags]
        out.append(f'            {key}) COMPREPLY=($(compgen -W "{_words(flags)}" -- "$cur")) ;;')
    out += ["        esac", "        return 0", "    fi", '    case "$key" in']
    for key, command in commands:
        if command.subcommands:
            out.append(f'        {key}) COMPREPLY=($(compgen -W "{_words([s.name for s in command.subcommands])}" '
                       '-- "$cur")) ;;')
        elif command.positionals and command.positionals[0].choices:
            out.append(f'        {key}) ((npos == 0)) && COMPREPLY=($(compgen -W '
                       f'"{_words(command.positionals[0].choices)}" -- "$cur")) ;;')
    out += ["    esac", "    return 0  # nothing matched: -o default offers file names", "}", "",
            "_ftwiz_has_actions() {", '    case "$1" in']
    with_actions = [c.name for c in root.subcommands if c.subcommands]
    if with_actions:
        out.append(f"        {'|'.join(with_actions)}) return 0 ;;")
    out += ["    esac", "    return 1", "}", "", "complete -o default -F _ftwiz ftwiz", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ zsh

def _zsh_text(text: str) -> str:
    """Help text safe inside a single-quoted ``_arguments`` spec (no quotes, brackets or colons)."""
    text = re.sub(r"\s+", " ", text).strip()
    text = text.replace("'", "").replace("[", "(").replace("]", ")").replace(":", " -").replace("\\", "/")
    return text.replace("`", "")


def _zsh_option(option: Option) -> str:
    help_text = _zsh_text(option.help) or option.flags[-1].lstrip("-")
    if option.takes_value:
        metavar = option.flags[-1].lstrip("-").upper()
        if option.choices:
            action = f"({' '.join(option.choices)})"
        elif option.files:
            action = "_files"
        else:
            action = " "
        value = f":{metavar}:{action}"
    else:
        value = ""
    star = "*" if option.repeatable else ""
    if len(option.flags) == 1:
        suffix = "=" if option.takes_value and option.flags[0].startswith("--") else ""
        return f"'{star}{option.flags[0]}{suffix}[{help_text}]{value}'"
    exclusive = f"({' '.join(option.flags)})"
    return f"'{exclusive}'{{{','.join(option.flags)}}}'[{help_text}]{value}'"


def _zsh_function(name: str, command: Command) -> list[str]:
    specs = [_zsh_option(o) for o in command.options]
    if command.subcommands:
        specs += ["'1:action:->action'", "'*::arg:->args'"]
    else:
        for index, positional in enumerate(command.positionals, start=1):
            action = f"({' '.join(positional.choices)})" if positional.choices else "_files"
            colon = "::" if positional.optional else ":"
            specs.append(f"'{index}{colon}{_zsh_text(positional.name) or 'arg'}:{action}'")
    lines = [f"{name}() {{"]
    if command.subcommands:
        lines += ['    local curcontext="$curcontext" state line', "    typeset -A opt_args"]
    lines.append("    _arguments -s -C \\" if command.subcommands else "    _arguments -s \\")
    lines += [f"        {spec} \\" for spec in specs[:-1]] + [f"        {specs[-1]}" if specs else "        ''"]
    if command.subcommands:
        items = " ".join(f"'{s.name}:{_zsh_text(s.help)}'" for s in command.subcommands)
        lines += ["    case $state in", f"        action) local -a actions; actions=({items})",
                  "            _describe -t actions 'action' actions ;;", "        args)",
                  "            case $line[1] in"]
        lines += [f"                {s.name}) {name}_{s.name} ;;" for s in command.subcommands]
        lines += ["            esac ;;", "    esac"]
    lines += ["}", ""]
    for sub in command.subcommands:
        lines += _zsh_function(f"{name}_{sub.name}", sub)
    return lines


def _zsh(root: Command) -> str:
    out = ["#compdef ftwiz",
           "# zsh completion for ftwiz, generated from its argparse parsers by ftwiz.core.cli.completion.",
           "# Install: python -m ftwiz.core.cli.completion zsh > ~/.zfunc/_ftwiz  (with fpath+=(~/.zfunc) before compinit)", ""]
    out += _zsh_function("_ftwiz", root)
    out += ['_ftwiz "$@"', ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------- fish

def _fish_text(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(condition: str, option: Option) -> str:
    parts = [f"complete -c {PROG} -n {_fish_text(condition)}"]
    for flag in option.flags:
        parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
    if option.takes_value:
        if option.choices:
            parts.append(f"-x -a {_fish_text(' '.join(option.choices))}")
        elif option.files:
            parts.append("-r -F")
        else:
            parts.append("-x")
    if option.help:
        parts.append(f"-d {_fish_text(option.help)}")
    return " ".join(parts)


def _fish(root: Command) -> str:
    out = ["# fish completion for ftwiz, generated from its argparse parsers by ftwiz.core.cli.completion.",
           "# Install: python -m ftwiz.core.cli.completion fish > ~/.config/fish/completions/ftwiz.fish", "",
           f"complete -c {PROG} -e", f"complete -c {PROG} -f"]
    for option in root.options:
        out.append(_fish_option("__fish_use_subcommand", option))
    for verb in root.subcommands:
        out.append(f"complete -c {PROG} -n '__fish_use_subcommand' -a {verb.name} -d {_fish_text(verb.help)}")
    for verb in root.subcommands:
        on_verb = f"__fish_seen_subcommand_from {verb.name}"
        if verb.subcommands:
            names = " ".join(s.name for s in verb.subcommands)
            for sub in verb.subcommands:
                out.append(f"complete -c {PROG} -n {_fish_text(f'{on_verb}; and not __fish_seen_subcommand_from {names}')}"
                           f" -a {sub.name} -d {_fish_text(sub.help)}")
            for sub in verb.subcommands:
                condition = f"{on_verb}; and __fish_seen_subcommand_from {sub.name}"
                out += [_fish_option(condition, o) for o in sub.options]
                if sub.positionals:
                    out.append(f"complete -c {PROG} -n {_fish_text(condition)} -F")
            continue
        out += [_fish_option(on_verb, o) for o in verb.options]
        if verb.positionals and verb.positionals[0].choices:
            choices = " ".join(verb.positionals[0].choices)
            out.append(f"complete -c {PROG} -n {_fish_text(f'{on_verb}; and not __fish_seen_subcommand_from {choices}')}"
                       f" -a {_fish_text(choices)}")
        if any(not p.choices for p in verb.positionals):
            out.append(f"complete -c {PROG} -n {_fish_text(on_verb)} -F")
    out.append("")
    return "\n".join(out)


_RENDERERS = {"bash": _bash, "zsh": _zsh, "fish": _fish}

# Where each shell looks for a user's completions without any rc-file edit (zsh needs fpath set).
INSTALL_PATHS = {
    "bash": Path("~/.local/share/bash-completion/completions/ftwiz"),
    "zsh": Path("~/.zfunc/_ftwiz"),
    "fish": Path("~/.config/fish/completions/ftwiz.fish"),
}


def completion_script(shell: str) -> str:
    """The completion script for ``shell`` (bash, zsh or fish), covering every verb and option."""
    from ftwiz.core.errors import FtwizError

    if shell not in _RENDERERS:
        raise FtwizError(f"no completion for shell '{shell}'", where="completion_script(shell)",
                         fix=f"use one of: {', '.join(SHELLS)}")
    return _RENDERERS[shell](command_tree())


def install_completion(shell: str, path: Path | None = None, *, overwrite: bool = True) -> Path:
    """Write the script where ``shell`` finds it (atomically); returns the path written."""
    from ftwiz.core.atomic import write_text_atomic
    from ftwiz.core.errors import FtwizError, Location

    default = INSTALL_PATHS.get(shell, Path("ftwiz.completion"))
    target = (path or default).expanduser()
    if target.is_dir():  # --out ~/completions/: the file the shell expects, inside it
        target = target / default.name
    if target.is_file() and "by ftwiz.core.cli.completion" not in target.read_bytes()[:400].decode("utf-8", "replace"):
        raise FtwizError(f"{target} exists and is not an ftwiz completion script, and ftwiz does not overwrite "
                         "files without asking", where=Location(file=target),
                         fix="give another --out, or move that file away first")
    script = completion_script(shell)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(write_text_atomic(target, script, overwrite=overwrite))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``ftwiz completion SHELL [--install]`` (for ftwiz.core.cli.VERBS)."""
    parser.add_argument("shell", choices=SHELLS)
    parser.add_argument("--install", action="store_true", help="write it where the shell looks for it")
    parser.add_argument("--out", type=Path, help="install to this file or folder instead (implies --install)")


def run(args: argparse.Namespace) -> int:
    if args.install or args.out is not None:  # --out alone printed the script and wrote nothing
        print(f"wrote {install_completion(args.shell, args.out)}")
        if args.shell == "zsh":
            print("zsh: add `fpath+=(~/.zfunc)` before `compinit` in ~/.zshrc, then open a new shell")
    else:
        print(completion_script(args.shell), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m ftwiz.core.cli.completion SHELL [--install]``: print or install the script."""
    parser = argparse.ArgumentParser(prog="python -m ftwiz.core.cli.completion",
                                     description="print (or install) ftwiz's shell completion")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
