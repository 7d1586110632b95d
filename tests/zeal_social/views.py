"""django-zeal's two views (tests/djangoproject/social/views.py)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from zeal_social.models import User


def single_user_and_profile(request: HttpRequest, id: int) -> JsonResponse:
    user = User.objects.get(id=id)
    return JsonResponse({"username": user.username, "display_name": user.profile.display_name})


def all_users_and_profiles(request: HttpRequest) -> JsonResponse:
    """This view has an N+1 (the profile of each user)."""
    return JsonResponse(
        {
            "users": [
                {"username": user.username, "display_name": user.profile.display_name}
                for user in User.objects.all()
            ]
        }
    )
