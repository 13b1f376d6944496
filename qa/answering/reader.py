"""Extractive reader: picks exact, whole-word answer spans from passages (our own span decoding)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Runtime
from ..schema import Passage, Span
from .decoding import Decoding, decode, ranks_of

EDGE_PUNCT = ",;:!?\"'“”‘’«»()[]{}<>—–-…*"
TOP_TOKENS = 20
KEEP_PER_WINDOW = 40
MAX_WORD_GROWTH = 40
CJK_START = 0x2E80
LEADING_PUNCT = EDGE_PUNCT + "."


@dataclass(frozen=True)
class Reading:
    """One question's passages to read (best first), and those read even after a decisive margin."""

    question: str
    passages: tuple[Passage, ...]
    also: tuple[Passage, ...] = ()


@dataclass(frozen=True)
class ReaderSettings:
    """What makes one loaded reader (`qa.runtime.models.shared` keys on it)."""

    model: str
    max_length: int
    stride: int
    runtime: Runtime
    threads: int | None = None

    @classmethod
    def of(cls, config) -> "ReaderSettings":
        return cls(config.reader_model, config.reader_max_length, config.reader_stride,
                   Runtime.of(config.reader_backend, "reader"), config.reader_threads or None)

    def build(self) -> "Reader":
        return Reader(self.model, self.max_length, self.stride, backend=self.runtime, threads=self.threads)


class TorchSpanScorer:
    """Start and end logits of each window from an `AutoModelForQuestionAnswering` in float32 torch."""

    tensors = "pt"

    def __init__(self, name_or_path: str, device: str = "cpu"):
        import torch
        from transformers import AutoModelForQuestionAnswering

        self.torch, self.device = torch, device
        self.model = AutoModelForQuestionAnswering.from_pretrained(
            name_or_path, dtype=torch.float32, local_files_only=Path(name_or_path).exists()).to(device).eval()

    def __call__(self, encoded) -> tuple[np.ndarray, np.ndarray]:
        with self.torch.inference_mode():
            out = self.model(**{k: v.to(self.device) for k, v in encoded.items()})
        return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()


class Reader:
    """An `AutoModelForQuestionAnswering` checkpoint (local folder or hub name) behind a span scorer: float32
    torch, or ONNX Runtime as float32 or with int8 weights (`qa.runtime.onnx_model`); one decoding for all."""

    def __init__(self, name_or_path: str, max_length: int, stride: int, device: str = "cpu",
                 backend: str | Runtime = "torch", threads: int | None = None):
        from transformers import AutoTokenizer

        runtime = Runtime.of(backend, "reader")
        self.backend = runtime.value
        self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=Path(name_or_path).exists())
        if runtime.onnx:
            from ..runtime.onnx_model import OnnxSpanScorer

            self.scorer = OnnxSpanScorer(name_or_path, runtime, threads)
        else:
            self.scorer = TorchSpanScorer(name_or_path, device)
        self.max_length, self.stride = max_length, stride

    def run(self, question: str, passages: list[Passage], n_best: int, decoding: Decoding,
            also: list[Passage] = ()) -> list[Span]:
        """Answer spans from the passages read (see `read`), best first, overlaps and duplicates merged."""
        return decode(self.read(question, passages, decoding, also), ranks_of(passages), decoding, n_best)

    def read(self, question: str, passages: list[Passage], decoding: Decoding, also: list[Passage] = ()) -> list[Span]:
        """Every candidate span of the passages read, undecoded.

        With `decoding.decisive_margin` set, the top `decoding.read_first` passages are read first and the
        rest only when the best margin so far is below it (adaptive reading; each passage is read once).
        `also` are passages read even after a decisive margin (other articles' answers, pipeline.py).
        """
        return self.read_many([Reading(question, tuple(passages), tuple(also))], decoding)[0]

    def read_many(self, readings: list["Reading"], decoding: Decoding) -> list[list[Span]]:
        """`read` for several questions (a follow-up asked alone and in context): a (question, passage)
        pair that an earlier reading already read is not read again.

        Each reading keeps batches of its own: with int8 weights the activations are quantized per batch,
        so reading two questions' windows in one batch moved margins enough to flip 2 of the 64 labelled
        follow-up cases (tests/test_followups.py); reading shared pairs once loses nothing.
        """
        found: dict[tuple[str, int], list[Span]] = {}
        out = []
        for r in readings:
            first = decoding.read_first
            opening = r.passages[:first] if decoding.decisive_margin is not None and 0 < first < len(r.passages) \
                else r.passages
            found.update(self._read_pairs([(r.question, p) for p in opening], decoding, found))
            spans = [s for p in opening for s in found[(r.question, p.chunk_id)]]
            if len(opening) == len(r.passages):
                rest: tuple[Passage, ...] = ()
            elif (best := decode(spans, ranks_of(r.passages), decoding, 1)) and best[0].margin >= decoding.decisive_margin:
                read = {p.chunk_id for p in opening}
                rest = tuple(p for p in r.also if p.chunk_id not in read)
            else:
                rest = r.passages[first:]
            found.update(self._read_pairs([(r.question, p) for p in rest], decoding, found))
            out.append(spans + [s for p in rest for s in found[(r.question, p.chunk_id)]])
        return out

    def _read_pairs(self, pairs: list[tuple[str, Passage]], decoding: Decoding,
                    done: dict | None = None) -> dict[tuple[str, int], list[Span]]:
        """Spans per (question, chunk id), for the pairs not read yet, in one batched pass."""
        todo = list({(q, p.chunk_id): (q, p) for q, p in pairs if (q, p.chunk_id) not in (done or {})}.values())
        spans = self.candidates_of(todo, decoding.max_answer_tokens) if todo else []
        out: dict[tuple[str, int], list[Span]] = {(q, p.chunk_id): [] for q, p in todo}
        for (q, _), window_spans in zip(todo, spans):
            for s in window_spans:
                out[(q, s.chunk_id)].append(s)
        return out

    def candidates(self, question: str, passages: list[Passage], max_answer_tokens: int) -> list[Span]:
        """Every candidate span of every window, unranked and without the rank prior (one batched pass)."""
        return [s for spans in self.candidates_of([(question, p) for p in passages], max_answer_tokens) for s in spans]

    def candidates_of(self, pairs: list[tuple[str, Passage]], max_answer_tokens: int) -> list[list[Span]]:
        """The candidate spans of each (question, passage) pair, in one batched pass over their windows."""
        if not pairs:
            return []
        enc = self.tokenizer([q for q, _ in pairs], [p.chunk.text for _, p in pairs],
                             truncation="only_second", max_length=self.max_length, stride=self.stride,
                             return_overflowing_tokens=True, return_offsets_mapping=True,
                             padding="longest", return_tensors=self.scorer.tensors)
        offsets = np.asarray(enc.pop("offset_mapping"))
        owners = np.asarray(enc.pop("overflow_to_sample_mapping"))
        starts, ends = self.scorer(enc)
        out: list[list[Span]] = [[] for _ in pairs]
        for w in range(len(owners)):
            context = np.array([s == 1 for s in enc.sequence_ids(w)])
            out[owners[w]] += self._window_spans(pairs[owners[w]][1], starts[w], ends[w], context, offsets[w],
                                                 max_answer_tokens)
        return out

    @staticmethod
    def _window_spans(passage: Passage, start_logits, end_logits, context, offsets, max_answer_tokens: int) -> list[Span]:
        null = float(start_logits[0] + end_logits[0])
        idx = np.flatnonzero(context)
        if idx.size == 0:
            return []
        top_s = idx[np.argsort(-start_logits[idx])[:TOP_TOKENS]]
        top_e = idx[np.argsort(-end_logits[idx])[:TOP_TOKENS]]
        scores = start_logits[top_s][:, None] + end_logits[top_e][None, :]
        length = top_e[None, :] - top_s[:, None]
        scores = np.where((length >= 0) & (length < max_answer_tokens), scores, -np.inf)
        text, base = passage.chunk.text, passage.chunk.start
        spans = []
        for flat in np.argsort(-scores, axis=None)[:KEEP_PER_WINDOW]:
            score = scores.flat[flat]
            if not np.isfinite(score):
                break
            s, e = top_s[flat // scores.shape[1]], top_e[flat % scores.shape[1]]
            cs, ce = tidy(text, *whole_words(text, int(offsets[s][0]), int(offsets[e][1])))
            if cs >= ce or "\n" in text[cs:ce]:  # an answer never runs across paragraphs
                continue
            spans.append(Span(text[cs:ce], base + cs, base + ce, cs, ce, float(score), null,
                              passage.chunk_id, passage.article.id))
        return spans


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a character span to whole space-delimited words ("Stolt" -> "Stoltenberg", "led" -> "U.S.-led").

    Scripts written without spaces (CJK) are not grown; tidy() then trims edge punctuation.
    """
    def inside(i: int) -> bool:
        return not text[i].isspace() and ord(text[i]) < CJK_START

    limit = MAX_WORD_GROWTH
    while start > 0 and limit and inside(start - 1) and inside(start):
        start, limit = start - 1, limit - 1
    limit = MAX_WORD_GROWTH
    while end < len(text) and limit and inside(end) and inside(end - 1):
        end, limit = end + 1, limit - 1
    return start, end


def tidy(text: str, start: int, end: int) -> tuple[int, int]:
    """Trim whitespace, stray punctuation, and quotes or brackets that wrap the whole span."""
    while True:
        before = (start, end)
        while start < end and (text[start].isspace() or text[start] in LEADING_PUNCT) and not _balanced_open(text, start, end):
            start += 1
        while end > start and (text[end - 1].isspace() or text[end - 1] in EDGE_PUNCT) and not _balanced_close(text, start, end):
            end -= 1
        if end - start >= 2 and PAIRS.get(text[start]) == text[end - 1]:
            start, end = start + 1, end - 1
        if end > start and text[end - 1] == "." and not _abbreviation(text[start:end]):
            end -= 1
        if (start, end) == before:
            return start, end


PAIRS = {"(": ")", "[": "]", "{": "}", "“": "”", "‘": "’", "«": "»", '"': '"'}


def _balanced_open(text: str, start: int, end: int) -> bool:
    close = PAIRS.get(text[start])
    return close is not None and close in text[start + 1:end]


def _balanced_close(text: str, start: int, end: int) -> bool:
    opens = [o for o, c in PAIRS.items() if c == text[end - 1]]
    return any(o in text[start:end - 1] for o in opens)


def _abbreviation(span: str) -> bool:
    """A final "." that belongs to the word: "U.S.", "Inc.", "D.C."."""
    last = span.split()[-1]
    return last.count(".") > 1 or last in ("Inc.", "Corp.", "Co.", "Ltd.", "Jr.", "Sr.", "St.")
