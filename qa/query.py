"""What a question asks for: the question, how many passages, what retrieval searches, and a `Filter`.

Each surface (the API, the CLI, the chat, the HTTP service) builds one `Query` and passes it down
unchanged to retrieval; the `Answer` echoes it. A new filter is a field of `Filter`, its `sql()` clause
and its argument at the surfaces (docs/architecture.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .dates import DateError, DateRange
from .errors import QAError


def host_of(address: str) -> str:
    """The host of a web address as the site filter matches it (lower case, no "www."); "" for a file."""
    if "://" not in address:
        return ""
    host = address.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host = host.rsplit("@", 1)[-1].lower().rstrip(".")
    host = host.split("]")[0].lstrip("[") if host.startswith("[") else host.split(":")[0]
    return host[4:] if host.startswith("www.") else host


class QuestionError(QAError, ValueError):
    """A question or setting a person typed that cannot be answered as given; the message says why."""

    kind, status = "question", 400


def validate_question(question: object, max_chars: int) -> str:
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    question = " ".join(question.split())
    if not question:
        raise QuestionError("the question is empty; type a question about the articles")
    if len(question) > max_chars:
        raise QuestionError(f"the question is {len(question):,} characters long; the limit is {max_chars:,}")
    if not any(ch.isalnum() for ch in question):
        raise QuestionError("the question has no words, only punctuation or symbols")
    return question


def validate_k(k: object, max_k: int) -> int:
    """A whole number of passages (5 or 5.0 from JSON); never a bool, a fraction, text or None."""
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_k:
        raise QuestionError(f"k (passages to read) must be a whole number from 1 to {max_k}, got {repr(k)[:40]}")
    return k


HOST = re.compile(r"^(?=.{1,253}$)(?!-)[\w-]{1,63}(?:\.(?!-)[\w-]{1,63})*$")
MAX_SITES = 50


def site_of(value: object) -> str:
    """A site as a person types it ("reuters.com", "www.Reuters.com", "https://reuters.com/world") as the
    host the index stores (lower case, no "www."); refused when it is no host name."""
    text = value.strip() if isinstance(value, str) else ""
    host = host_of(text if "://" in text else f"http://{text}") if text else ""
    if not host or not HOST.match(host) or "_" in host:
        raise QuestionError(f"site {str(value)[:80]!r} is not a host name; write it as reuters.com")
    return host


def sites_of(value: object) -> tuple[str, ...]:
    """One site, several (a list, or separated by commas), or none; each once, in order."""
    if value is None or value == "":
        return ()
    items = re.split(r"[,\n]+", value) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise QuestionError("site must be a host name or a list of them")
    sites = tuple(dict.fromkeys(site_of(v) for v in items if not (isinstance(v, str) and not v.strip())))
    if len(sites) > MAX_SITES:
        raise QuestionError(f"{len(sites)} sites given; the limit is {MAX_SITES}")
    return sites


@dataclass(frozen=True)
class Filter:
    """Which articles a question may be answered from: published in `dates`, and from one of `sites`."""

    dates: DateRange | None = None
    sites: tuple[str, ...] = ()  # hosts as `site_of` writes them; a site includes its subdomains

    @classmethod
    def of(cls, since: object = None, until: object = None, site: object = None) -> "Filter":
        """From what a person typed; refused with one clear line (`QuestionError`)."""
        try:
            dates = DateRange.of(since, until)
        except DateError as err:
            raise QuestionError(str(err)) from err
        return cls(dates, sites_of(site))

    @property
    def empty(self) -> bool:
        return self.dates is None and not self.sites

    @property
    def since(self) -> str | None:
        return self.dates.since if self.dates else None

    @property
    def until(self) -> str | None:
        return self.dates.until if self.dates else None

    def sql(self, published: str, host: str) -> tuple[str, dict[str, str]]:
        """One WHERE clause over an articles table's published-date and host columns."""
        clauses, args = [], {}
        if self.dates is not None:
            where, args = self.dates.sql(published)
            clauses.append(where)
        if self.sites:
            ors = []
            for i, site in enumerate(self.sites):
                args[f"site{i}"], args[f"sub{i}"] = site, "%." + site.replace("_", r"\_")
                ors.append(f"{host} = :site{i} OR {host} LIKE :sub{i} ESCAPE '\\'")
            clauses.append("(" + " OR ".join(ors) + ")")
        return " AND ".join(clauses) or "1", args

    def describe(self) -> str:
        parts = [self.dates.describe()] if self.dates else []
        if self.sites:
            parts.append("from " + ", ".join(self.sites))
        return "; ".join(parts)


@dataclass(frozen=True)
class Query:
    """One question as a surface received it, validated: what `Assistant.ask` answers."""

    question: str
    k: int
    context: str | None = None  # what retrieval searches instead of the question (a follow-up in context)
    filter: Filter = field(default_factory=Filter)
    latest: bool = False  # wants the newest article's figure though it does not say so (a chat follow-up)

    @classmethod
    def of(cls, question: object, config, *, k: object = None, context: object = None, since: object = None,
           until: object = None, site: object = None) -> "Query":
        """Validated against `config`'s limits; k defaults to `config.k`."""
        question = validate_question(question, config.max_question_chars)
        context = validate_question(context, config.max_question_chars) if context else None
        return cls(question, validate_k(config.k if k is None else k, config.max_k),
                   None if context == question else context, Filter.of(since, until, site))

    @property
    def search(self) -> str:
        """What retrieval searches for."""
        return self.context or self.question

    def to_dict(self) -> dict[str, Any]:
        f = self.filter
        return {"question": self.question, "k": self.k, "context": self.context, "since": f.since,
                "until": f.until, "sites": list(f.sites), "latest": self.latest}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Query":
        dates = DateRange(data.get("since"), data.get("until")) if data.get("since") or data.get("until") else None
        return cls(data["question"], int(data.get("k") or 0), data.get("context"),
                   Filter(dates, tuple(data.get("sites") or ())), bool(data.get("latest")))
