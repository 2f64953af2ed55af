"""Job ingestion (JSON and file uploads), the job list, and customer / server registration."""

from collections import defaultdict

import orjson
from django.conf import settings
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError, PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from vbip_project.api import PayloadTooLarge, error_response
from vbip_project.permissions import IsCuratorOrReadOnly, TokenScopePermission

from ..filtersets import CustomerFilterSet, JobFilterSet, ServerFilterSet
from ..models import BackupJob, BackupServer, Customer
from ..parsers import is_netbackup_body, parse_file, parse_json_body, rejection
from ..permissions import INGEST, customers_for, restrict, sees_everything
from ..services import IngestResult, ingest_jobs
from .ingest_serializers import (
    CustomerSerializer,
    ImportRequestSerializer,
    IngestResultSerializer,
    JobDetailSerializer,
    JobSerializer,
    ServerSerializer,
)

# The multipart envelope and the small form fields around an uploaded file.
MULTIPART_ALLOWANCE = 64 * 1024

INGEST_PARAMETERS = [
    OpenApiParameter("customer", OpenApiTypes.STR, description="Customer code (required for NetBackup bodies)"),
    OpenApiParameter("server", OpenApiTypes.STR, description="Server host name (required for NetBackup bodies)"),
]


def _content_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _refuse_oversized(request, limit: int) -> None:
    length = _content_length(request)
    if length is not None and length > limit:
        raise PayloadTooLarge(
            _("The upload is {size} bytes; at most {limit} are accepted.").format(size=length, limit=limit)
        )


def _require_ingest_somewhere(user) -> None:
    """Refuse early (before reading a large body) users who may ingest for no customer at all."""
    if sees_everything(user) or customers_for(user, INGEST).exists():
        return
    raise PermissionDenied(_("You may not ingest jobs for any customer."))


def _read_json(request):
    limit = settings.MAX_UPLOAD_BYTES
    stream = request.stream
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise PayloadTooLarge(_("The request body is larger than {limit} bytes.").format(limit=limit))
    if not raw.strip():
        raise ParseError(_("The request body is empty: send one job, a list of jobs or a NetBackup jobs body."))
    try:
        return orjson.loads(raw)  # parses 1,000-job bodies faster than the json module
    except ValueError as exc:
        raise ParseError(_("The request body is not valid JSON: {error}").format(error=exc)) from None


def _ingest_response(result: IngestResult, **extra) -> Response:
    body = {**result.as_dict(), **extra}
    if result.accepted:
        return Response(body, status=status.HTTP_200_OK)
    if result.rejected:
        first = result.rejected[0]
        detail = _("No job was accepted; {location}: {reason}").format(
            location=first.get("location", ""), reason=first["reason"]
        )
    else:
        detail = _("No job was accepted: the input holds no jobs.")
    return Response({"code": "no_job_accepted", "detail": detail, **body}, status=status.HTTP_400_BAD_REQUEST)


def _empty_result_error(code: str, field: str, detail: str, http_status=status.HTTP_400_BAD_REQUEST) -> Response:
    return error_response(code, f"{field}: {detail}", http_status, field=field, **IngestResult().as_dict())


class _Targets:
    """Customers and servers named by the items of one request, looked up in two queries."""

    def __init__(self, items):
        self.resolved: dict[tuple[str, str], tuple] = {}
        codes = {item.customer.lower() for item in items}
        self.customers = {
            customer.code.lower(): customer
            for customer in Customer.objects.annotate(key=Lower("code")).filter(key__in=codes)
        }
        hosts = {item.server.lower() for item in items}
        self.servers = {
            (server.customer_id, server.hostname.lower()): server
            for server in BackupServer.objects.annotate(key=Lower("hostname")).filter(
                customer__in=list(self.customers.values()), key__in=hosts
            )
        }

    def resolve(self, item):
        """(server, None) or (None, rejection)."""
        key = (item.customer.lower(), item.server.lower())
        if key not in self.resolved:
            self.resolved[key] = self._resolve(item)
        server, refusal = self.resolved[key]
        if refusal is None:
            return server, None
        return None, rejection(item.job.location, refusal[1], refusal[0])

    def _resolve(self, item):
        """(server, None) or (None, (field, reason)) for one customer and host name."""
        customer = self.customers.get(item.customer.lower())
        if customer is None:
            return None, ("customer", _("customer: no customer with the code {code!r}").format(code=item.customer))
        if not customer.is_active:
            return None, ("customer", _("customer: {code} is not active").format(code=customer.code))
        server = self.servers.get((customer.pk, item.server.lower()))
        if server is None:
            reason = _("server: {customer} has no server {host!r}").format(customer=customer.code, host=item.server)
            return None, ("server", reason)
        if not server.is_active:
            return None, ("server", _("server: {host} is not active").format(host=server.hostname))
        server.customer = customer
        return server, None


def _check_ingest_permission(user, customers) -> None:
    if sees_everything(user):
        return
    wanted = {customer.pk: customer for customer in customers}
    allowed = set(customers_for(user, INGEST).filter(pk__in=list(wanted)).values_list("pk", flat=True))
    refused = sorted(customer.code for pk, customer in wanted.items() if pk not in allowed)
    if refused:
        raise PermissionDenied(
            _("You may not ingest jobs for {customers}.").format(customers=", ".join(refused)), code="permission_denied"
        )


@extend_schema_view(
    list=extend_schema(summary="List backup jobs (only those of customers you may see)"),
    retrieve=extend_schema(summary="One backup job with its try-log and raw payload"),
)
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Backup jobs: list and detail per customer visibility; POST ingests (see `create`)."""

    queryset = BackupJob.objects.select_related("server__customer")
    serializer_class = JobSerializer
    filterset_class = JobFilterSet
    permission_classes = [IsAuthenticated, TokenScopePermission]
    parser_classes = [JSONParser]

    def get_queryset(self):
        return restrict(super().get_queryset(), self.request.user, customer_field="server__customer")

    def get_serializer_class(self):
        if self.action == "retrieve":
            return JobDetailSerializer
        return super().get_serializer_class()

    @extend_schema(
        summary="Ingest jobs: one job, a list, or a NetBackup GET /admin/jobs body",
        description=(
            "Our shape: {customer, server, job_id, status, ...} or a list of them. A NetBackup body "
            '{"data": [{"type": "job", "attributes": {...}}]} needs the customer and server query parameters. '
            "Idempotent: repeated jobs count as unchanged. 200 when anything was accepted, 400 when nothing was; "
            "rejected items are listed with their index and a reason naming the field."
        ),
        parameters=INGEST_PARAMETERS,
        request=OpenApiTypes.OBJECT,
        responses={200: IngestResultSerializer, 400: IngestResultSerializer, 403: None, 413: None},
        filters=False,
    )
    def create(self, request, *args, **kwargs):
        _refuse_oversized(request, settings.MAX_UPLOAD_BYTES)
        _require_ingest_somewhere(request.user)
        body = _read_json(request)
        customer_code = request.query_params.get("customer", "").strip()
        hostname = request.query_params.get("server", "").strip()
        if is_netbackup_body(body):
            for name, value in (("customer", customer_code), ("server", hostname)):
                if not value:
                    return _empty_result_error(
                        "required", name, _("a NetBackup jobs body needs the {name} query parameter").format(name=name)
                    )
        if customer_code:
            customer = Customer.objects.filter(code__iexact=customer_code).first()
            if customer is None:
                return _empty_result_error(
                    "does_not_exist", "customer", _("no customer with the code {code!r}").format(code=customer_code)
                )
            if hostname and not customer.servers.filter(hostname__iexact=hostname).exists():
                return _empty_result_error(
                    "does_not_exist",
                    "server",
                    _("{customer} has no server {host!r}").format(customer=customer.code, host=hostname),
                )

        parsed = parse_json_body(body, customer=customer_code, server=hostname)
        targets = _Targets(parsed.items)
        groups = defaultdict(list)
        servers = {}
        result = IngestResult(rejected=list(parsed.rejected))
        for item in parsed.items:
            server, refused = targets.resolve(item)
            if refused is not None:
                result.rejected.append(refused)
                continue
            servers[server.pk] = server
            groups[server.pk].append(item.job)
        _check_ingest_permission(request.user, {server.customer for server in servers.values()})
        for server_pk, jobs in groups.items():
            stored = ingest_jobs(server=servers[server_pk], jobs=jobs, source=parsed.source, actor=request.user)
            result.add(stored)
        result.sort_rejected()
        return _ingest_response(result)

    @extend_schema(
        summary="Import a job report file: bpdbjobs -report -all_columns, CSV, Excel (.xlsx) or JSON",
        description=(
            "CSV and Excel daily reports take Korean or English headers (고객사명/Customer, 작업유형/Job Type, "
            "백업서버/Server, 상태/Status, 시작시간/Start Time, 종료시간/End Time, 소요시간(분)/Duration, "
            "백업크기(GB)/Size, 에러코드/Error Code, 에러메시지/Error Message, Policy Name, Job ID). Bad lines are "
            "listed by line (row for Excel) and skipped; good ones are stored. Files over MAX_UPLOAD_BYTES get 413."
        ),
        request={"multipart/form-data": ImportRequestSerializer},
        responses={200: IngestResultSerializer, 400: IngestResultSerializer, 403: None, 413: None},
        filters=False,
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser],
        pagination_class=None,
    )
    def import_file(self, request, *args, **kwargs):
        limit = settings.MAX_UPLOAD_BYTES
        _refuse_oversized(request, limit + MULTIPART_ALLOWANCE)
        _require_ingest_somewhere(request.user)
        serializer = ImportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        if upload.size > limit:
            raise PayloadTooLarge(
                _("The file is {size} bytes; at most {limit} are accepted.").format(size=upload.size, limit=limit)
            )
        customer, server = serializer.validated_data["customer"], serializer.validated_data["server"]
        _check_ingest_permission(request.user, [customer])
        parsed = parse_file(
            upload.read(),
            fmt=serializer.validated_data.get("format") or None,
            filename=upload.name or "",
            customer=customer,
            server=server,
        )
        result = ingest_jobs(
            server=server, jobs=parsed.jobs, source=parsed.source, actor=request.user, rejected=parsed.rejected
        )
        return _ingest_response(result, format=parsed.format)


@extend_schema_view(
    list=extend_schema(summary="List customers you may see"),
    retrieve=extend_schema(summary="One customer"),
    create=extend_schema(summary="Register a customer (curators and staff)"),
)
class CustomerViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilterSet
    permission_classes = [IsAuthenticated, TokenScopePermission, IsCuratorOrReadOnly]
    lookup_field = "code"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return restrict(super().get_queryset(), self.request.user, customer_field="pk")


@extend_schema_view(
    list=extend_schema(summary="List backup servers of customers you may see"),
    retrieve=extend_schema(summary="One backup server (the API key is never shown)"),
    create=extend_schema(summary="Register a customer's NetBackup primary server (curators and staff)"),
)
class ServerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    queryset = BackupServer.objects.select_related("customer")
    serializer_class = ServerSerializer
    filterset_class = ServerFilterSet
    permission_classes = [IsAuthenticated, TokenScopePermission, IsCuratorOrReadOnly]

    def get_queryset(self):
        return restrict(super().get_queryset(), self.request.user, customer_field="customer")
