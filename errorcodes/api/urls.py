from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views


class KnowledgeBaseRouter(SimpleRouter):
    """A SimpleRouter whose detail routes may take several URL parts (`lookup_fields` on the viewset).

    The parts match anything but a slash, so a bad family or a non-number reaches the view
    and gets the API's JSON 404 instead of Django's HTML one.
    """

    def get_lookup_regex(self, viewset, lookup_prefix=""):
        fields = getattr(viewset, "lookup_fields", None)
        if not fields:
            return super().get_lookup_regex(viewset, lookup_prefix)
        return "/".join(f"(?P<{lookup_prefix}{name}>[^/]+)" for name in fields)


router = KnowledgeBaseRouter()
router.register("status-codes", views.StatusCodeViewSet, basename="statuscode")

urlpatterns = [
    path("classify/", views.ClassifyView.as_view(), name="classify"),
    *router.urls,
]
