"""The chat with `--backend URL`: questions go to a `qa serve` service, so many chat users share one
pool of replicas; the Articles tab still writes the index folder, which the service must also read."""
from __future__ import annotations

from ..config import Config
from ..errors import QAError
from ..answering.protocol import Answering
from ..query import Query
from ..schema import Answer

TIMEOUT_SECONDS = 60.0  # a question waits this long for a busy service before the chat says so


class BackendError(QAError, RuntimeError):
    """The answering service cannot be reached or failed; the message says which and where."""


class RemoteAssistant(Answering):
    """Answers through the HTTP API of `qa serve`; it has no models and writes no index (the chat's
    Articles tab keeps the index folder with a `Library`)."""

    def __init__(self, url: str, config: Config | None = None, **overrides):
        import httpx

        self.config = (config or Config()).with_(**overrides)
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, timeout=TIMEOUT_SECONDS)

    def ask(self, query: Query) -> Answer:
        return Answer.from_dict(self._call("POST", "/answer", query.to_dict()))

    def warm_up(self) -> None:
        """Check that the service answers (the models live there, not in this process)."""
        self._call("GET", "/health", None)

    def _call(self, method: str, path: str, payload: dict | None) -> dict:
        import httpx

        try:
            response = self.client.request(method, path, json=payload)
        except httpx.HTTPError as err:
            raise BackendError(f"the answering service at {self.url} cannot be reached "
                               f"({type(err).__name__}: {err})") from err
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200:
            return body
        message = body.get("error") if isinstance(body, dict) else None
        known = QAError.of_kind(body.get("kind"), message) if isinstance(body, dict) and message else None
        if known is not None:
            raise known
        raise BackendError(f"the answering service at {self.url} answered HTTP {response.status_code}"
                           + (f": {message}" if message else ""))
