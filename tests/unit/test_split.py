"""The replica split: the worked examples of ``modelpilot.rollout.split`` as a table."""

import pytest
from modelpilot.rollout.split import split

CASES = [
    # total, weight, by_pods -> stable, canary
    (10, 0, True, 10, 0),
    (10, 10, True, 9, 1),
    (10, 25, True, 7, 3),
    (4, 10, True, 3, 1),
    (1, 50, True, 1, 1),
    (10, 100, True, 1, 10),
    (0, 50, True, 0, 0),
    (3, 1, True, 2, 1),
    (10, 25, False, 10, 3),
    (10, 100, False, 10, 10),
    (10, 0, False, 10, 0),
]


@pytest.mark.parametrize("total, weight, by_pods, stable, canary", CASES)
def test_split(total, weight, by_pods, stable, canary):
    assert split(total, weight, by_pods=by_pods) == (stable, canary)


@pytest.mark.parametrize("total", range(0, 12))
@pytest.mark.parametrize("weight", [0, 1, 10, 33, 50, 99, 100])
def test_invariants(total, weight):
    stable, canary = split(total, weight, by_pods=True)
    assert canary <= total
    assert (canary > 0) == (weight > 0 and total > 0)  # any positive weight gets a pod, zero gets none
    assert stable >= (1 if total else 0)  # a rollback always has a stable pod to fall back on
    assert stable + canary <= total + 1  # at most one surge pod
