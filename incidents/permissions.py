"""The one place that decides which customers' data a user may see or act on.

Curators, staff and superusers see every customer. Everybody else sees the
customers they hold django-guardian object permissions on (granted with
`grant_customer` or in the admin). Views, viewsets, admin querysets and pages
all restrict through `restrict()`, so a list never shows what a detail would 404.
"""

from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from vbip_project.accounts import roles
from vbip_project.permissions import is_curator

from .choices import CustomerRole
from .models import Customer

ACCESS = "incidents.access_customer"
WORK = "incidents.work_customer"
INGEST = "incidents.ingest_customer"

ROLE_OBJECT_PERMISSIONS = {
    CustomerRole.ENGINEER: [ACCESS, WORK],
    CustomerRole.VIEWER: [ACCESS],
    CustomerRole.INTEGRATION: [ACCESS, INGEST],
}
ROLE_GROUPS = {
    CustomerRole.ENGINEER: roles.ENGINEERS,
    CustomerRole.VIEWER: roles.VIEWERS,
    CustomerRole.INTEGRATION: roles.INTEGRATIONS,
}


def sees_everything(user) -> bool:
    return is_curator(user)


def customers_for(user, perm: str = ACCESS):
    """Customers on which `user` holds `perm` (all of them for curators and staff)."""
    if not user or not user.is_authenticated:
        return Customer.objects.none()
    if sees_everything(user):
        return Customer.objects.all()
    return get_objects_for_user(user, perm, klass=Customer, accept_global_perms=False, with_superuser=False)


def restrict(queryset, user, *, customer_field: str = "customer", perm: str = ACCESS):
    """Narrow any queryset with a path to Customer to what `user` may see."""
    if sees_everything(user):
        return queryset
    if not user or not user.is_authenticated:
        return queryset.none()
    if customer_field in ("", "self", "pk"):
        return queryset.filter(pk__in=customers_for(user, perm).values("pk"))
    return queryset.filter(**{f"{customer_field}__in": customers_for(user, perm).values("pk")})


def can(user, perm: str, customer: Customer) -> bool:
    if sees_everything(user):
        return True
    if not user or not user.is_authenticated:
        return False
    return user.has_perm(perm, customer)


def grant(user, customer: Customer, role: str) -> list[str]:
    """Give `user` the object permissions of `role` on `customer` (and the role's group)."""
    role = CustomerRole(role)
    perms = ROLE_OBJECT_PERMISSIONS[role]
    for perm in perms:
        assign_perm(perm, user, customer)
    user.groups.add(Group.objects.get(name=ROLE_GROUPS[role]))
    _forget_cached_perms(user)
    return perms


def revoke(user, customer: Customer, role: str | None = None) -> None:
    perms = ROLE_OBJECT_PERMISSIONS[CustomerRole(role)] if role else [ACCESS, WORK, INGEST]
    for perm in perms:
        remove_perm(perm, user, customer)
    _forget_cached_perms(user)


def _forget_cached_perms(user):
    for attr in ("_perm_cache", "_user_perm_cache", "_group_perm_cache", "_guardian_perms_cache"):
        if hasattr(user, attr):
            delattr(user, attr)
