"""``syncd completion SHELL``: shell completion for bash, zsh and fish, generated from the CLI's
own argparse parser, so a new command or option completes without anyone editing a script.

Reads the parser only; prints nothing itself (the CLI prints the script). argparse documents no
way to list a parser's arguments: ``_actions`` is what argcomplete and shtab read too, unchanged
since Python 2.7. Each ``Action``'s ``option_strings``, ``choices``, ``nargs`` and ``help`` are
documented attributes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

SHELLS = ("bash", "zsh", "fish")


@dataclass(frozen=True, slots=True)
class Option:
    flags: tuple[str, ...]
    help: str
    takes_value: bool
    choices: tuple[str, ...]
    path: bool  # its value is a file


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # "" for the program itself, before any command
    options: tuple[Option, ...]
    words: tuple[str, ...]  # what may come as a plain word: the commands, or a positional's choices


def commands(parser: argparse.ArgumentParser) -> list[Command]:
    """The program's options and commands, then each command's options and positional choices."""
    verbs: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:  # the module docstring says why
        if isinstance(action.choices, dict):  # the subparsers' action: name -> parser
            verbs.update(action.choices)
    top = Command("", _options(parser), tuple(verbs))
    return [top, *(Command(name, _options(p), _positional_choices(p)) for name, p in verbs.items())]


def _options(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    return tuple(
        Option(
            flags=tuple(a.option_strings),
            help=(a.help or "").replace("%%", "%") if a.help != argparse.SUPPRESS else "",
            takes_value=a.nargs != 0,
            choices=tuple(str(c) for c in a.choices or ()),
            path=a.metavar == "PATH",
        )
        for a in parser._actions
        if a.option_strings
    )


def _positional_choices(parser: argparse.ArgumentParser) -> tuple[str, ...]:
    return tuple(
        str(c)
        for a in parser._actions
        if not a.option_strings and a.choices and not isinstance(a.choices, dict)
        for c in a.choices
    )


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for ``shell`` (one of ``SHELLS``)."""
    found = commands(parser)
    prog = parser.prog
    if shell == "fish":
        return _fish(prog, found)
    bash = _bash(prog, found)
    if shell == "zsh":  # zsh runs bash completion functions through bashcompinit
        return f"#compdef {prog}\nautoload -U +X bashcompinit && bashcompinit\n{bash}"
    return bash


def _bash(prog: str, found: list[Command]) -> str:
    func = "_" + prog.replace("-", "_")
    verbs = "|".join(c.name for c in found if c.name)
    values: list[str] = []
    for c in found:
        for o in c.options:
            if not o.takes_value:
                continue
            reply = (
                '$(compgen -f -- "$cur")'
                if o.path
                else f'$(compgen -W "{" ".join(o.choices)}" -- "$cur")'
                if o.choices
                else ""
            )
            for flag in o.flags:
                values.append(f'        "{c.name}:{flag}") COMPREPLY=({reply}); return ;;')
    words = [
        f'        "{c.name}") COMPREPLY=($(compgen -W "{" ".join(_all_words(c))}" -- "$cur")) ;;'
        for c in found
    ]
    return "\n".join(
        [
            f'# {prog} completion for bash: eval "$({prog} completion bash)" in ~/.bashrc, or save',
            f"# it as ~/.local/share/bash-completion/completions/{prog}",
            f"{func}() {{",
            '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
            '    local verb="" i',
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            '        case "${COMP_WORDS[i]}" in',
            f'            {verbs}) verb="${{COMP_WORDS[i]}}"; break ;;',
            "        esac",
            "    done",
            '    case "$verb:$prev" in',
            *values,
            "    esac",
            '    case "$verb" in',
            *words,
            "    esac",
            "}",
            f"complete -o default -F {func} {prog}",
        ]
    )


def _all_words(c: Command) -> list[str]:
    return [*c.words, *(f for o in c.options for f in o.flags)]


def _fish(prog: str, found: list[Command]) -> str:
    verbs = " ".join(c.name for c in found if c.name)
    lines = [
        f"# {prog} completion for fish: {prog} completion fish > "
        f"~/.config/fish/completions/{prog}.fish",
        f"complete -c {prog} -f",
    ]
    for c in found:
        when = "__fish_use_subcommand" if not c.name else f"__fish_seen_subcommand_from {c.name}"
        if c.words:
            lines.append(f"complete -c {prog} -n '{when}' -a '{' '.join(c.words)}'")
        for o in c.options:
            parts = [f"complete -c {prog} -n '{when}'"]
            parts += [
                f"-l {f.removeprefix('--')}" if f.startswith("--") else f"-s {f[1:]}"
                for f in o.flags
            ]
            if o.path:
                parts.append("-r -F")
            elif o.choices:
                parts.append(f"-x -a '{' '.join(o.choices)}'")
            elif o.takes_value:
                parts.append("-x")
            if o.help:
                parts.append(f"-d {_fish_quoted(o.help)}")
            lines.append(" ".join(parts))
    lines.append(f"# commands: {verbs}")
    return "\n".join(lines)


def _fish_quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
