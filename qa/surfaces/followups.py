"""Chat follow-ups: a question read in the light of earlier turns, kept only when the evidence says so."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..answering.protocol import Answering
from ..query import Query
from ..schema import Answer


# Follow-ups. A pronoun is replaced only by an earlier answer of the kind it can stand for: he/she by
# the answer to a who-question, "there" by the answer to a where-question, "it" by the thing a
# which/what-question asked about ("Which ferry…?" -> "the ferry"). Whether the context is kept at
# all is decided by evidence (`answer_in_context`), not by these words.
PERSON, PLACE, THING = "person", "place", "thing"
ASKED_FOR = [(re.compile(r"^\s*(?:who|whom|whose)\b", re.I), PERSON),
             (re.compile(r"^\s*(?:where|which\s+(?:city|town|village|country|region|state|province|island|port|"
                         r"place|district))\b", re.I), PLACE)]
WHICH_THING = re.compile(r"^\s*(?:which|what)\s+(?!(?:is|are|was|were|do|does|did|will|would|can|could|has|have|"
                         r"had|should|about|kind|sort|type)\b)([a-z]+)\b(?=\s+(?:is|are|was|were|do|does|did|will|"
                         r"would|can|could|has|have|had)\b|\s+\w+ed\b)", re.I)
# pronoun -> (kind of antecedent, gender or None, how the antecedent replaces it)
PRONOUNS = {"he": (PERSON, "m", "{}"), "him": (PERSON, "m", "{}"), "his": (PERSON, "m", "{}'s"),
            "she": (PERSON, "f", "{}"), "hers": (PERSON, "f", "{}'s"), "her": (PERSON, "f", None),
            "it": (THING, None, "{}"), "its": (THING, None, "{}'s"), "there": (PLACE, None, "in {}")}
PRONOUN = re.compile(r"\b(" + "|".join(PRONOUNS) + r")\b", re.I)
EXISTENTIAL_THERE = re.compile(r"\b(?:is|are|was|were|be|been)\s+there\b|\bthere\s+(?:is|are|was|were|will|has|have|had)\b",
                               re.I)
WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(.+?)\s*\??\s*$", re.I)
MAX_ANTECEDENT_WORDS = 6
LOOK_BACK = 3  # turns searched for an antecedent


@dataclass(frozen=True)
class Turn:
    """One earlier exchange: what was asked, the question the reader got (pronouns resolved), the answer."""

    question: str
    answer: str
    resolved: str = ""
    points: tuple = ()  # the answer's timeline (`answering.following.timeline`), for the chat's plot

    @property
    def context(self) -> str:
        return self.resolved or self.question


@dataclass(frozen=True)
class Resolved:
    """What to ask the reader and what to search for, after looking at earlier turns."""

    question: str
    query: str
    follow_up: bool


def asked_for(question: str) -> str | None:
    """The kind of answer a question asks for (who -> person, where -> place), if it says."""
    return next((kind for pattern, kind in ASKED_FOR if pattern.search(question)), None)


def antecedent(kind: str, history: list[Turn]) -> str | None:
    """The most recent earlier answer (or asked-about thing) that a pronoun of this kind can stand for."""
    for turn in reversed(history[-LOOK_BACK:]):
        if kind == THING:
            thing = WHICH_THING.match(turn.question)
            if thing and asked_for(turn.question) == PLACE and turn.answer:
                return turn.answer  # "it" after "Which city…?" is the city the answer named
            if thing:
                return f"the {thing.group(1).lower()}"
        elif asked_for(turn.context) == kind and turn.answer and len(turn.answer.split()) <= MAX_ANTECEDENT_WORDS:
            return turn.answer
    return None


def substitute(question: str, history: list[Turn]) -> str:
    """Replace the first pronoun of each kind by an antecedent that fits it; else leave it.

    "What did he say about it?" after "Bakhmut" (a place, not a person) keeps its "he";
    "What did she say about him?" has two people in it, so neither gets an antecedent forced on it.
    """
    matches = [m for m in PRONOUN.finditer(question)
               if not (m.group(1).lower() == "there" and EXISTENTIAL_THERE.search(question))]
    genders = {PRONOUNS[m.group(1).lower()][1] for m in matches} - {None}
    first_of_kind: dict[str, re.Match] = {}
    for m in matches:
        first_of_kind.setdefault(PRONOUNS[m.group(1).lower()][0], m)
    for kind, m in sorted(first_of_kind.items(), key=lambda item: -item[1].start()):  # right to left: offsets hold
        form = PRONOUNS[m.group(1).lower()][2]
        if kind == PERSON and len(genders) > 1:
            continue
        found = antecedent(kind, history)
        if found is None:
            continue
        if form is None:  # "her": object ("about her") or possessive ("her plan")
            after = question[m.end():].lstrip()
            possessive = re.match(r"[a-z]", after) and not re.match(r"(?:about|to|for|with|and|or|in|on|at)\b", after)
            form = "{}'s" if possessive else "{}"
        question = question[:m.start()] + form.format(found) + question[m.end():]
    return question


def follow_up_candidate(question: str, history: list[Turn], limit: int = 1000) -> Resolved | None:
    """The question read in the light of the previous turns, or None when there are none.

    Only what the person typed counts toward the question limit: the earlier turn added for retrieval
    is cut to fit `limit` (its end, next to the new question, is kept), and a resolved question that
    would outgrow it falls back to the question as typed.
    """
    question = " ".join(question.split())
    if not history:
        return None
    prev = history[-1]
    about = WHAT_ABOUT.match(question)
    if about:
        resolved, added = f"{prev.context.rstrip('?')} — what about {about.group(1)}?", about.group(1)
    else:
        resolved, added = substitute(question, history), question
    room = limit - len(added) - 1
    context = prev.context if len(prev.context) <= room else prev.context[len(prev.context) - room:].split(" ", 1)[-1]
    query = f"{context} {added}" if room > 0 else added
    return Resolved(resolved if len(resolved) <= limit else question, query, True)


def answer_in_context(assistant: Answering, query: Query, history: list[Turn]) -> tuple[Answer, Resolved]:
    """Answer with and without the previous turn; keep the context only when it clearly helps.

    Both versions are retrieved, then read in one batched pass (`Answering.ask_all`), with the same k and
    filter. The evidence is the reader's margin (best span score minus no-answer score): the context wins
    when only it finds an answer, or it raises the margin by `Config.follow_up_gain`.
    """
    plain = Resolved(query.question, query.question, False)
    candidate = follow_up_candidate(query.question, history, assistant.config.max_question_chars)
    if candidate is None:
        return assistant.ask(query), plain
    in_context = replace(query, question=candidate.question,
                         context=None if candidate.query == candidate.question else candidate.query)
    alone, with_context = assistant.ask_all([query, in_context])
    if with_context.found and (not alone.found or
                               with_context.margin >= alone.margin + assistant.config.follow_up_gain):
        return with_context, candidate
    return alone, plain
