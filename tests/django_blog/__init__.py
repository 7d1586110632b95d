"""A small Django blog for dbopt's tests: models, views and templates with loops.

Shared by the Django test modules: Django settings can be configured once per
process, so :func:`configure` does it for all of them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url


def configure(pg_url: str) -> bool:
    """Configure Django for this run's PostgreSQL database, create the tables, seed the blog.

    Returns False when settings were configured by someone else in this process.
    """
    import django
    from django.conf import settings
    from django.core.management import call_command

    if settings.configured:
        return bool(getattr(settings, "DBOPT_TEST_BLOG", False))
    from docs_snippets import run_snippet

    documented = run_snippet("django-settings", DEBUG=True)  # docs/integrations.md's settings
    url = make_url(pg_url)
    database: dict[str, Any] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": url.database,
        "USER": url.username or "postgres",
        "PASSWORD": url.password or "",
        # the embedded server listens on a socket directory (?host=...)
        "HOST": url.host or str(url.query.get("host", "127.0.0.1")),
        "PORT": str(url.port or 5432),
    }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="dbopt-tests",
        ALLOWED_HOSTS=["testserver"],
        USE_TZ=True,
        ROOT_URLCONF="django_blog.urls",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django_blog",
            "zeal_social",  # django-zeal's app, for tests/test_nplusone_peers_zeal.py
        ],
        MIDDLEWARE=documented["MIDDLEWARE"],
        TEMPLATES=[
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
        ],
        DATABASES={"default": database},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        DBOPT=documented["DBOPT"],
        DBOPT_TEST_BLOG=True,
        LOGGING_CONFIG=None,
    )
    django.setup()
    call_command("migrate", verbosity=0)  # auth first: the blog's tables refer to auth_user
    call_command("migrate", run_syncdb=True, verbosity=0)
    seed()
    return True


def seed() -> None:
    """Users in groups; 3 categories, 4 authors, 30 posts with tags and comments.

    The 10 newest posts are all in one category ("news"), by two authors: a
    loop over them reads the same foreign-key values again and again.
    """
    from django.contrib.auth.models import Group, User

    from django_blog.models import Category, Comment, Post, Profile, Tag

    groups = [Group.objects.create(name=f"g{i}") for i in range(3)]
    for i in range(5):
        user = User.objects.create(username=f"user{i}")
        user.groups.set(groups[: i % 3 + 1])
    authors = [User.objects.create(username=f"author{i}") for i in range(4)]
    for author in authors:
        Profile.objects.create(user=author, bio=f"about {author.username}")
    news, talks, notes = (Category.objects.create(name=n) for n in ("news", "talks", "notes"))
    tags = [Tag.objects.create(name=f"tag{i}") for i in range(5)]
    for i in range(30):
        newest = i >= 20
        post = Post.objects.create(
            title=f"post {i}",
            body="text " * 20,
            author=authors[i % 2] if newest else authors[i % 4],
            category=news if newest else (talks, notes)[i % 2],
        )
        post.tags.set(tags[i % 3 : i % 3 + 2])
        for j in range(i % 4):
            Comment.objects.create(post=post, author_name=f"reader{j}", approved=j % 2 == 0)
