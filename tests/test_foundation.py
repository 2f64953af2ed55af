import subprocess
import sys

import pytest
from django.contrib.auth.models import Group

from vbip_project.accounts import roles


def test_health_is_public_and_reports_database(anon_client, db):
    response = anon_client.get("/api/health/")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == "ok"


def test_health_answers_503_when_database_is_unreachable():
    # A real unreachable PostgreSQL (nothing listens on port 9): no patched cursor.
    code = (
        "import django, os, json; os.environ['DJANGO_SETTINGS_MODULE']='vbip_project.settings'; django.setup();"
        "from django.test import Client; r = Client().get('/api/health/');"
        "print(r.status_code, json.dumps(r.json()))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "VBIP_DOTENV": "0",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:9/nowhere",
        "PGCONNECT_TIMEOUT": "2",
    }
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    status, body = proc.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "503"
    assert '"database": "unreachable"' in body


def test_role_groups_exist_with_permissions(db):
    names = set(Group.objects.values_list("name", flat=True))
    assert set(roles.ROLE_NAMES) <= names
    curators = Group.objects.get(name=roles.CURATORS)
    assert curators.permissions.filter(codename="change_statuscode").exists()
    viewers = Group.objects.get(name=roles.VIEWERS)
    assert not viewers.permissions.filter(codename="change_statuscode").exists()


def test_schema_and_docs_are_public(anon_client, db):
    assert anon_client.get("/api/schema/").status_code == 200
    assert anon_client.get("/api/docs/").status_code == 200


def _settings_error(env):
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='vbip_project.settings'; django.setup()"
    base = {"PATH": "/usr/bin:/bin", "VBIP_DOTENV": "0", "SECRET_KEY": "x" * 50}
    base.update(env)
    base = {k: v for k, v in base.items() if v is not None}
    proc = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True, text=True)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"SECRET_KEY": None, "DEBUG": "false"}, "SECRET_KEY"),
        ({"TIME_ZONE": "Mars/Olympus"}, "TIME_ZONE"),
        ({"LANGUAGE_CODE": "fr"}, "LANGUAGE_CODE"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
        ({"CSRF_TRUSTED_ORIGINS": "example.com"}, "CSRF_TRUSTED_ORIGINS"),
        ({"MAX_UPLOAD_BYTES": "lots"}, "MAX_UPLOAD_BYTES"),
    ],
)
def test_invalid_settings_fail_at_start_naming_the_variable(env, variable):
    returncode, stderr = _settings_error(env)
    assert returncode != 0
    assert "ImproperlyConfigured" in stderr
    assert variable in stderr


def test_valid_settings_start(tmp_path):
    returncode, stderr = _settings_error({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "TIME_ZONE": "UTC"})
    assert returncode == 0, stderr


def test_health_reports_the_task_queue(anon_client, db):
    from incidents.tasks import poll_netbackup_servers

    assert anon_client.get("/api/health/").json()["tasks"] == {
        "ready": 0,
        "running": 0,
        "oldest_ready_age_seconds": None,
    }
    poll_netbackup_servers.enqueue(server_ids=[])
    tasks = anon_client.get("/api/health/").json()["tasks"]
    assert tasks["ready"] == 1
    assert tasks["oldest_ready_age_seconds"] >= 0
