from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from artifacts import store_views
from config import health
from core import observability
from core.openapi import SchemaView


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico whatever the page links: send them to the SVG icon."""
    return HttpResponseRedirect(static("favicon.svg"), status=301)


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", observability.metrics_view, name="metrics"),
    path("-/admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("experiments.urls")),
    path("api/v1/", include("artifacts.urls")),
    path("api/v1/", include("registry.urls")),
    path("api/v1/", include("reviews.urls")),
    path("-/store/", store_views.local_store, name="local-store"),
    path("accounts/", include("allauth.urls")),
    path("", include("frontend.urls")),
]

# Under /api/ these answer the JSON error shape; pages keep Django's pages (core/http.py).
handler400 = "core.http.bad_request"
handler403 = "core.http.permission_denied"
handler404 = "core.http.page_not_found"
handler500 = "core.http.server_error"
