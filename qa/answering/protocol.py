"""What a surface needs of an assistant: answer a `Query` (one or several), and warm up.

The local `Assistant` and the chat's `RemoteAssistant` (answers from a `qa serve` service) both
implement it; surfaces depend on this, not on either class. Articles are kept by a `Library`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from ..config import Config
from ..query import Query
from ..schema import Answer


class Answering(ABC):
    """Answers queries; `config` holds the limits a query is checked against."""

    config: Config

    @abstractmethod
    def ask(self, query: Query) -> Answer:
        """The answer to one query."""

    def ask_all(self, queries: list[Query]) -> list[Answer]:
        """Several queries (a chat follow-up asked alone and in context); an implementation may share work."""
        return [self.ask(q) for q in queries]

    @abstractmethod
    def warm_up(self) -> None:
        """Be ready to answer at full speed (load models, or check that the service answers)."""

    def query(self, question: object, *, k: object = None, query: object = None, since: object = None,
              until: object = None, site: object = None) -> Query:
        """A validated `Query` from what a person or a script gave (`QuestionError` when it cannot be asked)."""
        return Query.of(question, self.config, k=k, context=query, since=since, until=until, site=site)

    def answer(self, question: str, *, k: int | None = None, query: str | None = None, since: object = None,
               until: object = None, site: object = None) -> Answer:
        """Answer `question`; `query` (default: the question) is what retrieval searches for; `since` /
        `until` keep to articles published in that range (undated ones are left out, and counted), and
        `site` (a host, or several) to articles from those sites."""
        return self.ask(self.query(question, k=k, query=query, since=since, until=until, site=site))
