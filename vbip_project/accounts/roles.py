"""The four roles of V-BIP as groups, and the model permissions each carries.

Groups are created by a migration; their model permissions are (re)applied after
every migrate, because permissions for models of later apps only exist once
those apps have migrated. Object permissions on customers narrow what
engineers, viewers and integrations may see (see incidents.permissions).
"""

from django.utils.translation import gettext_lazy as _

CURATORS = "Curators"
ENGINEERS = "Engineers"
VIEWERS = "Viewers"
INTEGRATIONS = "Integrations"

ROLE_NAMES = [CURATORS, ENGINEERS, VIEWERS, INTEGRATIONS]
ROLE_LABELS = {
    CURATORS: _("Curators"),
    ENGINEERS: _("Engineers"),
    VIEWERS: _("Viewers"),
    INTEGRATIONS: _("Integrations"),
}

# app_label.codename, or app_label.* for every permission of the app's models,
# or app_label.view_* for every view permission.
ROLE_PERMISSIONS = {
    CURATORS: [
        "errorcodes.*",
        "recovery.add_playbook",
        "recovery.change_playbook",
        "recovery.delete_playbook",
        "recovery.view_playbook",
        "incidents.view_*",
        "approvals.view_*",
        "recovery.view_*",
    ],
    ENGINEERS: [
        "errorcodes.view_statuscode",
        "incidents.view_*",
        "incidents.change_incident",
        "approvals.view_*",
        "approvals.change_approvalrequest",
        "recovery.view_*",
    ],
    VIEWERS: [
        "errorcodes.view_statuscode",
        "incidents.view_*",
        "approvals.view_*",
        "recovery.view_*",
    ],
    INTEGRATIONS: [
        "errorcodes.view_statuscode",
        "incidents.view_*",
        "incidents.add_backupjob",
        "incidents.change_backupjob",
    ],
}


def _matching_permissions(Permission, spec):
    app_label, _sep, codename = spec.partition(".")
    qs = Permission.objects.filter(content_type__app_label=app_label)
    if codename == "*":
        return qs
    if codename.endswith("*"):
        return qs.filter(codename__startswith=codename[:-1])
    return qs.filter(codename=codename)


def sync_role_permissions(sender=None, using="default", apps=None, **kwargs):
    """Give each role group its model permissions. Idempotent; never removes extras."""
    from django.contrib.auth.models import Group, Permission

    if apps is not None:
        try:
            apps.get_model("auth", "Group")
        except LookupError:
            return
    for name, specs in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.using(using).get_or_create(name=name)
        perms = []
        for spec in specs:
            perms.extend(_matching_permissions(Permission, spec).using(using))
        if perms:
            group.permissions.add(*perms)
