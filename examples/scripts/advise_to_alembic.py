"""Advise indexes for a recorded workload and write them as an Alembic migration.

    python advise_to_alembic.py DATABASE_URL stats.json migrations/versions [--down-revision REV]

``stats.json`` is a saved ``dbopt.QueryStats`` (``json.dump(stats.to_dict(), fh)``
in your app, a load test or the test suite). The migration creates each
index ``CONCURRENTLY`` in an autocommit block and drops it on downgrade.
Exit status: 0 with a migration written, 1 when there is nothing to add.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

import dbopt
from dbopt.advisor import IndexAdvisor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("stats", type=Path)
    parser.add_argument("versions", type=Path, help="Alembic versions directory")
    parser.add_argument("--down-revision", default=None)
    args = parser.parse_args(argv)

    stats = dbopt.QueryStats.from_dict(json.loads(args.stats.read_text()))
    report = IndexAdvisor(args.database_url, install_hypopg=False).advise(stats)
    print(report.to_text())
    if not report.recommendations:
        return 1
    revision = secrets.token_hex(6)
    path = args.versions / f"{revision}_add_recommended_indexes.py"
    args.versions.mkdir(parents=True, exist_ok=True)
    path.write_text(report.to_alembic(revision=revision, down_revision=args.down_revision))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
