"""Verdicts per check and per run, with the NoData / provider-error policies."""

import pytest
from modelpilot.api import AnalysisSpec, MetricCheck, Verdict
from modelpilot.rollout.measurement import CheckMeasurement, Measurement
from modelpilot.rollout.verdicts import evaluate, run_outcome

LAT = {"name": "p99", "latency": {"quantile": 0.99, "max": "250ms"}}
LAT_REL = {"name": "p99-rel", "latency": {"quantile": 0.99, "maxIncreaseOverStable": "20%"}}
ERR = {"name": "errors", "errorRate": {"max": 0.01}}
ERR_REL = {"name": "errors-rel", "errorRate": {"maxIncreaseOverStable": "1%"}}
ACC = {"name": "acc", "accuracy": {"min": 0.9, "minFeedback": 200}}
ACC_REL = {"name": "acc-rel", "accuracy": {"maxDropFromStable": "2%", "minFeedback": 200}}
CUSTOM = {"name": "custom", "prometheus": {"query": "x", "max": 5}}


def m(value=None, samples=None, error=None):
    return Measurement(value, samples, error)


CASES = [
    ("latency under max", LAT, m(0.2, 500), None, Verdict.Pass),
    ("latency over max", LAT, m(0.31, 500), None, Verdict.Fail),
    ("latency, too few requests", LAT, m(0.31, 40), None, Verdict.Inconclusive),
    ("latency, no data", LAT, m(None, 0), None, Verdict.NoData),
    ("latency, provider down", LAT, m(error="connection refused"), None, Verdict.Error),
    ("relative latency ok", LAT_REL, m(0.11, 500), m(0.1, 900), Verdict.Pass),
    ("relative latency 30% slower", LAT_REL, m(0.13, 500), m(0.1, 900), Verdict.Fail),
    ("relative latency, stable without data", LAT_REL, m(0.13, 500), m(None, 0), Verdict.Inconclusive),
    ("relative latency, stable query failed", LAT_REL, m(0.13, 500), m(error="timeout"), Verdict.Error),
    ("errors under max", ERR, m(0.005, 1000), None, Verdict.Pass),
    ("errors over max", ERR, m(0.05, 1000), None, Verdict.Fail),
    ("errors vs stable, within a point", ERR_REL, m(0.015, 1000), m(0.01, 1000), Verdict.Pass),
    ("errors vs stable, three points up", ERR_REL, m(0.04, 1000), m(0.01, 1000), Verdict.Fail),
    ("accuracy ok", ACC, m(0.95, 300), None, Verdict.Pass),
    ("accuracy low", ACC, m(0.5, 300), None, Verdict.Fail),
    ("accuracy low, feedback below minFeedback", ACC, m(0.5, 150), None, Verdict.Inconclusive),
    ("accuracy drop vs stable", ACC_REL, m(0.90, 300), m(0.95, 900), Verdict.Fail),
    ("accuracy small drop vs stable", ACC_REL, m(0.94, 300), m(0.95, 900), Verdict.Pass),
    ("custom over max, samples ignored", CUSTOM, m(7, None), None, Verdict.Fail),
    ("custom within", CUSTOM, m(3, None), None, Verdict.Pass),
]


@pytest.mark.parametrize("check, canary, stable, want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verdict(check, canary, stable, want):
    analysis = AnalysisSpec.model_validate({"minRequests": 100, "metrics": [check]})
    result = evaluate(MetricCheck.model_validate(check), CheckMeasurement(canary, stable), analysis)
    assert result.verdict is want, result.message
    if want is Verdict.Fail:
        assert result.message  # a failure says which bound broke


POLICY = [
    # verdicts of the checks, onNoData, onProviderError -> run outcome (None = hold)
    (["Pass", "Pass"], "Hold", "Hold", Verdict.Pass),
    (["Pass", "Fail"], "Hold", "Hold", Verdict.Fail),
    (["Pass", "Inconclusive"], "Fail", "Fail", None),
    (["Pass", "NoData"], "Hold", "Hold", None),
    (["Pass", "NoData"], "Pass", "Hold", Verdict.Pass),
    (["Pass", "NoData"], "Fail", "Hold", Verdict.Fail),
    (["Pass", "Error"], "Hold", "Hold", None),
    (["Pass", "Error"], "Hold", "Fail", Verdict.Fail),
    ([], "Hold", "Hold", None),
]


@pytest.mark.parametrize("verdicts, on_no_data, on_error, want", POLICY)
def test_run_outcome_policies(verdicts, on_no_data, on_error, want):
    from modelpilot.rollout.verdicts import CheckResult

    analysis = AnalysisSpec.model_validate(
        {"onNoData": on_no_data, "onProviderError": on_error, "metrics": [LAT]}
    )
    results = [CheckResult(f"c{i}", Verdict(v)) for i, v in enumerate(verdicts)]
    assert run_outcome(results, analysis) is want
