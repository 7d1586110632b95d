from django.urls import path, re_path

from django_blog import views

urlpatterns = [
    path("", views.index, name="index"),
    path("fixed/", views.index_fixed, name="index_fixed"),
    re_path(r"^post/(?P<pk>[0-9]+)/$", views.post_detail, name="post_detail"),
    re_path(r"^archive/(\d{4})/$", views.post_detail, name="archive"),
    path("category/<int:pk>/", views.category),
    path("profiles/", views.profiles),
    path("profiles/fixed/", views.profiles_fixed),
    path("comments/", views.comments),
    path("comments/fixed/", views.comments_fixed),
    path("users/", views.users),
    path("users/prefetched/", views.users_prefetched),
    path("users/<int:pk>/", views.user),
    path("boom/", views.boom),
]
