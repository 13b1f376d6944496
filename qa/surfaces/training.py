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
from typing import Callable

import numpy as np

from ..answering.calibration import Calibration, fit_logistic, fit_threshold
from ..config import Config
from ..answering.evaluation import exact_match, f1_score
from ..schema import ArticleMeta, Chunk, Passage
from .training_data import Example, TrainingDataError, features, with_negatives

CHECKPOINTS = "checkpoints"


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
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

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
    optimizer, scheduler = optimizer_for(model, recipe, total)
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
        bar = tqdm(plan, desc=f"epoch {epoch}/{recipe.epochs}", disable=not progress, file=sys.stderr)
        losses = run_epoch(model, teachers, tokenizer, rows, bar, recipe, device, (optimizer, scheduler), report)
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


def optimizer_for(model, recipe: Recipe, total_steps: int):
    """AdamW without weight decay on biases and LayerNorm, and a linear schedule with warm-up."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr)
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(recipe.warmup * total_steps), total_steps)


def run_epoch(model, teachers: list, tokenizer, rows: list[dict], bar, recipe: Recipe, device: str, optimization,
              report: "TrainingReport") -> list[float]:
    """One pass over the planned batches (`bar`); the losses of its steps."""
    import torch

    optimizer, scheduler = optimization
    losses = []
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
    return losses


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
    from ..answering.decoding import Decoding

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
