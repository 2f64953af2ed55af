"""Curator admin for the status-code knowledge base.

Every change a curator makes here goes through the same rules as the command line:
a level set by hand becomes a curator decision with its reason in the history, and
catalogue uploads run through `errorcodes.importers`, which never overwrites such a
decision. django-import-export is used for export only, for that reason.
"""

import dataclasses

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV, JSON, XLSX
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from . import importers, services
from .choices import Level, LevelSource
from .forms import CatalogueImportForm, SetLevelForm, StatusCodeAdminForm
from .models import StatusCode
from .resources import StatusCodeResource

# Largest value of the integer column: a longer number typed into the search box must
# not reach PostgreSQL, which would reject it as out of range.
MAX_CODE = 2**31 - 1
# How many codes the "Set level" confirmation page names before it only counts.
CONFIRMATION_LIST_LIMIT = 50

LEVEL_BADGE_COLOURS = {
    Level.INFORMATIONAL: ("#e9ecef", "#343a40"),
    Level.AUTOMATIC: ("#1e7e34", "#ffffff"),
    Level.APPROVAL: ("#ffc107", "#212529"),
    Level.ONSITE: ("#c82333", "#ffffff"),
}


class StatusCodeHistoryContext(HistoricalRecordContextHelper):
    """History diffs in the order of the change form, with choice labels instead of stored values."""

    def context_for_delta_changes(self, delta):
        order = {field.name: index for index, field in enumerate(self.model._meta.fields)}
        changes = sorted(delta.changes, key=lambda change: order.get(change.field, len(order)))
        return super().context_for_delta_changes(dataclasses.replace(delta, changes=changes))

    def prepare_delta_change_value(self, change, value):
        field = self.model._meta.get_field(change.field)
        if field.choices and value is not None:
            value = dict(field.flatchoices).get(value, value)
        return super().prepare_delta_change_value(change, value)


@admin.register(StatusCode)
class StatusCodeAdmin(ExportMixin, SimpleHistoryAdmin):
    form = StatusCodeAdminForm
    resource_classes = [StatusCodeResource]
    export_formats = [CSV, XLSX, JSON]
    change_list_template = "admin/errorcodes/statuscode/change_list.html"
    object_history_list_template = "admin/errorcodes/statuscode/object_history_list.html"
    set_level_template = "admin/errorcodes/statuscode/set_level.html"
    import_catalogue_template = "admin/errorcodes/statuscode/import_catalogue.html"

    list_display = (
        "family",
        "code",
        "message_short",
        "level_badge",
        "confidence_display",
        "level_source",
        "category",
        "severity",
        "is_active",
        "updated_at",
    )
    list_display_links = ("code", "message_short")
    list_filter = ("family", "level", "level_source", "category", "severity", "is_active")
    search_fields = ("message",)
    search_help_text = _("A number finds that code in every family; words search the message.")
    ordering = ("family", "code")
    list_per_page = 100
    show_full_result_count = False  # the unfiltered count is one more query on a big table
    actions = ["set_level_action", "reclassify_action"]

    fieldsets = (
        (None, {"fields": ("family", "code", "message")}),
        (
            _("Classification"),
            {
                "fields": (
                    "level",
                    "level_change_reason",
                    "level_source",
                    "confidence_display",
                    "classification_reason",
                ),
                "description": _("A level you set here is a curator decision: imports and re-classification keep it."),
            },
        ),
        (_("Text"), {"fields": ("explanation", "recommended_action", "curated_text")}),
        (_("Triage"), {"fields": ("category", "severity", "typical_resolution_minutes", "is_active")}),
        (_("Provenance"), {"fields": ("source", "created_at", "updated_at"), "classes": ("collapse",)}),
    )

    history_list_display = ["history_level", "history_level_source"]

    # -- change list ---------------------------------------------------------------

    @admin.display(description=_("message"), ordering="message")
    def message_short(self, obj):
        return Truncator(obj.message).chars(80)

    @admin.display(description=_("level"), ordering="level")
    def level_badge(self, obj):
        background, foreground = LEVEL_BADGE_COLOURS.get(obj.level, ("#6c757d", "#ffffff"))
        return format_html(
            '<span style="background:{};color:{};padding:1px 8px;border-radius:8px;white-space:nowrap">{}</span>',
            background,
            foreground,
            obj.get_level_display(),
        )

    @admin.display(description=_("confidence"), ordering="confidence")
    def confidence_display(self, obj):
        return f"{obj.confidence:.0%}"

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        # isdecimal, not isdigit: int() rejects superscripts that isdigit accepts.
        if term.isdecimal():
            code = int(term)
            if code > MAX_CODE:
                return queryset.none(), False
            return queryset.filter(code=code), False
        return super().get_search_results(request, queryset, search_term)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "has_catalogue_import_permission": self.has_catalogue_import_permission(request),
        }
        return super().changelist_view(request, extra_context)

    # -- export (django-import-export) ---------------------------------------------

    def has_export_permission(self, request):
        return self.has_view_or_change_permission(request)

    # -- change form ---------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj) or (obj is None and self.has_add_permission(request)):
            return fieldsets
        # Readers see the code, not an input for a decision they cannot make.
        return [
            (name, {**options, "fields": tuple(f for f in options["fields"] if f != "level_change_reason")})
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        readonly = ["level_source", "confidence_display", "classification_reason", "created_at", "updated_at"]
        if obj is not None:
            # family + code identify a code everywhere (incidents, history); a typo is fixed by a new code.
            readonly = ["family", "code", *readonly]
        return readonly

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        if any(name in form.changed_data for name in services.CURATED_FIELDS):
            obj.curated_text = True
        if form.level_decided:
            # One save through the service: the level, its reason and the other edits
            # land in a single history row whose change reason is the curator's reason.
            services.set_level(
                [obj], level=obj.level, reason=form.cleaned_data["level_change_reason"], user=request.user
            )
            return
        edited = [str(form.fields[name].label) for name in form.changed_data if name != "level_change_reason"]
        if edited:
            obj._change_reason = gettext("Edited in the admin: %(fields)s") % {"fields": ", ".join(edited)}
        super().save_model(request, obj, form, change)

    # -- history (django-simple-history) -------------------------------------------

    @admin.display(description=_("level"))
    def history_level(self, record):
        return record.get_level_display()

    @admin.display(description=_("level source"))
    def history_level_source(self, record):
        return record.get_level_source_display()

    def get_historical_record_context_helper(self, request, historical_record):
        return StatusCodeHistoryContext(self.model, historical_record)

    def history_view(self, request, object_id, extra_context=None):
        columns = [
            (name, getattr(getattr(self, name, None), "short_description", name))
            for name in self.get_history_list_display(request)
        ]
        return super().history_view(request, object_id, {**(extra_context or {}), "history_columns": columns})

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        records = list(historical_records)
        super().set_history_delta_changes(request, records, foreign_keys_are_objs)
        if not records:
            return
        # The parent compares each row with the next one on the page, so the oldest row
        # of a page has no delta yet; its predecessor is on the next page (one query).
        oldest = records[-1]
        previous = oldest.prev_record
        if previous is not None:
            delta = oldest.diff_against(previous, foreign_keys_are_objs=foreign_keys_are_objs)
            helper = self.get_historical_record_context_helper(request, oldest)
            oldest.history_delta_changes = helper.context_for_delta_changes(delta)
        for record in records:
            changes = getattr(record, "history_delta_changes", None) or []
            record.changed_fields = [str(change["field"]) for change in changes]
            record.is_first_version = record is oldest and previous is None

    def revert_disabled(self, request, obj=None):
        # A revert would restore an old level without a reason or curator precedence;
        # curators change a level in the change form, where those rules apply.
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # simple-history saves a POST to this view for anyone who may view history,
        # even with revert disabled; old versions are for reading only here.
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    # -- bulk actions --------------------------------------------------------------

    @admin.action(description=_("Set level…"), permissions=["change"])
    def set_level_action(self, request, queryset):
        if "apply" in request.POST:
            form = SetLevelForm(request.POST)
            if form.is_valid():
                level = form.cleaned_data["level"]
                codes = list(queryset)
                changed = sum(1 for obj in codes if (obj.level, obj.level_source) != (level, LevelSource.CURATOR))
                count = services.set_level(codes, level=level, reason=form.cleaned_data["reason"], user=request.user)
                self.message_user(
                    request,
                    ngettext(
                        "Level “%(level)s” set on %(count)d status code as a curator decision; %(changed)d changed.",
                        "Level “%(level)s” set on %(count)d status codes as a curator decision; %(changed)d changed.",
                        count,
                    )
                    % {"level": Level(level).label, "count": count, "changed": changed},
                    messages.SUCCESS,
                )
                return None
        else:
            form = SetLevelForm()
        total = queryset.count()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Set the level of status codes"),
            "opts": self.opts,
            "form": form,
            "codes": queryset[:CONFIRMATION_LIST_LIMIT],
            "total": total,
            "more": max(0, total - CONFIRMATION_LIST_LIMIT),
            "selected_pks": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_name": "set_level_action",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.set_level_template, context)

    @admin.action(description=_("Re-classify (curator decisions are kept)"), permissions=["change"])
    def reclassify_action(self, request, queryset):
        counts = services.reclassify(queryset, user=request.user)
        self.message_user(
            request,
            gettext(
                "Re-classified: %(changed)d changed, %(unchanged)d unchanged, %(skipped_curator)d curator "
                "decisions kept, %(skipped_import)d imported levels kept."
            )
            % counts,
            messages.SUCCESS,
        )

    # -- catalogue import ----------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "import-catalogue/",
                self.admin_site.admin_view(self.import_catalogue_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_import_catalogue",
            ),
            *super().get_urls(),
        ]

    def has_catalogue_import_permission(self, request):
        return self.has_add_permission(request) and self.has_change_permission(request)

    def import_catalogue_view(self, request):
        if not self.has_catalogue_import_permission(request):
            raise PermissionDenied
        result = None
        if request.method == "POST":
            form = CatalogueImportForm(request.POST, request.FILES)
            if form.is_valid():
                result = self._import_catalogue(request, form)
        else:
            form = CatalogueImportForm()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import a status-code catalogue"),
            "opts": self.opts,
            "form": form,
            "result": result,
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.import_catalogue_template, context)

    def _import_catalogue(self, request, form):
        upload = form.cleaned_data["file"]
        dry_run = form.cleaned_data["dry_run"]
        try:
            result = importers.import_file(
                upload,
                format=form.importer_format,
                family=form.cleaned_data["family"],
                dry_run=dry_run,
                user=request.user,
                change_reason=gettext("Catalogue upload %(name)s") % {"name": upload.name},
            )
        except importers.ImportFormatError as exc:
            form.add_error("file", str(exc))
            return None
        summary = {
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "rejected": len(result.rejected),
        }
        if dry_run:
            text = gettext(
                "Dry run: %(created)d would be created, %(updated)d updated, %(unchanged)d unchanged, "
                "%(rejected)d rejected. Nothing was saved."
            )
        else:
            text = gettext(
                "Imported: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, %(rejected)d rejected."
            )
        self.message_user(request, text % summary, messages.WARNING if result.rejected else messages.SUCCESS)
        return result
