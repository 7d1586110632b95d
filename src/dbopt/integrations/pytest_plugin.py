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
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import ExitStack
from typing import Any

import pytest

from dbopt.core.capture import CapturedQueries
from dbopt.core.nplusone_allow import NPlusOneAllow
from dbopt.instrument import capture_queries, instrument
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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _INI,
        "fail every test on an N+1 in its body, as @pytest.mark.no_n_plus_one does (dbopt)",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
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
    fail on repeated identical queries too.
    """

    def guard(
        *,
        threshold: int = 2,
        allow: Iterable[str | NPlusOneAllow] = (),
        repeated: bool = False,
    ) -> NPlusOneGuard:
        return NPlusOneGuard(
            request.node.nodeid, threshold=threshold, allow=allow, repeated=repeated
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
    stack = ExitStack()
    budget = item.get_closest_marker(_MAX_QUERIES)
    if budget is not None:
        if len(budget.args) != 1 or budget.kwargs:
            raise pytest.UsageError(f"{item.nodeid}: use @pytest.mark.max_queries(n)")
        stack.enter_context(QueryBudget(budget.args[0]))
    if _wants_n_plus_one(item):
        marker = item.get_closest_marker(_NO_N_PLUS_ONE)
        options = dict(marker.kwargs) if marker is not None else {}
        stack.enter_context(NPlusOneGuard(item.nodeid, **options))
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
