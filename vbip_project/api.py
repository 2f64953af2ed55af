"""Shared API plumbing: pagination, the JSON error format, the router mount."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the current state.")
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The upload is too large.")
    default_code = "payload_too_large"


def _flatten(detail, prefix=""):
    """{'a': {'b': ['x']}} -> [('a.b', 'x')]; lists of dicts get their index.

    Applied to `exc.detail` and to `exc.get_codes()` alike, so the n-th message and
    the n-th code belong to the same field.
    """
    out = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            out.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list):
        if any(isinstance(item, (dict, list)) for item in detail):
            for index, item in enumerate(detail):
                if item:
                    out.extend(_flatten(item, f"{prefix}[{index}]" if prefix else f"[{index}]"))
        else:
            out.extend((prefix, str(item)) for item in detail)
    else:
        out.append((prefix, str(detail)))
    return out


def _validation_body(exc: exceptions.ValidationError) -> dict:
    pairs = _flatten(exc.detail)
    field, message = pairs[0] if pairs else ("", str(_("Invalid input.")))
    codes = _flatten(exc.get_codes())
    code = codes[0][1] if codes else "invalid"
    if not code or code == "None":
        code = "invalid"
    named = field not in ("", "non_field_errors")
    return {
        "code": code,
        "detail": f"{field}: {message}" if named else message,
        "field": field if named else None,
        "errors": exc.detail,
    }


def exception_handler(exc, context):
    """Every API error is JSON: {"code": stable slug, "detail": human text naming the field, ...}."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = _validation_body(exc)
    else:
        detail = getattr(exc, "detail", str(exc))
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if not isinstance(code, str):
            code = "error"
        body = {"code": code, "detail": str(detail)}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            body["retry_after_seconds"] = int(exc.wait)
    response.data = body
    return response


def error_response(code: str, detail: str, http_status: int, **extra) -> Response:
    return Response({"code": code, "detail": detail, **extra}, status=http_status)


def api_not_found(request, *args, **kwargs):
    """JSON 404 for any /api/ path no route matches (Django's own 404 page is HTML)."""
    return JsonResponse(
        {"code": "not_found", "detail": str(_("No API endpoint at {path}.").format(path=request.path))},
        status=status.HTTP_404_NOT_FOUND,
    )


class ErrorSerializer(serializers.Serializer):
    """The body of every API error (for the schema)."""

    code = serializers.CharField(help_text=_("Stable slug, e.g. invalid_choice, not_authenticated, throttled"))
    detail = serializers.CharField(help_text=_("Human text; for bad input it starts with the field name"))
    field = serializers.CharField(required=False, allow_null=True, help_text=_("The field at fault (400 only)"))
    errors = serializers.JSONField(required=False, help_text=_("Every message per field (400 only)"))
    retry_after_seconds = serializers.IntegerField(required=False, help_text=_("429 only"))


_ERROR_DESCRIPTIONS = {
    400: _("Bad input; `field` names the field at fault"),
    401: _("No credentials, or an unknown, expired or revoked token"),
    403: _("Signed in, but not allowed (role or read-only token)"),
    404: _("No such object"),
    409: _("The request conflicts with the current state"),
    413: _("The upload is too large"),
    429: _("Too many requests; retry after `retry_after_seconds`"),
}


def error_responses(*statuses: int) -> dict:
    """`responses={200: X, **error_responses(400, 404)}` for extend_schema; 401, 403 and 429 always apply."""
    codes = sorted({401, 403, 429, *statuses})
    return {code: OpenApiResponse(ErrorSerializer, description=_ERROR_DESCRIPTIONS[code]) for code in codes}
