from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import metrics, views
from .api import api_not_found

api_v1 = [
    path("", include("errorcodes.api.urls")),
    path("", include("incidents.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="incidents:list", permanent=False)),
    path("accounts/", include("django.contrib.auth.urls")),
    path("incidents/", include("incidents.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/health/", views.health, name="health"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    re_path(r"^api/", api_not_found),  # JSON 404 for unknown API paths, not the HTML page
]
