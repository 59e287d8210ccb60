"""The README documents the ``mirocals`` command (as datasette's tests/test_docs.py does).

The real parser (``mirocals.cli.build_parser``) is walked; the README's "The `mirocals` command"
section is parsed (its fenced blocks, one ``mirocals SUBCOMMAND ...`` line per subcommand). A
subcommand or option added to the parser and not to the README fails here; so does a README line
naming a subcommand or option the parser does not have, and a subcommand or option without
``--help`` text.
"""
from __future__ import annotations

import argparse
import io
import re
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from mirocals.cli import build_parser, main

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## The `mirocals` command"


def leaf_parsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """Every runnable subcommand: full name ("table", "audit verify") -> (its parser, its help)."""
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                full = f"{prefix}{name}"
                nested = leaf_parsers(sub, prefix=f"{full} ")
                out.update(nested or {full: (sub, helps.get(name))})
    return out


def documented_items(parser: argparse.ArgumentParser) -> list[tuple[str, set[str], argparse.Action]]:
    """(what to call it, README tokens any of which documents it, the action) for every option
    (each ``--flag``), every positional (its metavar, or all its choices) and every choice of an
    option (``--format text|csv|md`` must list them all)."""
    items = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            for flag in action.option_strings:
                if flag.startswith("--"):
                    items.append((flag, {flag}, action))
            for choice in action.choices or ():
                items.append((f"{action.option_strings[-1]} {choice}", {str(choice)}, action))
        elif action.choices:
            items.append((action.dest, {"|".join(map(str, action.choices))}, action))
        else:
            items.append((action.dest, {action.metavar or action.dest.upper()}, action))
    return items


def readme_lines() -> list[str]:
    """The lines of the fenced blocks of the README's command section."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no '{SECTION}' section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", section, flags=re.M | re.S)
    return [line for block in blocks for line in block.splitlines()]


def tokens(line: str) -> set[str]:
    """Words of a synopsis line: ``[--effect published|null|strong]`` gives ``--effect``,
    ``published``, ``null``, ``strong`` and ``published|null|strong``."""
    line = line.split("#", 1)[0]
    words = set()
    for word in re.split(r"[\s\[\]()]+", line):
        if word:
            words.add(word)
            words.update(w for w in word.split("|") if w)
    return words


def command_lines(name: str) -> list[set[str]]:
    """Token sets of the README lines that run ``mirocals NAME``."""
    pattern = re.compile(r"(?:^|\s)mirocals\s+" + re.escape(name).replace(r"\ ", r"\s+") + r"(?=\s|$)")
    return [tokens(line) for line in readme_lines() if pattern.search(line)]


PARSER = build_parser()
COMMANDS = leaf_parsers(PARSER)


def test_the_parser_has_the_subcommands_of_the_design():
    assert {"demo", "cut", "import", "export", "validate", "table", "report", "serve"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_subcommand_is_in_the_readme(name):
    assert command_lines(name), f"README.md's command section has no 'mirocals {name} ...' line"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_of_the_subcommand_is_on_its_readme_line(name):
    # one line names them all (the synopsis); report what the most complete line lacks
    items = documented_items(COMMANDS[name][0])
    lines = command_lines(name) or [set()]
    missing = min(([label for label, accepted, _ in items if not accepted & words] for words in lines), key=len)
    assert not missing, f"README.md: 'mirocals {name}' does not document {', '.join(missing)}"


def test_readme_names_only_real_subcommands_and_options():
    groups = {name.split(" ")[0] for name in COMMANDS if " " in name}
    problems = []
    for line in readme_lines():
        m = re.search(r"(?:^|\s)mirocals\s+(\S+)(?:\s+(\S+))?", line.split("#", 1)[0])
        if not m:
            continue
        name = f"{m[1]} {m[2]}" if m[1] in groups else m[1]
        if name not in COMMANDS:
            problems.append(f"unknown subcommand 'mirocals {name}' in: {line.strip()}")
            continue
        known = {flag for action in COMMANDS[name][0]._actions for flag in action.option_strings}
        flags = {w for w in tokens(line) if w.startswith("--") and "|" not in w}
        problems += [f"'mirocals {name}' has no option {flag}: {line.strip()}" for flag in sorted(flags - known)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_subcommand_and_its_options_have_help_text(name):
    parser, help_text = COMMANDS[name]
    assert help_text and help_text.strip(), f"mirocals {name} has no help text"
    assert parser.description and parser.description.strip(), f"mirocals {name} --help has no description"
    no_help = [label for label, _, action in documented_items(parser)
               if not (action.help and action.help.strip())]
    assert not no_help, f"mirocals {name}: no help text for {', '.join(sorted(set(no_help)))}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_runs_and_lists_every_option(name):
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exc:
        main([*name.split(), "--help"])
    assert exc.value.code == 0
    text = out.getvalue()
    assert text.startswith(f"usage: mirocals {name}")
    for action in COMMANDS[name][0]._actions:
        if action.option_strings:
            assert all(flag in text for flag in action.option_strings)
        else:
            shown = action.metavar or ("{%s}" % ",".join(action.choices) if action.choices else action.dest)
            assert shown in text


def test_top_level_help_lists_every_subcommand():
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    for name in COMMANDS:
        assert name.split(" ")[0] in out.getvalue()
