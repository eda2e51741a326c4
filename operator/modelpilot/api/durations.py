"""Durations and percentages as users write them in manifests ("30s", "1m30s", "250ms"; "20%").

>>> parse_duration("1m30s"), parse_duration("250ms"), parse_duration("2h")
(90.0, 0.25, 7200.0)
>>> parse_percent("20%"), parse_percent("0.5%")
(0.2, 0.005)
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
PERCENT_PATTERN = r"^[0-9]+(\.[0-9]+)?%$"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration string."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration (e.g. 30s, 1m30s, 250ms)")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))


def parse_percent(text: str) -> float:
    """A fraction from a percentage string."""
    if not re.fullmatch(PERCENT_PATTERN, text):
        raise ValueError(f"{text!r} is not a percentage (e.g. 20%)")
    return float(text[:-1]) / 100.0


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


def _check_percent(text: str) -> str:
    parse_percent(text)
    return text


Duration = Annotated[str, Field(pattern=DURATION_PATTERN), AfterValidator(_check_duration)]
Percent = Annotated[str, Field(pattern=PERCENT_PATTERN), AfterValidator(_check_percent)]
