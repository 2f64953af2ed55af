"""Query-string filters for status-code lists (API and pages)."""

import django_filters
from django.utils.translation import gettext_lazy as _

from .choices import Category, Family, Level, LevelSource, Severity
from .models import StatusCode


class StatusCodeFilterSet(django_filters.FilterSet):
    """Each choice filter takes one value or several (`?level=1&level=2`)."""

    family = django_filters.MultipleChoiceFilter(choices=Family.choices, label=_("family"))
    level = django_filters.MultipleChoiceFilter(choices=Level.choices, label=_("resolution level"))
    category = django_filters.MultipleChoiceFilter(choices=Category.choices, label=_("category"))
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices, label=_("severity"))
    level_source = django_filters.MultipleChoiceFilter(choices=LevelSource.choices, label=_("level source"))
    is_active = django_filters.BooleanFilter(label=_("active"))
    curated_text = django_filters.BooleanFilter(label=_("text curated"))
    min_confidence = django_filters.NumberFilter(field_name="confidence", lookup_expr="gte", label=_("min confidence"))
    max_confidence = django_filters.NumberFilter(field_name="confidence", lookup_expr="lte", label=_("max confidence"))
    q = django_filters.CharFilter(
        method="filter_search", label=_("search"), help_text=_("A code number, or words from the message or text")
    )
    ordering = django_filters.OrderingFilter(
        fields=(
            ("family", "family"),
            ("code", "code"),
            ("level", "level"),
            ("confidence", "confidence"),
            ("category", "category"),
            ("severity", "severity"),
            ("updated_at", "updated_at"),
        ),
        label=_("ordering"),
    )

    class Meta:
        model = StatusCode
        fields = []

    def filter_search(self, queryset, name, value):
        return queryset.search(value)

    @property
    def qs(self):
        queryset = super().qs
        # A stable tie-breaker: pages must not repeat or skip rows when the sort key has duplicates.
        ordering = list(queryset.query.order_by)
        if ordering and not {"family", "code"} <= {field.lstrip("-") for field in ordering}:
            queryset = queryset.order_by(*ordering, "family", "code")
        return queryset
