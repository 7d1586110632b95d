"""Partition maintenance as a cron job: keep every partitioned table to its spec.

    python partition_maintenance.py DATABASE_URL partitions.json

``partitions.json`` holds a list of ``PartitionSpec`` dicts, e.g.
``[{"table": "user_interactions", "key": "created_at", "interval": "month",
"premake": 4, "retention": "12 months"}]``. Each run creates the partitions
ahead, detaches the expired ones and logs what it did; a converged table
plans nothing, so run it as often as you like (cron: ``17 */6 * * *``).
Exit status 1 when any operation failed: cron mails it, a Kubernetes
CronJob marks the run failed.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from dbopt.partitions import PartitionManager, PartitionSpec

log = logging.getLogger("partition-maintenance")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    url, spec_file = args
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    specs = [PartitionSpec.from_dict(d) for d in json.loads(Path(spec_file).read_text())]
    manager = PartitionManager(url)
    ok = True
    for spec in specs:
        result = manager.maintain(spec)
        for line in result.describe().splitlines():
            log.info("%s", line)
        check = manager.check(spec)
        if check.default_rows:
            log.warning("%s: %d rows in the default partition", spec.qualified, check.default_rows)
        ok = ok and result.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
