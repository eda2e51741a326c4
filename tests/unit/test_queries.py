"""PromQL of the analysis checks, as tables: ``modelpilot.metrics.queries``.

Covered: the rendered queries of each built-in kind (value and samples), which checks measure the stable revision,
window formatting (seconds, milliseconds, invalid windows), label escaping in selectors and placeholders, custom-query
placeholders (all five, spacing inside braces, unknown names, ``{{stableRevision}}`` without a stable revision).
"""

from __future__ import annotations

import math

import pytest
from modelpilot.api.strategy import MetricCheck
from modelpilot.metrics.queries import (
    PlaceholderError,
    check_queries,
    compares_with_stable,
    escape_label_value,
    format_window,
    render_custom,
    selector,
)
from modelpilot.rollout.measurement import QueryContext

CTX = QueryContext(model="sentiment", namespace="ml", revision="7b1e22", stable_revision="5d8f9c", window_seconds=30)
SEL = 'model="sentiment",revision="7b1e22"'


def check(**kind) -> MetricCheck:
    return MetricCheck.model_validate({"name": "c", **kind})


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (30, "30s"),
        (30.0, "30s"),
        (1, "1s"),
        (90, "90s"),
        (3600, "3600s"),
        (1.5, "1500ms"),
        (0.25, "250ms"),
        (0.001, "1ms"),
        (29.9996, "30s"),  # rounded to the millisecond first
    ],
)
def test_format_window(seconds: float, expected: str) -> None:
    assert format_window(seconds) == expected


@pytest.mark.parametrize("seconds", [0, -1, 0.0001, math.nan, math.inf])
def test_format_window_rejects(seconds: float) -> None:
    with pytest.raises(ValueError):
        format_window(seconds)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain-name", "plain-name"),
        ('a"b', 'a\\"b'),
        ("a\\b", "a\\\\b"),
        ("line\nbreak", "line\\nbreak"),
        ('\\"', '\\\\\\"'),  # backslash first, so an escaped quote cannot be un-escaped
        ("tab\tcr\r", "tab\\tcr\\r"),
    ],
)
def test_escape_label_value(value: str, escaped: str) -> None:
    assert escape_label_value(value) == escaped


def test_selector_escapes_every_value() -> None:
    assert selector('m"', "r\\", ("code", "=~", "5..")) == '{model="m\\"",revision="r\\\\",code=~"5.."}'


BUILT_IN = [
    (
        "latency p99",
        {"latency": {"quantile": 0.99, "max": "250ms"}},
        "histogram_quantile(0.99, sum by (le) (rate(modelpilot_request_duration_seconds_bucket"
        f'{{{SEL},endpoint="infer"}}[30s])))',
        f'sum(increase(modelpilot_requests_total{{{SEL},endpoint="infer"}}[30s]))',
    ),
    (
        "latency p50 relative",
        {"latency": {"quantile": 0.5, "maxIncreaseOverStable": "20%"}},
        "histogram_quantile(0.5, sum by (le) (rate(modelpilot_request_duration_seconds_bucket"
        f'{{{SEL},endpoint="infer"}}[30s])))',
        f'sum(increase(modelpilot_requests_total{{{SEL},endpoint="infer"}}[30s]))',
    ),
    (
        "error rate",
        {"errorRate": {"max": 0.01}},
        f'(sum(increase(modelpilot_requests_total{{{SEL},endpoint="infer",code=~"5.."}}[30s])) or vector(0))'
        f' / sum(increase(modelpilot_requests_total{{{SEL},endpoint="infer"}}[30s]))',
        f'sum(increase(modelpilot_requests_total{{{SEL},endpoint="infer"}}[30s]))',
    ),
    (
        "accuracy",
        {"accuracy": {"min": 0.9, "minFeedback": 200}},
        f'(sum(increase(modelpilot_feedback_total{{{SEL},outcome="correct"}}[30s])) or vector(0))'
        f' / sum(increase(modelpilot_feedback_total{{{SEL},outcome=~"correct|incorrect"}}[30s]))',
        f'sum(increase(modelpilot_feedback_total{{{SEL},outcome=~"correct|incorrect"}}[30s]))',
    ),
]


@pytest.mark.parametrize(("spec", "value", "samples"), [c[1:] for c in BUILT_IN], ids=[c[0] for c in BUILT_IN])
def test_built_in_queries(spec: dict, value: str, samples: str) -> None:
    queries = check_queries(check(**spec), CTX, CTX.revision)
    assert queries.value == value
    assert queries.samples == samples


def test_built_in_queries_for_the_stable_revision_differ_only_in_the_revision() -> None:
    c = check(errorRate={"maxIncreaseOverStable": "1%"})
    canary, stable = check_queries(c, CTX, "7b1e22"), check_queries(c, CTX, "5d8f9c")
    assert stable.value == canary.value.replace('revision="7b1e22"', 'revision="5d8f9c"')
    assert "7b1e22" not in stable.value + (stable.samples or "")


def test_built_in_queries_escape_the_model_name() -> None:
    ctx = QueryContext('we"ird', "ml", "r", None, 5)
    queries = check_queries(check(errorRate={"max": 0.1}), ctx, "r")
    assert 'model="we\\"ird"' in queries.value and 'model="we"' not in queries.value


@pytest.mark.parametrize(
    ("spec", "relative"),
    [
        ({"latency": {"max": "250ms"}}, False),
        ({"latency": {"maxIncreaseOverStable": "20%"}}, True),
        ({"latency": {"max": "250ms", "maxIncreaseOverStable": "20%"}}, True),
        ({"errorRate": {"max": 0.01}}, False),
        ({"errorRate": {"maxIncreaseOverStable": "1%"}}, True),
        ({"accuracy": {"min": 0.9}}, False),
        ({"accuracy": {"maxDropFromStable": "2%"}}, True),
        ({"prometheus": {"query": 'x{revision="{{stableRevision}}"}', "max": 1}}, False),
    ],
)
def test_compares_with_stable(spec: dict, relative: bool) -> None:
    assert compares_with_stable(check(**spec)) is relative


PLACEHOLDER_CASES = [
    ("model", 'up{model="{{model}}"}', 'up{model="sentiment"}'),
    ("namespace", 'up{namespace="{{namespace}}"}', 'up{namespace="ml"}'),
    ("revision", 'up{revision="{{revision}}"}', 'up{revision="7b1e22"}'),
    ("stable revision", 'up{revision="{{stableRevision}}"}', 'up{revision="5d8f9c"}'),
    ("interval", "rate(x[{{interval}}])", "rate(x[30s])"),
    ("spaces inside braces", 'up{revision="{{ revision }}"}', 'up{revision="7b1e22"}'),
    ("repeated", "{{revision}}/{{revision}}", "7b1e22/7b1e22"),
    ("no placeholders", "vector(1)", "vector(1)"),
    ("single braces are PromQL", "x{a=~\"b{2}\"}", "x{a=~\"b{2}\"}"),
    (
        "all together",
        'sum(rate(m{model="{{model}}",revision="{{revision}}"}[{{interval}}]))'
        ' / sum(rate(m{model="{{model}}",revision="{{stableRevision}}"}[{{interval}}]))',
        'sum(rate(m{model="sentiment",revision="7b1e22"}[30s]))'
        ' / sum(rate(m{model="sentiment",revision="5d8f9c"}[30s]))',
    ),
]


@pytest.mark.parametrize(
    ("query", "rendered"), [c[1:] for c in PLACEHOLDER_CASES], ids=[c[0] for c in PLACEHOLDER_CASES]
)
def test_render_custom(query: str, rendered: str) -> None:
    assert render_custom(query, CTX) == rendered


def test_render_custom_escapes_substituted_label_values() -> None:
    ctx = QueryContext('a"b', "n\\s", "r", None, 1.5)
    assert render_custom('x{model="{{model}}",namespace="{{namespace}}"}[{{interval}}]', ctx) == (
        'x{model="a\\"b",namespace="n\\\\s"}[1500ms]'
    )


@pytest.mark.parametrize(
    ("query", "ctx", "message"),
    [
        ("x{{revison}}", CTX, "unknown placeholder {{revison}}"),
        ("x{{stable_revision}}", CTX, "unknown placeholder"),
        ('x{r="{{stableRevision}}"}', QueryContext("m", "ns", "r", None, 30), "no stable revision"),
    ],
)
def test_render_custom_refuses(query: str, ctx: QueryContext, message: str) -> None:
    with pytest.raises(PlaceholderError, match=message.replace("{", r"\{").replace("}", r"\}")):
        render_custom(query, ctx)


def test_custom_check_queries_have_no_samples() -> None:
    queries = check_queries(check(prometheus={"query": 'up{revision="{{revision}}"}', "max": 1}), CTX, "ignored")
    assert queries.value == 'up{revision="7b1e22"}'
    assert queries.samples is None
