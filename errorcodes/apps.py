from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ErrorcodesConfig(AppConfig):
    name = "errorcodes"
    verbose_name = _("Status-code knowledge base")
