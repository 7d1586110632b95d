from django.apps import AppConfig


class BlogConfig(AppConfig):
    name = "django_blog"
    default_auto_field = "django.db.models.BigAutoField"
