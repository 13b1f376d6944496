"""Span decoding, one decoder for serving and tuning: the rank prior, the minimal nested answer, evidence
pooled across passages, and duplicates merged. The reader (reader.py) only proposes candidate spans."""
from __future__ import annotations

import heapq
import math
import re
import string
from dataclasses import dataclass, replace
from operator import itemgetter

from ..schema import Passage, Span

NESTED_POOL = 40
PER_PASSAGE = 10  # answers of one passage that can pool with other passages' answers
# Pooling reads spans within this many logits of the best: one further below adds < e^-12 to any sum, and
# could not win even pooled from every passage (weight * log(passages) < 12 for weight <= 4, k <= 20).
POOL_WINDOW = 12.0
PUNCTUATION = frozenset(string.punctuation)


@dataclass(frozen=True)
class Decoding:
    """How spans are chosen: length limit, nested-span preference, retrieval-rank prior, and how many
    passages are read before a decisive margin stops the reading (values: Config)."""

    max_answer_tokens: int
    nested_margin: float
    rank_weight: float
    read_first: int
    decisive_margin: float | None  # None: read every passage at once
    pool_weight: float = 0.0  # 0: the best single span wins; else equal answers pool their evidence (pool())
    pool_contained: bool = False  # a span inside another passage's longer answer pools with it
    null_weight: float = 0.0  # rank by score - null_weight * [CLS] score (1: by margin); the margin is unchanged


def decode(spans: list[Span], ranks: dict[int, int], decoding: Decoding, n_best: int) -> list[Span]:
    """The one decoder, for serving and for tuning: spans of the ranked chunks, best first.

    Scores are start+end logit sums plus `rank_weight * -log(rank)` of the passage's retrieval rank (+0.5
    to +2 EM on SQuAD, docs/tuning.md); then a nested shorter span may win and overlaps and duplicates are merged. With
    `null_weight`, spans are ranked by score minus that share of their window's [CLS] score (by margin at
    1: a passage that "expects" no answer counts less), and reported with their own score and margin. With
    `pool_weight` set, each passage's answers are decoded alone and equal answers pool their scores
    across passages (`pool`).
    """
    prior = {cid: rank_prior(rank, decoding.rank_weight) for cid, rank in ranks.items()}
    gamma = decoding.null_weight
    keyed = [(s.score + prior[s.chunk_id] - gamma * s.null_score, s) for s in spans if s.chunk_id in prior]
    if not keyed:
        return []
    if decoding.pool_weight > 0:
        top = max(k for k, _ in keyed)
        near = [replace(s, score=k) for k, s in keyed if k >= top - POOL_WINDOW]
        answers = [a for group in by_key(near, lambda s: s.chunk_id).values()
                   for a in merge(prefer_nested(best_first(group), decoding.nested_margin), PER_PASSAGE)]
        found = merge(pool(answers, decoding.pool_weight, decoding.pool_contained), n_best)
    else:
        best = [replace(s, score=k) for k, s in heapq.nlargest(NESTED_POOL, keyed, key=itemgetter(0))]
        found = merge(prefer_nested(best, decoding.nested_margin), n_best)
    return [replace(s, score=s.score + gamma * s.null_score) for s in found] if gamma else found


def best_first(spans: list[Span]) -> list[Span]:
    return sorted(spans, key=lambda s: -s.score)[:NESTED_POOL]


def by_key(items, key) -> dict:
    groups: dict = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def pool(answers: list[Span], weight: float, contained: bool = False) -> list[Span]:
    """One span per answer, best first: the best-scoring member, scored best + weight * log(sum over the
    passages that give it of exp(score - best)) -- a log-sum-exp of its evidence (weight 1), so an answer
    found in three passages outranks a lone distractor of about the same score.

    Members are equal after SQuAD normalization, or (`contained`) one inside the other as whole words,
    unless the longer one qualifies it ("more than 1,000" is not "1,000"). Each passage counts once, and
    so does one article position read in two overlapping chunks: nested spans of one passage are one
    piece of evidence, never two.
    """
    keys = [normalize(a.text) or f"\0{i}" for i, a in enumerate(answers)]  # "" is nobody's equal
    group = group_of(keys, contained)
    groups = by_key(range(len(answers)), lambda i: group[keys[i]])
    out = []
    for members in groups.values():
        spans = sorted((answers[i] for i in members), key=lambda s: -s.score)
        seen, evidence = set(), {}
        for s in spans:
            if (s.article_id, s.start, s.end) not in seen and s.chunk_id not in evidence:
                seen.add((s.article_id, s.start, s.end))
                evidence[s.chunk_id] = s.score
        best = spans[0]
        pooled = best.score + weight * math.log(sum(math.exp(v - best.score) for v in evidence.values()))
        out.append(replace(best, score=pooled))
    return sorted(out, key=lambda s: -s.score)


def group_of(keys: list[str], contained: bool) -> dict[str, str]:
    """Each normalized answer's group: itself, or (`contained`) the shortest unqualified answer inside it."""
    distinct = sorted(set(keys), key=len)
    group = {k: k for k in distinct}
    if contained:
        for i, long in enumerate(distinct):
            for short in distinct[:i]:
                if len(short) < len(long) and inside(short, long):
                    group[long] = group[short]
                    break
    return group


def inside(short: str, long: str) -> bool:
    """`short` is whole words of `long`, and the words before it do not qualify it."""
    padded = f" {long} "
    at = padded.find(f" {short} ")
    return at >= 0 and not QUALIFIER.search(padded[:at + 1])


def ranks_of(passages: list[Passage]) -> dict[int, int]:
    return {p.chunk_id: p.rank for p in passages}


def best_per_article(spans: list[Span], ranks: dict[int, int], decoding: Decoding) -> list[Span]:
    """Each article's own best span (decoded within the article alone), best first."""
    best = [decode(group, ranks, decoding, 1) for group in by_key(spans, lambda s: s.article_id).values()]
    return sorted((b[0] for b in best if b), key=lambda s: -s.score)


def rank_prior(rank: int, weight: float) -> float:
    """Retrieval evidence on the logit scale: 0 for rank 1, falling with log rank."""
    return -weight * math.log(max(rank, 1))



def normalize(text: str) -> str:
    """SQuAD v1.1 answer normalization: lower case, no punctuation, articles or extra spaces."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


# Words that change what a number means: "more than 1,000" must not shrink to "1,000".
QUALIFIER = re.compile(r"\b(?:than|at least|at most|about|around|nearly|almost|over|under|up to|"
                       r"approximately|roughly|some|only|just|no|not|never)\s*$", re.IGNORECASE)


def prefer_nested(spans: list[Span], margin: float) -> list[Span]:
    """Prefer the minimal answer: a span inside a better one that scores within `margin` replaces it.

    ("Jens Stoltenberg" over "NATO Secretary General Jens Stoltenberg"); it keeps the outer score,
    since both rest on the same evidence. margin 0 turns this off.
    """
    if margin <= 0:
        return spans
    ranked = sorted(spans, key=lambda s: -s.score)[:NESTED_POOL]  # decode() already trimmed to this pool
    out = []
    for outer in ranked:
        inner = [s for s in ranked if s.chunk_id == outer.chunk_id and outer.start <= s.start and s.end <= outer.end
                 and s.end - s.start < outer.end - outer.start and s.score >= outer.score - margin
                 and not QUALIFIER.search(outer.text[: s.start - outer.start])]
        best = max(inner, key=lambda s: s.score, default=None)
        out.append(replace(best, score=outer.score, null_score=outer.null_score) if best else outer)
    return out


def merge(spans: list[Span], n_best: int) -> list[Span]:
    """Best first; a span overlapping or equal (after normalization) to a better one is dropped."""
    kept: list[Span] = []
    seen: set[str] = set()
    for span in sorted(spans, key=lambda s: -s.score):
        key = normalize(span.text)
        if key in seen or any(k.article_id == span.article_id and span.start < k.end and k.start < span.end
                              for k in kept):
            continue
        kept.append(span)
        seen.add(key)
        if len(kept) >= n_best:
            break
    return kept
