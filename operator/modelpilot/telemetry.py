"""The operator's own Prometheus metrics (not to be confused with ``modelpilot.metrics``, which *reads* Prometheus)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class OperatorMetrics:
    """Reconcile passes, their duration and their errors, labelled by what triggered them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.passes = Counter(
            "modelpilot_operator_reconcile", "Reconcile passes", ["trigger", "result"], registry=self.registry
        )
        self.duration = Histogram(
            "modelpilot_operator_reconcile_duration_seconds",
            "Duration of one reconcile pass",
            ["trigger"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.errors = Counter(
            "modelpilot_operator_reconcile_errors", "Reconcile passes that failed", ["trigger", "error"],
            registry=self.registry,
        )
