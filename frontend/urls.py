from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import views

# The run URL shape is also built by the API (experiments.api.run_url): keep them in step.
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("<str:team>/<str:project>/", views.project_page, name="project"),
    path("<str:team>/<str:project>/runs/<str:run_id>/", views.run_page, name="run"),
]
