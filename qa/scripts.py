"""Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Khmer, Myanmar).

Word counts and keyword search both assume spaces; for these scripts a word is about two characters,
and keyword search indexes overlapping character pairs (the usual CJK bigrams), so "東京" finds
"東京で大雨". Text with none of these characters is left exactly as it was.
"""
from __future__ import annotations

import re

UNSPACED = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                      r"\uf900-\ufaff\uff66-\uff9f]+")
CHARS_PER_WORD = 2


def words(line: str) -> int:
    """Words in a line, counting unspaced scripts by characters ("東京で大雨" is about 2.5 words)."""
    runs = UNSPACED.findall(line)
    if not runs:
        return len(line.split())
    spaced = sum(1 for word in UNSPACED.sub(" ", line).split() if any(ch.isalnum() for ch in word))
    return spaced + sum(map(len, runs)) // CHARS_PER_WORD


def bigrams(text: str) -> str:
    """Each run of unspaced script replaced by its overlapping character pairs, space-separated."""
    if not UNSPACED.search(text):
        return text
    return UNSPACED.sub(lambda m: " " + " ".join(m.group()[i:i + 2] for i in range(max(1, len(m.group()) - 1)))
                        + " ", text)
