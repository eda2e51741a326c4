"""The operator's own Prometheus metrics (not to be confused with ``modelpilot.metrics``, which *reads* Prometheus).

The chart's alerts (``charts/modelpilot/files/alerts.yaml``) and dashboard are written against these names.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from modelpilot.api.status import Phase

OUTCOMES = ("Promoted", "RolledBack", "Aborted")


class OperatorMetrics:
    """Reconcile passes (by trigger), release outcomes, analysis verdicts, and each ModelDeployment's phase/weight."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.passes = Counter("modelpilot_operator_reconcile", "Reconcile passes", ["trigger", "result"], registry=r)
        self.duration = Histogram(
            "modelpilot_operator_reconcile_duration_seconds", "Duration of one reconcile pass", ["trigger"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )
        self.errors = Counter("modelpilot_operator_reconcile_errors", "Reconcile passes that failed",
                              ["trigger", "error"], registry=r)
        self.outcomes = Counter("modelpilot_release_outcomes", "Releases ended: Promoted, RolledBack or Aborted",
                                ["namespace", "name", "outcome"], registry=r)
        self.checks = Counter("modelpilot_analysis_checks", "Analysis check results by verdict",
                              ["namespace", "name", "check", "verdict"], registry=r)
        self.phase = Gauge("modelpilot_modeldeployment_phase", "1 for the ModelDeployment's current phase",
                           ["namespace", "name", "phase"], registry=r)
        self.weight = Gauge("modelpilot_release_canary_weight", "Percent of traffic on the canary (0 between releases)",
                            ["namespace", "name"], registry=r)

    def observe_pass(self, namespace: str, name: str, status: dict[str, Any], events: list[tuple[str, str, str]],
                     checks: list[tuple[str, str]]) -> None:
        """Record what one pass decided: outcomes from its Events, the verdicts of an analysis run, phase, weight."""
        for _, reason, _ in events:
            if reason in OUTCOMES:
                self.outcomes.labels(namespace, name, reason).inc()
        for check, verdict in checks:
            self.checks.labels(namespace, name, check, verdict).inc()
        current = status.get("phase")
        for phase in Phase:
            self.phase.labels(namespace, name, phase.value).set(1 if phase.value == current else 0)
        self.weight.labels(namespace, name).set(status.get("canaryWeight") or 0)

    def forget(self, namespace: str, name: str) -> None:
        """Drop the per-object series of a deleted ModelDeployment."""
        for phase in Phase:
            _remove(self.phase, namespace, name, phase.value)
        _remove(self.weight, namespace, name)


def _remove(metric: Gauge, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass
