"""Models are loaded once per process and shared by every assistant, keyed by their frozen settings.

A settings record (`EmbedderSettings`, `ReaderSettings`, `CalibrationSettings`) is a frozen dataclass
with a `build()`; two assistants whose settings are equal share one loaded model.
"""
from __future__ import annotations

import threading
from typing import Protocol, TypeVar

T = TypeVar("T", covariant=True)


class Settings(Protocol[T]):
    def build(self) -> T: ...


_models: dict[object, object] = {}
_lock = threading.Lock()


def shared(settings: Settings[T]) -> T:
    """The model these settings describe, built on first use."""
    with _lock:
        if settings not in _models:
            _models[settings] = settings.build()
        return _models[settings]  # type: ignore[return-value]


def forget() -> None:
    """Drop every loaded model (tests that swap a model class)."""
    with _lock:
        _models.clear()
