"""django-zeal's published test scenarios, run on Django with dbopt's Django integration.

Source: github:taobojlen/django-zeal at 388a779, ``tests/test_nplusones.py``
(all of it), ``tests/test_listeners.py`` (the allowlist and context
scenarios) and ``tests/test_patch.py`` (queries that must not raise); models
from ``tests/djangoproject/social``, rewritten as tests/zeal_social. Not
ported, as they test zeal's own API rather than a verdict: log and trace
output settings, its context's internal state, the validation of allowlist
model and field names, ``tests/test_util.py`` (its frame filter),
``test_signals.py`` and ``test_performance.py``.
Each zeal test is split into the units of work it checks: the loop that
raises ``NPlusOneError`` and the fixed loop after it that must not, and the
separate ``zeal_context()`` blocks of the "no false positive" tests. Every
scenario keeps zeal's fixture rows and statement shape (factory_boy's
``create_batch`` becomes plain ``objects.create``), names the zeal test it
comes from and zeal's verdict (does it raise?), and where zeal counts the
statements with ``CaptureQueriesContext``, the statements dbopt saw must be
that many.

dbopt runs each scenario in one ``dbopt.scope`` with a fresh
``NPlusOneDetector`` fed by ``dbopt.integrations.django.instrument`` on
PostgreSQL; the web-request scenarios go through ``DboptMiddleware`` with
zeal's views. A scenario agrees with zeal or names the documented design
difference (docs/nplusone.md, "Against the peers") under which dbopt's
verdict is the opposite; the test fails when a verdict moves either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import dbopt
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_findings import NPlusOneFinding

django = pytest.importorskip("django")

from dbopt.integrations import django as dbopt_django  # noqa: E402
from django_blog import configure  # noqa: E402

ZEAL = "taobojlen/django-zeal tests/test_nplusones.py"


@pytest.fixture(scope="module")
def app(pg_url: str) -> Iterator[None]:
    if not configure(pg_url):
        pytest.skip("Django settings were configured elsewhere in this process")
    yield
    from django.db import connections

    connections.close_all()


# -- zeal's fixtures (factory_boy batches in zeal), as plain rows ---------------------------


def m() -> Any:
    from zeal_social import models

    return models


def users(n: int) -> list[Any]:
    return [m().User.objects.create(username=f"user{i}") for i in range(n)]


def with_posts(n: int) -> list[Any]:
    made = users(n)
    for user in made:
        m().Post.objects.create(author=user, text="a sentence")
    return made


def with_profiles(n: int) -> list[Any]:
    made = users(n)
    for user in made:
        m().Profile.objects.create(user=user, display_name=user.username.title())
    return made


def following_each_other() -> list[Any]:
    one, two = users(2)
    one.following.add(two)
    two.following.add(one)
    return [one, two]


def blocking_each_other() -> list[Any]:
    one, two = users(2)
    one.blocked.add(two)
    two.blocked.add(one)
    return [one, two]


def influencer() -> list[Any]:
    star, *fans = users(5)
    star.followers.set(fans)
    return [star, *fans]


def follower() -> list[Any]:
    fan, *stars = users(5)
    fan.following.set(stars)
    return [fan, *stars]


def with_tags(n: int) -> list[Any]:
    made = users(n)
    for i, user in enumerate(made):
        m().Tag.objects.create(obj=user, label="ab"[i] if n == 2 else "x")
    return made


def tags_without_object() -> list[Any]:
    m().Tag.objects.create(label="a")
    m().Tag.objects.create(label="b")
    return []


# -- the scenarios -------------------------------------------------------------------------


#: dbopt also reports the same statement run twice with the same values (a missing
#: cache); zeal has no such check. Here: one author read through two posts.
REPEATED_QUERY = "repeated-query"


#: ``leaf.relation.relation`` on one line: two loads of one self-referential relation
#: from one call site, which dbopt counts as a loop (select_related("relation__relation")
#: makes them one query); zeal counts only objects of multi-row results.
SELF_CHAIN = "self-referential-chain"


@dataclass(frozen=True)
class Scenario:
    test: str
    setup: Callable[[], list[Any]]
    body: Callable[[list[Any]], object]
    peer_reports: bool
    difference: str | None = None
    queries: int | None = None  # zeal's CaptureQueriesContext count, where it asserts one
    threshold: int = 2
    allow: tuple[str, ...] = ()
    web: tuple[str, ...] = ()  # request paths, through the middleware (zeal's views)
    middleware: bool = True
    scoped: bool = True  # False: outside any dbopt.scope (zeal: outside zeal_context)
    source: str = "tests/test_nplusones.py"


def _loop_author(posts: Any) -> None:
    for post in posts:
        _ = post.author.username


def _loop_profile_user(profiles: Any) -> None:
    for profile in profiles:
        _ = profile.user.username


def _loop_user_profile(all_users: Any) -> None:
    for user in all_users:
        _ = user.profile.display_name


def _loop(manager: str) -> Callable[[Any], None]:
    def loop(all_users: Any) -> None:
        for user in all_users:
            _ = list(getattr(user, manager).all())

    return loop


def _loop_obj(tags: Any) -> None:
    for tag in tags:
        _ = tag.obj


def _single_first(model: str, read: Callable[[Any], object]) -> Callable[[list[Any]], None]:
    def body(rows: list[Any]) -> None:
        one = getattr(m(), model).objects.filter(pk=rows[0].pk).first()
        two = getattr(m(), model).objects.filter(pk=rows[1].pk).first()
        read(one)
        read(two)

    return body


def _single_slice(model: str, read: Callable[[Any], object]) -> Callable[[list[Any]], None]:
    def body(rows: list[Any]) -> None:
        one = getattr(m(), model).objects.filter(pk=rows[0].pk).all()[0]
        two = getattr(m(), model).objects.filter(pk=rows[1].pk).all()[0]
        read(one)
        read(two)

    return body


def _single_get(model: str, read: Callable[[Any], object]) -> Callable[[list[Any]], None]:
    def body(rows: list[Any]) -> None:
        one = getattr(m(), model).objects.get(pk=rows[0].pk)
        two = getattr(m(), model).objects.get(pk=rows[1].pk)
        read(one)
        read(two)

    return body


def _posts(rows: list[Any]) -> list[Any]:
    return list(m().Post.objects.filter(author__in=rows).order_by("pk"))


def _profiles(rows: list[Any]) -> list[Any]:
    return list(m().Profile.objects.filter(user__in=rows).order_by("pk"))


def _tags(rows: list[Any]) -> list[Any]:
    return list(m().Tag.objects.order_by("pk"))


def _single_rows(rows_of: Callable[[list[Any]], list[Any]], setup: Callable[[], list[Any]]) -> Any:
    """The setup of a no-false-positive test whose singly loaded rows are not users."""

    def made() -> list[Any]:
        return rows_of(setup())

    return made


def _prefetch_each(lookup: str, rows: str) -> Callable[[list[Any]], None]:
    from django.db.models import prefetch_related_objects

    def body(_: list[Any]) -> None:
        objects = list(getattr(m(), rows).objects.all())
        for obj in objects:
            prefetch_related_objects([obj], lookup)

    return body


def _forward_fk_first(rows: list[Any]) -> None:
    one = m().Post.objects.filter(pk=rows[0].pk).first()
    two = m().Post.objects.filter(pk=rows[1].pk).first()
    _ = one.author
    _ = two.author


def _forward_fk_slice(rows: list[Any]) -> None:
    one = m().Post.objects.filter(pk=rows[0].pk).all()[0]
    two = m().Post.objects.filter(pk=rows[1].pk).all()[0]
    _ = one.author
    _ = two.author


def _forward_fk_get(rows: list[Any]) -> None:
    one = m().Post.objects.get(pk=rows[0].pk)
    two = m().Post.objects.get(pk=rows[1].pk)
    _ = one.author
    _ = two.author


def _two_posts_one_author() -> list[Any]:
    (user,) = users(1)
    return [m().Post.objects.create(author=user, text=t) for t in ("one", "two")]


def _m2m_single(manager: str, how: str) -> Callable[[list[Any]], None]:
    def body(rows: list[Any]) -> None:
        one, two = rows
        if how == "first":
            _ = getattr(one, manager).first().username
            _ = getattr(two, manager).first().username
        elif how == "slice":
            _ = getattr(one, manager).all()[0].username
            _ = getattr(two, manager).all()[0].username
        else:
            _ = getattr(one, manager).get(pk=two.pk).username
            _ = getattr(two, manager).get(pk=one.pk).username

    return body


def _twice(manager: str) -> Callable[[list[Any]], None]:
    def body(rows: list[Any]) -> None:
        queryset = getattr(rows[0], manager).all()
        list(queryset)  # evaluated once
        list(queryset)  # again: Django's result cache

    return body


def _gfk_twice(_: list[Any]) -> None:
    [tag] = list(m().Tag.objects.all())
    _ = tag.obj  # loads the user
    _ = tag.obj  # the descriptor's cache


def _gfk_null(_: list[Any]) -> None:
    for tag in m().Tag.objects.all():
        assert tag.obj is None


def _get_in_loop(rows: list[Any]) -> None:
    for user in rows:
        _ = m().User.objects.get(pk=user.pk)


def _get_on_two_lines(rows: list[Any]) -> None:
    _ = m().User.objects.get(pk=rows[0].pk)
    _ = m().User.objects.get(pk=rows[1].pk)


def _posts_on_two_lines(rows: list[Any]) -> None:
    _a = list(rows[0].posts.all())
    _b = list(rows[1].posts.all())


def _prefetch_bulk(_: list[Any]) -> None:
    from django.db.models import prefetch_related_objects

    prefetch_related_objects(list(m().User.objects.all()), "posts")


def _prefetch_single(rows: list[Any]) -> None:
    from django.db.models import prefetch_related_objects

    def prefetch_one(user: Any) -> None:
        prefetch_related_objects([user], "posts")

    prefetch_one(m().User.objects.get(pk=rows[0].pk))
    prefetch_one(m().User.objects.get(pk=rows[1].pk))


def _prefetch_in_iterator(_: list[Any]) -> None:
    from django.db.models import prefetch_related_objects

    for user in m().User.objects.iterator(chunk_size=1):
        prefetch_related_objects([user], "posts")


def Q(attr: str) -> Callable[[], Any]:  # noqa: N802 - reads like a queryset
    """``Model.objects`` of zeal's app, looked up when the scenario runs."""
    model, _, _rest = attr.partition(".")
    return lambda: getattr(m(), model).objects


def _scenarios() -> list[Scenario]:
    s: list[Scenario] = []

    def pair(
        test: str,
        setup: Callable[[], list[Any]],
        loop: Callable[[Any], None],
        lazy: Callable[[], Any],
        fixed: Callable[[], Any],
    ) -> None:
        s.append(Scenario(test, setup, lambda _: loop(lazy()), True))
        s.append(Scenario(f"{test} [fixed]", setup, lambda _: loop(fixed()), False))

    posts, profiles, user_objects, tags = Q("Post"), Q("Profile"), Q("User"), Q("Tag")
    two_posts, four_posts = (lambda: with_posts(2)), (lambda: with_posts(4))
    two_profiles, four_profiles = (lambda: with_profiles(2)), (lambda: with_profiles(4))
    two_tags, four_tags = (lambda: with_tags(2)), (lambda: with_tags(4))

    # forward many-to-one: post.author
    pair(
        "test_detects_nplusone_in_forward_many_to_one",
        two_posts,
        _loop_author,
        lambda: posts().all(),
        lambda: posts().select_related("author").all(),
    )
    pair(
        "test_detects_nplusone_in_forward_many_to_one_iterator",
        four_posts,
        _loop_author,
        lambda: posts().all().iterator(chunk_size=2),
        lambda: posts().select_related("author").iterator(chunk_size=2),
    )
    s.append(
        Scenario(
            "test_handles_prefetch_instead_of_select_related_in_forward_many_to_one",
            two_posts,
            lambda _: _loop_author(posts().prefetch_related("author").all()),
            False,
            queries=2,
        )
    )
    for how, body in (
        ("first()", _forward_fk_first),
        ("slice", _forward_fk_slice),
        ("get()", _forward_fk_get),
    ):
        s.append(
            Scenario(
                f"test_no_false_positive_when_loading_single_object_forward_many_to_one [{how}]",
                _two_posts_one_author,
                body,
                False,
                REPEATED_QUERY,
                queries=4,
            )
        )

    # reverse many-to-one: user.posts
    pair(
        "test_detects_nplusone_in_reverse_many_to_one",
        two_posts,
        _loop("posts"),
        lambda: user_objects().all(),
        lambda: user_objects().prefetch_related("posts").all(),
    )
    pair(
        "test_detects_nplusone_in_reverse_many_to_one_iterator",
        four_posts,
        _loop("posts"),
        lambda: user_objects().all().iterator(chunk_size=2),
        lambda: user_objects().prefetch_related("posts").iterator(chunk_size=2),
    )
    s.append(
        Scenario(
            "test_no_false_positive_when_calling_reverse_many_to_one_twice",
            lambda: with_posts(1),
            _twice("posts"),
            False,
            queries=1,
        )
    )

    # forward one-to-one: profile.user
    pair(
        "test_detects_nplusone_in_forward_one_to_one",
        two_profiles,
        _loop_profile_user,
        lambda: profiles().all(),
        lambda: profiles().select_related("user").all(),
    )
    pair(
        "test_detects_nplusone_in_forward_one_to_one_iterator",
        four_profiles,
        _loop_profile_user,
        lambda: profiles().all().iterator(chunk_size=2),
        lambda: profiles().select_related("user").iterator(chunk_size=2),
    )
    s.append(
        Scenario(
            "test_handles_prefetch_instead_of_select_related_in_forward_one_to_one",
            two_profiles,
            lambda _: _loop_profile_user(profiles().prefetch_related("user").all()),
            False,
            queries=2,
        )
    )

    def read_profile_user(p: Any) -> object:
        return p.user.username

    for how, make in (("first()", _single_first), ("slice", _single_slice), ("get()", _single_get)):
        s.append(
            Scenario(
                f"test_no_false_positive_when_loading_single_object_forward_one_to_one [{how}]",
                _single_rows(_profiles, two_profiles),
                make("Profile", read_profile_user),
                False,
                queries=4,
            )
        )

    # reverse one-to-one: user.profile
    pair(
        "test_detects_nplusone_in_reverse_one_to_one",
        two_profiles,
        _loop_user_profile,
        lambda: user_objects().all(),
        lambda: user_objects().select_related("profile").all(),
    )
    pair(
        "test_detects_nplusone_in_reverse_one_to_one_iterator",
        four_profiles,
        _loop_user_profile,
        lambda: user_objects().all().iterator(chunk_size=2),
        lambda: user_objects().select_related("profile").iterator(chunk_size=2),
    )
    s.append(
        Scenario(
            "test_handles_prefetch_instead_of_select_related_in_reverse_one_to_one",
            two_profiles,
            lambda _: _loop_user_profile(user_objects().prefetch_related("profile").all()),
            False,
            queries=2,
        )
    )

    def read_user_profile(u: Any) -> object:
        return u.profile.display_name

    for how, make in (("first()", _single_first), ("slice", _single_slice), ("get()", _single_get)):
        s.append(
            Scenario(
                f"test_no_false_positive_when_loading_single_object_reverse_one_to_one [{how}]",
                two_profiles,
                make("User", read_user_profile),
                False,
                queries=4,
            )
        )

    # many-to-many: user.following, user.followers, user.blocked, user.user_set
    pair(
        "test_detects_nplusone_in_forward_many_to_many",
        following_each_other,
        _loop("following"),
        lambda: user_objects().all(),
        lambda: user_objects().prefetch_related("following").all(),
    )
    pair(
        "test_detects_nplusone_in_forward_many_to_many_iterator",
        influencer,
        _loop("following"),
        lambda: user_objects().iterator(chunk_size=2),
        lambda: user_objects().prefetch_related("following").iterator(chunk_size=2),
    )
    for how in ("first", "slice", "get"):
        s.append(
            Scenario(
                f"test_no_false_positive_when_loading_single_object_forward_many_to_many [{how}]",
                following_each_other,
                _m2m_single("following", how),
                False,
                queries=2,
            )
        )
    pair(
        "test_detects_nplusone_in_reverse_many_to_many",
        following_each_other,
        _loop("followers"),
        lambda: user_objects().all(),
        lambda: user_objects().prefetch_related("followers").all(),
    )
    pair(
        "test_detects_nplusone_in_reverse_many_to_many_iterator",
        follower,
        _loop("followers"),
        lambda: user_objects().all().iterator(chunk_size=2),
        lambda: user_objects().prefetch_related("followers").all().iterator(chunk_size=2),
    )
    for how in ("first", "slice", "get"):
        s.append(
            Scenario(
                f"test_no_false_positive_when_loading_single_object_reverse_many_to_many [{how}]",
                following_each_other,
                _m2m_single("followers", how),
                False,
                queries=2,
            )
        )
    pair(
        "test_detects_nplusone_in_forward_many_to_many_with_no_related_name",
        blocking_each_other,
        _loop("blocked"),
        lambda: user_objects().all(),
        lambda: user_objects().prefetch_related("blocked").all(),
    )
    pair(
        "test_detects_nplusone_in_reverse_many_to_many_with_no_related_name",
        blocking_each_other,
        _loop("user_set"),
        lambda: user_objects().all(),
        lambda: user_objects().prefetch_related("user_set").all(),
    )

    # deferred fields: post.author.username under only("author__id")
    pair(
        "test_detects_nplusone_due_to_deferred_fields",
        two_posts,
        _loop_author,
        lambda: posts().all().select_related("author").only("author__id"),
        lambda: posts().all().select_related("author").only("author__username"),
    )
    pair(
        "test_detects_nplusone_due_to_deferred_fields_in_iterator",
        four_posts,
        _loop_author,
        lambda: posts().all().select_related("author").only("author__id").iterator(chunk_size=2),
        lambda: (
            posts().all().select_related("author").only("author__username").iterator(chunk_size=2)
        ),
    )
    s.append(
        Scenario(
            "test_handles_prefetch_instead_of_select_related_with_deferred_fields",
            two_posts,
            lambda _: _loop_author(
                posts().all().prefetch_related("author").only("author__username")
            ),
            False,
            queries=2,
        )
    )

    # settings and web requests
    s.append(
        Scenario(
            "test_has_configurable_threshold",
            two_posts,
            lambda _: _loop_author(posts().all()),
            False,
            threshold=3,  # ZEAL_NPLUSONE_THRESHOLD = 3
        )
    )
    s.append(
        Scenario(
            "test_does_nothing_if_not_in_middleware",
            two_profiles,
            lambda _: None,
            False,
            web=("/user/{0}/", "/user/{1}/"),
            middleware=False,
        )
    )
    s.append(
        Scenario(
            "test_works_in_web_requests [GET /users/]",
            two_profiles,
            lambda _: None,
            True,
            web=("/users/",),
        )
    )
    s.append(
        Scenario(
            "test_works_in_web_requests [two single-user requests]",
            two_profiles,
            lambda _: None,
            False,
            web=("/user/{0}/", "/user/{1}/"),
        )
    )

    # .get() per row, and calls on different lines
    s.append(Scenario("test_detects_nplusone_on_get", lambda: users(2), _get_in_loop, True))
    s.append(
        Scenario(
            "test_no_false_positive_on_get_on_different_lines",
            lambda: users(2),
            _get_on_two_lines,
            False,
        )
    )
    s.append(
        Scenario("test_ignores_calls_on_different_lines", two_posts, _posts_on_two_lines, False)
    )

    # prefetch_related_objects per instance
    prefix = "TestPrefetchRelatedObjects::"
    for test, setup, lookup, rows in (
        ("test_reverse_many_to_one_per_instance_is_n_plus_one", two_posts, "posts", "User"),
        ("test_forward_many_to_one_per_instance_is_n_plus_one", two_posts, "author", "Post"),
        ("test_reverse_one_to_one_per_instance_is_n_plus_one", two_profiles, "profile", "User"),
        (
            "test_forward_many_to_many_per_instance_is_n_plus_one",
            following_each_other,
            "following",
            "User",
        ),
        (
            "test_reverse_many_to_many_per_instance_is_n_plus_one",
            following_each_other,
            "followers",
            "User",
        ),
        ("test_generic_relation_per_instance_is_n_plus_one", two_tags, "tags", "User"),
    ):
        s.append(Scenario(prefix + test, setup, _prefetch_each(lookup, rows), True))
    s.append(
        Scenario(
            prefix + "test_per_instance_in_iterator_loop_is_n_plus_one",
            two_posts,
            _prefetch_in_iterator,
            True,
        )
    )
    s.append(Scenario(prefix + "test_bulk_is_not_n_plus_one", two_posts, _prefetch_bulk, False))
    s.append(
        Scenario(
            prefix + "test_singly_loaded_prefetch_is_not_n_plus_one",
            two_posts,
            _prefetch_single,
            False,
        )
    )

    # generic relation (user.tags) and generic foreign key (tag.obj)
    pair(
        "test_detects_nplusone_in_generic_relation",
        two_tags,
        _loop("tags"),
        lambda: user_objects().all(),
        lambda: user_objects().prefetch_related("tags").all(),
    )
    pair(
        "test_detects_nplusone_in_generic_relation_iterator",
        four_tags,
        _loop("tags"),
        lambda: user_objects().all().iterator(chunk_size=2),
        lambda: user_objects().prefetch_related("tags").iterator(chunk_size=2),
    )

    def read_tags(u: Any) -> object:
        return list(u.tags.all())

    for how, make in (("first()", _single_first), ("slice", _single_slice), ("get()", _single_get)):
        s.append(
            Scenario(
                f"test_no_false_positive_when_loading_single_object_generic_relation [{how}]",
                two_tags,
                make("User", read_tags),
                False,
                queries=4,
            )
        )
    s.append(
        Scenario(
            "test_zeal_ignore_works_for_generic_relation",
            two_tags,
            lambda _: _loop("tags")(user_objects().all()),
            False,
            allow=(
                "relationship:User.tags",
            ),  # zeal_ignore([{"model": "social.User", "field": "tags"}])
        )
    )
    s.append(
        Scenario(
            "test_no_false_positive_when_calling_generic_relation_twice",
            lambda: with_tags(1),
            _twice("tags"),
            False,
            queries=1,
        )
    )
    pair(
        "test_detects_nplusone_in_generic_foreign_key",
        two_tags,
        _loop_obj,
        lambda: tags().all(),
        lambda: tags().prefetch_related("obj").all(),
    )
    pair(
        "test_detects_nplusone_in_generic_foreign_key_iterator",
        four_tags,
        _loop_obj,
        lambda: tags().all().iterator(chunk_size=2),
        lambda: tags().prefetch_related("obj").iterator(chunk_size=2),
    )

    def read_obj(t: Any) -> object:
        return t.obj

    for how, make in (("first()", _single_first), ("slice", _single_slice), ("get()", _single_get)):
        s.append(
            Scenario(
                f"test_no_false_positive_when_loading_single_object_generic_foreign_key [{how}]",
                _single_rows(_tags, two_tags),
                make("Tag", read_obj),
                False,
            )
        )
    s.append(
        Scenario(
            "test_zeal_ignore_works_for_generic_foreign_key",
            two_tags,
            lambda _: _loop_obj(tags().all()),
            False,
            allow=(
                "relationship:Tag.obj",
            ),  # zeal_ignore([{"model": "social.Tag", "field": "obj"}])
        )
    )
    s.append(
        Scenario(
            "test_no_false_positive_when_generic_foreign_key_is_null",
            tags_without_object,
            _gfk_null,
            False,
            queries=1,
        )
    )
    s.append(
        Scenario(
            "test_no_false_positive_when_accessing_generic_foreign_key_twice",
            lambda: with_tags(1),
            _gfk_twice,
            False,
        )
    )
    return s + _listener_and_patch_scenarios()


def _posts_loop(_: list[Any]) -> None:
    for user in m().User.objects.all():
        _ = list(user.posts.all())


def _author_loop(_: list[Any]) -> None:
    for post in m().Post.objects.all():
        _ = post.author


def _queryset_many_times(_: list[Any]) -> None:
    user = m().User.objects.prefetch_related("posts").all()[0]
    for _ in range(1001):  # zeal: sys.getrecursionlimit() + 1
        list(user.posts.all())


def _m2m_prefetch_cache(rows: list[Any]) -> None:
    one, two, three = rows
    one.following.set([two, three])
    users = list(m().User.objects.prefetch_related("following").filter(pk=one.pk))
    assert len(list(users[0].following.all())) == 2


def _m2m_set_then_prefetch(rows: list[Any]) -> None:
    one, two, three = rows
    user = next(iter(m().User.objects.prefetch_related("following").filter(pk=one.pk)))
    user.following.set([two, three])
    user = next(iter(m().User.objects.prefetch_related("following").filter(pk=one.pk)))
    assert len(list(user.following.all())) == 2


def _empty(_: list[Any]) -> None:
    m().User.objects.none().first()


def _get_with_values(rows: list[Any]) -> None:
    m().User.objects.filter(pk=rows[0].pk).values("username").get()


def _custom_equality(_: list[Any]) -> None:
    model = m().CustomEqualityModel
    base = model.objects.create(name="base")
    one = model.objects.create(name="test1", relation=base)
    two = model.objects.create(name="test1", relation=base)
    three = model.objects.create(name="test2", relation=base)
    assert one == two
    assert one != three
    result = model.objects.filter(name="test1").first()
    _ = result.relation


def _nested_equality(_: list[Any]) -> None:
    model = m().CustomEqualityModel
    root = model.objects.create(name="root")
    middle = model.objects.create(name="middle", relation=root)
    leaf1 = model.objects.create(name="leaf", relation=middle)
    leaf2 = model.objects.create(name="leaf", relation=middle)
    assert leaf1 == leaf2
    result = model.objects.filter(name="leaf").first()
    _ = result.relation.relation


def _listener_and_patch_scenarios() -> list[Scenario]:
    """tests/test_listeners.py (allowlists, contexts) and tests/test_patch.py (no error)."""
    two_posts = lambda: with_posts(2)  # noqa: E731
    listeners, patch = "tests/test_listeners.py", "tests/test_patch.py"
    posts_allowed = "relationship:User.posts"  # {"model": "social.User", "field": "posts"}
    s = [
        Scenario("test_errors_include_caller", two_posts, _posts_loop, True, source=listeners),
    ]
    for test, rule in (
        ("test_can_exclude_with_allowlist", posts_allowed),
        ("test_can_use_fnmatch_pattern_in_allowlist_model", "relationship:U*.*"),
        ("test_can_use_fnmatch_pattern_in_allowlist_field", "relationship:User.p*st*"),
    ):
        s.append(
            Scenario(
                f"{test} [allowed]", two_posts, _posts_loop, False, allow=(rule,), source=listeners
            )
        )
        s.append(
            Scenario(
                f"{test} [other]", two_posts, _author_loop, True, allow=(rule,), source=listeners
            )
        )
    everything = ("sql:*",)  # zeal_ignore() with no allowlist: {"model": "*", "field": "*"}
    s += [
        Scenario(
            "test_ignore_context_takes_precedence",
            two_posts,
            _posts_loop,
            False,
            allow=everything,
            source=listeners,
        ),
        Scenario(
            "test_can_ignore_specific_models [allowed]",
            two_posts,
            _posts_loop,
            False,
            allow=("relationship:User.post*",),
            source=listeners,
        ),
        Scenario(
            "test_can_ignore_specific_models [not allowed]",
            two_posts,
            _author_loop,
            True,
            allow=("relationship:User.post*",),
            source=listeners,
        ),
        Scenario(
            "test_can_ignore_specific_models [another field allowed]",
            two_posts,
            _posts_loop,
            True,
            allow=("relationship:User.following",),
            source=listeners,
        ),
        Scenario(
            "test_can_ignore_specific_models [outside]",
            two_posts,
            _posts_loop,
            True,
            source=listeners,
        ),
        Scenario(
            "test_context_specific_allowlist_merges [outer]",
            two_posts,
            _posts_loop,
            False,
            allow=("relationship:User.post*",),
            source=listeners,
        ),
        Scenario(
            "test_context_specific_allowlist_merges [outer, not allowed]",
            two_posts,
            _author_loop,
            True,
            allow=("relationship:User.post*",),
            source=listeners,
        ),
        Scenario(
            "test_context_specific_allowlist_merges [merged, author]",
            two_posts,
            _author_loop,
            False,
            allow=("relationship:User.post*", "relationship:Post.author"),
            source=listeners,
        ),
        Scenario(
            "test_context_specific_allowlist_merges [merged, posts]",
            two_posts,
            _posts_loop,
            False,
            allow=("relationship:User.post*", "relationship:Post.author"),
            source=listeners,
        ),
        Scenario(
            "test_does_not_run_outside_of_context [outside]",
            two_posts,
            _posts_loop,
            False,
            scoped=False,
            source=listeners,
        ),
        Scenario(
            "test_does_not_run_outside_of_context [inside]",
            two_posts,
            _posts_loop,
            True,
            source=listeners,
        ),
        Scenario(
            "test_get_allowlist_suppresses_nplusone_on_get",
            lambda: users(2),
            _get_in_loop,
            False,
            # {"model": "social.User", "field": "get()"}: the user looked up by key
            allow=('sql:SELECT * FROM "zeal_social_user" WHERE "zeal_social_user"."id" = ?*',),
            source=listeners,
        ),
        Scenario(
            "test_handles_calling_queryset_many_times",
            lambda: users(1),
            _queryset_many_times,
            False,
            queries=2,
            source=patch,
        ),
        Scenario(
            "test_m2m_prefetch_preserves_result_cache",
            lambda: users(3),
            _m2m_prefetch_cache,
            False,
            source=patch,
        ),
        Scenario(
            "test_m2m_set_then_prefetch_preserves_result_cache",
            lambda: users(3),
            _m2m_set_then_prefetch,
            False,
            source=patch,
        ),
        Scenario("test_handles_empty_querysets", list, _empty, False, queries=0, source=patch),
        Scenario(
            "test_handles_get_with_values", lambda: users(1), _get_with_values, False, source=patch
        ),
        Scenario(
            "test_handles_custom_equality_with_relations",
            list,
            _custom_equality,
            False,
            source=patch,
        ),
        Scenario(
            "test_handles_nested_relation_equality",
            list,
            _nested_equality,
            False,
            SELF_CHAIN,
            source=patch,
        ),
    ]
    return s


SCENARIOS = _scenarios()


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE zeal_social_tag, zeal_social_post, zeal_social_profile,"
            " zeal_social_user_following, zeal_social_user_blocked, zeal_social_user,"
            " zeal_social_customequalitymodel RESTART IDENTITY CASCADE"
        )


@dataclass
class Outcome:
    findings: list[NPlusOneFinding]
    statements: int


def run(scenario: Scenario) -> Outcome:
    """Seed zeal's rows, then run the scenario as one unit of work; dbopt's findings."""
    from django.test import Client, override_settings

    reset()
    rows = scenario.setup()
    found: list[NPlusOneFinding] = []
    detector = NPlusOneDetector(scenario.threshold, action=found.append, allow=scenario.allow)
    seen: list[dbopt.QueryEvent] = []
    if scenario.web:
        middleware = ["dbopt.integrations.django.DboptMiddleware"] if scenario.middleware else []
        with override_settings(
            ROOT_URLCONF="zeal_social.urls",
            MIDDLEWARE=middleware,
            DBOPT={"DETECTOR": detector},
        ):
            for path in scenario.web:
                response = Client(raise_request_exception=True).get(
                    path.format(*(r.pk for r in rows))
                )
                assert response.status_code == 200
        return Outcome(found, 0)
    if not scenario.scoped:
        with dbopt_django.instrument(detector, seen.append):
            scenario.body(rows)
        return Outcome(found, len(seen))
    with dbopt_django.instrument(detector, seen.append), dbopt.scope(scenario.test):
        scenario.body(rows)
    return Outcome(found, len(seen))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.test for s in SCENARIOS])
def test_verdict_agrees_with_zeal_or_is_a_documented_difference(
    app: None, scenario: Scenario
) -> None:
    outcome = run(scenario)
    reports = bool(outcome.findings)
    if scenario.difference is None:
        assert reports == scenario.peer_reports, [str(f) for f in outcome.findings]
    else:
        assert reports != scenario.peer_reports, f"{scenario.difference} no longer differs"
    if scenario.queries is not None:
        assert outcome.statements == scenario.queries


#: What zeal's NPlusOneError names ("N+1 detected on social.<name>"), per reporting test.
ZEAL_NAMES = {
    "test_detects_nplusone_in_forward_many_to_one": "Post.author",
    "test_detects_nplusone_in_reverse_many_to_one": "User.posts",
    "test_detects_nplusone_in_forward_one_to_one": "Profile.user",
    "test_detects_nplusone_in_reverse_one_to_one": "User.profile",
    "test_detects_nplusone_in_forward_many_to_many": "User.following",
    "test_detects_nplusone_in_reverse_many_to_many": "User.followers",
    "test_detects_nplusone_in_forward_many_to_many_with_no_related_name": "User.blocked",
    "test_detects_nplusone_in_reverse_many_to_many_with_no_related_name": "User.user_set",
    "test_detects_nplusone_due_to_deferred_fields": "User.username",
    "test_works_in_web_requests": "User.profile",
    "test_detects_nplusone_on_get": "User.get()",
    "test_reverse_many_to_one_per_instance_is_n_plus_one": "User.posts",
    "test_forward_many_to_one_per_instance_is_n_plus_one": "Post.author",
    "test_reverse_one_to_one_per_instance_is_n_plus_one": "User.profile",
    "test_forward_many_to_many_per_instance_is_n_plus_one": "User.following",
    "test_reverse_many_to_many_per_instance_is_n_plus_one": "User.followers",
    "test_generic_relation_per_instance_is_n_plus_one": "User.tags",
    "test_per_instance_in_iterator_loop_is_n_plus_one": "User.posts",
    "test_detects_nplusone_in_generic_relation": "User.tags",
    "test_detects_nplusone_in_generic_foreign_key": "Tag.obj",
    "test_errors_include_caller": "User.posts",
    "test_can_exclude_with_allowlist": "Post.author",
    "test_can_use_fnmatch_pattern_in_allowlist_model": "Post.author",
    "test_can_use_fnmatch_pattern_in_allowlist_field": "Post.author",
    "test_can_ignore_specific_models [not allowed]": "Post.author",
    "test_can_ignore_specific_models": "User.posts",
    "test_context_specific_allowlist_merges": "Post.author",
    "test_does_not_run_outside_of_context": "User.posts",
}


def zeal_name(test: str) -> str:
    if test in ZEAL_NAMES:
        return ZEAL_NAMES[test]
    base = test.rpartition("::")[2].partition(" [")[0]
    base = base.removesuffix("_in_iterator").removesuffix("_iterator")
    return ZEAL_NAMES[base]


REPORTING = [s for s in SCENARIOS if s.peer_reports]


@pytest.mark.parametrize("scenario", REPORTING, ids=[s.test for s in REPORTING])
def test_findings_name_the_relation_zeal_names(app: None, scenario: Scenario) -> None:
    """One N+1 per scenario, of the relation (or deferred field) zeal's error names.

    ``.get()`` per row is an explicit query: no relation, the fix is one ``in_bulk``.
    """
    (finding,) = run(scenario).findings
    assert finding.kind == "n_plus_one"
    if scenario.test == "test_errors_include_caller":  # zeal names file, line, function
        assert finding.callsite is not None
        assert finding.callsite.file == __file__
        assert finding.callsite.function == "_posts_loop"
    name = zeal_name(scenario.test)
    if name == "User.get()":
        assert finding.relationship is None
        assert "User.objects.in_bulk(keys)" in finding.suggestion
    else:
        assert finding.relationship == name
    if name == "User.username":
        assert finding.loader_option is None
        assert ".only(" in finding.suggestion
        assert "refresh_from_db" in finding.suggestion
    elif name in ("Tag.obj", "User.tags") and "per_instance" not in scenario.test:
        assert finding.loader_option == f'prefetch_related("{name.partition(".")[2]}")'
    elif "TestPrefetchRelatedObjects" in scenario.test:
        path = name.partition(".")[2]
        assert finding.loader_option == f'prefetch_related_objects(rows, "{path}")'


def test_agreement_table() -> None:
    """The figures docs/nplusone.md gives ("Against the peers") for django-zeal."""
    agree = sum(s.difference is None for s in SCENARIOS)
    assert (agree, len(SCENARIOS)) == (109, 113)
    assert {s.difference for s in SCENARIOS if s.difference} == {REPEATED_QUERY, SELF_CHAIN}
    by_source = {
        src: sum(s.source == src for s in SCENARIOS) for src in {s.source for s in SCENARIOS}
    }
    assert by_source == {
        "tests/test_nplusones.py": 87,
        "tests/test_listeners.py": 19,
        "tests/test_patch.py": 7,
    }
