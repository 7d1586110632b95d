"""Django as a first-class stack: the blog of tests/django_blog on real PostgreSQL.

Statements from template loops are located at the template file and the line
of the tag; findings name select_related / prefetch_related / Prefetch /
annotate(Count) for the exact relation, and the fixed views, which apply
them, run without any N+1. Header counts equal the statements Django ran.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

django = pytest.importorskip("django")

from dbopt.integrations import django as dbopt_django  # noqa: E402
from django_blog import configure  # noqa: E402

TEMPLATES = Path(__file__).resolve().parent / "django_blog" / "templates" / "blog"


@pytest.fixture(scope="module")
def app(pg_url: str) -> Iterator[None]:
    if not configure(pg_url):
        pytest.skip("Django settings were configured elsewhere in this process")
    yield
    from django.db import connections

    connections.close_all()


def line_of(template: str, text: str) -> int:
    """The 1-based line of ``text`` in a template of the blog (exactly one)."""
    lines = (TEMPLATES / template).read_text().splitlines()
    (number,) = [i for i, line in enumerate(lines, 1) if text in line]
    return number


def get(url: str, caplog: pytest.LogCaptureFixture) -> tuple[Any, list[dict[str, Any]], int]:
    """Fetch ``url``; its response, its findings and the statements Django itself counted."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    caplog.clear()
    with (
        caplog.at_level(logging.WARNING, logger="dbopt.django"),
        CaptureQueriesContext(connection) as ran,
    ):
        response = Client(raise_request_exception=True).get(url)
    assert response.status_code == 200
    findings = [r.finding for r in caplog.records if r.name == "dbopt.django"]  # type: ignore[attr-defined]
    assert response[dbopt_django.COUNT_HEADER] == str(len(ran))
    return response, findings, len(ran)


def by_relationship(findings: list[dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    """The findings by relationship, the filtered one (a Prefetch) left out."""
    plain = [f for f in findings if "Prefetch" not in (f["loader_option"] or "")]
    out = {f["relationship"]: f for f in plain}
    assert len(out) == len(plain), findings
    return out


def test_template_loops_are_found_at_the_template_line_with_django_fixes(
    app: None, caplog: pytest.LogCaptureFixture
) -> None:
    response, findings, ran = get("/", caplog)
    assert response.content.count(b"<article>") == 10
    found = by_relationship(findings)
    assert len(findings) == 5
    assert set(found) == {
        "Post.category",
        "Post.author",
        "Post.comment_set",
        "Post.tags",
    }, findings
    assert all(f["kind"] == "n_plus_one" and f["scope"] == "GET /" for f in findings)
    index = str(TEMPLATES / "index.html")
    expected = {
        "Post.category": ("post.category.name", 'select_related("category")'),
        "Post.author": ("post.author.username", 'select_related("author")'),
        "Post.tags": ("post.tags.all", 'prefetch_related("tags")'),
    }
    for relationship, (text, option) in expected.items():
        finding = found[relationship]
        assert (
            finding["callsite"]
            == f"{index}:{line_of('index.html', text)} in template blog/index.html"
        )
        assert finding["loader_option"] == option
        assert finding["count"] == 10
        assert "views.py" in finding["stack"][1]  # the view that rendered the template is next
    # 10 posts of one category: the same value ten times is an N+1, not a "repeated query"
    assert "select_related" in found["Post.category"]["suggestion"]
    assert not any(f["kind"] == "repeated_query" for f in findings)
    # the count per row gets an aggregate, on the lookup name of the relation
    count = found["Post.comment_set"]
    assert count["loader_option"] == 'annotate(comment_count=Count("comment"))'
    assert count["callsite"].startswith(f"{index}:{line_of('index.html', 'comment_set.count')} ")
    # 1 posts + 10 x (category, author, count, tags, approved comments) + 1 sidebar
    assert ran == 1 + 10 * 5 + 1


def test_a_filtered_related_manager_gets_a_prefetch_with_its_queryset(
    app: None, caplog: pytest.LogCaptureFixture
) -> None:
    _, findings, _ = get("/", caplog)
    filtered = [f for f in findings if "Prefetch" in (f["loader_option"] or "")]
    assert len(filtered) == 1, findings
    (finding,) = filtered
    assert finding["loader_option"] == (
        'prefetch_related(Prefetch("comment_set", queryset=Comment.objects.filter(...)))'
    )
    assert finding["relationship"] == "Post.comment_set"
    # the model method built the queryset; the template's loop ran it
    line = line_of("index.html", "post.approved_comments")
    assert finding["callsite"] == f"{TEMPLATES / 'index.html'}:{line} in template blog/index.html"
    assert "views.py" in finding["stack"][1]


def test_the_fixes_applied_remove_every_n_plus_one(
    app: None, caplog: pytest.LogCaptureFixture
) -> None:
    lazy, _, _ = get("/", caplog)
    fixed, findings, ran = get("/fixed/", caplog)
    assert findings == []
    # posts (with the joins and the count), tags, approved comments, the sidebar
    assert ran == 4
    strip = [b" ".join(r.content.split()) for r in (lazy, fixed)]
    assert strip[0] == strip[1]


def test_page_queries_sharing_a_fingerprint_from_two_template_lines_are_no_n_plus_one(
    app: None, caplog: pytest.LogCaptureFixture
) -> None:
    # post/<pk>/: the post (by pk), then the sidebar's LIMIT 5 from base.html; the index
    # runs the same statement with LIMIT 10 from index.html: one fingerprint, two lines
    response, findings, ran = get("/post/25/", caplog)
    assert b"post 24" in response.content
    assert findings == []
    assert ran == 4  # the post, its author, its category, the sidebar


def test_regex_routes_get_readable_scope_names(app: None) -> None:
    from django.urls import resolve

    names = [
        dbopt_django.route_name(resolve(url))
        for url in ("/post/3/", "/archive/2024/", "/users/2/", "/")
    ]
    # a regex route as a path; one that stays a regex by its view name; the root: None,
    # the middleware then keeps the request's path ("GET /")
    assert names == ["post/<pk>/", "archive", "users/<int:pk>/", None]


def test_an_explicit_query_per_row_on_a_foreign_key_names_the_reverse_relation(
    app: None, caplog: pytest.LogCaptureFixture
) -> None:
    lazy, findings, _ = get("/comments/", caplog)
    (finding,) = findings
    assert finding["kind"] == "n_plus_one"
    assert finding["relationship"] is None  # not a lazy load: the loop's own query
    assert finding["loader_option"] == 'prefetch_related("comment_set")'
    assert "django_blog/views.py" in finding["callsite"]
    fixed, after, ran = get("/comments/fixed/", caplog)
    assert after == []
    assert ran == 2
    assert lazy.json() == fixed.json()


def test_the_view_s_own_read_of_the_shared_value_is_no_extra_repeated_query(
    app: None, caplog: pytest.LogCaptureFixture
) -> None:
    from django_blog.models import Category

    news = Category.objects.get(name="news")
    # the view reads the category once, then each of the 10 posts reads it again:
    # 11 identical statements, all explained by the N+1 of Post.category
    _, findings, _ = get(f"/category/{news.pk}/", caplog)
    assert [f["kind"] for f in findings].count("repeated_query") == 0, findings
    categories = [f for f in findings if f["relationship"] == "Post.category"]
    assert [f["count"] for f in categories] == [10]


def test_a_relation_reached_through_a_lazy_foreign_key_gets_the_path_from_the_root(
    app: None, caplog: pytest.LogCaptureFixture
) -> None:
    lazy, findings, ran = get("/profiles/", caplog)
    options = sorted(f["loader_option"] for f in findings)
    # post.author (two authors, six posts), then author.profile per post
    assert options == ['select_related("author")', 'select_related("author__profile")']
    (profile,) = [f for f in findings if "profile" in f["loader_option"]]
    assert profile["relationship"] == "Post.author__profile"
    assert "the Post objects" in profile["suggestion"]
    assert ran == 1 + 6 + 6
    fixed, after, ran = get("/profiles/fixed/", caplog)
    assert after == []
    assert ran == 1
    assert fixed.content == lazy.content
