"""Settings for the test suite: the real settings with a fast hasher and no local .env."""

import os

os.environ["VBIP_DOTENV"] = "0"
os.environ.setdefault("SECRET_KEY", "test-suite-only-not-secret")
os.environ.setdefault("DEBUG", "false")

from vbip_project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHITENOISE_USE_FINDERS = True
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
REST_FRAMEWORK = {**REST_FRAMEWORK}  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"anon": "1000/minute", "user": "100000/minute"}

# A file, not memory, for SQLite test databases: end-to-end tests start real worker
# processes (manage.py db_worker) that must see the same database as the test.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # The process id keeps two suites run side by side on one checkout out of each other's file.
    (BASE_DIR / "var").mkdir(exist_ok=True)  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")}  # noqa: F405

# Close connections after each request so live-server and worker tests leave no session
# open on the PostgreSQL test database when it is dropped.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
