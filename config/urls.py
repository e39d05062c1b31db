from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from artifacts import store_views
from compat import meta as compat_meta
from config import health
from core import observability
from core.openapi import SchemaView
from frontend import account_views


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
    # Swagger UI without drf-spectacular's inline <style> (the CSP allows none).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="frontend/api_docs.html"),
        name="api-docs",
    ),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("experiments.urls")),
    path("api/v1/", include("artifacts.urls")),
    path("api/v1/", include("registry.urls")),
    path("api/v1/", include("reviews.urls")),
    path("api/v1/", include("automations.urls")),
    path("api/v1/", include("reports.urls")),
    path("-/store/", store_views.local_store, name="local-store"),
    # SCIM 2.0 provisioning for identity providers (docs/sso.md): a scim-scoped token only.
    path("scim/v2/", include("accounts.scim_urls")),
    # MLflow's REST API of one project: MLFLOW_TRACKING_URI=<public URL>/mlflow/<team>/<project>
    path("mlflow/<str:team>/<str:project>/", include("compat.urls")),
    path("mlflow/", compat_meta.outside_a_project),
    path("mlflow/<path:rest>", compat_meta.outside_a_project),
    # allauth's sign-up, aware of the invitation opened in the browser (prefilled, named).
    path("accounts/signup/", account_views.signup, name="account_signup"),
    # Before allauth's own: a clear page when the provider's discovery is unreachable.
    path("accounts/oidc/<str:provider_id>/login/", account_views.oidc_login, name="oidc-login"),
    path("accounts/", include("allauth.urls")),
    path("", include("frontend.urls")),
]

# Under /api/ these answer the JSON error shape; pages keep Django's pages (core/http.py).
handler400 = "core.http.bad_request"
handler403 = "core.http.permission_denied"
handler404 = "core.http.page_not_found"
handler500 = "core.http.server_error"
