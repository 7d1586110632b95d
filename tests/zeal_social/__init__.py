"""django-zeal's test app ("social"), rewritten from its schema for dbopt's peer scenarios.

Source: github:taobojlen/django-zeal ``tests/djangoproject/social`` (models.py,
views.py, urls.py at 388a779). Users follow and block users (two
many-to-many fields to ``self``, one without ``related_name``), have one
profile, write posts and carry generic tags. Installed into the Django
settings of tests/django_blog (Django is configured once per process); its
tables are created by ``migrate --run-syncdb`` there.
"""
