"""StatusCode: what the database refuses, and the queryset methods other code relies on."""

import pytest
from django.db import IntegrityError, transaction

from errorcodes.choices import Family, Level, LevelSource
from errorcodes.models import StatusCode
from tests.conftest import make_status_code

pytestmark = pytest.mark.django_db


def test_same_code_in_two_families_is_allowed():
    make_status_code(family=Family.NETBACKUP, code=12)
    make_status_code(family=Family.MEDIA_MANAGER, code=12, message="media database could not be opened")

    assert StatusCode.objects.filter(code=12).count() == 2


def test_same_code_twice_in_one_family_is_refused():
    make_status_code(family=Family.NETBACKUP, code=12)

    with pytest.raises(IntegrityError), transaction.atomic():
        make_status_code(family=Family.NETBACKUP, code=12, message="another text")
    assert StatusCode.objects.filter(code=12).count() == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"level": 4},
        {"confidence": 1.5},
        {"confidence": -0.1},
        {"code": -1},
    ],
    ids=["level above 3", "confidence above 1", "confidence below 0", "negative code"],
)
def test_database_refuses_out_of_range_values(overrides):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_status_code(**overrides)
    assert not StatusCode.objects.exists()


@pytest.mark.parametrize("level", Level.values)
def test_every_level_is_accepted(level):
    assert make_status_code(level=level).level == level


def test_active_curated_and_of_family():
    live = make_status_code(code=1, level_source=LevelSource.CURATOR)
    make_status_code(code=2, is_active=False, level_source=LevelSource.CURATOR)
    classified = make_status_code(code=3)
    media = make_status_code(family=Family.MEDIA_MANAGER, code=3)

    assert set(StatusCode.objects.active().curated()) == {live}
    assert set(StatusCode.objects.of_family(Family.MEDIA_MANAGER)) == {media}
    assert set(StatusCode.objects.active().of_family(Family.NETBACKUP)) == {live, classified}


def test_search_looks_in_every_text_and_matches_a_number_as_code():
    by_message = make_status_code(code=58, message="can't connect to client", explanation="", recommended_action="")
    by_explanation = make_status_code(code=59, message="access refused", explanation="The CLIENT name is not listed.")
    by_action = make_status_code(code=96, message="no media", explanation="", recommended_action="Add a client pool.")
    make_status_code(code=84, message="media write error", explanation="", recommended_action="")

    assert set(StatusCode.objects.search("client")) == {by_message, by_explanation, by_action}
    assert set(StatusCode.objects.search(" 96 ")) == {by_action}
    assert StatusCode.objects.search("").count() == 4


def test_ordering_string_key_and_curated_flag():
    later = make_status_code(family=Family.NETBACKUP, code=200, message="scheduler found no work")
    earlier = make_status_code(family=Family.MEDIA_MANAGER, code=5, message="volume not found", level_source="curator")

    assert list(StatusCode.objects.all()) == [earlier, later]
    assert str(later) == "NetBackup status code 200: scheduler found no work"
    assert later.key == ("netbackup", 200)
    assert earlier.is_curated and not later.is_curated
