"""PromQL for the analysis checks: templates of the built-in kinds and rendering of custom queries. Pure.

The built-in kinds read the metric contract of the model server (``design.md``) and select a revision by its ``model``
and ``revision`` labels only, so they work on any Prometheus without relabelling (no ``namespace`` label is assumed:
a scrape config may or may not add one). Only inference requests count (``endpoint="infer"``): health probes and
metadata calls would dilute error rates and pull latency quantiles down.

Every check is two instant queries evaluated at the same time: the value, and the number of samples behind it
(requests for latency and errorRate, scored predictions for accuracy) that the verdict compares with ``minRequests`` /
``minFeedback``. Custom ``prometheus`` checks have no sample count.

"No data" must come out as no data, never as a number (style: "no data is not bad data"):

* a revision without series gives an empty vector (the provider reports value None);
* a revision with series but no traffic in the window gives ``0 / 0`` = NaN for the ratios and for
  ``histogram_quantile`` (the provider reports NaN as None);
* a healthy revision that never answered a 5xx has NO ``code=~"5.."`` series at all. A plain ``errors / requests``
  would then be an empty vector, i.e. "no data" for the healthiest revision possible. The numerators of the ratios are
  therefore ``(... or vector(0))``: ``sum`` without ``by`` has no labels, just like ``vector(0)``, so the division
  still matches one-to-one, while an empty denominator keeps the whole result empty.

Label values are escaped for PromQL double-quoted strings, both in the built-in selectors and where a placeholder is
substituted into a custom query (placeholders are meant to sit inside ``"..."``, e.g. ``revision="{{revision}}"``).

>>> format_window(30), format_window(1.5), format_window(90)
('30s', '1500ms', '90s')
>>> print(latency_query("sentiment", "7b1e22", 0.99, "30s"))
histogram_quantile(0.99, sum by (le) (rate(modelpilot_request_duration_seconds_bucket{model="sentiment",\
revision="7b1e22",endpoint="infer"}[30s])))
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from modelpilot.api.strategy import MetricCheck
from modelpilot.rollout.measurement import QueryContext

__all__ = [
    "PLACEHOLDERS",
    "CheckQueries",
    "PlaceholderError",
    "accuracy_queries",
    "check_queries",
    "compares_with_stable",
    "error_rate_queries",
    "escape_label_value",
    "format_window",
    "latency_query",
    "latency_queries",
    "render_custom",
    "requests_query",
    "selector",
]

DURATION_METRIC = "modelpilot_request_duration_seconds"
REQUESTS_METRIC = "modelpilot_requests_total"
FEEDBACK_METRIC = "modelpilot_feedback_total"
INFER_ENDPOINT = "infer"
SERVER_ERROR_CODES = "5.."  # the `code` label is the HTTP status as a string
SCORED_OUTCOMES = "correct|incorrect"
_INFER = ("endpoint", "=", INFER_ENDPOINT)

#: Placeholders of custom queries, as written by users (camelCase like the rest of the spec).
PLACEHOLDERS = ("model", "namespace", "revision", "stableRevision", "interval")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class PlaceholderError(ValueError):
    """A custom query names an unknown placeholder, or one that has no value (``{{stableRevision}}`` without a
    stable revision). The query is not sent: a half-rendered query would only fail in Prometheus, less clearly."""


@dataclass(frozen=True)
class CheckQueries:
    """The instant queries of one check for one revision: the value, and the sample count behind it (None for custom
    queries, which have no notion of samples)."""

    value: str
    samples: str | None = None


def format_window(seconds: float) -> str:
    """A PromQL range duration: whole seconds as ``"30s"``, anything finer in milliseconds (``"1500ms"``).

    Seconds rather than minutes (``"90s"``, not ``"1m30s"``) keep it one unit and obviously equal to the interval the
    user wrote. Below a millisecond a window means nothing; zero, negative and non-finite windows are errors.
    """
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"window must be a positive number of seconds, not {seconds!r}")
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"window {seconds!r} s is shorter than a millisecond")
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def escape_label_value(value: str) -> str:
    """Escape ``value`` for a PromQL double-quoted string (Go escapes: backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace(
        "\t", "\\t"
    )


def selector(model: str, revision: str, *matchers: tuple[str, str, str]) -> str:
    """``{model="..",revision="..",...}``; each extra matcher is ``(label, operator, value)``, e.g.
    ``("code", "=~", "5..")``. Every value is escaped."""
    parts = [("model", "=", model), ("revision", "=", revision), *matchers]
    return "{" + ",".join(f'{name}{op}"{escape_label_value(value)}"' for name, op, value in parts) + "}"


def _increase(metric: str, sel: str, window: str) -> str:
    return f"sum(increase({metric}{sel}[{window}]))"


def requests_query(model: str, revision: str, window: str) -> str:
    """Inference requests of a revision in the window (the samples of latency and errorRate)."""
    return _increase(REQUESTS_METRIC, selector(model, revision, _INFER), window)


def latency_query(model: str, revision: str, quantile: float, window: str) -> str:
    """The ``quantile`` of inference latency in seconds, from the histogram buckets summed over all pods.

    The answer is interpolated inside a bucket (coarse: the contract's buckets are 1-2.5-5 steps), NaN without
    traffic, and ``+Inf`` when the quantile falls into the last bucket (slower than the largest bound): a real,
    terrible value, which the provider passes on rather than calling it no data.
    """
    sel = selector(model, revision, _INFER)
    return f"histogram_quantile({quantile!r}, sum by (le) (rate({DURATION_METRIC}_bucket{sel}[{window}])))"


def latency_queries(model: str, revision: str, quantile: float, window: str) -> CheckQueries:
    return CheckQueries(latency_query(model, revision, quantile, window), requests_query(model, revision, window))


def error_rate_queries(model: str, revision: str, window: str) -> CheckQueries:
    """Share of inference requests answered with a 5xx, and the request count. 4xx are the client's fault."""
    failed = selector(model, revision, ("endpoint", "=", INFER_ENDPOINT), ("code", "=~", SERVER_ERROR_CODES))
    errors = _increase(REQUESTS_METRIC, failed, window)
    requests = requests_query(model, revision, window)
    return CheckQueries(f"({errors} or vector(0)) / {requests}", requests)


def accuracy_queries(model: str, revision: str, window: str) -> CheckQueries:
    """Correct share of scored feedback, and the number of scored predictions."""
    correct = _increase(FEEDBACK_METRIC, selector(model, revision, ("outcome", "=", "correct")), window)
    scored = _increase(FEEDBACK_METRIC, selector(model, revision, ("outcome", "=~", SCORED_OUTCOMES)), window)
    return CheckQueries(f"({correct} or vector(0)) / {scored}", scored)


def render_custom(query: str, ctx: QueryContext) -> str:
    """Substitute the placeholders of a custom query (``{{ name }}``, spaces inside the braces allowed).

    Label values (model, namespace, revisions) are escaped for a double-quoted PromQL string, where they belong;
    ``{{interval}}`` becomes the window (``"30s"``). Unknown placeholders, and ``{{stableRevision}}`` when there is
    no stable revision, raise :class:`PlaceholderError`.
    """
    values: dict[str, str | None] = {
        "model": escape_label_value(ctx.model),
        "namespace": escape_label_value(ctx.namespace),
        "revision": escape_label_value(ctx.revision),
        "stableRevision": None if ctx.stable_revision is None else escape_label_value(ctx.stable_revision),
        "interval": format_window(ctx.window_seconds),
    }

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise PlaceholderError(f"unknown placeholder {{{{{name}}}}}; known: {', '.join(PLACEHOLDERS)}")
        value = values[name]
        if value is None:
            raise PlaceholderError(f"{{{{{name}}}}} has no value: there is no stable revision")
        return value

    return _PLACEHOLDER.sub(substitute, query)


def compares_with_stable(check: MetricCheck) -> bool:
    """Whether the check needs the stable revision measured too (a bound relative to stable).

    Custom queries never do: when they compare, they do it inside the query with ``{{stableRevision}}``.
    """
    if check.latency is not None:
        return check.latency.max_increase_over_stable is not None
    if check.error_rate is not None:
        return check.error_rate.max_increase_over_stable is not None
    if check.accuracy is not None:
        return check.accuracy.max_drop_from_stable is not None
    return False


def check_queries(check: MetricCheck, ctx: QueryContext, revision: str) -> CheckQueries:
    """The queries of ``check`` for ``revision`` (the canary's or the stable one) over the context's window.

    For a custom check ``revision`` is ignored: its query names revisions through placeholders.
    """
    window = format_window(ctx.window_seconds)
    if check.latency is not None:
        return latency_queries(ctx.model, revision, check.latency.quantile, window)
    if check.error_rate is not None:
        return error_rate_queries(ctx.model, revision, window)
    if check.accuracy is not None:
        return accuracy_queries(ctx.model, revision, window)
    assert check.prometheus is not None  # MetricCheck validates exactly one kind
    return CheckQueries(render_custom(check.prometheus.query, ctx))
