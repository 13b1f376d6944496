"""`qa train-reader`: fine-tune the extractive reader, reproducibly, on a GPU or a CPU.

Data: SQuAD v1.1 JSON, or JSONL pairs of {question, answer, context} or {question, answer, article_id}
(the answer is located in the indexed article). The recipe is the bundled reader's (its MODEL.md; the
values live in `Config.train_*`). Windows are made with the reader's own tokenizer, max length and
stride, so what is trained is what is served. The output folder is a `reader_model` as it stands:
weights, tokenizer, metrics.json, calibration.json and a MODEL.md with the command line and data checksums.
"""
from __future__ import annotations

import json
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..answering.calibration import Calibration, fit_logistic, fit_threshold
from ..runtime.checksums import sha256
from ..ingest.articles import shorten
from ..config import Config
from ..answering.evaluation import exact_match, f1_score
from ..schema import Article, ArticleMeta, Chunk, Passage
from ..errors import QAError

CHECKPOINTS = "checkpoints"
WINDOW_CHARS = 600  # context kept on each side of an answer found in a long article with no passage around it


class TrainingDataError(QAError, ValueError):
    """A training file that cannot be read at all; the message names it."""


@dataclass(frozen=True)
class Example:
    """A question over one context; answer_start -1 means the context does not hold the answer."""

    id: str
    question: str
    context: str
    answer_start: int
    answers: tuple[str, ...]  # the first is the training target; all count for EM/F1
    group: str  # contexts of one article: negatives pair a question with another context of its group


@dataclass
class TrainingData:
    examples: list[Example] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per pair that could not be used


@dataclass(frozen=True)
class Recipe:
    """How to train (values from Config and the command line)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup: float
    clip: float
    seed: int
    negative_rate: float
    max_length: int
    stride: int
    group_by_length: bool = True
    teachers: tuple[str, ...] = ()  # reader folders whose averaged logits are soft targets
    distill_temperature: float = 2.0
    distill_weight: float = 0.5

    @classmethod
    def from_config(cls, c: Config, **overrides) -> "Recipe":
        base = cls(c.train_epochs, c.train_batch_size, c.train_lr, c.train_weight_decay, c.train_warmup, c.train_clip,
                   c.train_seed, c.train_negative_rate, c.reader_max_length, c.reader_stride, c.train_group_by_length,
                   (), c.train_distill_temperature, c.train_distill_weight)
        overrides = {k: tuple(map(str, v)) if k == "teachers" else v for k, v in overrides.items() if v is not None}
        return cls(**{**asdict(base), **overrides})


# Data.
def load_examples(path: Path, find: "AnswerFinder | None" = None) -> TrainingData:
    """SQuAD v1.1 JSON (every question), or JSONL pairs; bad lines and answers not found are reported."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise TrainingDataError(f"{path}: cannot read ({err})") from err
    if path.suffix.lower() == ".json":
        try:
            return squad_examples(json.loads(text))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise TrainingDataError(f"{path}: not SQuAD v1.1 JSON ({err})") from err
    data = TrainingData()
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            data.problems.append(f"{where}: invalid JSON ({err.msg})")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("question"), str) or not isinstance(obj.get("answer"), str) \
                or not obj["question"].strip() or not obj["answer"].strip():
            data.problems.append(f"{where}: needs a non-empty \"question\" and \"answer\"")
            continue
        if isinstance(obj.get("context"), str):
            found = locate(obj["answer"], obj["context"], None)
            example = Example(str(obj.get("id", where)), obj["question"], obj["context"], found, (obj["answer"],),
                              str(obj.get("article_id", where))) if found >= 0 else None
        elif isinstance(obj.get("article_id"), str):
            if find is None:
                data.problems.append(f"{where}: has an article_id but no index to look it up in")
                continue
            example = find(str(obj.get("id", where)), obj["question"], obj["answer"], obj["article_id"])
            if example is None and not find.has(obj["article_id"]):
                data.problems.append(f"{where}: no article {obj['article_id']!r} in the index")
                continue
        else:
            data.problems.append(f"{where}: needs a \"context\" or an \"article_id\"")
            continue
        if example is None:
            data.problems.append(f"{where}: the answer {shorten(obj['answer'], 60)!r} is not in its "
                                 f"{'context' if 'context' in obj else 'article'}")
            continue
        data.examples.append(example)
    return data


def squad_examples(squad: dict) -> TrainingData:
    data = TrainingData()
    for doc in squad["data"]:
        for para in doc["paragraphs"]:
            for qa in para["qas"]:
                answers = tuple(a["text"] for a in qa["answers"])
                start = qa["answers"][0]["answer_start"] if qa["answers"] else -1
                data.examples.append(Example(qa["id"], qa["question"], para["context"], start, answers, doc["title"]))
    return data


def locate(answer: str, text: str, near: int | None) -> int:
    """Where `answer` occurs in `text` (exactly, else ignoring case): the occurrence nearest `near`, else
    the first; -1 when it does not occur."""
    for haystack, needle in ((text, answer), (text.lower(), answer.lower())):
        hits = [i for i in _occurrences(haystack, needle.strip())]
        if hits:
            return min(hits, key=lambda i: abs(i - near)) if near is not None else hits[0]
    return -1


def _occurrences(text: str, needle: str) -> Iterable[int]:
    start = text.find(needle)
    while needle and start >= 0:
        yield start
        start = text.find(needle, start + 1)


class AnswerFinder:
    """Turns (question, answer, article_id) into an example over the passage the reader would see:
    the best retrieved passage of that article holding the answer; else the occurrence nearest that
    article's best passage (or the only one), with the text around it."""

    def __init__(self, search: Callable[[str], list[Passage]], article: Callable[[str], Article | None]):
        self.search, self.article = search, article

    def has(self, article_id: str) -> bool:
        return self.article(article_id) is not None

    def __call__(self, ident: str, question: str, answer: str, article_id: str) -> Example | None:
        article = self.article(article_id)
        if article is None:
            return None
        passages = [p for p in self.search(question) if p.article.id == article_id]
        for p in passages:  # best first
            start = locate(answer, p.chunk.text, None)
            if start >= 0:
                return Example(ident, question, p.chunk.text, start, (answer,), article_id)
        start = locate(answer, article.text, passages[0].chunk.start if passages else None)
        if start < 0:
            return None
        lo = max(0, article.text.rfind(" ", 0, max(0, start - WINDOW_CHARS)) + 1)
        hi = article.text.find(" ", min(len(article.text), start + len(answer) + WINDOW_CHARS))
        hi = len(article.text) if hi < 0 else hi
        return Example(ident, question, article.text[lo:hi], start - lo, (answer,), article_id)


def with_negatives(examples: list[Example], rate: float, seed: int) -> list[Example]:
    """For `rate` of the answerable questions, a copy paired with another context of the same article,
    pointing at [CLS]: the reader learns to say "not in this passage" (MODEL.md)."""
    rng = random.Random(seed)
    contexts: dict[str, list[str]] = {}
    for e in examples:
        if e.context not in contexts.setdefault(e.group, []):
            contexts[e.group].append(e.context)
    out = list(examples)
    for e in examples:
        others = [c for c in contexts[e.group] if c != e.context]
        if e.answer_start >= 0 and others and rng.random() < rate:
            out.append(Example(e.id + "-neg", e.question, rng.choice(others), -1, (), e.group))
    return out


# Features: the reader's windows, with the answer's token positions ([CLS] = 0 when a window lacks it).
def features(tokenizer, examples: list[Example], max_length: int, stride: int) -> list[dict]:
    enc = tokenizer([e.question for e in examples], [e.context for e in examples], truncation="only_second",
                    max_length=max_length, stride=stride, return_overflowing_tokens=True,
                    return_offsets_mapping=True, padding=False)
    out = []
    for w, owner in enumerate(enc["overflow_to_sample_mapping"]):
        e = examples[owner]
        seq = enc.sequence_ids(w)
        offsets = enc["offset_mapping"][w]
        start_tok = end_tok = 0
        if e.answer_start >= 0:
            s_char, e_char = e.answer_start, e.answer_start + len(e.answers[0].strip())
            ctx = [i for i, s in enumerate(seq) if s == 1]
            if ctx and offsets[ctx[0]][0] <= s_char and offsets[ctx[-1]][1] >= e_char:
                start_tok = next(i for i in ctx if offsets[i][1] > s_char)
                end_tok = next(i for i in reversed(ctx) if offsets[i][0] < e_char)
        row = {k: enc[k][w] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        out.append({**row, "start_positions": start_tok, "end_positions": end_tok})
    return out


# Training.
POOL_BATCHES = 50  # length grouping sorts within pools of this many batches, so the order stays random


def batches(lengths: list[int], batch_size: int, seed: int, group: bool) -> list[np.ndarray]:
    """Window indices per batch for one epoch (the same on a resume: the order comes from `seed`).

    Grouped, the windows are shuffled, sorted by length within pools of `POOL_BATCHES` batches, cut into
    batches, and the batches shuffled: every window once, each batch of similar lengths (little padding).
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    if not group:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    pool = batch_size * POOL_BATCHES
    out = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        out += [np.asarray(chunk[i:i + batch_size]) for i in range(0, len(chunk), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def distillation_loss(start, end, teacher_start, teacher_end, mask, hard, temperature: float, weight: float):
    """(1 - weight) * the hard-label loss + weight * T² * KL(teacher || student) of the start and end
    distributions at temperature T, padding masked out of both."""
    import torch.nn.functional as F

    def kl(student, teacher):
        student = student.masked_fill(~mask, -1e4) / temperature
        teacher = teacher.masked_fill(~mask, -1e4) / temperature
        return F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), reduction="batchmean",
                        log_target=True) * temperature ** 2

    soft = (kl(start, teacher_start) + kl(end, teacher_end)) / 2
    return (1 - weight) * hard + weight * soft


def load_teachers(paths: tuple[str, ...], tokenizer, device: str) -> list:
    """The teacher readers, refused unless they read the same word pieces as the student."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    teachers = []
    for path in paths:
        try:
            vocab = AutoTokenizer.from_pretrained(path).get_vocab()
        except (OSError, ValueError) as err:
            raise TrainingDataError(f"--teacher {path}: not a reader folder ({err})") from err
        if vocab != tokenizer.get_vocab():
            raise TrainingDataError(f"--teacher {path}: its tokenizer differs from the student's; a teacher's logits "
                                    f"must be over the same word pieces")
        teachers.append(AutoModelForQuestionAnswering.from_pretrained(path, dtype=torch.float32).to(device).eval())
    return teachers


def step_loss(model, teachers: list, batch: dict, recipe: "Recipe", device: str):
    """The batch's loss: the model's own (hard labels), mixed with the teachers' when there are any."""
    import torch

    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
        out = model(**batch)
        if not teachers:
            return out.loss
        inputs = {k: v for k, v in batch.items() if k not in ("start_positions", "end_positions")}
        with torch.no_grad():
            logits = [t(**inputs) for t in teachers]
            t_start = torch.stack([o.start_logits.float() for o in logits]).mean(0)
            t_end = torch.stack([o.end_logits.float() for o in logits]).mean(0)
    return distillation_loss(out.start_logits.float(), out.end_logits.float(), t_start, t_end,
                             batch["attention_mask"].bool(), out.loss.float(), recipe.distill_temperature,
                             recipe.distill_weight)


@dataclass
class TrainingReport:
    steps: int = 0
    first_epoch: int = 1
    epochs: int = 0
    losses: list[float] = field(default_factory=list)  # mean loss of each epoch run here
    seconds: float = 0.0
    examples: int = 0
    windows: int = 0
    metrics: dict = field(default_factory=dict)
    tokens: int = 0  # real tokens fed, and padding tokens beside them (length grouping keeps these few)
    padding: int = 0


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingDataError("--device cuda, but torch sees no GPU here; use --device cpu or auto")
    return device


def train(base: str, train_data: list[Example], dev_data: list[Example] | None, out: Path, recipe: Recipe,
          device: str = "auto", resume: bool = False, progress: bool = True,
          describe: Callable[[dict], str] | None = None) -> TrainingReport:
    """Fine-tune `base` (a reader folder, or an encoder for a new QA head) and write a reader folder."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

    out = Path(out)
    device = pick_device(device)
    checkpoint = latest_checkpoint(out) if resume else None
    if resume and checkpoint is None:
        raise TrainingDataError(f"--resume, but {out / CHECKPOINTS} holds no checkpoint; start without --resume")
    source = str(checkpoint / "model") if checkpoint else base
    random.seed(recipe.seed), np.random.seed(recipe.seed), torch.manual_seed(recipe.seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForQuestionAnswering.from_pretrained(source, dtype=torch.float32).to(device)
    teachers = load_teachers(recipe.teachers, tokenizer, device)
    rows = features(tokenizer, with_negatives(train_data, recipe.negative_rate, recipe.seed), recipe.max_length,
                    recipe.stride)
    lengths = [len(r["input_ids"]) for r in rows]
    per_epoch = len(batches(lengths, recipe.batch_size, recipe.seed, recipe.group_by_length))
    total = per_epoch * recipe.epochs
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(recipe.warmup * total), total)
    report = TrainingReport(examples=len(train_data), windows=len(rows))
    first = 1
    if checkpoint:
        state = json.loads((checkpoint / "state.json").read_text())
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location=device))
        scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", map_location=device))
        first = state["epoch"] + 1
        report.steps = state["step"]
    report.first_epoch = first
    started = time.perf_counter()
    model.train()
    for epoch in range(first, recipe.epochs + 1):
        plan = batches(lengths, recipe.batch_size, recipe.seed + epoch, recipe.group_by_length)  # same on a resume
        losses = []
        bar = tqdm(plan, desc=f"epoch {epoch}/{recipe.epochs}", disable=not progress, file=sys.stderr)
        for chosen in bar:
            batch = tokenizer.pad([rows[i] for i in chosen], return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = step_loss(model, teachers, batch, recipe, device)
            report.padding += int(batch["attention_mask"].numel() - batch["attention_mask"].sum())
            report.tokens += int(batch["attention_mask"].sum())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            report.steps += 1
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        report.losses.append(float(np.mean(losses)) if losses else float("nan"))
        report.epochs += 1
        save_checkpoint(out, model, tokenizer, optimizer, scheduler, epoch, report.steps)
    report.seconds = time.perf_counter() - started
    model.eval()
    model.to(torch.float32).save_pretrained(out)
    tokenizer.save_pretrained(out)
    if dev_data:
        report.metrics = evaluate_reader(out, dev_data, recipe, device)
    (out / "metrics.json").write_text(json.dumps({**report.metrics, "steps": report.steps, "epochs": recipe.epochs,
                                                  "train_s": round(report.seconds, 1), "windows": len(rows),
                                                  "batch_size": recipe.batch_size, "lr": recipe.lr, "seed": recipe.seed,
                                                  "group_by_length": recipe.group_by_length,
                                                  "teachers": list(recipe.teachers),
                                                  "device": device_name(device), "torch": torch.__version__},
                                                 indent=1) + "\n")
    if describe:
        (out / "MODEL.md").write_text(describe(report.metrics))
    return report


def device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name() if device == "cuda" else "cpu"


def save_checkpoint(out: Path, model, tokenizer, optimizer, scheduler, epoch: int, step: int) -> None:
    """out/checkpoints/epoch-N (weights, optimizer, schedule, position), written aside then renamed;
    only the newest is kept."""
    import torch

    root = out / CHECKPOINTS
    tmp = root / f".tmp-epoch-{epoch}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp / "model")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    (tmp / "state.json").write_text(json.dumps({"epoch": epoch, "step": step}))
    final = root / f"epoch-{epoch}"
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in root.glob("epoch-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(out: Path) -> Path | None:
    found = sorted((p for p in (Path(out) / CHECKPOINTS).glob("epoch-*") if (p / "state.json").is_file()),
                   key=lambda p: int(p.name.split("-")[1]))
    return found[-1] if found else None


# Evaluation and calibration: the served decoding, on gold passages and on other passages of the article.
def evaluate_reader(model_dir: Path, dev: list[Example], recipe: Recipe, device: str) -> dict:
    """EM/F1 with the gold passage and the no-answer rates; a calibration.json fitted on the same pairs."""
    from ..answering.reader import Reader

    reader = Reader(str(model_dir), recipe.max_length, recipe.stride, device)
    metrics, calibration = gold_passage_metrics(reader, dev, recipe.seed)
    calibration.save(model_dir)
    return metrics


def gold_passage_metrics(reader, dev: list[Example], seed: int) -> tuple[dict, Calibration]:
    """The served decoding on each question's gold passage, and on another passage of its article
    (which should be refused); plus the threshold and confidence fit those pairs give."""
    from ..answering.reader import Decoding

    config = Config()
    decoding = Decoding(config.max_answer_tokens, config.nested_margin, config.rank_weight, 0, None)
    answerable = [e for e in dev if e.answer_start >= 0]
    negatives = [e for e in with_negatives(answerable, 1.0, seed) if e.answer_start < 0]
    gold_margins, em, f1 = [], [], []
    for e in answerable:
        best = best_span(reader, decoding, e)
        text = best.text if best else ""
        em.append(max(exact_match(text, a) for a in e.answers))
        f1.append(max(f1_score(text, a) for a in e.answers))
        gold_margins.append(best.margin if best else -1e9)
    other_margins = [(s.margin if s else -1e9) for s in (best_span(reader, decoding, e) for e in negatives)]
    gold, other = np.array(gold_margins), np.array(other_margins)
    threshold = fit_threshold(gold, other) if len(other) else 0.0
    x = np.concatenate([gold, other])
    y = np.concatenate([np.array(em, float), np.zeros(len(other))])
    a, b = fit_logistic(np.clip(x, -50, 50), y)
    calibration = Calibration(round(threshold, 4), round(a, 4), round(b, 4),
                              f"{len(answerable)} dev questions with their gold passage and {len(other)} with another "
                              f"passage of their article (qa train-reader)")
    metrics = {"dev_questions": len(answerable), "em": round(100 * float(np.mean(em)), 2) if em else 0.0,
               "f1": round(100 * float(np.mean(f1)), 2) if f1 else 0.0,
               "false_abstain_on_gold": round(100 * float((gold <= threshold).mean()), 2) if len(gold) else 0.0,
               "abstain_on_other_passage": round(100 * float((other <= threshold).mean()), 2) if len(other) else 0.0,
               "span_beats_cls_on_other_passage": round(100 * float((other > 0).mean()), 2) if len(other) else 0.0,
               "neg_pairs": len(other)}
    return metrics, calibration


def best_span(reader, decoding, e: Example):
    passage = Passage(0, Chunk(e.group, 0, 0, len(e.context), e.context), ArticleMeta(e.group, e.group), 0.0, 1)
    spans = reader.run(e.question, [passage], 1, decoding)
    return spans[0] if spans else None


def model_card(out: Path, base: str, recipe: Recipe, command: str, checksums: dict[str, str], metrics: dict) -> str:
    """MODEL.md of a trained reader: how to make it again, and what it measured."""
    lines = [f"# {Path(out).name}", "", "An extractive reader trained with `qa train-reader`.", "",
             "| | |", "|---|---|", f"| command | `{command}` |", f"| base | `{base}` |",
             f"| recipe | max length {recipe.max_length}, stride {recipe.stride}, batch {recipe.batch_size}, AdamW "
             f"(lr {recipe.lr}, weight decay {recipe.weight_decay}), {recipe.warmup:.0%} linear warm-up then linear "
             f"decay, {recipe.epochs} epochs, clipping {recipe.clip}, seed {recipe.seed}, negatives for "
             f"{recipe.negative_rate:.0%} of the questions"
             f"{', batches grouped by length' if recipe.group_by_length else ''} |"]
    if recipe.teachers:
        lines.append(f"| distillation | from {', '.join(f'`{t}`' for t in recipe.teachers)} (averaged logits), "
                     f"temperature {recipe.distill_temperature}, weight {recipe.distill_weight} |")
    lines += [f"| data | `{path}` sha256 `{digest}` |" for path, digest in checksums.items()]
    if metrics:
        lines += ["", "## Measured on --dev (each question with its gold passage)", "",
                  "| metric | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in metrics.items()],
                  "", "calibration.json (no-answer threshold and confidence fit) was fitted on the same pairs."]
    return "\n".join(lines) + "\n"
