"""A subcommand of ``dbopt``: its name, help, options and what runs it.

Each command module ends with a ``COMMANDS`` table of them; ``build_parser``
adds every module's table to the parser in turn.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Command", "Subparsers"]

#: What ``ArgumentParser.add_subparsers()`` returns.
Subparsers = argparse._SubParsersAction  # argparse names no public type for it


@dataclass(frozen=True)
class Command:
    """One subcommand: ``options`` adds its arguments to its parser, ``run`` runs it.

    ``run`` takes the parsed arguments and returns the exit code; a command
    with subcommands of its own (``partitions``) has none and adds theirs
    in ``options``.
    """

    name: str
    help: str
    options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int] | None
    description: str | None = None

    def add_to(self, sub: Subparsers[argparse.ArgumentParser]) -> argparse.ArgumentParser:
        """Add this command to ``sub``; returns its parser."""
        p = sub.add_parser(self.name, help=self.help, description=self.description)
        self.options(p)
        if self.run is not None:
            p.set_defaults(func=self.run)
        return p
