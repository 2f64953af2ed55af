"""API permission building blocks shared by every app."""

from rest_framework import permissions

from vbip_project.accounts import roles
from vbip_project.accounts.models import ApiToken


def is_curator(user) -> bool:
    if not user or not user.is_authenticated:
        return False
    if user.is_superuser or user.is_staff:
        return True
    cached = getattr(user, "_vbip_is_curator", None)
    if cached is None:
        cached = user.groups.filter(name=roles.CURATORS).exists()
        user._vbip_is_curator = cached
    return cached


class TokenScopePermission(permissions.BasePermission):
    """Read-only tokens may only read."""

    message = "This API token is read-only."

    def has_permission(self, request, view):
        token = request.auth
        if isinstance(token, ApiToken) and token.read_only:
            return request.method in permissions.SAFE_METHODS
        return True


class IsCuratorOrReadOnly(permissions.BasePermission):
    """Anyone signed in reads; curators (and staff) write."""

    message = "Only curators may change the knowledge base."

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return is_curator(request.user)


class IsCurator(permissions.BasePermission):
    message = "Only curators or staff may do this."

    def has_permission(self, request, view):
        return is_curator(request.user)
