"""django-import-export resource for exporting the knowledge base.

Export only. Rows leave with their raw values (family slug, level number, category
slug), the same columns the catalogue importer reads, so an exported file can be
edited and loaded again through `errorcodes.importers`. Import deliberately does not
go through django-import-export: its row-by-row save would overwrite curator
decisions, which `errorcodes.services.upsert_status_codes` protects.
"""

from import_export import resources

from .models import StatusCode

EXPORT_FIELDS = (
    "family",
    "code",
    "message",
    "explanation",
    "recommended_action",
    "category",
    "severity",
    "level",
    "confidence",
    "level_source",
    "classification_reason",
    "curated_text",
    "typical_resolution_minutes",
    "is_active",
    "source",
    "updated_at",
)


class StatusCodeResource(resources.ModelResource):
    class Meta:
        model = StatusCode
        fields = EXPORT_FIELDS
        export_order = EXPORT_FIELDS
        import_id_fields = ("family", "code")

    def import_data(self, *args, **kwargs):
        raise NotImplementedError(
            "StatusCodeResource is export-only; import through errorcodes.importers so curator decisions are kept."
        )
