"""The subcommand registry of ``mirocals``: ``@subcommand(arg(...), ...)`` on a ``cmd_NAME``
function registers ``mirocals NAME``; ``mirocals.cli.build_parser`` builds the parser from
``SUBCOMMANDS``.

The function's docstring is its ``--help`` text: the first line is the one-line help shown by
``mirocals --help``, the rest the description shown by ``mirocals NAME --help``.
"""
from __future__ import annotations

import argparse
import inspect
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["SUBCOMMANDS", "Arg", "OneOf", "Subcommand", "arg", "one_of", "subcommand"]


@dataclass(frozen=True)
class Arg:
    """One option or positional: ``argparse.add_argument(*flags, **options)``."""
    flags: tuple[str, ...]
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OneOf:
    """Options of which exactly one must be given (a required mutually exclusive group)."""
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Subcommand:
    """A registered subcommand: ``mirocals NAME``, run by ``func(args) -> exit status``."""
    name: str
    func: Callable[[argparse.Namespace], int]
    arguments: tuple[Arg | OneOf, ...]
    more_description: Callable[[], str] | None = None

    @property
    def help(self) -> str:
        return inspect.getdoc(self.func).split("\n", 1)[0]

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.func).split("\n\n", 1)
        text = doc[1] if len(doc) > 1 else doc[0][:1].upper() + doc[0][1:] + "."
        return text + (" " + self.more_description() if self.more_description else "")


SUBCOMMANDS: dict[str, Subcommand] = {}


def arg(*flags: str, **options) -> Arg:
    return Arg(flags, options)


def one_of(*args: Arg) -> OneOf:
    return OneOf(args)


def subcommand(*arguments: Arg | OneOf, name: str | None = None,
               more_description: Callable[[], str] | None = None):
    """Register ``cmd_NAME`` as ``mirocals NAME`` (``cmd_import`` -> ``import``). ``name`` with a
    space (``name="audit verify"``) makes a two-word subcommand under a group (``mirocals audit``)."""
    def register(func):
        key = name or func.__name__.removeprefix("cmd_").replace("_", "-")
        SUBCOMMANDS[key] = Subcommand(key, func, arguments, more_description)
        return func
    return register
