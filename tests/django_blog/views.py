"""The blog's views: each page as a reviewer would find it, and with dbopt's fixes applied."""

from __future__ import annotations

from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from django_blog.models import Category, Comment, Post


def index(request: HttpRequest) -> HttpResponse:
    posts = Post.objects.order_by("-id")[:10]
    recent = Post.objects.order_by("-id")[:5]
    return render(request, "blog/index.html", {"posts": posts, "recent": recent})


def index_fixed(request: HttpRequest) -> HttpResponse:
    posts = (
        Post.objects.order_by("-id")
        .select_related("category")
        .select_related("author")
        .prefetch_related("tags")
        .prefetch_related(Prefetch("comment_set", queryset=Comment.objects.filter(approved=True)))
        .annotate(comment_count=Count("comment"))[:10]
    )
    recent = Post.objects.order_by("-id")[:5]
    return render(request, "blog/index_fixed.html", {"posts": posts, "recent": recent})


def category(request: HttpRequest, pk: int) -> HttpResponse:
    shown = get_object_or_404(Category, pk=pk)
    posts = Post.objects.filter(category=shown).order_by("-id")[:10]
    recent = Post.objects.order_by("-id")[:5]
    return render(request, "blog/index.html", {"posts": posts, "recent": recent})


def post_detail(request: HttpRequest, pk: str) -> HttpResponse:
    post = get_object_or_404(Post, pk=pk)
    recent = Post.objects.order_by("-id")[:5]
    return render(request, "blog/detail.html", {"post": post, "recent": recent})


def comments(request: HttpRequest) -> JsonResponse:
    out = {}
    for post in Post.objects.order_by("id")[:8]:
        out[post.title] = [c.author_name for c in Comment.objects.filter(post=post)]
    return JsonResponse(out)


def comments_fixed(request: HttpRequest) -> JsonResponse:
    out = {}
    for post in Post.objects.order_by("id").prefetch_related("comment_set")[:8]:
        out[post.title] = [c.author_name for c in post.comment_set.all()]
    return JsonResponse(out)


def users(request: HttpRequest) -> JsonResponse:
    from django.contrib.auth.models import User

    rows = User.objects.filter(username__startswith="user").order_by("id")
    return JsonResponse([[g.name for g in u.groups.all()] for u in rows], safe=False)


def users_prefetched(request: HttpRequest) -> JsonResponse:
    from django.contrib.auth.models import User

    rows = User.objects.filter(username__startswith="user").order_by("id")
    rows = rows.prefetch_related("groups")
    return JsonResponse([[g.name for g in u.groups.all()] for u in rows], safe=False)


def user(request: HttpRequest, pk: int) -> JsonResponse:
    from django.contrib.auth.models import User

    return JsonResponse({"groups": [g.name for g in User.objects.get(pk=pk).groups.all()]})


def boom(request: HttpRequest) -> JsonResponse:
    from django.contrib.auth.models import User

    User.objects.count()
    raise RuntimeError("boom")


def profiles(request: HttpRequest) -> HttpResponse:
    posts = Post.objects.order_by("-id")[:6]
    return render(request, "blog/profiles.html", {"posts": posts})


def profiles_fixed(request: HttpRequest) -> HttpResponse:
    posts = Post.objects.order_by("-id").select_related("author__profile")[:6]
    return render(request, "blog/profiles.html", {"posts": posts})
