"""Shared API plumbing: pagination, the JSON error format, the router mount."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "payload_too_large"


def _first_message(value):
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    if isinstance(value, dict) and value:
        key, inner = next(iter(value.items()))
        return key, _first_message(inner)
    return None, str(value)


def _flatten(detail, prefix=""):
    """{'a': {'b': ['x']}} -> [('a.b', 'x')]; lists of dicts get their index."""
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
        pairs = _flatten(exc.detail)
        field, message = pairs[0] if pairs else ("", "Invalid input.")
        codes = exc.get_codes()
        _f, code = _first_message(codes)
        body = {
            "code": code if isinstance(code, str) and code not in ("None", "") else "invalid",
            "detail": f"{field}: {message}" if field and field != "non_field_errors" else message,
            "field": None if field in ("", "non_field_errors") else field,
            "errors": exc.detail,
        }
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
