from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "vbip_project.accounts"
    label = "accounts"
    verbose_name = _("Accounts and API tokens")

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import roles

        post_migrate.connect(roles.sync_role_permissions, dispatch_uid="vbip_sync_role_permissions")
