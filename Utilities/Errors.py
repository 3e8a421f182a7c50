"""Mistakes a user can fix (bad data, bad arguments, a missing file), and how every command reports them.

Each is a ``UserError`` beside the built-in exception it used to be
(``KeyError``, ``ValueError``, ``FileNotFoundError``), so library callers
catch what they always caught, while the commands print the message alone,
without a traceback, and exit with status 2 (``run_command``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

EXIT_USER_ERROR = 2  # as argparse exits for a bad option


class UserError(Exception):
    """A problem the message explains and the user can fix."""


class UnknownName(UserError, KeyError):
    """A name not in its registry; the message lists the known ones (``KeyError`` would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(UserError, ValueError):
    """A setting out of its range."""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder the run needs is not there; the message names the command that makes it."""


def check_name(kind: str, name: str, known: Iterable[str]) -> str:
    """``name`` if it is one of ``known``, else ``UnknownName`` listing them."""
    known = list(known)
    if name not in known:
        raise UnknownName(f"unknown {kind} {name!r}; known: {', '.join(known)}")
    return name


def run_command(main: Callable[[], None]) -> None:
    """Run a command's ``main``: a ``UserError`` ends it with its message on stderr and exit status 2."""
    try:
        main()
    except UserError as problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
