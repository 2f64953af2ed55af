from django.db import transaction
from django.db.models import Avg, Count
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from vbip_project.api import error_responses
from vbip_project.permissions import IsCurator, KnowledgeBasePermission, TokenScopePermission

from ..choices import Category, Family, Level, LevelSource, Severity
from ..classifier import get_classifier
from ..filtersets import StatusCodeFilterSet
from ..models import StatusCode
from .serializers import (
    ClassificationSerializer,
    ClassifyRequestSerializer,
    HistoryEntrySerializer,
    StatisticsSerializer,
    StatusCodeSerializer,
    StatusCodeUpdateSerializer,
    detail_url,
)

MAX_CODE = 2**31 - 1  # the column is a 32-bit integer; larger numbers cannot exist

KEY_PARAMETERS = [
    OpenApiParameter(
        "family",
        OpenApiTypes.STR,
        OpenApiParameter.PATH,
        enum=Family.values,
        description="Status-code family; the same number means different things per family",
    ),
    OpenApiParameter("code", OpenApiTypes.INT, OpenApiParameter.PATH, description="Status code number"),
]


@extend_schema_view(
    list=extend_schema(
        summary="List and search status codes",
        responses={200: StatusCodeSerializer(many=True), **error_responses(400, 404)},
    ),
    retrieve=extend_schema(
        summary="One status code",
        parameters=KEY_PARAMETERS,
        responses={200: StatusCodeSerializer, **error_responses(404)},
    ),
    partial_update=extend_schema(
        summary="Curate a status code (curators only)",
        description=(
            "A level given here becomes the curator's decision (level_source curator, confidence 1.0) and needs a "
            "`reason`; imports and re-classification never overwrite it. Text edits mark the text as curated."
        ),
        parameters=KEY_PARAMETERS,
        request=StatusCodeUpdateSerializer,
        responses={200: StatusCodeSerializer, **error_responses(400, 404)},
    ),
)
class StatusCodeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The status-code knowledge base: every role reads it, curators change it."""

    queryset = StatusCode.objects.all()
    serializer_class = StatusCodeSerializer
    filterset_class = StatusCodeFilterSet
    permission_classes = [TokenScopePermission, KnowledgeBasePermission]
    # Read by the router: a code is addressed by family and number, never by database id.
    lookup_fields = ("family", "code")

    def get_serializer_class(self):
        if self.action == "partial_update":
            return StatusCodeUpdateSerializer
        return super().get_serializer_class()

    def get_object(self):
        # Unknown families and non-numbers answer 404 like any missing code, never 500 or an HTML page.
        family = Family.normalise(self.kwargs.get("family"))
        raw_code = str(self.kwargs.get("code", ""))
        if family is None or not (raw_code.isascii() and raw_code.isdigit()) or int(raw_code) > MAX_CODE:
            raise NotFound(gettext("No such status code."))
        queryset = self.get_queryset()
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            # Two curators saving at once must not silently undo each other's fields.
            queryset = queryset.select_for_update()
        obj = queryset.filter(family=family, code=int(raw_code)).first()
        if obj is None:
            raise NotFound(
                gettext("No status code {code} in the family {family}.").format(code=int(raw_code), family=family)
            )
        self.check_object_permissions(self.request, obj)
        return obj

    def partial_update(self, request, *args, **kwargs):
        with transaction.atomic():
            instance = self.get_object()
            serializer = self.get_serializer(instance, data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            serializer.save()
        return Response(serializer.data)

    @extend_schema(
        summary="Change history of a status code (curators only)",
        parameters=KEY_PARAMETERS,
        responses={200: HistoryEntrySerializer(many=True), **error_responses(404)},
        filters=False,
    )
    @action(detail=True, permission_classes=[TokenScopePermission, KnowledgeBasePermission, IsCurator])
    def history(self, request, *args, **kwargs):
        obj = self.get_object()
        entries = _history_entries(obj)
        page = self.paginate_queryset(entries)
        if page is not None:
            return self.get_paginated_response(HistoryEntrySerializer(page, many=True).data)
        return Response(HistoryEntrySerializer(entries, many=True).data)

    @extend_schema(
        summary="Counts of status codes by level, family, category, severity and level source",
        description="Takes the same filters as the list, so statistics can cover e.g. one family.",
        responses={200: StatisticsSerializer, **error_responses(400)},
        filters=True,
    )
    @action(detail=False, pagination_class=None)
    def statistics(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset()).order_by()
        totals = queryset.aggregate(total=Count("pk"), average_confidence=Avg("confidence"))
        average = totals["average_confidence"]
        body = {
            "total": totals["total"],
            "average_confidence": round(average, 4) if average is not None else None,
            "by_level": _buckets(queryset, "level", Level.choices),
            "by_family": _buckets(queryset, "family", Family.choices),
            "by_category": _buckets(queryset, "category", Category.choices),
            "by_severity": _buckets(queryset, "severity", Severity.choices),
            "by_level_source": _buckets(queryset, "level_source", LevelSource.choices),
        }
        return Response(StatisticsSerializer(body).data)


def _buckets(queryset, field: str, choices) -> list[dict]:
    """Every choice with its count (zero included, so charts keep their axes), then any unknown stored value."""
    counts = dict(queryset.values_list(field).annotate(n=Count("pk")).values_list(field, "n"))
    buckets = [{"value": value, "label": str(label), "count": counts.pop(value, 0)} for value, label in choices]
    buckets.extend({"value": value, "label": str(value), "count": n} for value, n in sorted(counts.items()))
    return buckets


def _tracked_fields():
    history_fields = {field.name for field in StatusCode.history.model._meta.fields}
    return [
        field
        for field in StatusCode._meta.fields
        if field.name in history_fields and field.editable and field.name not in ("id",)
    ]


HISTORY_ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}


def _history_entries(obj: StatusCode) -> list[dict]:
    """Newest first; each entry lists the fields that changed against the entry before it."""
    fields = _tracked_fields()
    records = list(obj.history.select_related("history_user").order_by("history_date", "history_id"))
    entries = []
    previous = None
    for record in records:
        changes = []
        for field in fields:
            new = getattr(record, field.attname)
            old = getattr(previous, field.attname) if previous is not None else None
            if previous is None and new in (None, ""):
                continue
            if previous is not None and old == new:
                continue
            changes.append({"field": field.name, "label": str(field.verbose_name), "old": old, "new": new})
        user = record.history_user
        entries.append(
            {
                "id": record.history_id,
                "when": record.history_date,
                "who": user.get_username() if user is not None else None,
                "who_name": str(user) if user is not None else None,
                "action": HISTORY_ACTIONS.get(record.history_type, "changed"),
                "reason": record.history_change_reason or None,
                "changes": changes,
            }
        )
        previous = record
    entries.reverse()
    return entries


class ClassifyView(GenericAPIView):
    """Classify a status-code message as the knowledge base would; nothing is saved."""

    serializer_class = ClassifyRequestSerializer
    permission_classes = [TokenScopePermission, KnowledgeBasePermission]
    # A calculation: read-only tokens may use it (see TokenScopePermission).
    writes_nothing = True
    filter_backends = []
    pagination_class = None

    @extend_schema(
        summary="Classify a message without saving",
        request=ClassifyRequestSerializer,
        responses={200: ClassificationSerializer, **error_responses(400)},
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        family = data.get("family")
        code = data.get("code")
        result = get_classifier().classify(
            family=family,
            code=code,
            message=data["message"],
            explanation=data.get("explanation", ""),
            recommended_action=data.get("recommended_action", ""),
        )
        stored = None
        if family is not None and code is not None:
            known = StatusCode.objects.filter(family=family, code=code).first()
            if known is not None:
                stored = {
                    "level": known.level,
                    "level_name": known.get_level_display(),
                    "level_source": known.level_source,
                    "url": detail_url(known, request),
                }
        body = {
            "family": family,
            "code": code,
            "level": result.level,
            "level_name": str(Level(result.level).label),
            "confidence": round(result.confidence, 4),
            "reason": result.reason,
            "category": result.category,
            "severity": result.severity,
            "rules": list(result.rules),
            "stored": stored,
        }
        return Response(ClassificationSerializer(body).data)
