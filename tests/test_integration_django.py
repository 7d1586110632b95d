"""Django: the execute_wrapper adapter and the middleware, in a small real app on PostgreSQL.

The app (tests/django_blog) has django.contrib.auth users in groups, a view
that reads each user's groups (an N+1 of many-to-many queries) and one that
prefetches them.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import dbopt

django = pytest.importorskip("django")

from dbopt.integrations import django as dbopt_django  # noqa: E402
from django_blog import configure  # noqa: E402


@pytest.fixture(scope="module")
def app(pg_url: str) -> Iterator[None]:
    if not configure(pg_url):
        pytest.skip("Django settings were configured elsewhere in this process")
    yield
    from django.db import connections

    connections.close_all()


def client() -> Any:
    from django.test import Client

    return Client(raise_request_exception=True)


def finding_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.finding for r in caplog.records if r.name == "dbopt.django"]  # type: ignore[attr-defined]


def test_middleware_reports_the_n_plus_one_of_the_request(
    app: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dbopt.django"):
        lazy = client().get("/users/")
        prefetched = client().get("/users/prefetched/")
        one = client().get("/users/1/")
        two = client().get("/users/2/")
    assert (
        lazy.json()
        == prefetched.json()
        == [
            ["g0"],
            ["g0", "g1"],
            ["g0", "g1", "g2"],
            ["g0"],
            ["g0", "g1"],
        ]
    )
    assert (one.status_code, two.status_code) == (200, 200)
    (finding,) = finding_records(caplog)
    assert finding["scope"] == "GET users/"
    assert finding["count"] == 5
    assert "auth_user_groups" in finding["sql"]
    assert "django_blog/views.py" in finding["callsite"]
    assert "users" in finding["callsite"] or "<listcomp>" in finding["callsite"]
    assert finding["relationship"] == "User.groups"
    assert finding["loader_option"] == 'prefetch_related("groups")'
    assert lazy[dbopt_django.COUNT_HEADER] == "6"  # the users, then one query per user
    assert prefetched[dbopt_django.COUNT_HEADER] == "2"
    assert float(lazy[dbopt_django.TIME_HEADER]) > 0
    assert dbopt.current_scope() is None


def test_failing_view_closes_the_scope(app: None) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        client().get("/boom/")
    assert dbopt.current_scope() is None


def test_adapter_events_and_capture(app: None) -> None:
    from django.contrib.auth.models import User

    stats = dbopt.QueryStats()
    events: list[dbopt.QueryEvent] = []
    with dbopt_django.instrument(stats, events.append, using="default"):
        with dbopt.capture_queries() as captured:
            names = [u.username for u in User.objects.filter(username__startswith="user")]
        User.objects.filter(pk__in=[1, 2]).exists()
    User.objects.count()  # after the block: not seen
    assert len(names) == 5
    assert [e.sql for e in captured] == [events[0].sql]
    first = events[0]
    assert (first.adapter, first.dialect, first.kind) == ("django", "postgresql", "select")
    assert first.parameters == ("user%",)
    assert first.rowcount == 5
    assert first.callsite is not None
    assert first.callsite.file.endswith("test_integration_django.py")
    assert len(events) == 2
    assert sum(s.calls for s in stats.statements()) == 2


def test_adapter_records_errors(app: None) -> None:
    from django.db import connection

    events: list[dbopt.QueryEvent] = []
    with (
        dbopt_django.instrument(events.append),
        pytest.raises(Exception, match="no_such_table"),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT * FROM no_such_table")
    assert events[-1].failed
    connection.close()


def test_missing_django_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "django.conf", None)
    monkeypatch.delitem(sys.modules, "dbopt.integrations.django")
    with pytest.raises(dbopt.MissingDependencyError, match=r"pip install 'dbopt\[django\]'"):
        importlib.import_module("dbopt.integrations.django")
    monkeypatch.undo()
    assert importlib.import_module("dbopt.integrations.django") is dbopt_django


class _NoOrm(list[dbopt.QueryEvent]):
    """A sink that declares it never reads ``event.orm``."""

    dbopt_reads_orm = False

    def __call__(self, event: dbopt.QueryEvent) -> None:
        self.append(event)


def test_orm_context_is_found_only_for_sinks_that_read_it(app: None) -> None:
    from django.contrib.auth.models import User

    blind = _NoOrm()
    with dbopt_django.instrument(dbopt.QueryStats(), blind, using="default"):
        list(User.objects.filter(username__startswith="user"))
    assert blind
    assert blind[-1].orm is None  # the frame walk was skipped
    seeing: list[dbopt.QueryEvent] = []
    with dbopt_django.instrument(blind, seeing.append, using="default"):
        list(User.objects.filter(username__startswith="user"))
    assert seeing[-1].orm is not None
    assert seeing[-1].orm.entity == "User"
