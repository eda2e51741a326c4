"""What a metric provider reports for one check, before any judgement (see ``verdicts`` for the judging).

Measuring and judging are apart: a provider returns numbers or says it could not; ``verdicts`` decides what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueryContext:
    """What a query is about: the served model, the revisions, and the window (the analysis interval)."""

    model: str  # spec.model.name: the `model` label of the metric contract
    namespace: str
    revision: str  # the revision under test (canary, or the new revision of a blue-green release)
    stable_revision: str | None
    window_seconds: float


@dataclass(frozen=True)
class Measurement:
    """One number for one revision over the window.

    ``value`` None means the provider answered but had no data (empty result, NaN: e.g. no requests at all).
    ``samples`` is how many requests (latency, errorRate) or scored predictions (accuracy) are behind the value.
    ``error`` is set when the provider could not answer (unreachable, timeout, bad query).
    """

    value: float | None = None
    samples: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class CheckMeasurement:
    """A check's measurement of the revision under test and, for comparisons, of the stable revision."""

    canary: Measurement
    stable: Measurement | None = None
