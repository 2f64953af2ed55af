"""URL patterns for this part of the incidents API; mounted by incidents/api/urls.py."""

from rest_framework.routers import SimpleRouter

from . import ingest_views

router = SimpleRouter()
router.register("jobs", ingest_views.JobViewSet, basename="job")
router.register("customers", ingest_views.CustomerViewSet, basename="customer")
router.register("servers", ingest_views.ServerViewSet, basename="server")

urlpatterns = router.urls
