"""pytest-queryguard's whole scenario corpus under dbopt: verdicts beside the plugin's.

Not a timing benchmark: an agreement count. pytest-queryguard 0.4.1 ships a
corpus of scenario modules (``tests/corpus/scenarios/*.py``), each with a
ground-truth ``VERDICT`` (BUG or CLEAN) and ``KNOWN`` configurations where the
plugin disagrees with it. This script imports them from an unpacked sdist
(nothing of it is copied into dbopt), runs each scenario's ``setup`` and
``run`` on PostgreSQL with every engine it creates instrumented, ``run`` in
one ``dbopt.scope`` with ``NPlusOneDetector(checks=["write_loops"])`` and
``eager.unused_eager_loads()``, and prints, per scenario, the ground truth,
the plugin's verdict in its ``all-opt-in`` configuration (the ground truth,
flipped where ``KNOWN`` names it or one of its rules) and dbopt's.

    pip download --no-deps --no-binary :all: pytest-queryguard==0.4.1
    tar xzf pytest_queryguard-0.4.1.tar.gz
    pip install --target /tmp/peers factory_boy    # one scenario seeds with it
    PYTHONPATH=src:/tmp/peers python bench/peers_queryguard_corpus.py pytest_queryguard-0.4.1

The committed port of 35 of these scenarios is
tests/test_nplusone_peers_pyguards.py; docs/nplusone.md ("Against the
peers") gives this script's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import pkgutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
import sqlalchemy.engine
import sqlalchemy.engine.create
import sqlalchemy.ext.asyncio
import sqlalchemy.ext.asyncio.engine

import dbopt
from dbopt import eager

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import describe_machine, postgres_url

#: The plugin's all-opt-in configuration is made of these rules (its tests/corpus/metrics.py).
ALL_OPT_IN = ("all-opt-in", "small-repeat", "write-loop", "column-load-2", "unused-eager-load")


def peer_verdict(module: Any) -> bool:
    """Whether pytest-queryguard (all-opt-in) reports the scenario."""
    truth = module.VERDICT == "BUG"
    known: dict[str, str | None] = dict(getattr(module, "KNOWN", {}))
    if "all-opt-in" in known:
        reason = known["all-opt-in"]
    elif any(known.get(rule) for rule in ALL_OPT_IN[1:]):
        reason = "known"
    else:
        reason = known.get("*")
    return truth != bool(reason)


class Instrumenting:
    """Every engine created while a detector is set is instrumented with it.

    ``create_engine``/``create_async_engine`` are replaced before the
    scenario modules are imported (some bind them at import time).
    """

    def __init__(self) -> None:
        self.detector: dbopt.NPlusOneDetector | None = None
        self.handles: list[Any] = []
        sync = sqlalchemy.engine.create.create_engine
        asynchronous = sqlalchemy.ext.asyncio.engine.create_async_engine

        def create_engine(*args: Any, **kwargs: Any) -> Any:
            return self._attach(sync(*args, **kwargs))

        def create_async_engine(*args: Any, **kwargs: Any) -> Any:
            return self._attach(asynchronous(*args, **kwargs))

        self._saved = [
            (owner, name, getattr(owner, name), value)
            for owner, name, value in (
                (sqlalchemy, "create_engine", create_engine),
                (sqlalchemy.engine, "create_engine", create_engine),
                (sqlalchemy.engine.create, "create_engine", create_engine),
                (sqlalchemy.ext.asyncio, "create_async_engine", create_async_engine),
                (sqlalchemy.ext.asyncio.engine, "create_async_engine", create_async_engine),
            )
        ]
        for owner, name, _, value in self._saved:
            setattr(owner, name, value)

    def restore(self) -> None:
        """Put SQLAlchemy's own functions back."""
        for owner, name, original, _ in self._saved:
            setattr(owner, name, original)

    def _attach(self, engine: Any) -> Any:
        if self.detector is not None:
            self.handles.append(dbopt.instrument(engine, self.detector))
        return engine

    @contextmanager
    def feeding(self, detector: dbopt.NPlusOneDetector) -> Iterator[None]:
        self.detector = detector
        try:
            yield
        finally:
            self.detector = None
            for handle in self.handles:
                handle.close()
            self.handles.clear()


def run_one(hooks: Instrumenting, kit: Any, module: Any, name: str) -> tuple[list[str], str | None]:
    """dbopt's finding kinds for one scenario, and the error it raised (if any)."""
    found: list[Any] = []
    detector = dbopt.NPlusOneDetector(action=found.append, checks=("write_loops",))
    error = None
    with tempfile.TemporaryDirectory() as tmp, hooks.feeding(detector):
        ctx = kit.Ctx(Path(tmp))
        try:
            ctx.reset()
            module.setup(ctx)
            ctx.sync_sequences()
            ctx.warm_up()
            with eager.unused_eager_loads(action=found.append), dbopt.scope(name):
                if inspect.iscoroutinefunction(module.run):

                    async def main() -> None:
                        try:
                            await module.run(ctx)
                        finally:
                            await ctx.dispose_async()

                    asyncio.run(main())
                else:
                    module.run(ctx)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            ctx.dispose()
    return sorted({f.kind for f in found}), error


def main(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdist", help="the unpacked pytest-queryguard 0.4.1 sdist")
    parser.add_argument("only", nargs="*", help="scenario names (default: all)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.sdist).resolve()))
    print(describe_machine())
    with postgres_url("h_peers_corpus") as url:
        os.environ["QUERYGUARD_CORPUS_PG_URL"] = url
        hooks = Instrumenting()
        try:
            counts = _run_all(hooks, args.only)
        finally:
            hooks.restore()
    total = counts["scenarios"]
    for key, label in (
        ("dbopt_peer", "dbopt agrees with queryguard (all-opt-in)"),
        ("dbopt_truth", "dbopt agrees with the corpus verdict"),
        ("peer_truth", "queryguard (all-opt-in) agrees with the corpus verdict"),
    ):
        print(f"{label}: {counts[key]}/{total} ({100 * counts[key] / max(total, 1):.1f} %)")
    return counts


def _run_all(hooks: Instrumenting, only: list[str]) -> dict[str, int]:
    """Each scenario of the sdist's corpus: the counts of agreements."""
    from tests.corpus import kit, scenarios  # the sdist's

    names = sorted(m.name for m in pkgutil.iter_modules(scenarios.__path__))
    counts = {"scenarios": 0, "dbopt_truth": 0, "peer_truth": 0, "dbopt_peer": 0}
    for name in names:
        if only and name not in only:
            continue
        module = importlib.import_module(f"tests.corpus.scenarios.{name}")
        kinds, error = run_one(hooks, kit, module, name)
        truth, peer, ours = module.VERDICT == "BUG", peer_verdict(module), bool(kinds)
        counts["scenarios"] += 1
        counts["dbopt_truth"] += ours == truth
        counts["peer_truth"] += peer == truth
        counts["dbopt_peer"] += ours == peer
        mark = "  " if ours == peer else "≠ "
        print(
            f"{mark}{name:55} truth {module.VERDICT:5} queryguard "
            f"{'BUG' if peer else 'CLEAN':5} dbopt {','.join(kinds) or '-'}"
            + (f"  [error {error}]" if error else "")
        )
    return counts


if __name__ == "__main__":
    main()
