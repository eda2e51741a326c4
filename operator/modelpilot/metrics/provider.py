"""The one interface between the reconciler and a metrics backend: measure a check, never judge it.

A provider returns numbers, or says that it has none (``value`` None) or that it could not ask (``error``); turning
them into Pass / Fail / Inconclusive / NoData / Error is ``modelpilot.rollout``'s job (style: measuring apart from
judging). A provider never raises for an unreachable or failing backend: an outage is a measurement (Error), which
``onProviderError`` decides about, not an exception that would throw kopf's handler into its slow retry.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from modelpilot.api.strategy import MetricCheck
from modelpilot.rollout.measurement import CheckMeasurement, QueryContext

__all__ = ["MetricProvider"]


@runtime_checkable
class MetricProvider(Protocol):
    """Measures one analysis check for the revision under test and, when the check is relative to the stable
    revision (``maxIncreaseOverStable`` / ``maxDropFromStable``), for the stable revision too.

    Both revisions are measured over the same window ending at the same instant, so a comparison is never skewed by a
    traffic change that happened between two queries.
    """

    async def measure(self, check: MetricCheck, ctx: QueryContext) -> CheckMeasurement: ...
