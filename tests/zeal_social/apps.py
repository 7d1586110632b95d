from django.apps import AppConfig


class ZealSocialConfig(AppConfig):
    name = "zeal_social"
    label = "zeal_social"
    default_auto_field = "django.db.models.BigAutoField"
