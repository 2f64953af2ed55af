"""A throw-away PostgreSQL database for a benchmark run (shared by the bench scripts)."""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit


def fresh_postgres(url: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """Create `<prefix>_<pid>` on the server of `url`; return its URL and a function that drops it."""
    import psycopg2
    from psycopg2 import sql

    name = f"{prefix}_{os.getpid()}"
    admin = psycopg2.connect(url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()

    def drop():
        from django.db import connections

        connections.close_all()
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.close()

    return urlunsplit(urlsplit(url)._replace(path=f"/{name}")), drop
