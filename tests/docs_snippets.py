"""Run the code blocks of the docs that are marked ``<!-- tested: NAME -->``.

The block is compiled with the docs file as its file name and its own line
numbers, so a call site in it reads ``docs/integrations.md:<line>``: a test
can check that dbopt points at the very line a reader sees.
"""

from __future__ import annotations

import itertools
import re
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent / "docs"
_runs = itertools.count()


def snippet(name: str, page: str = "integrations.md") -> tuple[str, int, Path]:
    """The code of block ``name`` of ``page``, the line of its first statement, the page's path."""
    path = DOCS / page
    lines = path.read_text().splitlines()
    (marker,) = [i for i, line in enumerate(lines) if line.strip() == f"<!-- tested: {name} -->"]
    fence = marker + 1
    assert re.fullmatch(r"\s*```python", lines[fence]), f"{name}: no python block after marker"
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].strip() == "```")
    code = textwrap.dedent("\n".join(lines[fence + 1 : end]))
    return code, fence + 2, path


def run_snippet(name: str, page: str = "integrations.md", **namespace: Any) -> dict[str, Any]:
    """Execute block ``name`` as a fresh module (with ``namespace`` predefined); its globals.

    The module is registered in ``sys.modules`` (ORMs resolve annotations there).
    """
    code, first, path = snippet(name, page)
    compiled = compile("\n" * (first - 1) + code, str(path), "exec", dont_inherit=True)
    module = types.ModuleType(f"docs_{name.replace('-', '_')}_{next(_runs)}")
    module.__dict__.update(namespace)
    sys.modules[module.__name__] = module
    exec(compiled, module.__dict__)  # noqa: S102 - the docs' own example, run as a reader would
    return module.__dict__


def line_in_snippet(name: str, text: str, page: str = "integrations.md") -> int:
    """The docs line of the one line of block ``name`` that contains ``text``."""
    code, first, _ = snippet(name, page)
    (index,) = [i for i, line in enumerate(code.splitlines()) if text in line]
    return first + index
