"""URL patterns for the incidents endpoints; mounted by incidents/api/urls.py."""

from rest_framework.routers import SimpleRouter

from .incident_views import IncidentViewSet

router = SimpleRouter()
router.register("incidents", IncidentViewSet, basename="incident")

urlpatterns = router.urls
