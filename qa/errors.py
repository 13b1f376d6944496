"""The root of every error a person can cause or fix (bad input, a damaged file, a full disk).

Surfaces catch `QAError` and show its message as one line; anything else is a bug and keeps its
traceback. Each error's message names what went wrong and, where there is one, the command that fixes it.
"""
from __future__ import annotations

import errno
import sqlite3


class QAError(Exception):
    """An error a user can cause or fix; its message is meant to be read as it is.

    `kind` and `status` are how the HTTP service reports it (`{"error", "kind"}`) and how its client
    raises the same class again: one table, filled by the subclasses that name a kind of their own.
    """

    kind = "error"
    status = 400
    kinds: dict[str, type["QAError"]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            QAError.kinds[cls.kind] = cls

    @staticmethod
    def of_kind(kind: object, message: str) -> "QAError | None":
        """The error a service reported, as the class that raised it there (None for an unknown kind)."""
        cls = QAError.kinds.get(kind) if isinstance(kind, str) else None
        return cls(message) if cls is not None else None


QAError.kinds[QAError.kind] = QAError


class DiskFull(QAError, OSError):
    """A write ran out of disk space; what was committed before it is intact."""

    kind, status = "disk", 507

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC from Python, SQLite's "database or disk is full", or FAISS's C++ "No space left on device"."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    if isinstance(err, sqlite3.OperationalError) and "disk is full" in text:
        return True
    return "No space left on device" in text or "Disk quota exceeded" in text  # FAISS, tantivy: their own errors


def disk_full(err: BaseException, where: object, what: str = "the index is unchanged") -> DiskFull:
    """The one line a full disk gets, naming the folder and what was kept."""
    return DiskFull(errno.ENOSPC, f"the disk holding {where} is full; {what} (free some space and run the "
                                  f"command again)")
