"""django-zeal's ``social`` models (tests/djangoproject/social/models.py)."""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models


class User(models.Model):
    username = models.TextField()
    # user.following / user.followers: a many-to-many to self
    following = models.ManyToManyField("User", related_name="followers")
    # no related_name on purpose: the reverse accessor is user.user_set
    blocked = models.ManyToManyField("User")
    tags = GenericRelation("Tag")


class Profile(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE)
    display_name = models.TextField()


class Post(models.Model):
    author = models.ForeignKey(User, on_delete=models.CASCADE, related_name="posts")
    text = models.TextField()


class Tag(models.Model):
    label = models.TextField()
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, null=True, blank=True)
    object_id = models.PositiveIntegerField(null=True, blank=True)
    obj = GenericForeignKey()


class CustomEqualityModel(models.Model):
    """From zeal's tests/test_patch.py: equality that reads a relation (recursion check)."""

    name = models.CharField(max_length=100)
    relation = models.ForeignKey(
        "self", null=True, on_delete=models.CASCADE, related_name="related"
    )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CustomEqualityModel):
            return NotImplemented
        return self.relation == other.relation and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.pk)
