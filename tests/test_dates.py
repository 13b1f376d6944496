"""Published dates: one ISO form for every source format, and date ranges as retrieval filters."""
import pytest

from qa.dates import DateError, DateRange, normalize_date


@pytest.mark.parametrize("raw,iso", [
    ("2026-11-05", "2026-11-05"),
    ("2026-11-05T09:15:00Z", "2026-11-05T09:15:00+00:00"),  # meta article:published_time
    ("2026-11-05T08:30:00+01:00", "2026-11-05T08:30:00+01:00"),  # JSON-LD datePublished
    ("Thu, 05 Nov 2026 10:00:00 GMT", "2026-11-05T10:00:00+00:00"),  # RSS pubDate
    ("November 5, 2026", "2026-11-05"),
    ("5 November 2026", "2026-11-05"),
    ("2026-11-05 14:30", "2026-11-05T14:30:00"),
])
def test_dates_in_every_common_form_become_iso_8601(raw, iso):
    assert normalize_date(raw) == iso


@pytest.mark.parametrize("raw", ["yesterday", "November 2026", "2026", "2026-02-30", "soon-ish"])
def test_what_is_not_a_whole_date_is_refused_not_guessed(raw):
    with pytest.raises(DateError, match="date"):
        normalize_date(raw)


def test_a_range_is_days_inclusive_and_undated_articles_fall_outside_it():
    dates = DateRange.of("2026-11-02", "November 3, 2026")
    assert dates == DateRange("2026-11-02", "2026-11-03")
    assert dates.contains("2026-11-03T23:59:00+00:00") and dates.contains("2026-11-02")
    assert not dates.contains("2026-11-04") and not dates.contains(None)
    assert DateRange.of("", None) is None  # no filter at all
    where, args = dates.sql("published")
    assert args == {"since": "2026-11-02", "until_next": "2026-11-04"} and "IS NOT NULL" in where


def test_a_backwards_or_unreadable_range_says_which_bound_is_wrong():
    with pytest.raises(DateError, match="since .2026-11-05. is after until .2026-11-01."):
        DateRange.of("2026-11-05", "2026-11-01")
    with pytest.raises(DateError, match="until: unreadable date 'last week'"):
        DateRange.of(None, "last week")
