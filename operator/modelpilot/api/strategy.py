"""Release strategy (canary or blue-green), analysis, and traffic routing of a ModelDeployment.

Analysis compares what Prometheus measured for the new revision (the canary) with fixed bounds and with the stable
revision over the same window. A check yields a verdict: Pass, Fail, Inconclusive (fewer samples than
``minRequests`` / ``minFeedback``), NoData, or Error (Prometheus unreachable). Only Fail counts toward
``failureLimit``; NoData and Error follow ``onNoData`` / ``onProviderError``.
"""

from __future__ import annotations

from enum import Enum

from pydantic import Field, model_validator

from modelpilot.api.base import ApiModel
from modelpilot.api.durations import Duration, Percent


def _exactly_one(model: ApiModel, fields: tuple[str, ...], what: str) -> None:
    set_ = [f for f in fields if getattr(model, f) is not None]
    if len(set_) != 1:
        names = ", ".join(model.model_fields[f].alias or f for f in fields)
        raise ValueError(f"{what}: set exactly one of {names}")


# --- analysis ------------------------------------------------------------------------------------------------------


class LatencyCheck(ApiModel):
    """Inference latency quantile of the canary (modelpilot_request_duration_seconds)."""

    quantile: float = Field(default=0.99, gt=0, lt=1, description="Latency quantile, e.g. 0.99 for p99.")
    max: Duration | None = Field(default=None, description="Upper bound, e.g. 250ms.")
    max_increase_over_stable: Percent | None = Field(
        default=None, description="Largest relative increase over the stable revision's quantile, e.g. 20%."
    )

    @model_validator(mode="after")
    def _bound(self) -> LatencyCheck:
        if self.max is None and self.max_increase_over_stable is None:
            raise ValueError("set max and/or maxIncreaseOverStable")
        return self


class ErrorRateCheck(ApiModel):
    """Share of failed inference requests of the canary (5xx answers of modelpilot_requests_total)."""

    max: float | None = Field(default=None, ge=0, le=1, description="Upper bound as a fraction, e.g. 0.01.")
    max_increase_over_stable: Percent | None = Field(
        default=None, description="Largest increase over the stable revision's error rate, in percentage points, "
        "e.g. 1% allows stable + 0.01."
    )

    @model_validator(mode="after")
    def _bound(self) -> ErrorRateCheck:
        if self.max is None and self.max_increase_over_stable is None:
            raise ValueError("set max and/or maxIncreaseOverStable")
        return self


class AccuracyCheck(ApiModel):
    """Accuracy of the canary from ground-truth feedback (modelpilot_feedback_total)."""

    min: float | None = Field(default=None, ge=0, le=1, description="Lower bound as a fraction, e.g. 0.9.")
    max_drop_from_stable: Percent | None = Field(
        default=None, description="Largest drop below the stable revision's accuracy, in percentage points, e.g. 2%."
    )
    min_feedback: int = Field(
        default=100, ge=1, description="Scored predictions needed before a verdict; fewer is Inconclusive."
    )

    @model_validator(mode="after")
    def _bound(self) -> AccuracyCheck:
        if self.min is None and self.max_drop_from_stable is None:
            raise ValueError("set min and/or maxDropFromStable")
        return self


class PrometheusCheck(ApiModel):
    """A custom PromQL query. Placeholders: {{model}}, {{namespace}}, {{revision}}, {{stableRevision}},
    {{interval}}. The query must return one number."""

    query: str = Field(min_length=1, description="PromQL with placeholders, e.g. "
                       "sum(rate(my_metric{revision=\"{{revision}}\"}[{{interval}}])).")
    min: float | None = Field(default=None, description="Lower bound of the value.")
    max: float | None = Field(default=None, description="Upper bound of the value.")

    @model_validator(mode="after")
    def _bound(self) -> PrometheusCheck:
        if self.min is None and self.max is None:
            raise ValueError("set min and/or max")
        return self


class MetricCheck(ApiModel):
    """One check of the analysis: exactly one of latency, errorRate, accuracy, prometheus."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$",
                      description="Name of the check, shown in status and Events.")
    latency: LatencyCheck | None = Field(default=None, description="Latency quantile check.")
    error_rate: ErrorRateCheck | None = Field(default=None, description="Error-rate check.")
    accuracy: AccuracyCheck | None = Field(default=None, description="Accuracy check from ground-truth feedback.")
    prometheus: PrometheusCheck | None = Field(default=None, description="Custom PromQL check.")

    @model_validator(mode="after")
    def _one_kind(self) -> MetricCheck:
        _exactly_one(self, ("latency", "error_rate", "accuracy", "prometheus"), f"metric {self.name!r}")
        return self


class OnNoData(str, Enum):
    Hold = "Hold"
    Pass = "Pass"
    Fail = "Fail"


class OnProviderError(str, Enum):
    Hold = "Hold"
    Fail = "Fail"


class AnalysisSpec(ApiModel):
    """How a new revision is judged."""

    interval: Duration = Field(default="30s", description="How often the checks run (and the query window).")
    failure_limit: int = Field(default=1, ge=1, description="Failed analysis runs that roll the release back.")
    consecutive_failure_limit: int | None = Field(
        default=None, ge=1, description="Failed runs in a row that roll back, whatever failureLimit says."
    )
    min_requests: int = Field(
        default=100, ge=0, description="Requests the canary must have served in the window for a verdict; fewer is "
        "Inconclusive."
    )
    on_no_data: OnNoData = Field(default=OnNoData.Hold, description="What a check without data means: Hold (wait), "
                                 "Pass or Fail.")
    on_provider_error: OnProviderError = Field(
        default=OnProviderError.Hold, description="What an unreachable Prometheus means: Hold (wait) or Fail."
    )
    metrics: list[MetricCheck] = Field(min_length=1, description="The checks.")

    @model_validator(mode="after")
    def _unique_names(self) -> AnalysisSpec:
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metric names must be unique: {dupes}")
        return self


# --- strategy ------------------------------------------------------------------------------------------------------


class PauseStep(ApiModel):
    """Wait: for ``duration``, or until promoted when no duration is given."""

    duration: Duration | None = Field(default=None, description="How long to wait, e.g. 30s; none: until promoted.")


class AnalysisStep(ApiModel):
    """Run the analysis once and wait for its verdict (Pass moves on, Fail rolls back)."""


class CanaryStep(ApiModel):
    """One step: exactly one of setWeight, pause, analysis."""

    set_weight: int | None = Field(default=None, ge=0, le=100, description="Percent of traffic to the canary.")
    pause: PauseStep | None = Field(default=None, description="Wait for a duration or until promoted.")
    analysis: AnalysisStep | None = Field(default=None, description="Run the analysis once and wait for it.")

    @model_validator(mode="after")
    def _one_action(self) -> CanaryStep:
        _exactly_one(self, ("set_weight", "pause", "analysis"), "step")
        return self


class CanaryStrategy(ApiModel):
    """Shift traffic to the new revision step by step; background analysis runs during all steps."""

    steps: list[CanaryStep] = Field(min_length=1, description="The steps, in order. After the last, the canary "
                                    "is promoted.")
    scale_down_delay_seconds: int = Field(default=30, ge=0, description="Keep the old revision (without traffic) "
                                          "this long after the promotion.")


class BlueGreenStrategy(ApiModel):
    """Bring the new revision up beside the old one, check it through a preview Service, then switch all traffic."""

    preview_replicas: int | None = Field(default=None, ge=1, description="Replicas of the new revision before the "
                                         "switch; default: spec.replicas.")
    auto_promotion_enabled: bool = Field(default=True, description="Switch without a manual promote.")
    auto_promotion_seconds: int = Field(default=0, ge=0, description="Wait this long after the new revision is "
                                        "ready (and its pre-promotion analysis passed) before switching.")
    scale_down_delay_seconds: int = Field(default=30, ge=0, description="Keep the old revision this long after the "
                                          "switch, for a fast switch-back.")
    pre_promotion_analysis: AnalysisSpec | None = Field(default=None, description="Checks before the switch, on "
                                                        "preview traffic.")
    post_promotion_analysis: AnalysisSpec | None = Field(default=None, description="Checks after the switch; a "
                                                         "failure switches back.")


class Strategy(ApiModel):
    """How a new revision is released: canary or blueGreen. Without a strategy, a new revision replaces the old one
    as soon as it is available."""

    canary: CanaryStrategy | None = Field(default=None, description="Step-by-step traffic shifting.")
    blue_green: BlueGreenStrategy | None = Field(default=None, description="Switch after checks.")

    @model_validator(mode="after")
    def _one(self) -> Strategy:
        _exactly_one(self, ("canary", "blue_green"), "strategy")
        return self


# --- traffic routing -----------------------------------------------------------------------------------------------


class ReplicasRouting(ApiModel):
    """Weight = share of ready pods behind the model Service (no mesh needed; coarse with few replicas)."""


class GatewayAPIRouting(ApiModel):
    """Gateway API: the operator sets backend weights of an HTTPRoute's rule to the stable and canary Services."""

    http_route: str = Field(min_length=1, description="Name of the HTTPRoute in the ModelDeployment's namespace.")
    rule_index: int = Field(default=0, ge=0, description="Index of the rule whose backendRefs are managed.")


class IstioRouting(ApiModel):
    """Istio: the operator sets route weights of a VirtualService's HTTP route to the stable and canary Services."""

    virtual_service: str = Field(min_length=1, description="Name of the VirtualService in the namespace.")
    route: str | None = Field(default=None, description="Name of the HTTP route to manage; default: the first.")


class NginxRouting(ApiModel):
    """ingress-nginx: the operator manages a canary Ingress (canary annotations) beside the user's stable Ingress."""

    ingress: str = Field(min_length=1, description="Name of the stable Ingress in the namespace.")


class TrafficRouting(ApiModel):
    """How traffic is split between the stable and canary revisions: exactly one provider."""

    replicas: ReplicasRouting | None = Field(default=None, description="Split by pod counts behind the Service.")
    gateway_api: GatewayAPIRouting | None = Field(default=None, description="Gateway API HTTPRoute weights.")
    istio: IstioRouting | None = Field(default=None, description="Istio VirtualService weights.")
    nginx: NginxRouting | None = Field(default=None, description="ingress-nginx canary Ingress.")

    @model_validator(mode="after")
    def _one(self) -> TrafficRouting:
        _exactly_one(self, ("replicas", "gateway_api", "istio", "nginx"), "trafficRouting")
        return self


__all__ = [
    "AccuracyCheck",
    "AnalysisSpec",
    "AnalysisStep",
    "BlueGreenStrategy",
    "CanaryStep",
    "CanaryStrategy",
    "ErrorRateCheck",
    "GatewayAPIRouting",
    "IstioRouting",
    "LatencyCheck",
    "MetricCheck",
    "NginxRouting",
    "OnNoData",
    "OnProviderError",
    "PauseStep",
    "PrometheusCheck",
    "ReplicasRouting",
    "Strategy",
    "TrafficRouting",
]
