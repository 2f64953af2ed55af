import django_filters
from django.db.models import Q

from incidents.choices import IncidentState
from incidents.models import Incident


class IncidentFilterSet(django_filters.FilterSet):
    customer = django_filters.CharFilter(field_name="customer__code", lookup_expr="iexact")
    server = django_filters.CharFilter(field_name="server__hostname", lookup_expr="iexact")
    state = django_filters.MultipleChoiceFilter(choices=IncidentState.choices)
    active = django_filters.BooleanFilter(method="filter_active")
    level = django_filters.NumberFilter()
    family = django_filters.CharFilter()
    code = django_filters.NumberFilter()
    client = django_filters.CharFilter(lookup_expr="iexact")
    policy = django_filters.CharFilter(lookup_expr="iexact")
    assignee = django_filters.CharFilter(field_name="assignee__username")
    since = django_filters.IsoDateTimeFilter(field_name="last_seen", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="first_seen", lookup_expr="lte")
    q = django_filters.CharFilter(method="filter_q")

    class Meta:
        model = Incident
        fields = ["customer", "server", "state", "level", "family", "code", "client", "policy"]

    def filter_active(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.active() if value else queryset.exclude(state__in=IncidentState.active())

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        query = (
            Q(client__icontains=value)
            | Q(policy__icontains=value)
            | Q(schedule__icontains=value)
            | Q(status_code__message__icontains=value)
            | Q(notes__icontains=value)
            | Q(customer__name__icontains=value)
        )
        if value.isdigit():
            query |= Q(code=int(value)) | Q(pk=int(value))
        return queryset.filter(query)
