"""``python -m dbopt`` is the ``dbopt`` command."""

from __future__ import annotations

import sys

from dbopt.cli import main

if __name__ == "__main__":
    sys.exit(main())
