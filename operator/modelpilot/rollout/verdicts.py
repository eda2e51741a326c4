"""Turning measurements into verdicts: one per check, then one per analysis run.

Per check (``evaluate``):

==============================================  ============
measurement                                     verdict
==============================================  ============
provider error (canary or needed stable)        Error
no value for the canary                         NoData
fewer samples than minRequests / minFeedback    Inconclusive
comparison needs stable, stable has no value    Inconclusive
a bound is broken                               Fail
otherwise                                       Pass
==============================================  ============

Per run (``run_outcome``), after the policies (``onNoData``: Hold | Pass | Fail, ``onProviderError``: Hold | Fail):
any Fail -> Fail; all Pass -> Pass; else Hold (nothing counted, the run is repeated at the next interval).

Worked example: p99 of the canary 0.31 s against ``max: 250ms`` with 1,200 requests and ``minRequests: 100`` -> Fail;
the same with 40 requests -> Inconclusive (too little traffic to judge, not a regression).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelpilot.api.durations import parse_duration, parse_percent
from modelpilot.api.status import Verdict
from modelpilot.api.strategy import AnalysisSpec, MetricCheck, OnNoData, OnProviderError
from modelpilot.rollout.measurement import CheckMeasurement


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    value: float | None = None
    stable_value: float | None = None
    samples: float | None = None
    message: str = ""

    def to_status(self) -> dict:
        out = {"name": self.name, "verdict": self.verdict.value, "message": self.message}
        for key, value in (("value", self.value), ("stableValue", self.stable_value)):
            if value is not None:
                out[key] = round(value, 6)
        if self.samples is not None:
            out["samples"] = int(self.samples)
        return out


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def evaluate(check: MetricCheck, m: CheckMeasurement, analysis: AnalysisSpec) -> CheckResult:
    """The verdict of one check (see the module table).

    >>> from modelpilot.api import MetricCheck, AnalysisSpec
    >>> from modelpilot.rollout.measurement import Measurement
    >>> chk = MetricCheck.model_validate({"name": "p99", "latency": {"quantile": 0.99, "max": "250ms"}})
    >>> spec = AnalysisSpec.model_validate({"minRequests": 100, "metrics": [chk.to_k8s()]})
    >>> evaluate(chk, CheckMeasurement(Measurement(0.31, 1200)), spec).verdict.value
    'Fail'
    >>> evaluate(chk, CheckMeasurement(Measurement(0.31, 40)), spec).verdict.value
    'Inconclusive'
    """
    canary, stable = m.canary, m.stable
    result = dict(name=check.name, value=canary.value, samples=canary.samples,
                  stable_value=stable.value if stable else None)
    if canary.error or (stable is not None and stable.error):
        return CheckResult(verdict=Verdict.Error, message=f"provider error: {canary.error or stable.error}",
                           **result)
    if canary.value is None:
        return CheckResult(verdict=Verdict.NoData, message="no data for the revision under test", **result)

    needed = check.accuracy.min_feedback if check.accuracy else analysis.min_requests
    if check.prometheus is None and (canary.samples or 0) < needed:
        what = "scored predictions" if check.accuracy else "requests"
        return CheckResult(verdict=Verdict.Inconclusive,
                           message=f"{int(canary.samples or 0)} {what} < {needed} needed", **result)

    problems, comparable = _bounds(check, canary.value, stable.value if stable else None)
    if not comparable:
        return CheckResult(verdict=Verdict.Inconclusive, message="no stable value to compare with", **result)
    if problems:
        return CheckResult(verdict=Verdict.Fail, message="; ".join(problems), **result)
    return CheckResult(verdict=Verdict.Pass, message="within bounds", **result)


def _bounds(check: MetricCheck, value: float, stable: float | None) -> tuple[list[str], bool]:
    """Broken bounds, and whether every comparison with stable could be made."""
    problems: list[str] = []
    comparable = True
    if check.latency:
        c = check.latency
        if c.max is not None and value > parse_duration(c.max):
            problems.append(f"p{c.quantile * 100:g} {_fmt(value)}s > max {c.max}")
        if c.max_increase_over_stable is not None:
            if stable is None:
                comparable = False
            elif value > stable * (1 + parse_percent(c.max_increase_over_stable)):
                problems.append(f"p{c.quantile * 100:g} {_fmt(value)}s > stable {_fmt(stable)}s "
                                f"+ {c.max_increase_over_stable}")
    elif check.error_rate:
        c = check.error_rate
        if c.max is not None and value > c.max:
            problems.append(f"error rate {_fmt(value)} > max {c.max}")
        if c.max_increase_over_stable is not None:
            if stable is None:
                comparable = False
            elif value > stable + parse_percent(c.max_increase_over_stable):
                problems.append(f"error rate {_fmt(value)} > stable {_fmt(stable)} + {c.max_increase_over_stable}")
    elif check.accuracy:
        c = check.accuracy
        if c.min is not None and value < c.min:
            problems.append(f"accuracy {_fmt(value)} < min {c.min}")
        if c.max_drop_from_stable is not None:
            if stable is None:
                comparable = False
            elif value < stable - parse_percent(c.max_drop_from_stable):
                problems.append(f"accuracy {_fmt(value)} < stable {_fmt(stable)} - {c.max_drop_from_stable}")
    elif check.prometheus:
        c = check.prometheus
        if c.max is not None and value > c.max:
            problems.append(f"value {_fmt(value)} > max {c.max}")
        if c.min is not None and value < c.min:
            problems.append(f"value {_fmt(value)} < min {c.min}")
    return problems, comparable


def effective(result: CheckResult, analysis: AnalysisSpec) -> Verdict | None:
    """What a check's verdict means for the run: Pass, Fail, or None (hold)."""
    v = result.verdict
    if v is Verdict.NoData:
        return {OnNoData.Hold: None, OnNoData.Pass: Verdict.Pass, OnNoData.Fail: Verdict.Fail}[analysis.on_no_data]
    if v is Verdict.Error:
        return Verdict.Fail if analysis.on_provider_error is OnProviderError.Fail else None
    if v is Verdict.Inconclusive:
        return None
    return v


def run_outcome(results: list[CheckResult], analysis: AnalysisSpec) -> Verdict | None:
    """Fail if any check fails, Pass if all pass, None (hold: repeat at the next interval) otherwise."""
    meanings = [effective(r, analysis) for r in results]
    if Verdict.Fail in meanings:
        return Verdict.Fail
    if meanings and all(m is Verdict.Pass for m in meanings):
        return Verdict.Pass
    return None
