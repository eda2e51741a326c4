"""The operator's release metrics, read back from a private registry."""

from modelpilot.telemetry import OperatorMetrics


def value(m: OperatorMetrics, metric: str, **labels) -> float | None:
    return m.registry.get_sample_value(metric, labels)


def test_outcomes_checks_phase_and_weight():
    m = OperatorMetrics()
    events = [("Warning", "AnalysisFailed", "p99: ..."), ("Warning", "RolledBack", "revision r2: ...")]
    m.observe_pass("ml", "iris", {"phase": "Degraded", "canaryWeight": None}, events, [("p99", "Fail")])
    assert value(m, "modelpilot_release_outcomes_total", namespace="ml", name="iris", outcome="RolledBack") == 1
    assert value(m, "modelpilot_release_outcomes_total", namespace="ml", name="iris", outcome="Promoted") is None
    assert value(m, "modelpilot_analysis_checks_total", namespace="ml", name="iris", check="p99", verdict="Fail") == 1
    assert value(m, "modelpilot_modeldeployment_phase", namespace="ml", name="iris", phase="Degraded") == 1
    assert value(m, "modelpilot_modeldeployment_phase", namespace="ml", name="iris", phase="Healthy") == 0
    assert value(m, "modelpilot_release_canary_weight", namespace="ml", name="iris") == 0

    m.observe_pass("ml", "iris", {"phase": "Progressing", "canaryWeight": 25}, [], [])
    assert value(m, "modelpilot_release_canary_weight", namespace="ml", name="iris") == 25
    assert value(m, "modelpilot_modeldeployment_phase", namespace="ml", name="iris", phase="Degraded") == 0

    m.forget("ml", "iris")
    assert value(m, "modelpilot_release_canary_weight", namespace="ml", name="iris") is None
    assert value(m, "modelpilot_modeldeployment_phase", namespace="ml", name="iris", phase="Progressing") is None
