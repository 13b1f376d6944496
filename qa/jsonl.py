"""JSON lines as articles, question files and training pairs all read them: one object a line."""
from __future__ import annotations

import json
from typing import Iterator


def json_lines(text: str) -> Iterator[tuple[int, object, str | None]]:
    """(line number, object, None) for each non-blank line, or (line number, None, what is wrong with it)."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line), None
        except json.JSONDecodeError as err:
            yield lineno, None, f"invalid JSON ({err.msg})"
        except RecursionError:
            yield lineno, None, "JSON nested too deeply to read"
