"""Published dates: normalized to ISO 8601 when an article is read, and date ranges for retrieval.

Stored dates are "YYYY-MM-DD", or "YYYY-MM-DDTHH:MM:SS[+HH:MM]" when the source gave a time, so they
sort and compare as text: a range filter is two string comparisons that SQLite answers from an index.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from .errors import QAError

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_DATE_CHARS = 64  # "Wednesday, 25 November 2026, 14:30:00 Central European Summer Time" fits


class DateError(QAError, ValueError):
    """A date that cannot be read; the message quotes it."""


def normalize_date(value: object) -> str | None:
    """ISO 8601 for a date in any common form (ISO, RFC 822 as in feeds, "March 3, 2026"); None for empty.

    Raises DateError for text that is not a date, rather than guessing; a bare year or month is not a date.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, (str, int, float)):
        raise DateError(f"a date must be text, not {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_DATE_CHARS:  # before any parsing: dateutil takes minutes over a megabyte of text
        raise DateError(f"unreadable date: {len(text):,} characters long, where a date has at most {MAX_DATE_CHARS}")
    text = " ".join(text.split())
    try:
        return _iso(dt.datetime.fromisoformat(text.replace("Z", "+00:00"))) if "T" in text or " " not in text \
            else _parsed(text)
    except ValueError:
        return _parsed(text)


def _parsed(text: str) -> str:
    try:
        return _iso(parsedate_to_datetime(text))  # RSS: "Mon, 02 Nov 2026 10:00:00 GMT"
    except (TypeError, ValueError, IndexError):
        pass
    from dateutil import parser

    missing = dt.datetime(1, 1, 1)
    try:
        parsed = parser.parse(text, default=missing, fuzzy=False)
    except (ValueError, OverflowError) as err:
        raise DateError(f"unreadable date {text[:60]!r}") from err
    if parsed.year == 1 or parsed.day == 1 and not re.search(r"\b0?1\b|1st", text):
        raise DateError(f"incomplete date {text[:60]!r} (needs year, month and day)")
    return _iso(parsed)


def _iso(value: dt.datetime) -> str:
    """A date alone when no time was given (midnight without a zone), else date, time and zone."""
    if value.tzinfo is None and value.time() == dt.time(0):
        return value.date().isoformat()
    return value.replace(microsecond=0).isoformat()


def day(value: str | None) -> str | None:
    """The calendar day of a stored date (what lists and filters show and compare)."""
    return value[:10] if value else None


NUMERIC_DAY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})$")


def unambiguous(value: object) -> object:
    """What a person typed, refused when day and month could be either ("03/04/2026"); "15/11/2026" is read."""
    found = NUMERIC_DAY.match(value) if isinstance(value, str) else None
    if found and int(found.group(1)) <= 12 and int(found.group(2)) <= 12 and found.group(1) != found.group(2):
        a, b = int(found.group(1)), int(found.group(2))
        raise DateError(f"{value!r} could be day {a} of month {b} or month {a}, day {b}; write it as "
                        f"YYYY-MM-DD or with the month's name")
    return value


@dataclass(frozen=True)
class DateRange:
    """Published between `since` and `until`, both days included; either may be open."""

    since: str | None = None
    until: str | None = None

    @classmethod
    def of(cls, since: object = None, until: object = None) -> "DateRange | None":
        """From what a person typed (ISO days or any date `normalize_date` reads); None when both are empty."""
        bounds = []
        for name, value in (("since", since), ("until", until)):
            value = value.strip() if isinstance(value, str) else value
            try:
                bounds.append(day(normalize_date(unambiguous(value))))
            except DateError as err:
                raise DateError(f"{name}: {err}; use a date such as 2026-11-27") from err
        if bounds[0] and bounds[1] and bounds[0] > bounds[1]:
            raise DateError(f"since ({bounds[0]}) is after until ({bounds[1]})")
        return cls(*bounds) if any(bounds) else None

    def contains(self, published: str | None) -> bool:
        published = day(published)
        return published is not None and (self.since is None or published >= self.since) and \
            (self.until is None or published <= self.until)

    def sql(self, column: str) -> tuple[str, dict[str, str]]:
        """A WHERE clause on an ISO date column (index-friendly: `until` compares with the next day)."""
        clauses, args = [f"{column} IS NOT NULL"], {}
        if self.since:
            clauses.append(f"{column} >= :since")
            args["since"] = self.since
        if self.until:
            clauses.append(f"{column} < :until_next")
            args["until_next"] = (dt.date.fromisoformat(self.until) + dt.timedelta(days=1)).isoformat()
        return " AND ".join(clauses), args

    def describe(self) -> str:
        if self.since and self.until:
            return f"published {self.since} to {self.until}"
        return f"published since {self.since}" if self.since else f"published until {self.until}"
