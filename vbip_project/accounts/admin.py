from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import ApiToken, User


class ApiTokenInline(admin.TabularInline):
    """A user's tokens at a glance; tokens are issued and revoked on the token pages."""

    model = ApiToken
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("prefix", "name", "read_only", "expires_at", "last_used_at", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("display_name", "first_name", "last_name", "email")}),
        (
            _("Roles and permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "display_name", "email", "usable_password", "password1", "password2"),
            },
        ),
        (_("Roles"), {"fields": ("groups",)}),
    )
    list_display = ("username", "display_name", "email", "roles", "is_staff", "is_active", "last_login")
    list_filter = ("groups", "is_staff", "is_superuser", "is_active")
    search_fields = ("username", "display_name", "first_name", "last_name", "email")
    inlines = [ApiTokenInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("roles"))
    def roles(self, obj):
        return ", ".join(sorted(group.name for group in obj.groups.all())) or "—"

    def get_inlines(self, request, obj):
        # The add page has no tokens to show yet.
        return self.inlines if obj is not None else []


class TokenStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", _("Active")), ("expired", _("Expired")), ("revoked", _("Revoked"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.active()
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Issue, inspect and revoke API tokens. The raw value is shown once, right after it is issued;
    only its hash is stored, so nobody (this page included) can show it again."""

    list_display = ("prefix", "name", "user", "scope", "expires_at", "last_used_at", "revoked_at", "state")
    list_filter = (TokenStateFilter, "read_only")
    list_select_related = ("user",)
    search_fields = ("prefix", "name", "user__username", "user__display_name")
    autocomplete_fields = ("user",)
    actions = ["revoke_tokens"]
    date_hierarchy = "created_at"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "read_only", "expires_at")
        return ("prefix", "user", "name", "read_only", "created_at", "expires_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # A token's owner and scope are fixed once issued: issue a new token instead,
        # so a leaked read-only token can never be turned into a read-write one.
        return ("prefix", "user", "read_only", "created_at", "last_used_at", "revoked_at")

    @admin.display(description=_("scope"), ordering="read_only")
    def scope(self, obj):
        return _("read-only") if obj.read_only else _("read-write")

    @admin.display(description=_("state"))
    def state(self, obj):
        if obj.revoked_at is not None:
            return _("Revoked")
        if obj.is_expired:
            return _("Expired")
        return _("Active")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued, raw = ApiToken.issue(obj.user, name=obj.name, read_only=obj.read_only, expires_at=obj.expires_at)
        # The admin goes on with `obj` (log entry, redirect), so it becomes the issued row.
        obj.pk = issued.pk
        obj.key_hash = issued.key_hash
        obj.prefix = issued.prefix
        obj.created_at = issued.created_at
        obj._state.adding = False
        obj._state.db = issued._state.db
        messages.warning(
            request,
            format_html(
                "{} <code>{}</code>",
                _("Copy the new token now; it is stored hashed and will not be shown again:"),
                raw,
            ),
        )

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke_tokens(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(
            request,
            ngettext("Revoked %(count)d token.", "Revoked %(count)d tokens.", count) % {"count": count},
            messages.SUCCESS,
        )
