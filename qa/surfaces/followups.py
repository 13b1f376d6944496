"""Chat follow-ups: a question read in the light of earlier turns, kept only when the evidence says so.

A follow-up becomes a standalone question for the reader, not only for retrieval: a fragment takes the
earlier question's frame ("And in 2024?" -> the earlier question with its time replaced, "By whom?" ->
its question word replaced, "Why?" -> a why-question about it), and a pronoun takes an earlier answer or
an earlier question's subject of the kind it can stand for. There is no generative model offline, so
these are rules, and the reader's evidence decides whether the context is kept (`answer_in_context`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..answering.composition import LATEST
from ..answering.protocol import Answering
from ..query import Query
from ..schema import Answer

PERSON, PLACE, THING, GROUP = "person", "place", "thing", "group"
ASKED_FOR = [(re.compile(r"^\s*(?:who|whom|whose)\b", re.I), PERSON),
             (re.compile(r"^\s*(?:where|which\s+(?:city|town|village|country|region|state|province|island|port|"
                         r"place|district))\b", re.I), PLACE),
             (re.compile(r"^\s*(?:which|what)\s+(?:club|company|team|firm|group|party|union|university|"
                         r"observatory|museum|court|government|bank|airline|carmaker)\b", re.I), GROUP)]
AUX = (r"is|are|was|were|do|does|did|will|would|can|could|has|have|had|should|may|might|must")
WHICH_THING = re.compile(r"^\s*(?:which|what)\s+(?!(?:" + AUX + r"|about|kind|sort|type)\b)([a-z]+)\b", re.I)
HOW_MANY = re.compile(r"^\s*how\s+many\s+((?:[a-z-]+\s+){0,2}?[a-z-]+)\b(?=\s+(?:" + AUX + r"|\w+ed)\b)", re.I)
FIGURE = re.compile(r"^\s*(?:(?:and|so|but)\s+)?(?:how\s+(?:many|much|high|far|long)|what\s+(?:number|share|percentage|"
                    r"proportion|rate|figure|total|amount|level))\b", re.I)
COPULA_NP = re.compile(r"^\s*(?:how\s+\w+|what|where)\s+(?:is|are|was|were)\s+((?:the|a|an)\s+[^?]+?)\s*\??\s*$", re.I)
NAME = re.compile(r"(?<!^)(?<![.?!]\s)\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)+)\b")
# pronoun -> (kind of antecedent, gender or None, how the antecedent replaces it)
PRONOUNS = {"he": (PERSON, "m", "{}"), "him": (PERSON, "m", "{}"), "his": (PERSON, "m", "{}'s"),
            "she": (PERSON, "f", "{}"), "hers": (PERSON, "f", "{}'s"), "her": (PERSON, "f", None),
            "it": (THING, None, "{}"), "its": (THING, None, "{}'s"), "there": (PLACE, None, "in {}"),
            "they": (GROUP, None, "{}"), "them": (GROUP, None, "{}"), "their": (GROUP, None, "{}'s")}
PRONOUN = re.compile(r"\b(" + "|".join(PRONOUNS) + r")\b", re.I)
EXISTENTIAL_THERE = re.compile(r"\b(?:is|are|was|were|be|been)\s+there\b|\bthere\s+(?:is|are|was|were|will|has|have|had)\b",
                               re.I)
WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(.+?)\s*\??\s*$", re.I)
LEADING_AND = re.compile(r"^\s*(?:and|but|so)\s+(?:then\s+)?(.+)$", re.I)
WH = re.compile(r"^\s*(?:(?:by|from|for|with|at|to|in|on|since|until)\s+)?(?:who|whom|whose|what|which|when|where|why|"
                r"how)\b", re.I)
WH_FRAME = re.compile(r"^\s*((?:(?:by|from|for|with|at|to|in|on|since|until)\s+)?(?:who|whom|whose|what|which|when|"
                      r"where|why|how)\b(?:\s+(?!(?:" + AUX + r")\b)[\w'-]+){0,5}?)\s+((?:" + AUX + r")\b.*)$", re.I)
TIME = re.compile(r"\b(?:in|on|during|since|by)\s+(?:\d{4}|(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
                  r"january|february|march|april|may|june|july|august|september|october|november|december)\b[\w ]*?)"
                  r"(?=\s*\??$|\s*,)|\b(?:last|this|next)\s+(?:season|year|week|month)\b|\b(?:now|before|at first|"
                  r"first|so far|then|today|currently)\b", re.I)
TIME_FRAGMENT = re.compile(r"^(?:" + TIME.pattern + r")$", re.I)
QUESTION_WORDS = {"who", "whom", "whose", "what", "which", "when", "where", "why", "how"}
MAX_ANTECEDENT_WORDS = 6
LOOK_BACK = 3  # turns searched for an antecedent
FRAGMENT_WORDS = 4  # a question this short with no verb of its own is a fragment of the earlier one


@dataclass(frozen=True)
class Turn:
    """One earlier exchange: what was asked, the question the reader got (resolved), and the answer."""

    question: str
    answer: str
    resolved: str = ""
    points: tuple = ()  # the answer's timeline (`answering.following.timeline`), for the chat's plot
    confidence: float = 1.0  # an unsure answer never stands in for a pronoun (errors are not carried)
    latest: bool = False  # the turn asked for the latest figure; an elliptical follow-up asks the same

    @property
    def context(self) -> str:
        return self.resolved or self.question


@dataclass(frozen=True)
class Resolved:
    """What to ask the reader and what to search for, after looking at earlier turns."""

    question: str
    query: str
    follow_up: bool
    needs_context: bool = False  # a fragment or a pronoun with nothing to refer to inside the question
    readings: tuple[str, ...] = ()  # other ways to read a fragment; the reader's evidence chooses
    latest: bool = False  # asks for the latest figure, itself or carried over from the earlier turn


def asked_for(question: str) -> str | None:
    """The kind of answer a question asks for (who -> person, where -> place), if it says."""
    return next((kind for pattern, kind in ASKED_FOR if pattern.search(question)), None)


def antecedent(kind: str, history: list[Turn], min_confidence: float = 0.0) -> str | None:
    """The most recent earlier answer or asked-about thing that a pronoun of this kind can stand for;
    an answer less sure than `min_confidence` is skipped (a wrong one would carry its error forward)."""
    for turn in reversed(history[-LOOK_BACK:]):
        question = turn.context
        sure = bool(turn.answer) and turn.confidence >= min_confidence and len(turn.answer.split()) <= MAX_ANTECEDENT_WORDS
        asked = asked_for(question)
        if kind == THING:
            thing = WHICH_THING.match(question)
            if thing and asked in (PLACE, GROUP) and sure:
                return turn.answer  # "it" after "Which city…?" is the city the answer named
            if thing:
                return f"the {thing.group(1).lower()}"
            if (np := COPULA_NP.match(question)) and len(np.group(1).split()) <= MAX_ANTECEDENT_WORDS:
                return re.sub(r"^(?:a|an)\s+", "the ", np.group(1))
        elif kind == GROUP:
            if asked == GROUP and sure:
                return turn.answer
            if many := HOW_MANY.match(question):
                return f"the {many.group(1).lower()}"
        elif asked == kind and sure:
            return turn.answer
        elif kind == PERSON and (names := NAME.findall(question)) and asked != PERSON:
            return names[0]  # "How old is he?" after "How many goals did Lucas Moreira score?": its subject
    return None


def pronouns_of(question: str) -> list[re.Match]:
    return [m for m in PRONOUN.finditer(question)
            if not (m.group(1).lower() == "there" and EXISTENTIAL_THERE.search(question))]


def substitute(question: str, history: list[Turn], min_confidence: float = 0.0) -> str:
    """Replace the first pronoun of each kind by an antecedent that fits it; else leave it.

    "What did he say about it?" after "Bakhmut" (a place, not a person) keeps its "he";
    "What did she say about him?" has two people in it, so neither gets an antecedent forced on it.
    """
    matches = pronouns_of(question)
    genders = {PRONOUNS[m.group(1).lower()][1] for m in matches} - {None}
    first_of_kind: dict[str, re.Match] = {}
    for m in matches:
        first_of_kind.setdefault(PRONOUNS[m.group(1).lower()][0], m)
    for kind, m in sorted(first_of_kind.items(), key=lambda item: -item[1].start()):  # right to left: offsets hold
        form = PRONOUNS[m.group(1).lower()][2]
        if kind == PERSON and len(genders) > 1:
            continue
        found = antecedent(kind, history, min_confidence)
        if found is None:
            continue
        if form is None:  # "her": object ("about her") or possessive ("her plan")
            after = question[m.end():].lstrip()
            possessive = re.match(r"[a-z]", after) and not re.match(r"(?:about|to|for|with|and|or|in|on|at)\b", after)
            form = "{}'s" if possessive else "{}"
        start = m.start()
        text = form.format(found)
        if start == 0:
            text = text[:1].upper() + text[1:]
        question = question[:start] + text + question[m.end():]
    return question


def anaphoric(question: str) -> bool:
    """A pronoun that nothing before it in the question can stand for ("How much did they pay?"; not
    "Who is NATO supporting in its self-defense?")."""
    for m in pronouns_of(question):
        before = question[:m.start()].split()[1:]  # the first word is capitalized anyway
        named = any(w[:1].isupper() for w in before)
        if not (named or PRONOUNS[m.group(1).lower()][0] in (THING, GROUP) and
                any(w.lower() in ("the", "a", "an") for w in before)):
            return True
    return False


def fragment(question: str) -> bool:
    """"Why?", "By whom?", "And in 2024?", "For how much?": too short to have a verb of its own."""
    words = re.findall(r"[\w'-]+", question)
    return bool(words) and len(words) <= FRAGMENT_WORDS and not re.search(r"\b(?:" + AUX + r")\b", question, re.I) \
        and not re.search(r"\b\w+(?:ed|es)\b", " ".join(words[1:]), re.I)


def frame_of(question: str) -> tuple[str, str] | None:
    """An earlier question split into its question phrase and the rest ("How many goals" | "did … score?")."""
    m = WH_FRAME.match(question.rstrip(" ?"))
    return (m.group(1), m.group(2)) if m else None


def fill_fragment(piece: str, earlier: str, answer: str) -> list[str]:
    """The earlier question completed by a fragment of a new one (see the module's docstring): one
    reading, or several for a noun phrase (`swap_phrase`)."""
    found = _fill(piece, earlier, answer)
    return [found] if isinstance(found, str) else found


TRAILING_WH = re.compile(r"^((?:[\w'-]+\s+){0,2}?[\w'-]+)\s+(by\s+(?:whom|what|which(?:\s+[\w'-]+)?))$", re.I)


def _fill(piece: str, earlier: str, answer: str) -> str | list[str]:
    piece = piece.strip().rstrip("?").strip()
    base = earlier.strip().rstrip("?").strip()
    frame = frame_of(base)
    if (trailing := TRAILING_WH.match(piece)) and frame:  # "Designed by whom?" -> "By whom is … designed?"
        return f"{trailing.group(2)[:1].upper()}{trailing.group(2)[1:]} {frame[1]} {trailing.group(1).lower()}?"
    if TIME_FRAGMENT.match(piece):
        return (TIME.sub(piece, base, count=1) if TIME.search(base) else f"{base} {piece}") + "?"
    if WH.match(piece):
        if frame:
            head, rest = frame
            words = piece.split()
            extra = " ".join(w for w in words[1:] if w.lower() not in QUESTION_WORDS) if words[0].lower() in (
                "why", "how") and len(words) > 1 else ""
            if words[0].lower() in ("why", "how") and not extra and rest.split()[0].lower() in (
                    "is", "are", "was", "were") and answer:
                extra = answer  # "Why?" after "What was the profit?" -> "Why was the profit 310 million euros?"
            piece = words[0] if extra else piece
            return f"{piece[:1].upper()}{piece[1:]} {rest}{' ' + extra if extra else ''}?"
        if answer and asked_for(base) == PERSON:
            return f"{piece} is {answer}?"  # "From which university?" after "Who led the team…?"
        return f"{piece}? {base}?"
    if frame:  # a noun phrase: the earlier question asked again about it
        return [reading + "?" for reading in swap_phrase(piece, base, frame[1])]
    return f"{piece}? {base}?"


ORDINAL = r"\b(?:first|second|third|last|next|previous)\b"
POSSESSED = re.compile(r"('s\s+)((?:[a-z-]+\s+){0,2}?[a-z-]+)(?=\s+(?:for|in|of|on|at|to|from|by|with)\b|\s*$)")
THE_PHRASE = re.compile(r"\b(?:the|a|an)\s+(?:[\w-]+\s+){0,3}?[\w-]+(?=\s+(?:" + AUX + r"|\w+ed|of|in|on|at|for|to|"
                        r"from|with|by)\b|\s*$)", re.I)


def swap_phrase(piece: str, base: str, rest: str) -> list[str]:
    """The earlier question asked about another thing, in every way the rules can read it, likeliest
    first: "And Marta Kowalski?" takes the place of its one name, "And the revenue?" of the thing its
    owner has ("Nordlicht Energy's net profit"), "And the first one?" of its ordinal; a plain noun phrase
    gives the earlier question with its subject or its noun phrase replaced, then "What is …?", and the
    reader's evidence chooses (`answer_in_context`)."""
    names = NAME.findall(base)
    ordinal = re.match(r"(?:the\s+)?(first|second|third|last|next|previous)\s+one$", piece, re.I)
    if ordinal and re.search(ORDINAL, base, re.I):
        return [re.sub(ORDINAL, ordinal.group(1), base, count=1, flags=re.I)]
    if piece[:1].isupper() and len(names) == 1:
        return [base.replace(names[0], piece, 1)]
    thing = re.sub(r"^(?:the|a|an)\s+", "", piece, flags=re.I)
    if POSSESSED.search(base):
        return [POSSESSED.sub(lambda m: m.group(1) + thing, base, count=1)]
    verb = rest.split()[0].lower() if rest else "is"
    readings = []
    if len(names) == 1:
        readings.append(base.replace(names[0], piece, 1))
    if (np := THE_PHRASE.search(base)) and piece.lower().startswith(("the ", "a ", "an ")):
        readings.append(base[:np.start()] + piece + base[np.end():])
    return readings + [f"What {'was' if verb in ('was', 'were', 'did', 'had') else 'is'} {piece}"]


def framed(history: list[Turn]) -> Turn:
    """The turn whose question a fragment borrows: the last one that was not a "Why?" of its own."""
    return next((t for t in reversed(history[-LOOK_BACK:]) if not re.match(r"\s*(?:why|how come)\b", t.context, re.I)),
                history[-1])


def follow_up_candidate(question: str, history: list[Turn], limit: int = 1000,
                        min_confidence: float = 0.0) -> Resolved | None:
    """The question read in the light of the previous turns, or None when there are none.

    Only what the person typed counts toward the question limit: the earlier turn added for retrieval
    is cut to fit `limit` (its end, next to the new question, is kept), and a resolved question that
    would outgrow it falls back to the question as typed.
    """
    question = " ".join(question.split())
    if not history:
        return None
    prev = history[-1]
    about, conj = WHAT_ABOUT.match(question), LEADING_AND.match(question)
    body = about.group(1) if about else conj.group(1) if conj else question
    elliptical = bool(about) or fragment(body) or (bool(conj) and not anaphoric(body))
    if about or fragment(body):
        frame = prev if re.match(r"\s*(?:why|how)\b", body, re.I) else framed(history)
        resolved, *others = [substitute(r, history, min_confidence) for r in fill_fragment(body, frame.context, frame.answer)]
    else:
        resolved, others = substitute(body[:1].upper() + body[1:] if conj else question, history, min_confidence), []
    added = about.group(1) if about else question
    room = limit - len(added) - 1
    context = prev.context if len(prev.context) <= room else prev.context[len(prev.context) - room:].split(" ", 1)[-1]
    query = f"{context} {added}" if room > 0 else added
    own_time = bool(TIME.search(body)) and not LATEST.search(body)
    figure = FIGURE.match(body) or (fragment(body) and FIGURE.match(prev.context))  # the latest is of a figure
    latest = bool(LATEST.search(question)) or (prev.latest and not own_time and bool(figure))
    return Resolved(resolved if len(resolved) <= limit else question, query, True,
                    needs_context=elliptical or anaphoric(body), latest=latest,
                    readings=tuple(r for r in others if len(r) <= limit))


def answer_in_context(assistant: Answering, query: Query, history: list[Turn]) -> tuple[Answer, Resolved]:
    """Answer with the earlier turns' help when the question needs it, or when the evidence says so.

    A question that cannot be read alone (a fragment, a pronoun with nothing in the question to refer
    to) is read in context only: its in-context refusal stands. Any other later question is read both
    ways in one batched pass (`Answering.ask_all`), and the context wins when it raises the reader's
    margin by `Config.follow_up_gain`, or when only it answers and clears the no-answer threshold by
    `Config.follow_up_margin` more.
    """
    config = assistant.config
    plain = Resolved(query.question, query.question, False, latest=bool(LATEST.search(query.question)))
    candidate = follow_up_candidate(query.question, history, config.max_question_chars, config.follow_up_confidence)
    if candidate is None:
        return assistant.ask(query), plain
    in_context = replace(query, question=candidate.question, latest=candidate.latest,
                         context=None if candidate.query == candidate.question else candidate.query)
    query = replace(query, latest=candidate.latest)  # the conversation's intent, whichever version answers
    if candidate.needs_context:
        readings = [candidate] + [replace(candidate, question=r) for r in candidate.readings]
        answers = assistant.ask_all([replace(in_context, question=r.question) for r in readings])
        best = 0
        for i, other in enumerate(answers[1:], 1):  # another reading wins only by clear evidence
            if other.found and (not answers[best].found or other.margin >= answers[best].margin + config.follow_up_gain):
                best = i
        chosen = answers[best]
        return (chosen if supported(chosen, query.question, readings[best].question) else refusal(chosen)), readings[best]
    alone, with_context = assistant.ask_all([query, in_context])
    if with_context.found and supported(with_context, query.question, candidate.question) and (
            with_context.margin >= alone.margin + config.follow_up_gain if alone.found
            else with_context.margin >= threshold(assistant) + config.follow_up_margin):
        return with_context, candidate
    return alone, replace(plain, latest=candidate.latest)


STOP = frozenset("""a an the of in on at to for from by with and or is are was were be been do does did will would can
could has have had should may might must what which who whom whose when where why how much many long old far high
deep big often say said tell told this that it its they them their there he him his she her hers so about now""".split())


MONEY_QUESTION = re.compile(r"^\s*(?:and\s+)?how\s+much\b.*\b(?:worth|cost|costs|pay|paid|salary|earn|earns|earned|spend|"
                            r"spent|invest|invested|price|fee|charge|charged)\b", re.I)
MONEY = re.compile(r"[$€£¥]|\b(?:euros?|dollars?|pounds?|kroner|krona|kronor|francs?|yen|yuan|rupees?|pesos?|rubles?|"
                   r"cents?|EUR|USD|GBP)\b", re.I)


def supported(answer: Answer, typed: str, resolved: str) -> bool:
    """Does the passage that answers a follow-up speak of what the question is about? Some word of its
    antecedent (what the rules put in for a pronoun or a fragment) must be in it: "Who is the mayor in
    Hamburg?" is not answered by another town's mayor; a question for a price is answered by an amount of
    money. (Asking also for one of the typed words, so that
    "What is his salary?" is not answered by a transfer fee, refused 5 right answers on the dev half for
    3 unanswerable ones: synonyms, "grew" for "grow".)"""
    if not answer.found:
        return True
    passage = answer.passage.lower()

    def words(text: str) -> set[str]:
        return {w[:5] for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP}

    added = words(resolved) - words(typed)
    if MONEY_QUESTION.search(resolved) and not MONEY.search(answer.text):
        return False  # "How much are they worth?" is not answered by a count
    return not added or bool(added & words(passage))


def refusal(answer: Answer) -> Answer:
    """The same reading, as "the articles do not say"."""
    return replace(answer, text="", found=False, confidence=round(1.0 - answer.confidence, 4), source=None, span=None,
                   passage="", in_passage=None, alternatives=(), other_articles=())


def threshold(assistant: Answering) -> float:
    """The no-answer threshold the answers were decided by (a remote assistant: its config's, else 0)."""
    calibration = getattr(assistant, "calibration", None)
    return calibration.null_margin_threshold if calibration is not None else (
        assistant.config.null_margin_threshold or 0.0)
