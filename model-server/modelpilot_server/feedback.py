"""Ground-truth feedback: remember recent predictions by response id, score them when the truth arrives.

The operator judges a new revision's accuracy from ``modelpilot_feedback_total{outcome="correct"|"incorrect"}``.
Truth usually arrives well after the prediction, so the server keeps what it predicted, per response id:

* Memory is bounded by a total number of rows (not ids: one request may carry thousands of rows) and by a TTL; the
  oldest predictions go first. Ids arrive in time order and share one TTL, so the insertion-ordered dict is also
  ordered by expiry and purging only ever looks at its head.
* A prediction is scored at most once: it is removed when scored, so retried feedback cannot inflate the counters.
  A second report for the same id is answered as unknown.
* Nothing is dropped silently. The answer counts the scored rows and lists ids that are unknown (never seen, expired,
  evicted, already scored) and entries that were rejected (truth length differs from the prediction's rows, ...).
* Predictions served from the response cache are kept as the cached JSON and decoded only if feedback arrives.
* Labels compare as numbers when both sides are numbers (``1`` equals ``1.0``), else as text.

Feedback must reach the replica that served the prediction; across replicas the unknown ids tell the client so.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Number
from typing import Any

import numpy as np

from .protocol import bad_request

Clock = Callable[[], float]
Labels = np.ndarray | bytes


@dataclass(slots=True)
class _Prediction:
    expires_at: float
    rows: int
    labels: Labels | None


@dataclass(slots=True)
class FeedbackReport:
    scored_rows: int = 0
    correct: int = 0
    incorrect: int = 0
    unknown_ids: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "scored_rows": self.scored_rows,
            "correct": self.correct,
            "incorrect": self.incorrect,
            "unknown_ids": self.unknown_ids,
            "rejected": self.rejected,
        }


class FeedbackStore:
    """Recent predictions by id. ``decode`` turns a cached response's JSON into its label list."""

    def __init__(
        self,
        max_rows: int,
        ttl_seconds: float,
        decode: Callable[[bytes], Sequence[Any] | None],
        clock: Clock = time.monotonic,
    ) -> None:
        self._items: OrderedDict[str, _Prediction] = OrderedDict()
        self._max_rows = max_rows
        self._ttl = ttl_seconds
        self._decode = decode
        self._clock = clock
        self.rows = 0

    def __len__(self) -> int:
        return len(self._items)

    def record(self, prediction_id: str, rows: int, labels: Labels | None) -> None:
        if self._max_rows <= 0:
            return
        now = self._clock()
        old = self._items.pop(prediction_id, None)
        if old is not None:
            self.rows -= old.rows
        self._items[prediction_id] = _Prediction(now + self._ttl, rows, labels)
        self.rows += rows
        self._purge(now)

    def _purge(self, now: float) -> None:
        items = self._items
        while items:
            oldest = next(iter(items.values()))
            if oldest.expires_at > now and self.rows <= self._max_rows:
                return
            _, dropped = items.popitem(last=False)
            self.rows -= dropped.rows

    def score(self, entries: list[dict[str, Any]]) -> FeedbackReport:
        """Score validated feedback entries (``{"id": str, "truth": list}``)."""
        report = FeedbackReport()
        now = self._clock()
        self._purge(now)
        for entry in entries:
            prediction_id, truth = entry["id"], entry["truth"]
            prediction = self._items.get(prediction_id)
            if prediction is None or prediction.expires_at <= now:
                report.unknown_ids.append(prediction_id)
                continue
            labels = prediction.labels
            if isinstance(labels, bytes):
                labels = self._decode(labels)
            if labels is None:
                report.rejected.append({"id": prediction_id, "error": "the prediction has no label output"})
                continue
            labels = labels.tolist() if isinstance(labels, np.ndarray) else list(labels)
            if len(truth) != len(labels):
                report.rejected.append({
                    "id": prediction_id,
                    "error": f"truth has {len(truth)} labels, the prediction has {len(labels)} rows",
                })
                continue
            del self._items[prediction_id]
            self.rows -= prediction.rows
            pairs = zip(labels, truth, strict=True)
            correct = sum(1 for predicted, actual in pairs if same_label(predicted, actual))
            report.correct += correct
            report.incorrect += len(truth) - correct
            report.scored_rows += len(truth)
        return report


def same_label(predicted: Any, actual: Any) -> bool:
    if isinstance(predicted, Number) and isinstance(actual, Number):
        return float(predicted) == float(actual)  # type: ignore[arg-type]
    return str(predicted) == str(actual)


def parse_feedback(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate a feedback body: one ``{"id", "truth"}`` entry or ``{"feedback": [entries]}``."""
    if "feedback" in document:
        entries = document["feedback"]
        if not isinstance(entries, list) or not entries:
            raise bad_request("'feedback' must be a non-empty list of {\"id\", \"truth\"} objects")
    else:
        entries = [document]
    for index, entry in enumerate(entries):
        where = f"feedback[{index}]" if "feedback" in document else "feedback"
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise bad_request(f"{where}: needs a string 'id' (the id of an infer response)")
        if not isinstance(entry.get("truth"), list) or not entry["truth"]:
            raise bad_request(f"{where}: 'truth' must be a non-empty list with one label per row")
    return entries
