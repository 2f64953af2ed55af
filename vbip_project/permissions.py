"""API permission building blocks shared by every app."""

from django.utils.translation import gettext_lazy as _
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
    """Read-only tokens may only read.

    A view that answers a POST without changing anything (a calculation such as
    classifying a message) sets `writes_nothing = True` so read-only tokens may use it.
    """

    message = _("This API token is read-only.")

    def has_permission(self, request, view):
        token = request.auth
        if isinstance(token, ApiToken) and token.read_only:
            return request.method in permissions.SAFE_METHODS or bool(getattr(view, "writes_nothing", False))
        return True


class IsCuratorOrReadOnly(permissions.BasePermission):
    """Anyone signed in reads; curators (and staff) write."""

    message = _("Only curators may change the knowledge base.")

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return is_curator(request.user)


class IsCurator(permissions.BasePermission):
    message = _("Only curators or staff may do this.")

    def has_permission(self, request, view):
        return is_curator(request.user)


class KnowledgeBasePermission(permissions.BasePermission):
    """Reading the status-code knowledge base needs its view permission (every role has it);
    changing it needs a curator. A view that only calculates (`writes_nothing`) counts as reading."""

    message = _("Only curators may change the knowledge base.")
    read_permission = "errorcodes.view_statuscode"

    def has_permission(self, request, view):
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if request.method in permissions.SAFE_METHODS or getattr(view, "writes_nothing", False):
            if is_curator(user) or user.has_perm(self.read_permission):
                return True
            self.message = _("You have no permission to read the status-code knowledge base.")
            return False
        return is_curator(user)
