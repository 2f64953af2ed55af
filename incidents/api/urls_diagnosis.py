"""URL patterns for this part of the incidents API; mounted by incidents/api/urls.py."""

urlpatterns = []
