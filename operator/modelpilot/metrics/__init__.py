"""Metrics I/O of the analysis: the provider protocol, the Prometheus provider, and the PromQL templates.

Layering: this package measures; it may import ``modelpilot.rollout`` (the measurement types) and ``modelpilot.api``
(the check specs), never the Kubernetes side (``modelpilot.kube``, ``reconcile``, ``handlers``, kopf, kubernetes).
``modelpilot.rollout`` judges the measurements and never imports this package.
"""

from modelpilot.metrics.prometheus import PrometheusProvider, QueryError
from modelpilot.metrics.provider import MetricProvider
from modelpilot.metrics.queries import (
    CheckQueries,
    PlaceholderError,
    check_queries,
    compares_with_stable,
    render_custom,
)

__all__ = [
    "CheckQueries",
    "MetricProvider",
    "PlaceholderError",
    "PrometheusProvider",
    "QueryError",
    "check_queries",
    "compares_with_stable",
    "render_custom",
]
