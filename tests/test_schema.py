import yaml
from django.core.management import call_command


def test_openapi_schema_validates_without_warnings(tmp_path, db):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    paths = schema["paths"]
    for expected in (
        "/api/v1/status-codes/",
        "/api/v1/classify/",
        "/api/v1/jobs/",
        "/api/v1/incidents/",
        "/api/v1/diagnose/",
        "/api/health/",
    ):
        assert expected in paths, expected
