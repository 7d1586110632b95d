"""Griffe extension for dbopt's API reference: reST markup in docstrings as Markdown.

dbopt's docstrings use reST roles (``:func:`instrument```, ``:class:`~dbopt.findings.Finding```)
and ``text::`` before literal blocks. mkdocstrings renders docstrings as Markdown, where
both would show up verbatim. Loaded from ``mkdocs.yml`` (``extensions:``), this rewrites
each role as an optional cross-reference (a link when the target is documented, plain
code otherwise, never a warning) and ``::`` as ``:``. The source is not changed.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|exc|data|obj|const):`(~?)([^`]+)`")
_LITERAL = re.compile(r"(\S)::[ \t]*(?=\n[ \t]*\n)|^[ \t]*::[ \t]*(?=\n[ \t]*\n)", re.MULTILINE)


def _target(obj: griffe.Object, name: str) -> str:
    """The full path ``name`` means where ``obj`` is documented (as written if unknown)."""
    name = name.strip().rstrip("()")
    head = name.split(".", 1)[0]
    scopes: list[griffe.Object] = [obj]
    parent = obj.parent
    while parent is not None:
        scopes.append(parent)
        parent = parent.parent
    for scope in scopes:
        try:
            resolved = scope.resolve(head)
        except (griffe.NameResolutionError, AttributeError):
            continue
        return resolved + name[len(head) :]
    return name


def _rewrite(obj: griffe.Object, text: str) -> str:
    def role(match: re.Match[str]) -> str:
        short, name = match.group(1), match.group(2)
        title = name.strip().rsplit(".", 1)[-1] if short else name.strip()
        return f'<autoref identifier="{_target(obj, name)}" optional><code>{title}</code></autoref>'

    text = _ROLE.sub(role, text)
    return _LITERAL.sub(lambda m: f"{m.group(1)}:" if m.group(1) else "", text)


class RstDocstrings(griffe.Extension):
    """Rewrite the docstring of every object once the tree is built."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and not obj.is_alias:
            obj.docstring.value = _rewrite(obj, obj.docstring.value)
