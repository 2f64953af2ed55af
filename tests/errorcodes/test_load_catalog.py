"""The built-in catalogue: it loads, it is curated, loading it again changes nothing, and it
never undoes a curator's later decision."""

import io
import json

import pytest
from django.core.management import call_command

from errorcodes.choices import Family, Level, LevelSource
from errorcodes.management.commands.load_catalog import CATALOG
from errorcodes.models import StatusCode
from errorcodes.services import set_level

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not CATALOG.is_file(), reason=f"the catalogue {CATALOG} has not been written yet"),
]

# Codes engineers meet every week; the catalogue must carry each of them.
REQUIRED_NETBACKUP_CODES = [
    1, 2, 5, 6, 13, 23, 24, 25, 40, 41, 42, 48, 49, 50, 52, 54, 56, 57, 58, 59, 69, 71, 84, 85, 86, 87, 90,
    96, 129, 130, 150, 156, 174, 191, 196, 200, 213, 219, 228, 230, 239, 240, 242, 252, 800, 2074, 2106, 4207,
]  # fmt: skip


def load() -> str:
    out = io.StringIO()
    call_command("load_catalog", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


@pytest.fixture
def entries():
    return json.loads(CATALOG.read_text(encoding="utf-8"))


def test_catalogue_loads_every_entry_as_curated(entries):
    summary = load()

    assert summary == f"catalogue: created {len(entries)}, updated 0, unchanged 0, rejected 0"
    assert StatusCode.objects.count() == len(entries)
    assert not StatusCode.objects.exclude(level_source=LevelSource.CURATOR).exists()


def test_catalogue_has_at_least_250_codes(entries):
    assert len(entries) >= 250


def test_catalogue_covers_the_everyday_netbackup_codes():
    load()

    present = set(StatusCode.objects.of_family(Family.NETBACKUP).values_list("code", flat=True))
    assert [code for code in REQUIRED_NETBACKUP_CODES if code not in present] == []


def test_loading_again_changes_nothing(entries):
    load()
    history = StatusCode.history.count()

    assert load() == f"catalogue: created 0, updated 0, unchanged {len(entries)}, rejected 0"
    assert StatusCode.history.count() == history


def test_curator_decision_made_after_loading_survives_a_reload(curator):
    load()
    row = StatusCode.objects.get(family=Family.NETBACKUP, code=96)
    new_level = Level.ONSITE if row.level != Level.ONSITE else Level.APPROVAL
    set_level([row], level=new_level, reason="this site's library jams", user=curator)

    load()

    row.refresh_from_db()
    assert row.level == new_level
    assert row.level_source == LevelSource.CURATOR
    assert row.classification_reason.endswith("this site's library jams")
