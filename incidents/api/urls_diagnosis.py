"""URL patterns for this part of the incidents API; mounted by incidents/api/urls.py."""

from django.urls import path

from .diagnosis_views import DiagnoseView

urlpatterns = [
    path("diagnose/", DiagnoseView.as_view(), name="diagnose"),
]
