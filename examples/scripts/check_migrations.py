"""Migration safety check for CI: fail the build on migrations that would lock production.

    python check_migrations.py migrations/versions [--sarif dbopt.sarif] [--fail-on warning]

Checks every Alembic revision and ``.sql`` file (``CREATE INDEX`` without
``CONCURRENTLY``, foreign keys without ``NOT VALID``, column type changes,
missing ``lock_timeout``, ...), prints the findings with their fixes, writes
SARIF for code scanning, and exits 1 when a finding is at or above
``--fail-on``. The same check is ``dbopt check-migrations PATH --format sarif``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dbopt.findings import Severity
from dbopt.migrations import check
from dbopt.report.findings import render_text
from dbopt.report.sarif import render_sarif


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--sarif", type=Path, help="write SARIF 2.1.0 here")
    parser.add_argument("--fail-on", default="warning", choices=["info", "warning", "error"])
    args = parser.parse_args(argv)

    report = check(args.paths)
    print(render_text(report.findings, why=True, errors=report.errors))
    if args.sarif:
        args.sarif.write_text(render_sarif(report.findings))
    limit = Severity.parse(args.fail_on)
    failed = any(f.severity >= limit for f in report.findings) or bool(report.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
