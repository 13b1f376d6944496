"""A reader's own numbers: the no-answer threshold and the confidence fit, kept beside its weights
(`calibration.json`), so choosing another `reader_model` never keeps the previous model's threshold."""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ..errors import QAError

FILE = "calibration.json"
log = logging.getLogger(__name__)


class CalibrationError(QAError, ValueError):
    """A calibration.json that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Calibration:
    """answer when margin > null_margin_threshold; confidence = sigmoid(confidence_a * margin + confidence_b).

    margin = best span score - [CLS] score of its passage (logits); `fitted_on` says on what data.
    """

    null_margin_threshold: float
    confidence_a: float
    confidence_b: float
    fitted_on: str = ""
    # When the main answer is wrong, how often one of its alternatives is right (benchmarks/bench_alternatives.py);
    # 1.0, the most it can be, for a reader that has no fit.
    alternative_mass: float = 1.0

    def confidence(self, margin: float) -> float:
        z = max(-50.0, min(50.0, self.confidence_a * margin + self.confidence_b))
        return 1.0 / (1.0 + math.exp(-z))

    def alternatives(self, main: float, scores: list[float]) -> list[float]:
        """The chance that each alternative, instead of the main answer, is the exact answer: the main
        answer's remaining chance (1 - main) times `alternative_mass`, shared by softmax of their span
        scores. So a reply's chances never add up to more than 100%."""
        if not scores:
            return []
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        return [(1.0 - main) * self.alternative_mass * w / sum(weights) for w in weights]

    def save(self, model_dir: Path) -> None:
        (Path(model_dir) / FILE).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, model_dir: Path | str, backend: str = "torch") -> "Calibration | None":
        """The model folder's calibration, or None when it has none (a hub name, a foreign checkpoint).

        A `backends` entry holds a fit for one way of running the model (int8 weights move its margins),
        used for that backend instead of the top-level fit.
        """
        path = Path(model_dir) / FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            data = {**data, **data.get("backends", {}).get(backend, {})}
            return cls(float(data["null_margin_threshold"]), float(data["confidence_a"]), float(data["confidence_b"]),
                       str(data.get("fitted_on", "")), float(data.get("alternative_mass", 1.0)))
        except (ValueError, KeyError, TypeError) as err:
            raise CalibrationError(f"{path} is not a reader calibration ({err}); refit it with `qa train-reader` "
                                   f"or delete it to use the settings in Config") from err


def fit_threshold(answerable: np.ndarray, unanswerable: np.ndarray) -> float:
    """The margin cut that best separates passages that hold the answer from those that do not
    (balanced accuracy: each side counts the same, whatever their numbers)."""
    candidates = np.unique(np.concatenate([answerable, unanswerable]))
    best, best_t = -1.0, 0.0
    for t in candidates:
        score = (answerable > t).mean() + (unanswerable <= t).mean()
        if score > best:
            best, best_t = score, float(t)
    return best_t


def fit_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """P(y=1 | x) = sigmoid(a x + b) by Newton's method (two parameters; no library needed)."""
    a, b = 0.0, 0.0
    X = np.stack([x, np.ones_like(x)], axis=1).astype(np.float64)
    y = y.astype(np.float64)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ np.array([a, b]), -50, 50)))
        gradient = X.T @ (p - y)
        hessian = X.T @ (X * (p * (1 - p))[:, None]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    return float(a), float(b)


@dataclass(frozen=True)
class CalibrationSettings:
    """Whose calibration: a reader folder and how it runs (`qa.runtime.models.shared` keys on it)."""

    model: str
    runtime: str

    def build(self) -> Calibration:
        return Calibration.load(self.model, self.runtime) or uncalibrated(self.model)


def uncalibrated(reader_model: str) -> Calibration:
    """A reader with no calibration.json: answer when a span beats [CLS]; confidence is a plain sigmoid."""
    log.warning("the reader %s has no calibration.json; answering when a span beats [CLS] "
                "(fit one with `qa train-reader`, or set null_margin_threshold in Config)", reader_model)
    return Calibration(0.0, 1.0, 0.0, "none: uncalibrated defaults")
