"""pytest plugin: query budgets and N+1 checks for your tests.

Registered through the ``pytest11`` entry point ``dbopt``, or with
``-p dbopt.integrations.pytest_plugin``. Statements are seen from the targets
your tests instrument with :func:`dbopt.instrument`, or from those the
``dbopt_targets`` fixture returns (override it in a ``conftest.py``)::

    @pytest.fixture
    def dbopt_targets(engine):
        return [engine]

Fixtures: ``dbopt_queries`` (every statement of the test),
``assert_max_queries(n)`` and ``assert_no_n_plus_one()`` (context managers).
Markers: ``@pytest.mark.no_n_plus_one`` fails the test on any N+1 in its
body, ``@pytest.mark.max_queries(n)`` on more than ``n`` statements. The ini
option ``dbopt_no_n_plus_one = true`` applies the N+1 check to every test.

For CI: ``--dbopt-baseline=FILE`` (or the ini ``dbopt_baseline``) fails only
on findings not in the file, and lists stale entries at the end;
``--dbopt-write-baseline`` writes the file from this run's findings instead
of failing on them; ``--dbopt-sarif=FILE`` writes every finding as SARIF
2.1.0 for code scanning (``baselineState`` new/unchanged with a baseline).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from typing_extensions import Unpack

from dbopt.core.capture import CapturedQueries
from dbopt.core.nplusone_allow import NPlusOneAllow
from dbopt.core.nplusone_findings import NPlusOneFinding
from dbopt.errors import ConfigurationError
from dbopt.handle import ExcInfo
from dbopt.instrument import capture_queries, instrument
from dbopt.integrations._baseline import Baseline, RunFindings, identity_of, sarif_log
from dbopt.integrations._guards import (
    NPlusOneAssertionError,
    NPlusOneGuard,
    QueryBudget,
    QueryBudgetError,
)

__all__ = [
    "NPlusOneAssertionError",
    "NPlusOneGuard",
    "QueryBudget",
    "QueryBudgetError",
    "assert_max_queries",
    "assert_no_n_plus_one",
    "dbopt_queries",
    "dbopt_targets",
]

_NO_N_PLUS_ONE = "no_n_plus_one"
_MAX_QUERIES = "max_queries"
_INI = "dbopt_no_n_plus_one"
_BASELINE_INI = "dbopt_baseline"


class _CiState:
    """The session's baseline, its findings and the tests that ran."""

    def __init__(self, config: pytest.Config) -> None:
        option = config.getoption("dbopt_baseline") or config.getini(_BASELINE_INI) or None
        self.path = Path(config.rootpath, option) if option else None
        self.write = bool(config.getoption("dbopt_write_baseline"))
        if self.write and self.path is None:
            raise pytest.UsageError("--dbopt-write-baseline needs --dbopt-baseline=FILE")
        sarif = config.getoption("dbopt_sarif")
        self.sarif = Path(config.rootpath, sarif) if sarif else None
        try:
            self.baseline = Baseline.read(self.path) if self.path and not self.write else Baseline()
        except ConfigurationError as exc:
            raise pytest.UsageError(str(exc)) from exc
        self.run = RunFindings(config.rootpath)
        self.ran: set[str] = set()

    def sort(self, test: str, findings: Sequence[NPlusOneFinding]) -> list[NPlusOneFinding]:
        """Record ``findings`` of ``test``; those that must fail it (none when writing)."""
        new: list[NPlusOneFinding] = []
        for finding in findings:
            known = identity_of(finding, self.run.root) in self.baseline
            self.run.add(test, finding, known)
            if not known:
                new.append(finding)
        return [] if self.write else new


_STATE = pytest.StashKey[_CiState]()


class _BaselineGuard(NPlusOneGuard):
    """An :class:`NPlusOneGuard` that records its findings and fails only on new ones."""

    def __init__(self, state: _CiState, test: str, **options: Any) -> None:
        super().__init__(test, **options)
        self._state = state
        self._test = test

    def __exit__(self, *exc_info: Unpack[ExcInfo]) -> None:
        __tracebackhide__ = True
        try:
            super().__exit__(*exc_info)
        except NPlusOneAssertionError as exc:
            new = self._state.sort(self._test, exc.findings)
            if new:
                raise NPlusOneAssertionError(new) from None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _INI,
        "fail every test on an N+1 in its body, as @pytest.mark.no_n_plus_one does (dbopt)",
        type="bool",
        default=False,
    )
    parser.addini(_BASELINE_INI, "dbopt baseline file of accepted findings (--dbopt-baseline)")
    group = parser.getgroup("dbopt")
    group.addoption(
        "--dbopt-baseline",
        dest="dbopt_baseline",
        metavar="FILE",
        help="fail only on dbopt findings not listed in FILE (relative to the root dir)",
    )
    group.addoption(
        "--dbopt-write-baseline",
        dest="dbopt_write_baseline",
        action="store_true",
        help="write this run's dbopt findings to the baseline file instead of failing on them",
    )
    group.addoption(
        "--dbopt-sarif",
        dest="dbopt_sarif",
        metavar="FILE",
        help="write this run's dbopt findings as SARIF 2.1.0 to FILE (code scanning)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STATE] = _CiState(config)
    config.addinivalue_line(
        "markers",
        f"{_NO_N_PLUS_ONE}(threshold=2, allow=(), repeated=False): fail the test when dbopt "
        "finds an N+1 (or, with repeated=True, a repeated query) in its body",
    )
    config.addinivalue_line(
        "markers",
        f"{_MAX_QUERIES}(n): fail the test when its body runs more than n statements (dbopt)",
    )


@pytest.fixture
def dbopt_targets() -> Sequence[Any]:
    """Engines, connections or pools to instrument for each test; override it.

    The default is none: only targets your code instrumented are seen.
    """
    return ()


@pytest.fixture
def _dbopt_instrumented(dbopt_targets: Sequence[Any]) -> Iterator[None]:
    with ExitStack() as stack:
        for target in dbopt_targets:
            stack.enter_context(instrument(target))
        yield


@pytest.fixture
def dbopt_queries(_dbopt_instrumented: None) -> Iterator[CapturedQueries]:
    """Every statement run from here to the end of the test (a list of events)."""
    with capture_queries() as captured:
        yield captured


@pytest.fixture
def assert_max_queries(_dbopt_instrumented: None) -> Callable[[int], QueryBudget]:
    """``with assert_max_queries(3): ...`` fails if the block runs more than 3 statements.

    The failure lists each fingerprint, how often it ran and from which lines.
    """
    return QueryBudget


@pytest.fixture
def assert_no_n_plus_one(
    _dbopt_instrumented: None, request: pytest.FixtureRequest
) -> Callable[..., NPlusOneGuard]:
    """``with assert_no_n_plus_one(): ...`` fails on an N+1 in the block.

    Keywords: ``threshold``, ``allow`` (the detector's), ``repeated=True`` to
    fail on repeated identical queries too, ``checks`` for the detector's
    opt-in checks (``"write_loops"``, ``"unbounded_queries"``, ``"potential"``, ...).
    """

    def guard(
        *,
        threshold: int = 2,
        allow: Iterable[str | NPlusOneAllow] = (),
        repeated: bool = False,
        checks: Iterable[str] = (),
    ) -> NPlusOneGuard:
        return _BaselineGuard(
            request.config.stash[_STATE],
            request.node.nodeid,
            threshold=threshold,
            allow=allow,
            repeated=repeated,
            checks=checks,
        )

    return guard


@pytest.fixture(autouse=True)
def _dbopt_markers(request: pytest.FixtureRequest) -> None:
    """Instrument ``dbopt_targets`` for tests that carry a dbopt marker."""
    node = request.node
    if _wants_n_plus_one(node) or node.get_closest_marker(_MAX_QUERIES) is not None:
        request.getfixturevalue("_dbopt_instrumented")


def _wants_n_plus_one(item: pytest.Item) -> bool:
    return item.get_closest_marker(_NO_N_PLUS_ONE) is not None or bool(item.config.getini(_INI))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Run the test body inside the guards its markers ask for.

    A guard's failure is reported as the test's failure with its message
    alone (no traceback into dbopt); a test that fails on its own is
    reported as it is.
    """
    __tracebackhide__ = True
    state = item.config.stash[_STATE]
    state.ran.add(item.nodeid)
    stack = ExitStack()
    budget = item.get_closest_marker(_MAX_QUERIES)
    if budget is not None:
        if len(budget.args) != 1 or budget.kwargs:
            raise pytest.UsageError(f"{item.nodeid}: use @pytest.mark.max_queries(n)")
        stack.enter_context(QueryBudget(budget.args[0]))
    if _wants_n_plus_one(item):
        marker = item.get_closest_marker(_NO_N_PLUS_ONE)
        options = dict(marker.kwargs) if marker is not None else {}
        stack.enter_context(_BaselineGuard(state, item.nodeid, **options))
    try:
        result = yield
    except BaseException as exc:
        stack.__exit__(type(exc), exc, exc.__traceback__)
        raise
    failure: str | None = None
    try:
        stack.close()
    except (NPlusOneAssertionError, QueryBudgetError) as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    return result


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the baseline (with ``--dbopt-write-baseline``) and the SARIF file."""
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    if state.write and state.path is not None:
        Baseline.write(state.path, state.run.identities())
    if state.sarif is not None:
        state.sarif.parent.mkdir(parents=True, exist_ok=True)
        log = sarif_log(state.run, baseline=state.path is not None and not state.write)
        state.sarif.write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say what the baseline did: written, or how many known findings and stale entries."""
    state = config.stash.get(_STATE, None)
    if state is None or state.path is None:
        return
    write = terminalreporter.write_line
    if state.write:
        count = len(state.run.identities())
        write(f"dbopt: wrote {count} finding(s) to the baseline {state.path}")
        return
    known = sum(1 for _, _, seen in state.run.findings if seen)
    stale = state.baseline.stale(state.run.identities(), state.ran)
    write(f"dbopt: {known} finding(s) known in the baseline {state.path}, {len(stale)} stale")
    for entry in stale:
        kind, what, file, function = entry.identity
        write(f"  stale: {kind} {what} in {file} {function} (tests: {', '.join(entry.tests)})")
