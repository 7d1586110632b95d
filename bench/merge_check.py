"""What the ``Session.merge()`` check adds to a lazy load (docs/nplusone.md, "Session.merge()").

The SQLAlchemy adapter numbers each ``merge()`` call: for an ORM statement
run while the session's autoflush is off (``merge()`` turns it off), it walks
at most 10 frames to ``Session._merge``. This runs lazy loads (SQLite in
memory, a one-to-many, a no-op sink) with dbopt from two source trees, in
sessions with autoflush on and off, under callgrind: instructions per lazy
load are the difference between a run of 400 and a run of 100 parents,
divided by the 600 loads between them (a warm-up block and a measured block).

    git archive <rev> src | tar -x -C /tmp/before
    python bench/merge_check.py --before /tmp/before/src [--after src]

Needs valgrind. Nothing asserts a figure.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import ForeignKey, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

SMALL, LARGE = 100, 400


class Base(DeclarativeBase):
    pass


class Parent(Base):
    __tablename__ = "p"
    id: Mapped[int] = mapped_column(primary_key=True)
    kids: Mapped[list[Kid]] = relationship()


class Kid(Base):
    __tablename__ = "k"
    id: Mapped[int] = mapped_column(primary_key=True)
    p_id: Mapped[int] = mapped_column(ForeignKey("p.id"))


def worker(n: int, autoflush: bool) -> None:
    import dbopt

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Parent(id=i, kids=[Kid(id=i)]) for i in range(1, LARGE + 1)])
        session.commit()
    dbopt.instrument(engine, lambda event: None)

    def block() -> None:
        with Session(engine, autoflush=autoflush) as session:
            for parent in session.scalars(select(Parent).order_by(Parent.id).limit(n)).all():
                parent.kids  # noqa: B018 - the lazy load

    gc.collect()
    gc.disable()
    block()
    block()


def instructions(src: str, n: int, autoflush: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out"]
        command += [sys.executable, __file__, "--worker", str(n), str(int(autoflush))]
        run = subprocess.run(  # noqa: S603 - our own interpreter and this file
            command,
            env={**os.environ, "PYTHONPATH": src, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise SystemExit(run.stderr[-2000:])
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", help="src/ of the tree to compare against (required)")
    parser.add_argument("--after", default=str(Path(__file__).resolve().parents[1] / "src"))
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], bool(args.worker[1]))
        return
    if not args.before:
        parser.error("--before is required")
    for autoflush in (True, False):
        per_load = {}
        for name, src in (("before", args.before), ("after", args.after)):
            small = instructions(src, SMALL, autoflush)
            large = instructions(src, LARGE, autoflush)
            per_load[name] = (large - small) / (2 * (LARGE - SMALL))
        added = per_load["after"] - per_load["before"]
        print(
            f"autoflush={'on ' if autoflush else 'off'}  before {per_load['before']:,.0f} Ir/load"
            f"  after {per_load['after']:,.0f}  added {added:+,.0f}"
            f" ({added / per_load['before']:+.2%})"
        )


if __name__ == "__main__":
    main()
