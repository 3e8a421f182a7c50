"""Command-line options for ``TrainConfig`` fields, declared once with the fields (``Config.setting``).

Options not given keep the recipe's value (``--recipe``), or the config's
default without one; ``--help`` shows each field's help, its valid names where
a registry holds them, and its default.
"""

from __future__ import annotations

import argparse
import textwrap
import typing
from dataclasses import fields
from pathlib import Path

from Utilities.Config import TrainConfig
from Utilities.Recipes import RECIPES


def add_config_options(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """``--root``, ``--recipe`` and an option per ``TrainConfig`` field in ``names`` (default: every option)."""
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder holding Models/ and splits/ "
                        "(default: .)")
    parser.add_argument("--recipe", choices=RECIPES, metavar="NAME", help=f"start from a named recipe (listed "
                        f"below), the other options overriding it: {', '.join(RECIPES)} (default: TrainConfig's "
                        f"defaults, which are neu_det's)")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    recipes = "\n".join(f"  {name:28} {textwrap.fill(recipe.description, 110, initial_indent=' ' * 31, subsequent_indent=' ' * 31).lstrip()}"
                         for name, recipe in RECIPES.items())
    parser.epilog = f"recipes:\n{recipes}" + (f"\n\n{parser.epilog}" if parser.epilog else "")
    types = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.metadata.get("option") and (names is None or f.name in names):
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=_option_type(types[f.name]),
                                default=argparse.SUPPRESS, metavar=_metavar(types[f.name]), help=help_text(f))


def checkpoint_command(description: str, epilog: str, checkpoint_help: str) -> argparse.ArgumentParser:
    """A command on a trained checkpoint: ``--checkpoint`` and ``--root`` (where its data set and split file are)."""
    parser = argparse.ArgumentParser(description=description, epilog=epilog)
    parser.add_argument("--checkpoint", required=True, type=Path, help=checkpoint_help)
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder the data set and split file "
                        "are relative to (default: .)")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config the parsed options describe: the recipe (if any) with the options given on top."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name) and f.name != "root"}
    if args.recipe:
        return TrainConfig.from_recipe(args.recipe, root=args.root, **given)
    return TrainConfig(root=args.root, **given)


def help_text(f) -> str:
    """A field's help line: what it does, its valid names, its default."""
    text = f.metadata["help"]
    if f.metadata.get("names"):
        text += ": " + ", ".join(f.metadata["names"]())
    if "default:" not in text:
        default = f.default if not isinstance(f.default, bool) else str(f.default).lower()
        text += f" (default: {'none' if default is None else default})"
    return text.replace("%", "%%")  # argparse formats help with %


def _metavar(hint) -> str:
    kind = ([k for k in typing.get_args(hint) if k is not type(None)] or [hint])[0]
    if kind is bool:
        return "true|false"
    if typing.get_origin(kind) is tuple:
        return "N,N,..." if typing.get_args(kind)[0] is int else "A,B,..."
    return {int: "N", float: "X"}.get(kind, "NAME")


def _option_type(hint):
    """An argparse type for a ``TrainConfig`` field of type ``hint``; ``none`` gives an optional field's ``None``."""
    kind = ([k for k in typing.get_args(hint) if k is not type(None)] or [hint])[0]
    parse = _boolean if kind is bool else kind
    if typing.get_origin(kind) is tuple:
        parse = whole_numbers if typing.get_args(kind)[0] is int else _names
    if type(None) not in typing.get_args(hint):
        return parse

    def optional(text: str):
        return None if text.lower() == "none" else parse(text)

    optional.__name__ = parse.__name__  # argparse names the type in its message: "invalid float value: 'abc'"
    return optional


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(","))


def whole_numbers(text: str) -> tuple[int, ...]:
    """An argparse type for ``N,N,...``: a clear message where an item is not a whole number."""
    try:
        return tuple(int(number) for number in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, not {text!r}") from None


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
    return text.lower() in ("true", "1", "yes")
